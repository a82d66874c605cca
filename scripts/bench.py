#!/usr/bin/env python3
"""csm benchmark harness (run through scripts/bench.sh, which builds and starts the services).

Measures, on this machine, with MariaDB and Redis:
  1. refresh throughput and scaling: `csm-cli simulate` serving N stations of 12 ports over
     HTTP, one full `csm-cli refresh --all` into MariaDB + Redis (first cycle: everything new),
     then a steady-state cycle (a few percent of ports changed);
  2. the ceiling of the same HTTP requests: wrk against the simulator;
  3. API throughput and latency: wrk against csm-server with 1,000 stations, and a fixed body
     of the same size served by the same server (the ceiling);
  4. SSE fan-out: 1,000 `/api/events` clients, time from a change's observation to its arrival
     at the last client;
  5. server memory (RSS) with 1,000 and 50,000 stations loaded;
  6. history (bench/src/bin/history_bench.rs): the stored fraction of readings for 50,000 stations
     refreshed every 30 s over two simulated hours, and a station's 90-day statistics on MariaDB
     with 90 days of simulated history for 1,000 stations;
  7. alerts (bench/src/bin/alerts_bench.rs): 1,000 port_free rules over 10,000 stations on MariaDB,
     from the observation that fires an alert to its webhook request at a local receiver;
  8. ocpp: 10,000 chargers of `csm-cli simulate-ocpp` (half OCPP 2.0.1, half 1.6J) on one
     server: RSS a charger, CPU, answer times of each version, and StatusNotification → live
     event (scripts/ocpp_sse_probe.py); ocpp-tls: 2,000 chargers connecting over ws:// and over
     wss:// (csm's own TLS), the server's CPU a TLS connection;
  9. storm: 10,000 chargers with passwords connecting at once, for several password costs
     (CSM_BENCH_STORM_COSTS, PBKDF2 iterations): until all are in, CPU, and API reads meanwhile;
 10. cluster: 1, 2 and 3 instances refreshing one fleet, and the takeover after kill -9;
 11. failover: 10,000 chargers on one of three instances, that instance killed (kill -9): the
     time until every charger is back on the other two, and answer times meanwhile.
Writes target/bench/results.json and target/bench/results.md.
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
CLI = os.path.join(RELEASE, "csm-cli")
SERVER = os.path.join(RELEASE, "csm-server")
FANOUT = os.path.join(RELEASE, "sse_fanout")
BARE_CLIENT = os.path.join(RELEASE, "http_client_cost")
HISTORY = os.path.join(RELEASE, "history_bench")
ALERTS = os.path.join(RELEASE, "alerts_bench")
OCPP_VENV = os.path.join(ROOT, "target", "venv-ocpp")
OUT = os.path.join(ROOT, "target", "bench")
MYSQL = "mysql://root@127.0.0.1:3306"
REDIS = "redis://127.0.0.1:6379"
PORTS = 12


def log(message):
    print(f"[bench] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def mysql(sql, database=None):
    args = ["mysql", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-N", "-B", "-e", sql]
    if database:
        args.append(database)
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


PREFIXES = []


def forget_cache_keys():
    """Deletes the Redis keys the benchmark wrote (they would otherwise live for their TTL)."""
    for prefix in PREFIXES:
        keys = subprocess.run(["redis-cli", "--scan", "--pattern", f"{prefix}*"],
                              capture_output=True, text=True).stdout.split()
        for start in range(0, len(keys), 1000):
            subprocess.run(["redis-cli", "del", *keys[start:start + 1000]], capture_output=True)


def fresh_database(name):
    mysql(f"DROP DATABASE IF EXISTS `{name}`")
    return f"{MYSQL}/{name}"


def base_env(database_url, prefix, vendor_url=None):
    if prefix not in PREFIXES:
        PREFIXES.append(prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
    env.update(
        CSM_DATABASE_URL=database_url,
        CSM_REDIS_URL=REDIS,
        CSM_CACHE_PREFIX=prefix,
        CSM_VENDORS_DIR="/nonexistent-csm-vendors",
        CSM_HTTP_TIMEOUT_MS="20000",
        CSM_HTTP_MAX_BODY_BYTES=str(256 * 1024 * 1024),
        RUST_LOG="warn",
    )
    if vendor_url:
        env["CSM_VENDOR_CSM_BASE_URL"] = vendor_url
    return env


def run_cli(env, *args, timed=False):
    """Runs csm-cli; with `timed`, also returns its peak RSS (MB) and CPU time (user + system
    seconds, the whole process: start, catalogue and the work)."""
    command = [CLI, *args]
    if timed:
        command = ["/usr/bin/time", "-v", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"csm-cli {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    if not timed:
        return done.stdout, None
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", done.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", done.stderr)
    return done.stdout, {
        "rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "cpu_secs": float(user.group(1)) + float(system.group(1)) if user and system else None,
    }


def cpu_secs(pid):
    """CPU time (user + system) a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pid(name):
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


class Process:
    """A background process that is stopped (SIGTERM, then SIGKILL) when done."""

    def __init__(self, args, env=None, cwd=None):
        self.log = tempfile.NamedTemporaryFile(prefix="csm-bench-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def simulator(stations, speed):
    port = free_port()
    process = Process([CLI, "simulate", "--stations", str(stations), "--ports", str(PORTS),
                       "--bind", f"127.0.0.1:{port}", "--seed", "42", "--speed", str(speed)])
    width = max(4, len(str(stations)))
    wait_http(f"http://127.0.0.1:{port}/api/v1/stations/S{1:0{width}d}/ports")
    return process, f"http://127.0.0.1:{port}"


def wrk(url, connections, seconds, script=None, headers=()):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    for header in headers:
        args += ["-H", header]
    output = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)

    def latency(percent):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": round(rps), "p50_ms": round(latency(50), 3), "p99_ms": round(latency(99), 3),
            "non_2xx": int(errors.group(1)) if errors else 0}


