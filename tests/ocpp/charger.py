"""An OCPP 1.6J charge point built on the Python `ocpp` package (an implementation csm shares
no code with): it connects to csm, boots, runs one charging session with meter values, stops and
goes away, and checks through csm's HTTP API what csm made of it.

Usage: python charger.py http://127.0.0.1:PORT   (run by scripts/ocpp-client.sh)
"""

import asyncio
import datetime
import json
import sys
import urllib.request

import websockets
from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import RegistrationStatus

BASE = sys.argv[1].rstrip("/")
ID = "PY-CP1"


def payload(name, **fields):
    # ocpp 2.x names the call classes after the action; 1.x added "Payload".
    cls = getattr(call, name, None) or getattr(call, name + "Payload")
    return cls(**fields)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def api(path):
    with urllib.request.urlopen(BASE + path, timeout=5) as response:
        return json.load(response)


async def until(what, check, seconds=10):
    for _ in range(seconds * 10):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise SystemExit(f"FAIL: {what} did not happen within {seconds} s")


def port(n):
    station = api(f"/api/stations/{ID}")
    return next((p for p in station["ports"] if p["port"] == n), None)


async def main():
    url = BASE.replace("http://", "ws://") + f"/ocpp/{ID}"
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6", ws.subprotocol
        cp = ChargePoint(ID, ws)
        listener = asyncio.create_task(cp.start())
        boot = await cp.call(payload("BootNotification", charge_point_model="PyModel", charge_point_vendor="ocpp-py"))
        assert boot.status == RegistrationStatus.accepted, boot
        assert boot.interval > 0, boot
        print(f"BootNotification: {boot.status}, interval {boot.interval} s, csm's time {boot.current_time}")
        await cp.call(payload("Heartbeat"))
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Available"))
        await until("port 1 free", lambda: (port(1) or {}).get("status") == "free")
        started = await cp.call(payload("StartTransaction", connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp=now()))
        assert started.id_tag_info["status"] == "Accepted", started
        print(f"StartTransaction: transaction {started.transaction_id}")
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Charging"))
        await cp.call(payload(
            "MeterValues", connector_id=1, transaction_id=started.transaction_id,
            meter_value=[{"timestamp": now(), "sampled_value": [
                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "3500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "231.0", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                {"value": "229.0", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
                {"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "16", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            ]}],
        ))
        charging = await until("port 1 charging with its meter values",
                               lambda: (p := port(1)) and p["status"] == "occupied" and p["power"] and p)
        assert abs(charging["power"] - 7400) < 1e-6, charging
        assert abs(charging["energy_kwh"] - 2.5) < 1e-6, charging
        assert abs(charging["voltage"] - 230.0) < 1e-6 and abs(charging["current"] - 32.0) < 1e-6, charging
        print(f"csm shows port 1 {charging['status']} ({charging['raw_code']}): {charging['power']:.0f} W, "
              f"{charging['voltage']:.1f} V, {charging['current']:.1f} A, {charging['energy_kwh']:.2f} kWh this session")
        stopped = await cp.call(payload("StopTransaction", meter_stop=3500, timestamp=now(), transaction_id=started.transaction_id))
        assert stopped.id_tag_info["status"] == "Accepted", stopped
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Available"))
        await until("port 1 free again", lambda: (port(1) or {}).get("status") == "free")
        events = await until("the status changes in csm's history", lambda: (
            e := api(f"/api/stations/{ID}/events?port=1")["events"]) and len(e) >= 3 and e)
        changes = [(e["old"], e["new"]) for e in reversed(events)]
        assert changes[-2:] == [("free", "occupied"), ("occupied", "free")], changes
        sessions = await until("the session in csm's history", lambda: (
            s := api(f"/api/stations/{ID}/sessions?port=1")["sessions"]) and s[0].get("ended_at") and s)
        print(f"csm recorded {changes} and a session of {sessions[0]['duration_minutes']} min")
        listener.cancel()
    gone = await until("csm to show the charger offline once its socket closed", lambda: (
        s := api(f"/api/stations/{ID}")) and s["last_error"]
        and all(p["status"] == "offline" for p in s["ports"]) and s)
    assert gone["stale"] is True, gone
    print(f"after the socket closed: ports {[p['status'] for p in gone['ports']]}, stale, "
          f"\"{gone['last_error']}\"")
    registry = api("/api/ocpp/charge-points?all=true")["charge_points"]
    me = next(c for c in registry if c["station_id"] == ID)
    assert (me["connection"], me["vendor"], me["model"]) == ("disconnected", "ocpp-py", "PyModel"), me
    print(f"the registry: {me['connection']}, {me['vendor']} {me['model']}, last {me['last_action']}")
    print("python ocpp charger: ok")


asyncio.run(main())
