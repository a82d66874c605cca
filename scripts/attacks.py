#!/usr/bin/env python3
"""The attacks of a broken or hostile peer, run against a csm-server binary on the embedded
default (SQLite, in-process cache, the simulator's demo stations), each on a fresh server on
loopback. For each: what happened, the server's RSS, and the latency of GET /healthz sampled
every 100 ms during the attack. Python's standard library only.

Usage: scripts/attacks.py [--server PATH] [--only NAME,...]
Attacks: nested, slow, flood, readings, sse, ids. Prints one JSON line per attack."""

import argparse
import base64
import http.server
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "attack-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A csm-server on the embedded default in a fresh folder."""

    def __init__(self, binary, extra):
        self.dir = tempfile.mkdtemp(prefix="csm-attack-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
        env.update(CSM_BIND=f"127.0.0.1:{self.port}", CSM_ADMIN_TOKEN=TOKEN, CSM_VENDORS_DIR="/nonexistent",
                   RUST_LOG="warn")
        env.update(extra)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([binary], cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                get(self.base + "/readyz")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def alive(self):
        return self.proc.poll() is None

    def rss_mb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def last_log_lines(self, n=3):
        with open(os.path.join(self.dir, "server.log"), errors="replace") as log:
            return [line.strip()[:200] for line in log.readlines()[-n:]]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def get_json(url):
    try:
        status, body = get(url)
        return status, json.loads(body)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def post_json(url, document):
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class HealthProbe:
    """GET /healthz every 100 ms in a thread: latencies in ms, failures counted."""

    def __init__(self, server):
        self.server, self.times, self.failures = server, [], 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.is_set():
            started = time.perf_counter()
            try:
                get(self.server.base + "/healthz", timeout=5)
                self.times.append((time.perf_counter() - started) * 1000)
            except OSError:
                self.failures += 1
            time.sleep(0.1)

    def result(self):
        self.stop_flag.set()
        self.thread.join()
        times = sorted(self.times)
        return {
            "health_ok": len(times), "health_failed": self.failures,
            "health_p50_ms": round(statistics.median(times), 2) if times else None,
            "health_max_ms": round(times[-1], 2) if times else None,
        }


class Vendor(http.server.ThreadingHTTPServer):
    """A vendor API on loopback answering per station: (status, headers, body, delay)."""

    def __init__(self, answers):
        self.answers = answers
        super().__init__(("127.0.0.1", 0), VendorHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class VendorHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        station = self.path.split("/")[4] if self.path.count("/") >= 4 else ""
        status, headers, body, delay = self.server.answers.get(
            station, (200, {}, b'{"ports":[{"port":1,"status":"free"},{"port":2,"status":"occupied"}]}', 0))
        time.sleep(delay)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class WebSocket:
    """A minimal OCPP-J client: the handshake, masked text frames out, frames in."""

    def __init__(self, port, path, protocol="ocpp1.6"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
        self.buffer = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""

    def send(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv(self):
        """The next text frame's payload, or None when the server closes."""
        while True:
            try:
                first, second = self._read(2)
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._read(8))[0]
                payload = self._read(length)
            except (ConnectionError, OSError):
                return None
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x1:
                return json.loads(payload)

    def call(self, action, payload, call_id="1"):
        self.send(json.dumps([2, call_id, action, payload]))
        return self.recv()

    def close(self):
        self.sock.close()


BOOT = {"chargePointVendor": "Attack", "chargePointModel": "A1"}


def station(server, station_id):
    return get_json(f"{server.base}/api/stations/{station_id}")[1]


def attack_nested(binary):
    depth = 9000
    deep = ('{"ok":1,"ports":[0,1],"junk":' + "[" * depth + "]" * depth + "}").encode()
    vendor = Vendor({"DEEP": (200, {}, deep, 0)})
    server = Server(binary, {"CSM_REFRESH_INTERVAL_SECS": "2", "CSM_VENDOR_CSM_BASE_URL": vendor.url})
    probe = HealthProbe(server)
    added = post_json(server.base + "/api/stations", {"station_id": "DEEP", "name": "deep", "vendor": "csm", "port_count": 2})[0]
    time.sleep(12)
    result = {"attack": "nested", "added": added, "alive_after_12s": server.alive(), "rss_mb": server.rss_mb()}
    result.update(probe.result())
    if server.alive():
        result["deep_last_error"] = station(server, "DEEP").get("last_error")
        result["S0001_updated_at"] = station(server, "S0001").get("updated_at")
    else:
        result["log"] = server.last_log_lines()
    server.stop()
    vendor.shutdown()
    return result


def age_secs(shown):
    at = shown.get("updated_at")
    if not at:
        return None
    from datetime import datetime, timezone
    return (datetime.now(timezone.utc) - datetime.fromisoformat(at.replace("Z", "+00:00"))).total_seconds()


def attack_slow(binary):
    vendor = Vendor({"SLOW": (429, {"Retry-After": "5"}, b"{}", 0)})
    server = Server(binary, {"CSM_REFRESH_INTERVAL_SECS": "2", "CSM_VENDOR_CSM_BASE_URL": vendor.url})
    time.sleep(3)
    probe = HealthProbe(server)
    post_json(server.base + "/api/stations", {"station_id": "SLOW", "name": "slow", "vendor": "csm", "port_count": 2})
    ages, unmarked_old = [], 0
    started = time.time()
    while time.time() - started < 20:
        shown = station(server, "S0001")
        age = age_secs(shown)
        if age is not None:
            ages.append(age)
            if age > 9 and not shown.get("stale"):
                unmarked_old += 1
        time.sleep(0.5)
    result = {"attack": "slow", "S0001_max_age_s": round(max(ages), 1) if ages else None,
              "old_answers_not_marked_stale": unmarked_old, "rss_mb": server.rss_mb()}
    result.update(probe.result())
    server.stop()
    vendor.shutdown()
    return result


def ocpp_stations(server):
    return get_json(f"{server.base}/api/stations?vendor=ocpp&view=summary&limit=10000")[1].get("total")


def closed_by_server(ws):
    """Whether the server ended `ws`: its socket ended, or a close frame came."""
    ws.sock.setblocking(False)
    data = ws.buffer
    try:
        while True:
            chunk = ws.sock.recv(65536)
            if not chunk:
                return True
            data += chunk
    except BlockingIOError:
        pass
    except OSError:
        return True
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = struct.unpack(">H", data[at:at + 2])[0], at + 2
        elif length == 127:
            length, at = struct.unpack(">Q", data[at:at + 8])[0], at + 8
        if opcode == 0x8:
            return True
        at += length
    return False


def attack_flood(binary):
    server = Server(binary, {})
    before = ocpp_stations(server)
    probe = HealthProbe(server)
    sockets = []
    for n in range(2000):
        try:
            sockets.append(WebSocket(server.port, f"/ocpp/JUNK-{n}"))
        except OSError:
            break
    upgraded = sum(1 for s in sockets if s.status == 101)
    time.sleep(3)
    rss_connected = server.rss_mb()
    stations_after = ocpp_stations(server)
    time.sleep(22)
    closed = sum(1 for s in sockets if closed_by_server(s))
    for s in sockets:
        s.close()
    result = {"attack": "flood", "handshakes": len(sockets), "upgraded": upgraded,
              "ocpp_stations_before": before, "ocpp_stations_after": stations_after,
              "closed_by_server_within_25s": closed, "rss_mb_connected": rss_connected}
    result.update(probe.result())
    server.stop()
    return result


def attack_readings(binary):
    server = Server(binary, {})
    probe = HealthProbe(server)
    ws = WebSocket(server.port, "/ocpp/CP-HUGE")
    ws.call("BootNotification", BOOT, "b")
    ws.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}, "s")
    ws.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-12-01T08:00:00Z"}, "t")
    ws.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2026-12-01T08:00:00Z", "sampledValue": [
        {"value": "1e308", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "1e308", "measurand": "Current.Import", "phase": "L1"},
        {"value": "1e308", "measurand": "Current.Import", "phase": "L2"},
        {"value": "1e308", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}]}]}, "m")
    time.sleep(3)
    shown = station(server, "CP-HUGE")
    port = (shown.get("ports") or [{}])[0]
    result = {"attack": "readings", "power": port.get("power"), "current": port.get("current"),
              "energy_kwh": port.get("energy_kwh"), "last_error": shown.get("last_error"), "rss_mb": server.rss_mb()}
    result.update(probe.result())
    ws.close()
    server.stop()
    return result


