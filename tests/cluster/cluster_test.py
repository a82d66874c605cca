#!/usr/bin/env python3
"""Three csm-server processes on one MariaDB and one Redis, as a load balancer would run them,
checked from outside the way their users see them:

- a vendor simulator (`csm-cli simulate`) counts the requests for each station: over 5
  intervals every station is asked once an interval;
- `kill -9` of instance A: B and C refresh its stations within 2 intervals, and again once an
  interval; event-stream clients on B and C see the same changes of the whole fleet, in one
  order, and a client of A that reconnects to B with Last-Event-ID misses nothing;
- a `port_free` rule on every station: one webhook delivery for each freed port, never two;
- an OCPP charger (the Python `ocpp` package; OCPP 2.0.1, or 1.6J with --redis-cluster, so
  that both versions cross instances) connected to A is refreshed through B (it gets
  the TriggerMessage), answers an operator's command sent through B, and its message log is
  read through B from A; then it moves to C with no offline event, and a command through B
  reaches it there;
- Redis (this test's own, on a loopback port) restarts empty under the cluster: the stations
  stay refreshed once an interval, the cluster re-forms, and the charger is reached again.

With --redis-cluster, "Redis" is a Redis Cluster of three masters on loopback ports (all three
restart in step 4).

Usage: python cluster_test.py CSM_SERVER CSM_CLI [--redis-cluster]   (run by
scripts/cluster-test.sh, with the Python ocpp package's interpreter)
"""

import asyncio
import collections
import hashlib
import hmac
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets
from ocpp.routing import on

if "--redis-cluster" in sys.argv[3:]:
    from ocpp.v16 import ChargePoint, call, call_result
    from ocpp.v16.enums import Action
    OCPP_VERSION = "1.6"
else:
    from ocpp.v201 import ChargePoint, call, call_result
    from ocpp.v201.enums import Action
    OCPP_VERSION = "2.0.1"
SUBPROTOCOL = "ocpp" + OCPP_VERSION
# Each version's soft reset.
RESET = "Soft" if OCPP_VERSION == "1.6" else "OnIdle"

SERVER, CLI = sys.argv[1], sys.argv[2]
ON_REDIS_CLUSTER = "--redis-cluster" in sys.argv[3:]
INTERVAL = 2.0
STATIONS = 60
TOKEN = "cluster-test-admin"
SECRET = "cluster-test-secret"
CHARGER = "PY-CLUSTER"
MYSQL = os.environ.get("CSM_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
DATABASE = f"csm_cluster_{os.getpid()}"
WORK = tempfile.mkdtemp(prefix="csm-cluster-")
STARTED = time.time()


def log(message):
    print(f"[cluster {time.time() - STARTED:6.1f}s] {message}", flush=True)


def fail(message):
    raise SystemExit(f"FAIL: {message}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(method, url, body=None, token=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def until(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    fail(f"{what} did not happen within {seconds} s")


class Process:
    def __init__(self, name, args, env=None):
        self.name = name
        self.log_path = os.path.join(WORK, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self):
        return self.process.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines=15):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])


class Redis:
    """This test's own Redis, so restarting it disturbs nothing else."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--save", "", "--appendonly", "no", "--dir", WORK,
                        "--logfile", os.path.join(WORK, "redis.log")], check=True)
        until("redis to answer", lambda: self.cli("ping") == "PONG", 10)

    def cli(self, *args):
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return done.stdout.strip()

    def stop(self):
        self.cli("shutdown", "nosave")
        until("redis to stop", lambda: subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True).returncode != 0, 10)


def cluster_port():
    """A free port whose cluster bus port (10000 above it) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster:
    """This test's own Redis Cluster of three masters (no replicas, no persistence: a restart of
    all three keeps the cluster's layout in its nodes files and comes back empty)."""

    def __init__(self):
        self.ports = [cluster_port() for _ in range(3)]
        self.url = ",".join(f"redis://127.0.0.1:{port}" for port in self.ports)
        self.formed = False
        self.start()
        done = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{port}" for port in self.ports],
                               "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"redis-cli --cluster create: {done.stdout}{done.stderr}")
        self.formed = True
        self.settled()

    def start(self):
        for port in self.ports:
            subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
                            "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                            "--save", "", "--appendonly", "no", "--dir", WORK,
                            "--logfile", os.path.join(WORK, f"redis-{port}.log")], check=True)
        for port in self.ports:
            until(f"redis on {port} to answer", lambda: self.on(port, "ping") == "PONG", 10)
        if self.formed:
            self.settled()

    def settled(self):
        until("the Redis Cluster to be ok", lambda: all(
            "cluster_state:ok" in self.on(port, "cluster", "info") for port in self.ports), 30)

    def on(self, port, *args):
        done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True)
        return done.stdout.strip()

    def cli(self, *args):
        return [self.on(port, *args) for port in self.ports]

    def stop(self):
        self.cli("shutdown", "nosave")
        until("redis to stop", lambda: all(subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode != 0 for port in self.ports), 10)