def bare_client(url, requests, runs=3):
    """The same requests as a refresh cycle through hyper-util's client (what csm's vendor client
    is built on) on one thread, 64 at a time, answers read and dropped
    (bench/src/bin/http_client_cost.rs): what the HTTP part alone allows. Median of `runs`."""
    rates = []
    for _ in range(runs):
        err = subprocess.run([BARE_CLIENT, "hyper", url, str(requests)], check=True,
                             capture_output=True, text=True).stderr
        found = re.search(r"(\d+) requests, \d+ bytes of bodies, ([\d.]+) s", err)
        rates.append(int(found.group(1)) / float(found.group(2)))
    rates.sort()
    return {"rps": round(rates[len(rates) // 2]), "runs_rps": [round(r) for r in rates]}


def rotating_script(stations, path_format):
    """A wrk script requesting each station in turn (path_format has one %s for the id)."""
    width = max(4, len(str(stations)))
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f"""
local n = 0
request = function()
  n = n % {stations} + 1
  return wrk.format(nil, string.format("{path_format}", string.format("S%0{width}d", n)))
end
""")
    script.close()
    return script.name


def bench_refresh(stations, wrk_seconds, gap, steady_cycles):
    """`gap`: seconds from the start of the first cycle to the start of the steady one. With the
    simulated clock at 60 / gap × real time, a minute of the fleet passes between them whatever the
    fleet size, so a few percent of the ports change."""
    log(f"refresh: {stations} stations × {PORTS} ports over HTTP into MariaDB + Redis")
    sim, sim_url = simulator(stations, speed=round(60 / gap, 3))
    with sim:
        database_url = fresh_database(f"csm_bench_{stations}")
        env = base_env(database_url, f"csmbench:{stations}:{int(time.time())}:", sim_url)
        run_cli(env, "init-db")
        run_cli(env, "stations", "sync", "--vendor", "csm")
        db = database_url.rsplit("/", 1)[1]
        others = {"simulator": sim.proc.pid, "redis": service_pid("redis-server"),
                  "mariadb": service_pid("mariadbd")}
        first_started = time.time()
        out, first_usage = run_cli(env, "refresh", "--all", "--json", timed=True)
        first = json.loads(out)
        events_after_first = int(mysql("SELECT COUNT(*) FROM status_events", db))
        ports_after_first = int(mysql("SELECT COUNT(*) FROM port_states", db))
        # Three steady cycles, each `gap` after the previous one started; the median is kept.
        steadies = []
        started = first_started
        for _ in range(steady_cycles):
            time.sleep(max(0.0, started + gap - time.time()))
            started = time.time()
            before = int(mysql("SELECT COUNT(*) FROM status_events", db))
            cpu_before = {name: cpu_secs(pid) for name, pid in others.items() if pid}
            out, usage = run_cli(env, "refresh", "--all", "--json", timed=True)
            cpu = {name: cpu_secs(pid) - cpu_before[name] for name, pid in others.items() if pid}
            cpu["csm-cli"] = usage["cpu_secs"]
            summary = json.loads(out)
            summary["event_rows"] = int(mysql("SELECT COUNT(*) FROM status_events", db)) - before
            # CPU per station of each process taking part (csm-cli: the whole process).
            summary["cpu_us_per_station"] = {name: round(secs * 1e6 / stations, 1)
                                             for name, secs in cpu.items() if secs is not None}
            steadies.append((summary, usage))
        steadies.sort(key=lambda s: s[0]["stations_per_sec"])
        steady, steady_usage = steadies[len(steadies) // 2]
        steady_runs = [round(s[0]["stations_per_sec"]) for s in steadies]
        log(f"ceiling: wrk against the simulator, same requests, {wrk_seconds} s")
        ceiling = wrk(f"{sim_url}/", 64, wrk_seconds,
                      rotating_script(stations, "/api/v1/stations/%s/ports"))
        mysql(f"DROP DATABASE IF EXISTS `{db}`")
        log("bare client: the same requests through hyper-util's client alone, answers dropped")
        bare = bare_client(sim_url, stations)

    def cycle(summary, usage, rows):
        return {
            "stations_per_sec": round(summary["stations_per_sec"]),
            "ports_per_sec": round(summary["ports"] / summary["elapsed_secs"]),
            "elapsed_secs": round(summary["elapsed_secs"], 3),
            "p50_ms": round(summary["p50_ms"], 2),
            "p99_ms": round(summary["p99_ms"], 2),
            "ok": summary["ok"],
            "failed": len(summary["failed"]),
            "ports": summary["ports"],
            "status_changes": summary["status_changes"],
            "port_rows_written": summary["rows_written"],
            "event_rows_in_db": rows,
            "peak_rss_mb": round(usage["rss_mb"], 1) if usage["rss_mb"] else None,
        }

    result = {
        "stations": stations,
        "first": cycle(first, first_usage, events_after_first),
        "steady": cycle(steady, steady_usage, steady["event_rows"]),
        "port_rows_in_db_after_first": ports_after_first,
        "ceiling": ceiling,
        "bare_client": bare,
    }
    result["steady"]["runs_stations_per_sec"] = steady_runs
    result["steady"]["cpu_us_per_station"] = steady["cpu_us_per_station"]
    result["steady"]["changed_fraction"] = round(steady["status_changes"] / max(steady["ports"], 1), 4)
    result["steady"]["fraction_of_ceiling"] = round(result["steady"]["stations_per_sec"] / ceiling["rps"], 3)
    result["first"]["fraction_of_ceiling"] = round(result["first"]["stations_per_sec"] / ceiling["rps"], 3)
    result["steady"]["fraction_of_bare_client"] = round(result["steady"]["stations_per_sec"] / bare["rps"], 3)
    log(json.dumps(result))
    return result


def start_server(database_url, prefix, vendor_url, extra=None, wrapper=(), ready_timeout=60):
    """A csm-server on a free port, once ready; `wrapper`: a command it runs under (valgrind)."""
    port = free_port()
    env = base_env(database_url, prefix, vendor_url)
    env.update(CSM_BIND=f"127.0.0.1:{port}", RUST_LOG="warn")
    env.update(extra or {})
    process = Process([*wrapper, SERVER], env=env)
    process.port = port
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", timeout=ready_timeout)
    return process, base


def wait_first_cycle(base, stations, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        listed = get_json(f"{base}/api/stations?view=summary")["stations"]
        if len(listed) == stations and all(s["updated_at"] for s in listed):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the server did not refresh all {stations} stations within {timeout} s")


def wait_cycles(base, cycles, timeout):
    """Waits until the scheduler finished `cycles` refresh cycles (read from /metrics, which
    costs the server little, unlike listing every station)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            text = response.read().decode()
        match = re.search(r"^csm_refresh_cycle_seconds_count (\d+)", text, re.M)
        if match and int(match.group(1)) >= cycles:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the server did not finish {cycles} refresh cycles within {timeout} s")


def synced_database(name, sim_url):
    """A fresh database holding the simulator's fleet; returns its URL and a cache prefix."""
    database_url = fresh_database(name)
    prefix = f"csmbench:{name}:{int(time.time())}:"
    env = base_env(database_url, prefix, sim_url)
    run_cli(env, "init-db")
    run_cli(env, "stations", "sync", "--vendor", "csm")
    return database_url, prefix


def bench_api(stations, seconds):
    log(f"API: csm-server with {stations} stations (MariaDB + Redis), wrk {seconds} s per endpoint, 32 connections")
    sim, sim_url = simulator(stations, speed=1)
    with sim:
        database_url, prefix = synced_database("csm_bench_api", sim_url)
        # One run to learn the size of a station's answer, then the measured run with a fixed
        # body of that size beside the real endpoints.
        server, base = start_server(database_url, prefix, sim_url, {"CSM_REFRESH_INTERVAL_SECS": "3600"})
        with server:
            wait_first_cycle(base, stations, 120)
            with urllib.request.urlopen(f"{base}/api/stations/S0001") as response:
                size = len(response.read())
        server, base = start_server(database_url, prefix, sim_url, {
            "CSM_REFRESH_INTERVAL_SECS": "3600", "CSM_BENCH_CEILING_BYTES": str(size)})
        with server:
            wait_first_cycle(base, stations, 120)
            results = {"body_bytes": size}
            # The ceiling and the station endpoint are measured alternately, three times each
            # for a third of the time, and the medians kept: the machine's speed drifts, and
            # measuring one after the other would credit the drift to one of them.
            rotation = lambda path: rotating_script(stations, path)
            ceilings, station_runs = [], []
            for _ in range(3):
                ceilings.append(wrk(f"{base}/", 32, max(1, seconds // 3), rotation("/bench/ceiling/%s")))
                station_runs.append(wrk(f"{base}/", 32, max(1, seconds // 3), rotation("/api/stations/%s")))
            median = lambda runs: sorted(runs, key=lambda r: r["rps"])[1]
            results["ceiling"] = median(ceilings)
            results["station"] = median(station_runs)
            results["station"]["runs_rps"] = [r["rps"] for r in station_runs]
            results["ceiling"]["runs_rps"] = [r["rps"] for r in ceilings]
            results["ports"] = wrk(f"{base}/api/ports", 32, seconds)
            # The whole list, each station with its ports (the default), and the light list.
            for key, path in (("stations", "/api/stations"), ("stations_summary", "/api/stations?view=summary")):
                results[key] = wrk(f"{base}{path}", 32, seconds)
                with urllib.request.urlopen(f"{base}{path}") as response:
                    results[key]["body_bytes"] = len(response.read())
            # A client that has the list already (the fleet still: the refresh interval is an hour).
            with urllib.request.urlopen(f"{base}/api/stations") as response:
                tag = response.headers["ETag"]
            results["stations_not_modified"] = wrk(f"{base}/api/stations", 32, seconds, headers=[f"If-None-Match: {tag}"])
            results["stations_not_modified"]["body_bytes"] = 0
            for name in ("station", "ports"):
                results[name]["fraction_of_ceiling"] = round(results[name]["rps"] / results["ceiling"]["rps"], 3)
        mysql("DROP DATABASE IF EXISTS `csm_bench_api`")
    log(json.dumps(results))
    return results


def bench_list(stations, seconds):
    """The whole station list (every station with its 12 ports), as polling clients read it, while
    the fleet changes (a refresh every 10 s per station), against a fixed body of the same size
    served by the same server (the ceiling): 8 and 32 connections, the two measured alternately
    three times and the medians kept. Also the bytes plain and with gzip, a client that sends its
    tag back, one that accepts gzip, and the server's memory."""
    log(f"list: csm-server with {stations} stations, wrk {seconds} s per run")
    sim, sim_url = simulator(stations, speed=1)
    with sim:
        name = f"csm_bench_list_{stations}"
        database_url, prefix = synced_database(name, sim_url)
        live = {"CSM_REFRESH_INTERVAL_SECS": "10"}
        server, base = start_server(database_url, prefix, sim_url, live)
        with server:
            wait_first_cycle(base, stations, 300)
            with urllib.request.urlopen(f"{base}/api/stations", timeout=60) as response:
                size = len(response.read())
        server, base = start_server(database_url, prefix, sim_url, {**live, "CSM_BENCH_CEILING_BYTES": str(size)})
        with server:
            wait_first_cycle(base, stations, 300)
            result = {"stations": stations}
            with urllib.request.urlopen(f"{base}/api/stations", timeout=60) as response:
                result["plain_bytes"] = len(response.read())
                tag = response.headers["ETag"]
            request = urllib.request.Request(f"{base}/api/stations", headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.headers["Content-Encoding"] == "gzip"
                result["gzip_bytes"] = len(response.read())
            median = lambda runs: sorted(runs, key=lambda r: r["rps"])[1]
            for connections in (8, 32):
                ceilings, lists = [], []
                for _ in range(3):
                    ceilings.append(wrk(f"{base}/bench/ceiling", connections, max(1, seconds // 3)))
                    lists.append(wrk(f"{base}/api/stations", connections, max(1, seconds // 3)))
                ceiling, listed = median(ceilings), median(lists)
                listed["fraction_of_ceiling"] = round(listed["rps"] / ceiling["rps"], 3)
                listed["runs_rps"] = [r["rps"] for r in lists]
                ceiling["runs_rps"] = [r["rps"] for r in ceilings]
                result[f"c{connections}"] = {"ceiling": ceiling, "list": listed}
            result["gzip_c32"] = wrk(f"{base}/api/stations", 32, max(1, seconds // 3),
                                     headers=["Accept-Encoding: gzip"])
            # A client polling every half second with the tag of its last answer: in a live fleet
            # the list changes (check times, readings) within the second, so most polls get it.
            polls, not_modified = 20, 0
            for _ in range(polls):
                time.sleep(0.5)
                request = urllib.request.Request(f"{base}/api/stations", headers={"If-None-Match": tag})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        tag = response.headers["ETag"]
                        response.read()
                except urllib.error.HTTPError as answer:
                    if answer.code != 304:
                        raise
                    not_modified += 1
            result["polls"] = {"every_ms": 500, "polls": polls, "not_modified": not_modified}
            rss, peak = server.rss_mb()
            result["rss_mb"], result["peak_rss_mb"] = round(rss), round(peak)
        mysql(f"DROP DATABASE IF EXISTS `{name}`")
    log(json.dumps(result))
    return result


def bench_sse(clients, seconds):
    log(f"SSE: {clients} clients on /api/events, listening {seconds} s")
    database_url = fresh_database("csm_bench_sse")
    prefix = f"csmbench:sse:{int(time.time())}:"
    env = base_env(database_url, prefix)
    run_cli(env, "init-db")
    stations = [{"id": f"S{n:04d}", "name": f"站点 {n}", "vendor": "simulator", "port_count": PORTS}
                for n in range(1, 201)]
    listing = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(stations, listing)
    listing.close()
    run_cli(env, "stations", "import", listing.name)
    # 200 stations whose clock runs 20× fast, refreshed every 2 s: a handful of changes a cycle.
    server, base = start_server(database_url, prefix, None, {
        "CSM_REFRESH_INTERVAL_SECS": "2", "CSM_SIMULATOR_SPEED": "20"})
    with server:
        wait_first_cycle(base, len(stations), 60)
        done = subprocess.run([FANOUT, base, str(clients), str(seconds)],
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    mysql("DROP DATABASE IF EXISTS `csm_bench_sse`")
    log(json.dumps(result))
    return result


def bench_memory(stations, interval):
    log(f"memory: csm-server with {stations} stations loaded (MariaDB + Redis, HTTP vendor)")
    sim, sim_url = simulator(stations, speed=1)
    with sim:
        database_url, prefix = synced_database("csm_bench_mem", sim_url)
        # Two cycles, so the figure is the steady state and not the first fill.
        server, base = start_server(database_url, prefix, sim_url, {"CSM_REFRESH_INTERVAL_SECS": str(interval)})
        with server:
            wait_cycles(base, 2, 600)
            time.sleep(2)
            rss, peak = server.rss_mb()
            # What the dashboard asks of a large fleet: a page of the list, and a search.
            pages = {name: wrk(f"{base}{path}", 8, 5) for name, path in (
                ("page", "/api/stations?view=summary&limit=200"),
                ("search", "/api/stations?view=summary&limit=200&q=s0001"),
            )}
        mysql("DROP DATABASE IF EXISTS `csm_bench_mem`")
    result = {"stations": stations, "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1),
              "list_pages": pages}
    log(json.dumps(result))
    return result


def bench_history(quick):
    """The stored fraction of readings, and the latency of a station's statistics."""
    stations, hours = (2000, 1) if quick else (50000, 2)
    log(f"history: stored fraction of readings, {stations:,} stations, {hours} simulated hours")
    run = subprocess.run([HISTORY, "fraction", str(stations), str(hours)], check=True, capture_output=True, text=True)
    fraction = json.loads(run.stdout)
    stat_stations, days, requests = (100, 30, 100) if quick else (1000, 90, 300)
    log(f"history: {days}-day statistics of {stat_stations:,} stations on MariaDB ({requests} requests)")
    # Generating the history takes a while (about 25 minutes for 1,000 stations × 90 days on a
    # 2-core machine); a database that holds it already is used again.
    name = "csm_bench_stats" if not quick else "csm_bench_stats_quick"
    mysql(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    url = f"{MYSQL}/{name}"
    run = subprocess.run([HISTORY, "stats", url, str(stat_stations), str(days), str(requests)],
                         check=True, capture_output=True, text=True)
    stats = json.loads(run.stdout)
    stats["command"] = f"target/release/history_bench stats {url} {stat_stations} {days} {requests}"
    fraction["command"] = f"target/release/history_bench fraction {stations} {hours}"
    return {"fraction": fraction, "stats": stats}


def bench_alerts(quick):
    """Alert latency: from the refresh that sees a port free to the webhook request arriving."""
    stations, rules, channels, cycles = (1000, 100, 2, 3) if quick else (10000, 1000, 10, 10)
    log(f"alerts: {rules:,} port_free rules over {stations:,} stations, {channels} webhook channels, {cycles} cycles")
    url = f"{MYSQL}/csm_bench_alerts"
    run = subprocess.run([ALERTS, url, str(stations), str(rules), str(channels), str(cycles)],
                         check=True, capture_output=True, text=True)
    result = json.loads(run.stdout)
    result["command"] = f"target/release/alerts_bench {url} {stations} {rules} {channels} {cycles}"
    mysql("DROP DATABASE IF EXISTS `csm_bench_alerts`")
    log(json.dumps(result))
    return result


def bench_ocpp(quick):
    """10,000 simulated OCPP chargers on one server, half of them speaking 2.0.1 and half 1.6J:
    RSS a charger, CPU, answer times (of each version), and a StatusNotification's way to the
    live event stream."""
    import resource
    chargers, duration, warmup = (1000, 40, 15) if quick else (10000, 100, 40)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, chargers + 5000) if hard != resource.RLIM_INFINITY else chargers + 5000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    python = os.path.join(OCPP_VENV, "bin", "python")
    if subprocess.run([python, "-c", "import websockets"], capture_output=True).returncode != 0:
        subprocess.run(["python3", "-m", "venv", OCPP_VENV], check=True)
        subprocess.run([os.path.join(OCPP_VENV, "bin", "pip"), "install", "--quiet", "ocpp>=2,<3", "websockets>=12"], check=True)
    share = int(os.environ.get("CSM_BENCH_OCPP201_PERCENT", "50"))
    log(f"ocpp: {chargers:,} simulated chargers of 2 connectors ({share}% OCPP 2.0.1), meter values every 10 s, {duration} s")
    url = fresh_database("csm_bench_ocpp")
    env = base_env(url, "bench-ocpp:")
    run_cli(env, "init-db")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as csv_file:
        csv_file.write("id,name,vendor,port_count\n")
        for n in range(1, chargers + 1):
            csv_file.write(f"SIM-{n:04},charger {n},ocpp,2\n")
        csv_file.write("PROBE-1,SSE probe,ocpp,1\n")
    run_cli(env, "stations", "import", csv_file.name)
    os.unlink(csv_file.name)
    server, base = start_server(url, "bench-ocpp:", None, {"CSM_OCPP_REGISTRATION": "known"})
    port = base.rsplit(":", 1)[1]
    with server:
        rss_before, _ = server.rss_mb()
        sim = Process([CLI, "simulate-ocpp", "--url", f"ws://127.0.0.1:{port}/ocpp", "--chargers", str(chargers),
                       "--connectors", "2", "--meter-secs", "10", "--session-secs", "300", "--ocpp201-percent", str(share),
                       "--duration-secs", str(duration), "--warmup-secs", str(warmup)], env=env)
        with sim:
            time.sleep(warmup)
            cpu0, t0 = cpu_secs(server.proc.pid), time.time()
            probe = subprocess.run([python, os.path.join(ROOT, "scripts", "ocpp_sse_probe.py"), port, "20"],
                                   capture_output=True, text=True, timeout=duration)
            cpu1, t1 = cpu_secs(server.proc.pid), time.time()
            rss_connected, _ = server.rss_mb()
            sim.proc.wait(timeout=duration + 60)
        summary = json.loads(open(sim.log.name).read().strip().splitlines()[-1])
    mysql("DROP DATABASE IF EXISTS `csm_bench_ocpp`")
    result = {
        "chargers": chargers,
        "command": f"csm-cli simulate-ocpp --url ws://127.0.0.1:PORT/ocpp --chargers {chargers} --connectors 2 "
                   f"--meter-secs 10 --session-secs 300 --ocpp201-percent {share} --duration-secs {duration} --warmup-secs {warmup}",
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_connected": round(rss_connected, 1),
        "kb_per_charger": round((rss_connected - rss_before) * 1024 / chargers, 1),
        "cpu_share_of_one_core": round((cpu1 - cpu0) / (t1 - t0), 3),
        "simulator": summary,
        "sse": json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else {"error": probe.stderr[-300:]},
    }
    log(json.dumps(result))
    return result


def throwaway_ca(directory):
    """A CA and a server certificate for 127.0.0.1 (openssl), as the TLS part needs them."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=csm bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as ext:
        ext.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")


def bench_ocpp_tls(quick):
    """The cost of TLS a charger connection: the same chargers (half 2.0.1) connecting, booting
    and reporting over ws:// and over wss:// (csm's own TLS, an ECDSA P-256 certificate), the
    server's CPU over that window and the connect times the chargers saw."""
    chargers, window = (500, 10) if quick else (2000, 20)
    log(f"ocpp-tls: {chargers:,} chargers connecting over ws:// and over wss://, {window} s each")
    url = fresh_database("csm_bench_ocpp_tls")
    env = base_env(url, "bench-ocpp-tls:")
    import_chargers(env, chargers)
    runs = {}
    with tempfile.TemporaryDirectory() as pki:
        throwaway_ca(pki)
        for scheme in ("ws", "wss"):
            extra = {"CSM_OCPP_REGISTRATION": "known"}
            if scheme == "wss":
                extra.update(CSM_TLS_CERT=os.path.join(pki, "server.pem"), CSM_TLS_KEY=os.path.join(pki, "server.key"))
                server, _ = start_server_tls(url, "bench-ocpp-tls:", extra, os.path.join(pki, "ca.pem"))
            else:
                server, _ = start_server(url, "bench-ocpp-tls:", None, extra)
            port = server.port
            with server:
                cpu0 = cpu_secs(server.proc.pid)
                sim = Process([CLI, "simulate-ocpp", "--url", f"{scheme}://127.0.0.1:{port}/ocpp", "--chargers", str(chargers),
                               "--connectors", "2", "--meter-secs", "10", "--session-secs", "300", "--ocpp201-percent", "50",
                               "--ca", os.path.join(pki, "ca.pem"), "--duration-secs", str(window)], env=env)
                with sim:
                    sim.proc.wait(timeout=window + 60)
                cpu1 = cpu_secs(server.proc.pid)
                summary = json.loads(open(sim.log.name).read().strip().splitlines()[-1])
            runs[scheme] = {
                "server_cpu_secs": round(cpu1 - cpu0, 2),
                "connections": summary["connections"],
                "errors": summary["errors"],
                "connect_ms": summary["connect_ms"],
                "answer_ms": summary["answer_ms"],
            }
            log(f"ocpp-tls {scheme}: {json.dumps(runs[scheme])}")
    mysql("DROP DATABASE IF EXISTS `csm_bench_ocpp_tls`")
    extra_cpu = runs["wss"]["server_cpu_secs"] - runs["ws"]["server_cpu_secs"]
    return {
        "chargers": chargers,
        "window_secs": window,
        "command": f"csm-cli simulate-ocpp --url ws(s)://127.0.0.1:PORT/ocpp --chargers {chargers} --connectors 2 "
                   f"--ocpp201-percent 50 --ca ca.pem --duration-secs {window}, against csm-server without and with "
                   "CSM_TLS_CERT/CSM_TLS_KEY (ECDSA P-256, TLS 1.3)",
        "runs": runs,
        "tls_server_cpu_ms_per_connection": round(extra_cpu * 1000 / max(1, runs["wss"]["connections"]), 2),
    }


def start_server_tls(database_url, prefix, extra, ca):
    """A csm-server speaking TLS on a free port, once ready (its readiness read over HTTPS)."""
    import ssl
    port = free_port()
    env = base_env(database_url, prefix)
    env.update(CSM_BIND=f"127.0.0.1:{port}", RUST_LOG="warn")
    env.update(extra)
    process = Process([SERVER], env=env)
    context = ssl.create_default_context(cafile=ca)
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", timeout=2, context=context):
                break
        except Exception:
            if time.time() > deadline:
                raise RuntimeError(f"the TLS server on port {port} did not become ready")
            time.sleep(0.2)
    process.port = port
    return process, f"https://127.0.0.1:{port}"


def phc_pbkdf2(password, iterations):
    """A PHC string of PBKDF2-HMAC-SHA256, as csm stores a charge point's password (the cost is
    in the string, so each run of the storm can store its own)."""
    import base64
    import hashlib
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")
    return f"$pbkdf2-sha256$i={iterations},l=32${b64(salt)}${b64(digest)}"


def import_chargers(env, chargers):
    """A fresh database with `chargers` OCPP stations of 2 connectors (SIM-0001…), the ids
    `csm-cli simulate-ocpp` uses."""
    run_cli(env, "init-db")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as csv_file:
        csv_file.write("id,name,vendor,port_count\n")
        for n in range(1, chargers + 1):
            csv_file.write(f"SIM-{n:04},charger {n},ocpp,2\n")
    run_cli(env, "stations", "import", csv_file.name)
    os.unlink(csv_file.name)


def bench_storm(quick):
    """A reconnect storm: every charger of a fleet, each with a password, connects at once (as
    after a restart of csm or of the network in front of it). For each password cost: how long
    until every charger is in, the server's CPU, and how a reader of the API fares meanwhile."""
    import resource
    chargers = 2000 if quick else 10000
    costs = [25000] if quick else [int(c) for c in os.environ.get("CSM_BENCH_STORM_COSTS", "10000,25000,50000,100000,200000").split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, chargers + 5000) if hard != resource.RLIM_INFINITY else chargers + 5000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    password = "storm-password-0123456789"
    runs = []
    for cost in costs:
        log(f"storm: {chargers:,} chargers with passwords at {cost:,} PBKDF2 iterations connecting at once")
        url = fresh_database("csm_bench_storm")
        env = base_env(url, f"bench-storm-{cost}:")
        import_chargers(env, chargers)
        stored = phc_pbkdf2(password, cost)
        mysql(f"INSERT INTO ocpp_passwords (station_id, hash, updated_at) "
              f"SELECT id, '{stored}', NOW(6) FROM stations", "csm_bench_storm")
        server, base = start_server(url, f"bench-storm-{cost}:", None,
                                    {"CSM_OCPP_REGISTRATION": "known", "CSM_OCPP_REQUIRE_PASSWORD": "true"})
        port = base.rsplit(":", 1)[1]
        with server:
            cpu0, t0 = cpu_secs(server.proc.pid), time.time()
            sim = Process([CLI, "simulate-ocpp", "--url", f"ws://127.0.0.1:{port}/ocpp", "--chargers", str(chargers),
                           "--connectors", "2", "--meter-secs", "60", "--session-secs", "600",
                           "--password", password], env=env)
            with sim:
                reads, connected, deadline = [], 0, time.time() + 900
                while time.time() < deadline:
                    started = time.time()
                    try:
                        with urllib.request.urlopen(f"{base}/api/ocpp/charge-points", timeout=30) as response:
                            connected = len(json.loads(response.read())["charge_points"])
                        reads.append((time.time() - started) * 1000)
                    except OSError as error:
                        reads.append(None)
                        log(f"storm: API read failed during the storm: {error}")
                    if connected >= chargers:
                        break
                    time.sleep(0.5)
                elapsed = time.time() - t0
                cpu = cpu_secs(server.proc.pid) - cpu0
                sim.proc.send_signal(signal.SIGINT)
                sim.proc.wait(timeout=60)
            summary = json.loads(open(sim.log.name).read().strip().splitlines()[-1])
        answered = sorted(r for r in reads if r is not None)
        at = lambda q: round(answered[min(len(answered) - 1, int(q * (len(answered) - 1) + 0.5))], 1) if answered else None
        run = {
            "iterations": cost,
            "connected": connected,
            "all_in_secs": round(elapsed, 1) if connected >= chargers else None,
            "server_cpu_secs": round(cpu, 1),
            "server_cpu_ms_per_charger": round(cpu * 1000 / chargers, 2),
            "first_connect_ms": summary.get("first_connect_ms"),
            "failed_attempts": summary.get("errors"),
            "api_read_ms": {"p50": at(0.5), "p99": at(0.99), "max": at(1.0), "reads": len(reads),
                            "failed": sum(r is None for r in reads)},
        }
        log(f"storm: {json.dumps(run)}")
        runs.append(run)
        mysql("DROP DATABASE IF EXISTS `csm_bench_storm`")
    return {"chargers": chargers, "runs": runs,
            "command": f"csm-cli simulate-ocpp --chargers {chargers} --connectors 2 --password P "
                       "against csm-server (MariaDB + Redis, CSM_OCPP_REQUIRE_PASSWORD=true), every charger at once"}


def metric_sum(base, name, skip_label=None):
    """The sum of a counter's series on /metrics (without those whose labels hold `skip_label`)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            if skip_label and skip_label in line:
                continue
            total += float(line.rsplit(" ", 1)[1])
    return total


def redis_calls():
    """Commands Redis has run since it started (INFO commandstats)."""
    info = subprocess.run(["redis-cli", "info", "commandstats"], capture_output=True, text=True).stdout
    return sum(int(m) for m in re.findall(r"calls=(\d+)", info))


def bench_cluster(quick):
    """1, 2 and 3 instances on one MariaDB and Redis refreshing one fleet: total stations/s, CPU
    per refreshed station of each instance against the single one (the coordination's cost),
    Redis commands per station per interval, live-event latency on a client of one instance
    (most changes made by the others), and the takeover after kill -9. Each instance runs its
    runtime on one worker thread (TOKIO_WORKER_THREADS=1), the single one too: with a worker
    per core each, three instances on two cores run six workers that wake and steal from each
    other, and their CPU a station then measures that contention (+20% with three), not the
    coordination; a deployment gives each instance cores of its own. (With fewer cores than
    instances the CPU figures still include some contention; `cluster-instructions` counts
    instructions instead.)"""
    stations, interval = (2000, 5) if quick else (10000, 10)
    window = 3 * interval
    log(f"cluster: {stations:,} stations × {PORTS} ports every {interval} s, 1, 2 and 3 instances")
    sim, sim_url = simulator(stations, speed=round(60 / interval, 3))
    results = {"stations": stations, "interval_secs": interval, "window_secs": window, "instances": []}
    with sim:
        database_url, _ = synced_database("csm_bench_cluster", sim_url)
        single_cpu = None
        for count in (1, 2, 3):
            prefix = f"csmbench:cluster{count}:{int(time.time())}:"
            PREFIXES.append(prefix)
            servers = []
            try:
                for n in range(count):
                    servers.append(start_server(database_url, prefix, sim_url, {
                        "CSM_REFRESH_INTERVAL_SECS": str(interval), "CSM_INSTANCE_ID": f"i{n + 1}",
                        "CSM_ADMIN_TOKEN": "bench", "TOKIO_WORKER_THREADS": "1"}))
                bases = [base for _, base in servers]
                # Formed: the instances together refresh every station.
                deadline = time.time() + 60
                while True:
                    request = urllib.request.Request(f"{bases[0]}/api/cluster", headers={"Authorization": "Bearer bench"})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        view = json.loads(response.read())
                    held = sum(i["stations"] for i in view["instances"])
                    if len(view["instances"]) == count and held == stations:
                        break
                    if time.time() > deadline:
                        raise RuntimeError(f"{count} instances did not share the {stations} stations: {view}")
                    time.sleep(0.5)
                time.sleep(interval * 1.5)
                cpu0 = [cpu_secs(p.proc.pid) for p, _ in servers]
                jobs0 = [metric_sum(b, "csm_refresh_jobs_total", 'outcome="joined"') for b in bases]
                calls0 = redis_calls()
                since = time.time()
                time.sleep(window)
                elapsed = time.time() - since
                cpu = [cpu_secs(p.proc.pid) - c for (p, _), c in zip(servers, cpu0)]
                jobs = [metric_sum(b, "csm_refresh_jobs_total", 'outcome="joined"') - j for b, j in zip(bases, jobs0)]
                calls = redis_calls() - calls0
                asked = len(get_json(f"{sim_url}/api/v1/requests?since_ms={int(since * 1000)}")["requests"])
                # Then, apart from the CPU window, the live events on clients of the first instance.
                done = subprocess.run([FANOUT, bases[0], "20", str(window)], capture_output=True, text=True, check=True)
                events = json.loads(done.stdout.strip().splitlines()[-1])
                per_station = [round(c * 1e6 / max(j, 1), 1) for c, j in zip(cpu, jobs)]
                mean_cpu = sum(cpu) * 1e6 / max(sum(jobs), 1)
                if count == 1:
                    single_cpu = mean_cpu
                row = {
                    "instances": count,
                    "stations_per_sec": round(asked / elapsed),
                    "requests_per_station_per_interval": round(asked / (stations * elapsed / interval), 3),
                    "cpu_us_per_station": per_station,
                    "cpu_vs_single": round(mean_cpu / single_cpu, 3),
                    "redis_commands_per_station_per_interval": round(calls / (stations * elapsed / interval), 2),
                    "sse_ms": events.get("last_client_ms"),
                    "sse_changes": events.get("changes_measured"),
                }
                if count == 3:
                    killed = time.time()
                    servers[2][0].proc.kill()
                    servers[2][0].proc.wait()
                    time.sleep(3 * interval)
                    after = get_json(f"{sim_url}/api/v1/requests?since_ms={int(killed * 1000)}")["requests"]
                    first = {}
                    for r in after:
                        first.setdefault(r["station"], r["at_ms"] / 1000)
                    missing = stations - len(first)
                    row["takeover_secs"] = round(max(first.values()) - killed, 2) if not missing else None
                    row["unasked_after_kill"] = missing
                log(json.dumps(row))
                results["instances"].append(row)
            finally:
                for process, _ in servers:
                    process.stop()
        mysql("DROP DATABASE IF EXISTS `csm_bench_cluster`")
    return results


def bench_cluster_instructions(quick):
    """The coordination's cost in instructions, which the machine's other work cannot move:
    1 and then 3 instances run under valgrind's callgrind (refreshing 2,000 stations every
    10 s), their counters zeroed once formed and read 40 s later; instructions per station
    each refreshed in that window, each instance against the single one. (Slower than the
    CPU-time measure of `cluster`, and without its contention for two cores.)"""
    stations, interval, window = 2000, 10, (20 if quick else 40)
    log(f"cluster instructions: {stations:,} stations every {interval} s, 1 and 3 instances under callgrind")
    # CSM_BENCH_CALLGRIND_DIR keeps each instance's profile there (for callgrind_annotate).
    kept = os.environ.get("CSM_BENCH_CALLGRIND_DIR")
    out = kept or tempfile.mkdtemp(prefix="csm-bench-callgrind-")
    os.makedirs(out, exist_ok=True)
    sim, sim_url = simulator(stations, speed=round(60 / interval, 3))
    results = {"stations": stations, "interval_secs": interval, "window_secs": window, "instances": []}
    with sim:
        database_url, _ = synced_database("csm_bench_cluster", sim_url)
        single = None
        for count in (1, 3):
            prefix = f"csmbench:cgcluster{count}:{int(time.time())}:"
            PREFIXES.append(prefix)
            servers = []
            try:
                callgrind = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/{count}.%p")
                for n in range(count):
                    servers.append(start_server(database_url, prefix, sim_url, {
                        "CSM_INSTANCE_ID": f"i{n + 1}", "CSM_REFRESH_INTERVAL_SECS": str(interval)},
                        wrapper=callgrind, ready_timeout=120))
                time.sleep(3 * interval)
                pids = [p.proc.pid for p, _ in servers]
                for pid in pids:
                    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)
                jobs0 = [metric_sum(b, "csm_refresh_jobs_total", 'outcome="joined"') for _, b in servers]
                time.sleep(window)
                jobs = [metric_sum(b, "csm_refresh_jobs_total", 'outcome="joined"') - j
                        for (_, b), j in zip(servers, jobs0)]
                for pid in pids:
                    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
                per_station = []
                for pid, done in zip(pids, jobs):
                    dump = sorted(glob.glob(f"{out}/{count}.{pid}.*"))[-1]
                    with open(dump) as f:
                        total = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
                    per_station.append(round(total / max(done, 1)))
                mean = sum(per_station[i] * jobs[i] for i in range(count)) / max(sum(jobs), 1)
                if count == 1:
                    single = mean
                row = {"instances": count, "stations_refreshed": [round(j) for j in jobs],
                       "instructions_per_station": per_station, "vs_single": round(mean / single, 3)}
                log(json.dumps(row))
                results["instances"].append(row)
            finally:
                for process, _ in servers:
                    process.stop()
    if not kept:
        shutil.rmtree(out, ignore_errors=True)
    return results


def bench_failover(quick):
    """The charger storm after an instance dies: every charger connected to instance A of three
    (the first of the simulator's URLs, as a load balancer sends them), A killed with kill -9,
    and each charger reconnecting to B or C (half each) a second after its socket broke. Measures
    how long until every charger has booted again elsewhere, the answer times of the calls on
    the new connections, and the survivors' CPU."""
    import resource
    chargers = 2000 if quick else 10000
    settle = 20 if quick else 40
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * chargers + 5000) if hard != resource.RLIM_INFINITY else 2 * chargers + 5000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    log(f"failover: {chargers:,} chargers on instance A of three; A killed (kill -9)")
    url = fresh_database("csm_bench_failover")
    prefix = f"bench-failover-{int(time.time())}:"
    env = base_env(url, prefix)
    import_chargers(env, chargers)
    servers = []
    try:
        for name in ("a", "b", "c"):
            servers.append(start_server(url, prefix, None, {
                "CSM_OCPP_REGISTRATION": "known", "CSM_INSTANCE_ID": name, "CSM_ADMIN_TOKEN": "bench"}))
        ports = [base.rsplit(":", 1)[1] for _, base in servers]
        urls = ",".join(f"ws://127.0.0.1:{port}/ocpp" for port in ports)
        sim = Process([CLI, "simulate-ocpp", "--url", urls, "--chargers", str(chargers), "--connectors", "2",
                       "--meter-secs", "30", "--session-secs", "300"], env=env)
        with sim:
            a, a_base = servers[0]
            deadline = time.time() + 600
            while True:
                request = urllib.request.Request(f"{a_base}/api/cluster", headers={"Authorization": "Bearer bench"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    view = json.loads(response.read())
                held = {i["id"]: i["chargers"] for i in view["instances"]}
                if held.get("a") == chargers:
                    break
                if time.time() > deadline:
                    raise RuntimeError(f"the chargers did not all connect to A: {view}")
                time.sleep(1)
            time.sleep(5)
            survivors = servers[1:]
            cpu0 = [cpu_secs(p.proc.pid) for p, _ in survivors]
            killed = time.time()
            a.proc.kill()
            a.proc.wait()
            log(f"failover: killed A holding {chargers:,} chargers")
            time.sleep(settle)
            cpu = [cpu_secs(p.proc.pid) - c for (p, _), c in zip(survivors, cpu0)]
            request = urllib.request.Request(f"{survivors[0][1]}/api/cluster", headers={"Authorization": "Bearer bench"})
            with urllib.request.urlopen(request, timeout=30) as response:
                view = json.loads(response.read())
            rss = [p.rss_mb()[0] for p, _ in survivors]
            sim.proc.send_signal(signal.SIGINT)
            sim.proc.wait(timeout=60)
        summary = json.loads(open(sim.log.name).read().strip().splitlines()[-1])
    finally:
        for process, _ in servers:
            process.stop()
        mysql("DROP DATABASE IF EXISTS `csm_bench_failover`")
    back = summary["back_after_drop_ms"]
    result = {
        "chargers": chargers,
        "back": summary["back_after_drop"],
        "all_back_secs": round(back["max"] / 1000, 1) if summary["back_after_drop"] >= chargers else None,
        "back_ms": back,
        "answer_ms_after_drop": summary["answer_ms_after_drop"],
        "held_after": {i["id"]: i["chargers"] for i in view["instances"]},
        "survivors_cpu_secs": [round(c, 1) for c in cpu],
        "window_secs": settle,
        "survivors_rss_mb": [round(r) for r in rss],
        "command": f"csm-cli simulate-ocpp --url ws://A/ocpp,ws://B/ocpp,ws://C/ocpp --chargers {chargers} "
                   "--connectors 2 against three csm-server instances (MariaDB + Redis), kill -9 of A",
    }
    log(f"failover: {json.dumps(result)}")
    return result


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with open("/proc/meminfo") as info:
        mem_kb = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    version = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "mariadb": version("mysql", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-N", "-e", "SELECT VERSION()"),
        "redis": version("redis-server", "--version"),
        "rustc": version("rustc", "--version"),
    }


def markdown(results):
    m = results["machine"]
    lines = [
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"MariaDB {m['mariadb']}; {m['redis'].split(' sha')[0]}; {m['rustc']}.",
        f"Command: `{results['command']}` ({results['date']}).",
        "",
        "### Refresh (csm-cli refresh --all, HTTP simulator → MariaDB + Redis, 12 ports a station, concurrency 64)",
        "",
        "First cycle: every port is new. Steady: the median of three cycles 10 s apart, the simulated clock running",
        "6× so about a minute of the fleet passes between cycles (the changed fraction is in results.json).",
        "",
        "| stations | cycle | stations/s | ports/s | p50 ms | p99 ms | status changes | port rows written | event rows | peak RSS MB | raw HTTP req/s (wrk) | fraction of raw |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["refresh"]:
        for name in ("first", "steady"):
            c = r[name]
            lines.append(
                f"| {r['stations']:,} | {name} | {c['stations_per_sec']:,} | {c['ports_per_sec']:,} | {c['p50_ms']} | {c['p99_ms']} | "
                f"{c['status_changes']:,} | {c['port_rows_written']:,} | {c['event_rows_in_db']:,} | {c['peak_rss_mb']} | "
                f"{r['ceiling']['rps']:,} | {c['fraction_of_ceiling']:.0%} |")
    cpu_rows = [(r["stations"], r["steady"].get("cpu_us_per_station")) for r in results["refresh"]]
    cpu_rows = [(n, cpu) for n, cpu in cpu_rows if cpu]
    if cpu_rows:
        names = ["csm-cli", "simulator", "redis", "mariadb"]
        lines += ["", "CPU per station in the steady cycle (µs; csm-cli: the whole process including its start; "
                  "the others: /proc/PID/stat over the cycle; both count 10 ms clock ticks, so 1,000 stations read coarsely):", "",
                  "| stations | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
        for n, cpu in cpu_rows:
            lines.append(f"| {n:,} | " + " | ".join(str(cpu.get(name, "—")) for name in names) + " |")
    bare_rows = [r for r in results["refresh"] if r.get("bare_client")]
    if bare_rows:
        lines += ["", "The same requests through hyper-util's client alone (one thread, 64 at a time, answers read and dropped: "
                  "`bench/src/bin/http_client_cost.rs`), against wrk and the steady refresh:", "",
                  "| stations | wrk req/s | bare client req/s | bare client / wrk | steady refresh stations/s | refresh / bare client |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for r in bare_rows:
            bare, wrk_rps, steady = r["bare_client"]["rps"], r["ceiling"]["rps"], r["steady"]["stations_per_sec"]
            lines.append(f"| {r['stations']:,} | {wrk_rps:,} | {bare:,} | {bare / wrk_rps:.0%} | {steady:,} | {steady / bare:.0%} |")
    scaling = results.get("scaling")
    if scaling:
        lines += ["", f"Scaling: steady cycle at 50,000 stations took {scaling['ratio_50k_to_10k']}× the 10,000-station cycle (linear: 5×)."]
    api = results.get("api")
    if api:
        lines += [
            "",
            f"### API (csm-server, {api['station_count']:,} stations, MariaDB + Redis; wrk -t2 -c32)",
            "",
            "| endpoint | body bytes | req/s | p50 ms | p99 ms | fraction of ceiling |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows = [("fixed body (ceiling)", "ceiling"), ("GET /api/stations/{id}", "station"),
                ("GET /api/ports", "ports"), ("GET /api/stations (every station with its ports)", "stations"),
                ("GET /api/stations?view=summary", "stations_summary"),
                ("GET /api/stations with its tag (`304`)", "stations_not_modified")]
        for label, key in rows:
            if key not in api:
                continue
            r = api[key]
            size = r.get("body_bytes", api["body_bytes"])
            fraction = f"{r['fraction_of_ceiling']:.0%}" if "fraction_of_ceiling" in r else "—"
            lines.append(f"| {label} | {size:,} | {r['rps']:,} | {r['p50_ms']} | {r['p99_ms']} | {fraction} |")
    listed = results.get("list")
    if listed:
        lines += ["", "### The whole station list (csm-server, MariaDB + Redis, 12 ports a station, each refreshed every 10 s)", "",
                  "`GET /api/stations` against a fixed body of the same size served by the same server (the ceiling), "
                  "wrk -t2, medians of three alternating runs:", "",
                  "| stations | plain bytes | gzip bytes | connections | ceiling req/s | list req/s | fraction | list p50 ms | list p99 ms | RSS MB (peak) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in listed:
            for c in ("c8", "c32"):
                ceiling, row = r[c]["ceiling"], r[c]["list"]
                lines.append(f"| {r['stations']:,} | {r['plain_bytes']:,} | {r['gzip_bytes']:,} | {c[1:]} | {ceiling['rps']:,} | "
                             f"{row['rps']:,} | {row['fraction_of_ceiling']:.0%} | {row['p50_ms']} | {row['p99_ms']} | {r['rss_mb']} ({r['peak_rss_mb']}) |")
        lines += ["", "The same list at 32 connections for a client that accepts gzip, and a client polling every half "
                  "second with the tag of its last answer (`If-None-Match`): how many of its polls were answered `304`:", "",
                  "| stations | gzip req/s | gzip p99 ms | polls answered 304 |", "|---:|---:|---:|---:|"]
        for r in listed:
            g, p = r["gzip_c32"], r["polls"]
            lines.append(f"| {r['stations']:,} | {g['rps']:,} | {g['p99_ms']} | {p['not_modified']} of {p['polls']} |")
    sse = results.get("sse")
    if sse:
        lines += ["", "### SSE fan-out", "",
                  f"{sse['clients']:,} clients on `/api/events`; over {sse['changes_measured']} changes, time from the change's "
                  f"observation to its arrival at the last client: p50 {sse['last_client_ms']['p50']:.1f} ms, "
                  f"p99 {sse['last_client_ms']['p99']:.1f} ms, max {sse['last_client_ms']['max']:.1f} ms (first client: p50 {sse['first_client_ms']['p50']:.1f} ms)."]
    memory = results.get("memory")
    if memory:
        lines += ["", "### Server memory (all stations refreshed, HTTP vendor, MariaDB + Redis)", "",
                  "| stations | RSS MB | peak RSS MB |", "|---:|---:|---:|"]
        for r in memory:
            lines.append(f"| {r['stations']:,} | {r['rss_mb']} | {r['peak_rss_mb']} |")
        lines += ["", "The dashboard's requests of the same server (wrk -t2 -c8, 5 s each): a page of 200 stations "
                  "(`/api/stations?view=summary&limit=200`) and a search (`&q=s0001`):", "",
                  "| stations | page req/s | page p99 ms | search req/s | search p99 ms |", "|---:|---:|---:|---:|---:|"]
        for r in memory:
            pages = r.get("list_pages")
            if pages:
                lines.append(f"| {r['stations']:,} | {pages['page']['rps']:,} | {pages['page']['p99_ms']} | "
                             f"{pages['search']['rps']:,} | {pages['search']['p99_ms']} |")
    history = results.get("history")
    if history:
        f, st = history["fraction"], history["stats"]
        lines += ["", "### History", "",
                  f"Readings kept (`{f['command']}`): {f['stations']:,} stations × 12 ports refreshed every {f['refresh_secs']} s "
                  f"for {f['simulated_hours']} simulated hours, each refresh derived as the engine derives it: "
                  f"{f['observations_per_sec']:,.0f} port observations/s, {f['stored_readings_per_sec']:,.0f} stored readings/s, "
                  f"stored fraction {f['stored_fraction']:.2%} (deadbands {f['deadband']['volts']} V, {f['deadband']['amps']} A, "
                  f"{f['deadband']['watts']} W, {f['deadband']['kwh']} kWh; heartbeat {f['heartbeat_secs']} s; the first refresh, "
                  f"which keeps every port, not counted: {f['first_refresh_readings']:,} readings).",
                  "",
                  f"Statistics (`{st['command']}`): a station's {st['days']}-day statistics through the monitor, {st['requests']} "
                  f"random stations one after another, on MariaDB holding {st['rows']['station_hours']:,} station hours, "
                  f"{st['rows']['sessions']:,} sessions and {st['rows']['fleet_hours']:,} fleet hours: "
                  f"p50 {st['ms']['p50']:.1f} ms, p90 {st['ms']['p90']:.1f} ms, p99 {st['ms']['p99']:.1f} ms, max {st['ms']['max']:.1f} ms "
                  f"({st['sessions_per_answer']:,.0f} sessions in an answer)."]
    alerts = results.get("alerts")
    if alerts:
        a = alerts
        lines += ["", "### Alerts", "",
                  f"`{a['command']}`: {a['rules']:,} `port_free` rules (one station each) over {a['stations']:,} simulated "
                  f"stations of 12 ports (an hour passes a minute), {a['channels']} webhook channels to a receiver on 127.0.0.1, "
                  f"{a['cycles']} refresh cycles: {a['alerts_fired']:,} alerts fired, {a['alerts_received']:,} received in "
                  f"{a['requests']:,} requests ({a['digests']} digests). From the observation that fired an alert to its "
                  f"request at the receiver: p50 {a['latency_ms']['p50']:.0f} ms, p90 {a['latency_ms']['p90']:.0f} ms, "
                  f"p99 {a['latency_ms']['p99']:.0f} ms, max {a['latency_ms']['max']:.0f} ms. A refresh cycle of the whole "
                  f"fleet (median): {a['cycle_secs_without_rules']:.2f} s without the rules, {a['cycle_secs_with_rules']:.2f} s "
                  f"with them evaluated and delivered on the same two cores."]
    ocpp = results.get("ocpp")
    if ocpp:
        o, sim = ocpp, ocpp["simulator"]
        sse = o["sse"]
        lines += ["", "### OCPP chargers", "",
                  f"`{o['command']}` against csm-server (MariaDB + Redis, the chargers imported as stations of vendor ocpp): "
                  f"{sim['connected']:,} of {o['chargers']:,} connected ({sim['errors']} errors), {sim['answers']:,} calls answered. "
                  f"Server RSS {o['rss_mb_before']} MB before, {o['rss_mb_connected']} MB connected: {o['kb_per_charger']} KB a charger; "
                  f"CPU {o['cpu_share_of_one_core']:.0%} of one core. Answer time as the chargers saw it after the warm-up: "
                  f"p50 {sim['answer_ms']['p50']:.2f} ms, p90 {sim['answer_ms']['p90']:.2f} ms, p99 {sim['answer_ms']['p99']:.2f} ms, "
                  f"max {sim['answer_ms']['max']:.1f} ms"
                  + (f" (OCPP 1.6J chargers: p50 {sim['answer_ms_ocpp16']['p50']:.2f} ms, p99 {sim['answer_ms_ocpp16']['p99']:.2f} ms; "
                     f"OCPP 2.0.1: p50 {sim['answer_ms_ocpp201']['p50']:.2f} ms, p99 {sim['answer_ms_ocpp201']['p99']:.2f} ms)"
                     if "answer_ms_ocpp201" in sim else "")
                  + (f"; over the whole run, the {o['chargers']:,} connecting and booting at once included: "
                     f"p50 {sim['answer_ms_with_warmup']['p50']:.2f} ms, p90 {sim['answer_ms_with_warmup']['p90']:.1f} ms, "
                     f"p99 {sim['answer_ms_with_warmup']['p99']:.1f} ms" if "answer_ms_with_warmup" in sim else "")
                  + ". StatusNotification to the live event: "
                  + (f"p50 {sse['p50_ms']:.1f} ms, p99 {sse['p99_ms']:.1f} ms ({sse['samples']} changes)." if "p50_ms" in sse else f"not measured ({sse})")]
    tls = results.get("ocpp_tls")
    if tls:
        lines += ["", "### OCPP over TLS", "",
                  f"`{tls['command']}`: the server's CPU over the {tls['window_secs']} s in which the chargers connect, "
                  f"boot and report, and the connect times (TCP, TLS, WebSocket upgrade) the chargers saw.", "",
                  "| | connections | errors | server CPU | connect p50 | p99 | answer p50 | p99 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for scheme, run in tls["runs"].items():
            lines.append(f"| {scheme}:// | {run['connections']:,} | {run['errors']} | {run['server_cpu_secs']} s "
                         f"| {run['connect_ms']['p50']:.1f} ms | {run['connect_ms']['p99']:.1f} ms "
                         f"| {run['answer_ms']['p50']:.2f} ms | {run['answer_ms']['p99']:.2f} ms |")
        lines += ["", f"TLS costs the server {tls['tls_server_cpu_ms_per_connection']} ms of CPU a connection "
                      "(the difference of the two runs over the connections made)."]
    storm = results.get("storm")
    if storm:
        lines += ["", "### Reconnect storm: charger passwords", "",
                  f"`{storm['command']}`; the API read is `GET /api/ocpp/charge-points`, twice a second meanwhile.", "",
                  "| PBKDF2 iterations | all connected after | first connect p50 | p99 | server CPU a charger | failed attempts | API read p50 | p99 |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for run in storm["runs"]:
            first, api = run["first_connect_ms"] or {}, run["api_read_ms"]
            all_in = f"{run['all_in_secs']} s" if run["all_in_secs"] is not None else f"{run['connected']:,} only"
            lines.append(f"| {run['iterations']:,} | {all_in} | {first.get('p50', 0) / 1000:.1f} s | {first.get('p99', 0) / 1000:.1f} s "
                         f"| {run['server_cpu_ms_per_charger']} ms | {run['failed_attempts']} | {api['p50']} ms | {api['p99']} ms |")
    cluster = results.get("cluster")
    if cluster:
        lines += ["", "### Cluster: instances on one MariaDB and Redis", "",
                  f"{cluster['stations']:,} stations × {PORTS} ports of `csm-cli simulate`, every {cluster['interval_secs']} s, "
                  f"measured over {cluster['window_secs']} s once formed, each instance on one runtime worker. CPU per "
                  "station: each instance's CPU over the refreshes it made. Event latency: from a change's observation to its arrival at 20 clients of the "
                  "first instance (most changes made on the others).", "",
                  "| instances | stations/s | requests a station an interval | CPU µs a station, each instance | CPU vs one | Redis commands a station an interval | event p50 | p99 | max | takeover after kill -9 |",
                  "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for row in cluster["instances"]:
            sse = row.get("sse_ms") or {}
            takeover = f"{row['takeover_secs']} s" if row.get("takeover_secs") is not None else ("" if "takeover_secs" not in row else f"{row['unasked_after_kill']} unasked")
            def ms(key):
                return f"{sse[key]:.1f} ms" if sse.get(key) is not None else "—"
            lines.append(f"| {row['instances']} | {row['stations_per_sec']:,} | {row['requests_per_station_per_interval']} "
                         f"| {', '.join(str(c) for c in row['cpu_us_per_station'])} | {row['cpu_vs_single']} "
                         f"| {row['redis_commands_per_station_per_interval']} | {ms('p50')} | {ms('p99')} "
                         f"| {ms('max')} | {takeover} |")
    counted = results.get("cluster_instructions")
    if counted:
        lines += ["", "### Cluster: instructions a station, under callgrind", "",
                  f"{counted['stations']:,} stations every {counted['interval_secs']} s; each instance's instructions over "
                  f"{counted['window_secs']} s once formed, over the stations it refreshed.", "",
                  "| instances | stations refreshed, each | instructions a station, each | vs one |", "|---:|---|---|---:|"]
        for row in counted["instances"]:
            lines.append(f"| {row['instances']} | {', '.join(f'{j:,}' for j in row['stations_refreshed'])} "
                         f"| {', '.join(f'{i:,}' for i in row['instructions_per_station'])} | {row['vs_single']} |")
    failover = results.get("failover")
    if failover:
        f = failover
        back, answers = f["back_ms"], f["answer_ms_after_drop"]
        all_back = f"{f['all_back_secs']} s" if f["all_back_secs"] is not None else f"{f['back']:,} of {f['chargers']:,} only"
        lines += ["", "### Failover: the charger storm after an instance dies", "",
                  f"`{f['command']}`. Each charger reconnects a second after its socket broke, to B or C (half each); "
                  f"\"back\": from the break to its BootNotification answered on the new connection. Measured over the "
                  f"{f['window_secs']} s after the kill.", "",
                  "| chargers | all back after | back p50 | p99 | answers on the new connections p50 | p99 | max | held after (instance: chargers) | survivors' CPU | survivors' RSS |",
                  "|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
                  f"| {f['chargers']:,} | {all_back} | {back['p50'] / 1000:.2f} s | {back['p99'] / 1000:.2f} s "
                  f"| {answers['p50']:.1f} ms | {answers['p99']:.1f} ms | {answers['max']:.0f} ms "
                  f"| {', '.join(f'{k}: {v:,}' for k, v in sorted(f['held_after'].items()))} "
                  f"| {', '.join(f'{c} s' for c in f['survivors_cpu_secs'])} | {', '.join(f'{r} MB' for r in f['survivors_rss_mb'])} |"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 stations only and short runs (under two minutes)")
    parser.add_argument("--only", nargs="+", choices=["refresh", "api", "list", "sse", "memory", "history", "alerts", "ocpp", "ocpp-tls", "storm", "cluster", "failover", "cluster-instructions"],
                        help="run only these parts (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, help="fleet sizes of the refresh part")
    args = parser.parse_args()
    for binary in (CLI, SERVER, FANOUT, HISTORY, ALERTS):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: run scripts/bench.sh, which builds it")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (scripts/bench.sh does)")
    started = time.time()
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000, 50000])
    only = set(args.only or ["refresh", "api", "list", "sse", "memory", "history", "alerts", "ocpp", "ocpp-tls", "storm", "cluster", "failover"])
    wrk_seconds = 3 if args.quick else 10
    results = {
        "command": "scripts/bench.sh" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "refresh": [bench_refresh(n, wrk_seconds, 10, 1 if args.quick else 3) for n in sizes] if "refresh" in only else [],
    }
    by_size = {r["stations"]: r for r in results["refresh"]}
    if 10000 in by_size and 50000 in by_size:
        ratio = by_size[50000]["steady"]["elapsed_secs"] / by_size[10000]["steady"]["elapsed_secs"]
        results["scaling"] = {"ratio_50k_to_10k": round(ratio, 2)}
    if "api" in only:
        results["api"] = bench_api(1000, 3 if args.quick else 12)
        results["api"]["station_count"] = 1000
    if "list" in only:
        results["list"] = [bench_list(n, 6 if args.quick else 12) for n in ([1000] if args.quick else [1000, 10000])]
    if "sse" in only:
        results["sse"] = bench_sse(1000, 6 if args.quick else 20)
    if "memory" in only:
        results["memory"] = [bench_memory(n, 5 if args.quick else 20) for n in ([1000] if args.quick else [1000, 50000])]
    if "history" in only:
        results["history"] = bench_history(args.quick)
    if "alerts" in only:
        results["alerts"] = bench_alerts(args.quick)
    if "ocpp" in only:
        results["ocpp"] = bench_ocpp(args.quick)
    if "ocpp-tls" in only:
        results["ocpp_tls"] = bench_ocpp_tls(args.quick)
    if "storm" in only:
        results["storm"] = bench_storm(args.quick)
    if "cluster" in only:
        results["cluster"] = bench_cluster(args.quick)
    if "failover" in only:
        results["failover"] = bench_failover(args.quick)
    if "cluster-instructions" in only:
        results["cluster_instructions"] = bench_cluster_instructions(args.quick)
    forget_cache_keys()
    results["elapsed_secs"] = round(time.time() - started)
    os.makedirs(OUT, exist_ok=True)
    complete = set(only) == {"refresh", "api", "list", "sse", "memory", "history", "alerts", "ocpp", "ocpp-tls", "storm", "cluster", "failover"} and not args.sizes
    name = "quick" if args.quick else "results" if complete else "partial"
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = markdown(results)
    with open(os.path.join(OUT, f"{name}.md"), "w") as f:
        f.write(table)
    print(table)
    log(f"done in {results['elapsed_secs']} s; target/bench/{name}.json and {name}.md written")


if __name__ == "__main__":
    main()