def sse_clients(server):
    """The live streams the server counts open (its csm_sse_clients gauge)."""
    _, text = get(server.base + "/metrics")
    for line in text.decode().splitlines():
        if line.startswith("csm_sse_clients "):
            return int(float(line.split()[1]))
    return 0


def attack_sse(binary):
    # A busy fleet, so that the streams have much to send: 200 more simulated stations whose
    # story runs ten minutes a second.
    server = Server(binary, {"CSM_REFRESH_INTERVAL_SECS": "2", "CSM_SIMULATOR_SPEED": "600"})
    for n in range(200):
        post_json(server.base + "/api/stations", {"station_id": f"BUSY-{n}", "name": f"busy {n}",
                                                  "vendor": "simulator", "port_count": 12})
    probe = HealthProbe(server)
    hoarded = []
    for _ in range(5000):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            s.bind(("127.0.0.1", 0))
            s.connect(("127.0.0.1", server.port))
            s.sendall(b"GET /api/events HTTP/1.1\r\nHost: csm\r\n\r\n")
            hoarded.append(s)
        except OSError:
            break
    time.sleep(2)

    def status_from(local):
        s = socket.socket()
        s.settimeout(5)
        s.bind((local, 0))
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: csm\r\n\r\n")
        line = s.recv(64).split(b"\r\n")[0].decode(errors="replace")
        s.close()
        return line

    same, other = status_from("127.0.0.1"), status_from("127.0.0.2")
    rss = server.rss_mb()
    open_at_start = sse_clients(server)
    # The server's count of open streams, until the ones that never read are dropped.
    started, open_now = time.time(), open_at_start
    while time.time() - started < 240 and open_now:
        time.sleep(5)
        open_now = sse_clients(server)
    result = {"attack": "sse", "hoarded": len(hoarded), "same_address_after": same, "other_address_after": other,
              "streams_open": open_at_start, "streams_open_after": open_now,
              "seconds_until_dropped": round(time.time() - started) if not open_now else None,
              "rss_mb_hoarded": rss}
    for s in hoarded:
        s.close()
    result.update(probe.result())
    server.stop()
    return result