class Webhook(BaseHTTPRequestHandler):
    """Receives the alerts' webhook: checks each signature and keeps every delivery."""

    deliveries = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers["X-Csm-Timestamp"]
        expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        signed = self.headers["X-Csm-Signature"] == f"sha256={expected}"
        with Webhook.lock:
            Webhook.deliveries.append((self.headers["X-Csm-Delivery"], json.loads(body), signed))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_):
        pass


class EventStream(threading.Thread):
    """A client of /api/events: keeps every `station` event (id, station, changes)."""

    def __init__(self, name, base, last_event_id=None):
        super().__init__(daemon=True)
        self.name, self.base, self.last_event_id = name, base, last_event_id
        self.events = []
        self.ended = None
        self.lock = threading.Lock()
        self.start()

    def run(self):
        url = self.base + "/api/events"
        if self.last_event_id:
            url += f"?last_event_id={self.last_event_id}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                event, data, event_id = None, None, None
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "":
                        if event == "station":
                            body = json.loads(data)
                            with self.lock:
                                self.events.append((event_id, body["station_id"], body["changes"], time.time()))
                        event, data, event_id = None, None, None
        except Exception as error:  # the instance died, or the test ended
            self.ended = repr(error)

    def snapshot(self):
        with self.lock:
            return list(self.events)


class Charger(threading.Thread):
    """An OCPP 1.6J charger on the Python `ocpp` package: connects to the first of `bases` that
    answers, boots once, and reconnects to the next when its connection drops."""

    def __init__(self):
        super().__init__(daemon=True)
        self.bases = []
        self.triggers = []
        self.resets = []
        self.connected_to = None
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.stopped = False

    def run(self):
        self.loop.run_until_complete(self.main())

    async def main(self):
        booted = False
        while not self.stopped:
            for base in list(self.bases):
                url = base.replace("http://", "ws://") + f"/ocpp/{CHARGER}"
                try:
                    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=3) as ws:
                        point = Point(CHARGER, ws, self)
                        listener = asyncio.create_task(point.start())
                        if not booted:
                            await point.call(boot())
                            booted = True
                        else:
                            await point.call(call.Heartbeat())
                        await point.call(available(1))
                        self.connected_to = base
                        self.connections += 1
                        await listener
                except Exception:
                    pass
                self.connected_to = None
                if self.stopped:
                    return
            await asyncio.sleep(0.2)


def boot():
    if OCPP_VERSION == "1.6":
        return call.BootNotification(charge_point_model="Cluster", charge_point_vendor="ocpp-py")
    return call.BootNotification(charging_station={"model": "Cluster", "vendor_name": "ocpp-py"}, reason="PowerUp")


def available(connector):
    if OCPP_VERSION == "1.6":
        return call.StatusNotification(connector_id=connector, error_code="NoError", status="Available")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return call.StatusNotification(timestamp=stamp, connector_status="Available", evse_id=connector, connector_id=1)


class Point(ChargePoint):
    def __init__(self, id, ws, charger):
        super().__init__(id, ws)
        self.charger = charger

    @on(Action.reset)
    async def on_reset(self, type, **_):
        self.charger.resets.append((self.charger.connected_to, type))
        return call_result.Reset(status="Accepted")

    @on(Action.trigger_message)
    async def on_trigger(self, requested_message, connector_id=None, evse=None, **_):
        self.charger.triggers.append((self.charger.connected_to, requested_message, time.time()))
        port = connector_id or (evse or {}).get("id") or 1
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self.report(port)))
        return call_result.TriggerMessage(status="Accepted")

    async def report(self, connector_id):
        """The status the trigger asked for (lost, like a real charger's, if the connection
        drops meanwhile)."""
        try:
            await self.call(available(connector_id))
        except Exception:
            pass


