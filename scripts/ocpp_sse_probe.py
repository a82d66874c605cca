"""Time from a charger's StatusNotification to csm's live event of it: a probe charger
(PROBE-1, added with vendor ocpp) alternates its connector between Charging and Available while
an /api/events client watches for its changes. Usage: ocpp_sse_probe.py PORT SAMPLES; prints
one JSON object. Run by scripts/bench.py (the ocpp part), in the virtual environment of
scripts/ocpp-client.sh (it needs `websockets`)."""
import asyncio, json, sys, time, threading, http.client
import websockets
PORT = int(sys.argv[1]); N = int(sys.argv[2])
arrivals = {}
def sse():
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    conn.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
    r = conn.getresponse()
    while True:
        line = r.readline()
        if not line: return
        if line.startswith(b"data:") and b"PROBE-1" in line:
            try:
                d = json.loads(line[5:])
            except Exception:
                continue
            for c in d.get("changes", []) if isinstance(d, dict) else []:
                arrivals.setdefault(c["new"], []).append(time.time())
            if isinstance(d, list):
                for u in d:
                    if u.get("station_id") == "PROBE-1":
                        for c in u.get("changes", []): arrivals.setdefault(c["new"], []).append(time.time())
threading.Thread(target=sse, daemon=True).start()
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{PORT}/ocpp/PROBE-1", subprotocols=["ocpp1.6"]) as ws:
        await ws.send(json.dumps([2, "b", "BootNotification", {"chargePointVendor": "p", "chargePointModel": "p"}])); await ws.recv()
        lat = []
        for i in range(N):
            status = "Charging" if i % 2 == 0 else "Available"
            want = "occupied" if i % 2 == 0 else "free"
            before = len(arrivals.get(want, []))
            t0 = time.time()
            await ws.send(json.dumps([2, f"s{i}", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}]))
            await ws.recv()
            for _ in range(500):
                if len(arrivals.get(want, [])) > before: break
                await asyncio.sleep(0.002)
            if len(arrivals.get(want, [])) > before:
                lat.append((arrivals[want][-1] - t0) * 1000)
            await asyncio.sleep(1.0)
        lat.sort()
        q = lambda p: lat[min(len(lat)-1, int(round((len(lat)-1)*p)))] if lat else None
        print(json.dumps({"samples": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat[-1] if lat else None}))
asyncio.run(main())