def attack_ids(binary):
    server = Server(binary, {})
    probe = HealthProbe(server)
    dots = post_json(server.base + "/api/stations", {"station_id": "..", "name": "dots", "vendor": "simulator", "port_count": 2})
    real = WebSocket(server.port, "/ocpp/SEV-0001")
    real.call("BootNotification", BOOT, "b")
    twin = WebSocket(server.port, "/ocpp/%20SEV-0001%20")
    real.send(json.dumps([2, "h", "Heartbeat", {}]))
    real.sock.settimeout(5)
    answer = real.recv()
    result = {"attack": "ids", "post_dots_status": dots[0], "post_dots_answer": dots[1].get("error"),
              "spaced_twin_handshake": twin.status, "real_charger_still_served": answer is not None,
              "rss_mb": server.rss_mb()}
    result.update(probe.result())
    real.close()
    twin.close()
    server.stop()
    return result


ATTACKS = {"nested": attack_nested, "slow": attack_slow, "flood": attack_flood, "readings": attack_readings,
           "sse": attack_sse, "ids": attack_ids}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.path.join(ROOT, "target", "release", "csm-server"))
    parser.add_argument("--only", default=",".join(ATTACKS))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    for name in args.only.split(","):
        print(json.dumps(ATTACKS[name](os.path.abspath(args.server)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