def requests_since(sim, since):
    _, body = api("GET", f"{sim}/api/v1/requests?since_ms={int(since * 1000)}")
    return [(r["station"], r["at_ms"] / 1000) for r in body["requests"]]


def by_station(requests):
    seen = collections.defaultdict(list)
    for station, at in requests:
        seen[station].append(at)
    return seen


def once_an_interval(sim, what, start, intervals=5):
    """Over `intervals` intervals from `start`: every station asked, consecutive requests of a
    station about an interval apart (never two in one interval, none skipped)."""
    end = start + intervals * INTERVAL
    time.sleep(max(0, end + 0.5 - time.time()))
    seen = by_station(r for r in requests_since(sim, start) if r[1] < end)
    missing = [f"S{n:04d}" for n in range(1, STATIONS + 1) if f"S{n:04d}" not in seen]
    if missing:
        fail(f"{what}: stations never asked in {intervals} intervals: {missing}")
    gaps = [b - a for times in seen.values() for a, b in zip(times, times[1:])]
    total = sum(len(t) for t in seen.values())
    per = total / (STATIONS * intervals)
    log(f"{what}: {total} requests for {STATIONS} stations in {intervals} intervals = {per:.2f} per station "
        f"per interval; gaps between a station's requests {min(gaps):.2f}–{max(gaps):.2f} s")
    twice = [g for g in gaps if g < INTERVAL / 2]
    if twice:
        fail(f"{what}: {len(twice)} requests came less than half an interval after the station's previous one")
    skipped = [g for g in gaps if g > INTERVAL * 1.5]
    if skipped:
        fail(f"{what}: {len(skipped)} times a station went more than 1.5 intervals unasked: {sorted(skipped)[-3:]}")
    return per


def manual_refresh(base, what):
    """A manual refresh of the charger through `base`: waits out a cool-down (the charger's
    state was read moments ago) as a client honouring Retry-After would."""
    for _ in range(10):
        status, body = api("POST", f"{base}/api/stations/{CHARGER}/refresh", token=TOKEN)
        if status != 429:
            break
        time.sleep(json.loads(body)["retry_after_secs"] + 0.1)
    if status != 200 or body["result"] != "ok":
        fail(f"{what}: {status} {body}")


def operate_through(base, charger, holder_base, holder):
    """An operator's command sent to `base` reaches the charger on instance `holder`, and the
    charger's message log read through `base` comes from there."""
    resets = len(charger.resets)
    status, body = api("POST", f"{base}/api/ocpp/charge-points/{CHARGER}/commands",
                       {"command": "Reset", "type": RESET}, TOKEN, timeout=20)
    if status != 200 or body.get("status") != "Accepted" or body.get("instance") != holder:
        fail(f"a Reset through {base} for the charger on {holder}: {status} {body}")
    took = body["took_ms"]
    if charger.resets[resets:] != [(holder_base, RESET)]:
        fail(f"the charger got {charger.resets[resets:]} for one Reset sent to {holder}")
    status, body = api("GET", f"{base}/api/ocpp/charge-points/{CHARGER}/messages?limit=20", token=TOKEN)
    if status != 200 or body.get("instance") != holder or not body.get("connected"):
        fail(f"the message log through {base}: {status} {body}")
    frames = [(m["direction"], m["action"]) for m in body["messages"]]
    if ("out", "Reset") not in frames or ("in", "Reset") not in frames:
        fail(f"the message log read from {holder} has no Reset and its answer: {frames}")
    log(f"a Reset through B answered Accepted by the charger on {holder.upper()} in {took} ms; "
        f"its message log ({len(body['messages'])} frames) read through B")


def cluster_of(base):
    status, body = api("GET", f"{base}/api/cluster", token=TOKEN)
    return body if status == 200 else None


def formed(base, ids):
    body = cluster_of(base)
    if not body or sorted(i["id"] for i in body["instances"]) != sorted(ids):
        return None
    if sum(i["stations"] for i in body["instances"]) not in (STATIONS, STATIONS + 1):
        return None
    return body if all(i["stations"] > 0 for i in body["instances"]) else None


def main():
    if "csm_cluster_" not in DATABASE:
        fail("refusing a database not of this test")
    subprocess.run(["mysql", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-e",
                    f"CREATE DATABASE `{DATABASE}`"], check=True)
    redis = RedisCluster() if ON_REDIS_CLUSTER else Redis()
    log(f"Redis: {redis.url}")
    processes = []
    charger = Charger()
    streams = []
    try:
        run(redis, processes, charger, streams)
    except BaseException:
        for process in processes:
            print(f"--- {process.name} log (last lines) ---\n{process.tail()}", file=sys.stderr)
        raise
    finally:
        charger.stopped = True
        for process in reversed(processes):
            process.kill(signal.SIGTERM)
        redis.cli("shutdown", "nosave")
        subprocess.run(["mysql", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-e",
                        f"DROP DATABASE IF EXISTS `{DATABASE}`"])


def run(redis, processes, charger, streams):
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    processes.append(Process("simulator", [CLI, "simulate", "--stations", str(STATIONS), "--ports", "4",
                                           "--bind", f"127.0.0.1:{sim_port}", "--speed", "120"]))
    until("the simulator", lambda: api("GET", f"{sim}/api/v1/stations")[0] == 200, 20)

    hook_port = free_port()
    receiver = ThreadingHTTPServer(("127.0.0.1", hook_port), Webhook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
    env.update(
        CSM_DATABASE_URL=f"{MYSQL}/{DATABASE}",
        CSM_REDIS_URL=redis.url,
        CSM_CACHE_PREFIX=f"csmcluster{os.getpid()}:",
        CSM_VENDORS_DIR="/nonexistent",
        CSM_VENDOR_CSM_BASE_URL=sim,
        CSM_REFRESH_INTERVAL_SECS=str(int(INTERVAL)),
        CSM_ADMIN_TOKEN=TOKEN,
        CSM_OCPP_REGISTRATION="auto",
        CSM_OCPP_HEARTBEAT_SECS="10",
        CSM_MANUAL_REFRESH_COOLDOWN_SECS="1",
        RUST_LOG="info",
    )
    subprocess.run([CLI, "init-db"], env=env, check=True, capture_output=True)
    subprocess.run([CLI, "stations", "sync", "--vendor", "csm"], env=env, check=True, capture_output=True)

    bases = {}
    servers = {}
    for name in ("a", "b", "c"):
        port = free_port()
        servers[name] = Process(name, [SERVER], env=dict(env, CSM_BIND=f"127.0.0.1:{port}", CSM_INSTANCE_ID=name))
        processes.append(servers[name])
        bases[name] = f"http://127.0.0.1:{port}"
    for name, base in bases.items():
        until(f"instance {name}", lambda: api("GET", f"{base}/readyz")[0] == 200, 60)
    a, b, c = bases["a"], bases["b"], bases["c"]

    status, body = api("POST", f"{a}/api/alerts/channels", {
        "name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{hook_port}/alerts", "secret": SECRET}, TOKEN)
    if status >= 300:
        fail(f"adding the webhook channel: {status} {body}")
    status, body = api("POST", f"{b}/api/alerts/rules", {"kind": "port_free", "stations": "all", "channel": "hook"}, TOKEN)
    if status >= 300:
        fail(f"adding the port_free rule: {status} {body}")
    rule_added = time.time()

    charger.bases = [a, c]
    charger.start()
    until("the charger connected to A", lambda: charger.connected_to == a, 20)

    view = until("three instances sharing the stations", lambda: formed(a, "abc"), 30)
    log("formed: " + ", ".join(f"{i['id']} refreshes {i['stations']} stations, holds {i['chargers']} chargers"
                              for i in view["instances"]))
    on_b, on_c, on_a = EventStream("B", b), EventStream("C", c), EventStream("A", a)
    streams.extend([on_b, on_c, on_a])
    time.sleep(1)
    listening = time.time()

    # 1. Three instances: each station asked once an interval.
    before = once_an_interval(sim, "three instances", time.time())

    # 2. A manual refresh of the charger through B reaches it on A.
    asked = len(charger.triggers)
    manual_refresh(b, "a manual refresh of the charger through B")
    until("the charger to get B's TriggerMessage", lambda: len(charger.triggers) > asked, 5)
    log(f"manual refresh through B reached the charger on A: TriggerMessage {charger.triggers[-1][1]}")
    operate_through(b, charger, a, "a")

    # 3. kill -9 of A.
    for stream in (on_a, on_b, on_c):
        if stream.ended or not stream.snapshot():
            fail(f"the event client of {stream.name} got nothing ({stream.ended})")
    last_on_a = on_a.snapshot()[-1][0]
    killed = time.time()
    servers["a"].kill(signal.SIGKILL)
    log(f"killed A (kill -9); its event client had reached id {last_on_a}")
    resumed = EventStream("A→B", b, last_event_id=last_on_a)
    streams.append(resumed)
    until("the charger to move to C", lambda: charger.connected_to == c, 10)
    log(f"the charger reconnected to C {time.time() - killed:.1f} s after the kill")
    time.sleep(2 * INTERVAL + 1)
    after_kill = by_station(requests_since(sim, killed))
    takeover = max(min(times) - killed for times in after_kill.values())
    missing = [f"S{n:04d}" for n in range(1, STATIONS + 1) if f"S{n:04d}" not in after_kill]
    if missing or takeover > 2 * INTERVAL:
        fail(f"after the kill, stations unasked for {takeover:.2f} s (more than 2 intervals): {missing}")
    log(f"every station was asked again within {takeover:.2f} s of the kill (2 intervals: {2 * INTERVAL:.0f} s)")
    until("two instances sharing the stations", lambda: formed(b, "bc"), 10)
    after = once_an_interval(sim, "two instances after the kill", time.time())

    asked = len(charger.triggers)
    manual_refresh(b, "a manual refresh of the moved charger through B")
    until("the charger on C to get B's TriggerMessage", lambda: len(charger.triggers) > asked, 5)
    log("manual refresh through B reached the charger on C")
    operate_through(b, charger, c, "c")

    # 4. Redis restarts empty under the cluster.
    restarted = time.time()
    redis.stop()
    time.sleep(1.5)
    redis.start()
    log(f"Redis was away for {time.time() - restarted:.1f} s and came back empty")
    until("the cluster to re-form", lambda: formed(b, "bc"), 15)
    log(f"re-formed {time.time() - restarted:.1f} s after Redis went away")
    after_restart = once_an_interval(sim, "after the Redis restart", time.time())
    across = by_station(requests_since(sim, restarted - INTERVAL))
    longest = max(b - a for times in across.values() for a, b in zip(times, times[1:]))
    if longest > 2 * INTERVAL:
        fail(f"across the Redis restart a station went {longest:.2f} s unasked (more than 2 intervals)")
    log(f"from before the Redis restart to now no station went unasked more than {longest:.2f} s")
    asked = len(charger.triggers)
    manual_refresh(b, "a manual refresh of the charger through B after the Redis restart")
    until("the charger to get the TriggerMessage after the restart", lambda: len(charger.triggers) > asked, 5)
    log("after the Redis restart a manual refresh through B still reaches the charger on C")
    if charger.connections != 2:
        fail(f"the charger connected {charger.connections} times (expected 2: A, then C)")
    time.sleep(3)

    check_streams(on_a, on_b, on_c, resumed, killed, restarted)
    check_charger_events(on_b)
    check_alerts([on_b, on_c], rule_added, listening, restarted)
    log(f"requests per station per interval: {before:.2f} with three instances, {after:.2f} after the kill, "
        f"{after_restart:.2f} after the Redis restart")


def check_streams(on_a, on_b, on_c, resumed, killed, restarted):
    """B and C saw the same changes of the whole fleet in one order; A's client that moved to
    B missed nothing and got nothing twice."""
    b_events, c_events = on_b.snapshot(), on_c.snapshot()
    b_ids = [e[0] for e in b_events if e[3] < restarted]
    c_ids = [e[0] for e in c_events if e[3] < restarted]
    for name, ids in (("B", b_ids), ("C", c_ids)):
        if len(ids) != len(set(ids)):
            fail(f"the event client of {name} got an event twice")
    common = set(b_ids) & set(c_ids)
    b_common = [i for i in b_ids if i in common]
    c_common = [i for i in c_ids if i in common]
    if b_common != c_common or len(common) < 0.9 * min(len(b_ids), len(c_ids)):
        fail(f"B's and C's event clients disagree: {len(b_ids)} and {len(c_ids)} events, {len(common)} in common")
    stations = {e[1] for e in b_events if e[3] < restarted}
    log(f"event clients on B and C each got the same {len(common)} changes in one order, of {len(stations)} stations")
    if len(stations) < STATIONS * 2 / 3:
        fail(f"the event client saw changes of only {len(stations)} stations: not the whole fleet's")
    a_ids = [e[0] for e in on_a.snapshot()]
    moved = [e[0] for e in resumed.snapshot() if e[3] < restarted]
    joined = a_ids + moved
    if len(joined) != len(set(joined)):
        fail("the client that moved from A to B got an event twice")
    since_first = b_ids[b_ids.index(a_ids[0]):] if a_ids and a_ids[0] in b_ids else None
    if since_first is None or joined[:len(since_first)] != since_first[:len(joined)]:
        fail("the client that moved from A to B with Last-Event-ID missed changes")
    log(f"A's event client reconnected to B with Last-Event-ID: {len(a_ids)} events from A, then {len(moved)} "
        "from B, with nothing missed or repeated")
    for stream in (on_b, on_c, resumed):
        if stream.ended:
            fail(f"the event client of {stream.name} was cut: {stream.ended}")


def check_charger_events(stream):
    offline = [e for e in stream.snapshot() if e[1] == CHARGER and any(ch["new"] == "offline" for ch in e[2])]
    if offline:
        fail(f"the charger was recorded offline while it moved: {offline}")
    status, body = api("GET", f"{stream.base}/api/stations/{CHARGER}/events?limit=100")
    if status != 200:
        fail(f"reading the charger's status events: {status} {body}")
    stored = [e for e in body["events"] if e["new"] == "offline"]
    if stored:
        fail(f"the database holds offline events of the charger: {stored}")
    log("the charger moved A → C with no offline event (stream and database)")


def check_alerts(streams, rule_added, listening, restarted):
    """One webhook delivery per freed port: each alert id once, one alert per freeing, and an
    alert for every port that went from occupied to free. The freeings are those the event
    clients saw (both: while Redis was away each instance's stream carried its own changes).
    A channel past its allowance holds alerts back for a few seconds (then sends a digest), so
    the freeings up to 3 s before this check have up to 20 s to be announced."""
    freed = {}
    for _, station, changes, _ in (e for stream in streams for e in stream.snapshot()):
        for change in changes:
            if change["new"] == "free":
                freed[(station, change["port"], change["at"])] = change["old"]
    # Every port taken and then freed (not merely seen again after a disconnection) while the
    # rule watched, up to a few seconds before the end, is announced.
    deadline = time.time() - 3
    expected = [k for k, old in freed.items() if old == "occupied" and max(rule_added, listening) + 1 < stamp(k[2]) < deadline]
    waited = time.time()
    while True:
        deliveries, alerts, fired = delivered()
        unannounced = [k for k in expected if k not in fired]
        if not unannounced:
            break
        if time.time() - waited > 20:
            fail(f"{len(unannounced)} of {len(expected)} freed ports were not announced within 20 s: {unannounced[:5]}")
        time.sleep(0.5)
    # Alerts of the freeings before the event clients listened cannot be matched.
    unexplained = [k for k in fired if k not in freed and stamp(k[2]) > listening]
    if unexplained:
        fail(f"alerts for ports the event stream never saw freed: {unexplained[:5]}")
    moved = sum(1 for k in expected if stamp(k[2]) > restarted)
    log(f"port_free: {len(deliveries)} webhook deliveries carrying {len(alerts)} alerts; each of the {len(expected)} "
        f"ports freed ({moved} after the Redis restart) announced exactly once "
        f"(the last {time.time() - waited:.1f} s after this check began)")


def delivered():
    """The webhook's deliveries so far, the port_free alerts they carried, and how many times
    each freeing was announced; fails on a bad signature or anything delivered twice."""
    with Webhook.lock:
        deliveries = list(Webhook.deliveries)
    if not all(signed for _, _, signed in deliveries):
        fail("a webhook delivery had a wrong signature")
    ids = [d for d, _, _ in deliveries]
    if len(ids) != len(set(ids)):
        repeated = [i for i, n in collections.Counter(ids).items() if n > 1]
        fail(f"alerts delivered twice: {repeated[:5]}")
    alerts = []
    for _, body, _ in deliveries:
        alerts.extend(body["alerts"] if body.get("kind") == "digest" else [body])
    alerts = [a for a in alerts if a["kind"] == "port_free" and not a["resolved"]]
    fired = collections.Counter((a["station_id"], a["port"], a["since"]) for a in alerts)
    twice = [k for k, n in fired.items() if n > 1]
    if twice:
        fail(f"ports announced free twice for one freeing: {twice[:5]}")
    return deliveries, alerts, fired


def stamp(rfc3339):
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
    log("all cluster checks passed")
