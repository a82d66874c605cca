#!/usr/bin/env python3
"""csm load test (run through scripts/soak.sh): the server under sustained wrk load for 60 s
while the refresh engine runs at full speed over HTTP, and its Redis (a redis-server of this
script's own) is cut off and restored once. Checks:

  - no 5xx answers (reads fall back to the store while Redis is away);
  - memory: RSS at the end at most 50 MB above RSS after the warm-up;
  - no lost status events: every event the server produced is in MariaDB after its shutdown.

Writes target/soak/results.json.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (shared helpers: processes, simulator, wrk, MariaDB)

DURATION = 60
STATIONS = 5000
RSS_GROWTH_LIMIT_MB = 50

STATUS_SCRIPT = """
local n = 0
request = function()
  n = n %% %(stations)d + 1
  return wrk.format(nil, string.format("/api/stations/S%%04d", n))
end
"""


def main():
    for binary in (bench.CLI, bench.SERVER):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: run scripts/soak.sh, which builds it")
    out_dir = os.path.join(bench.ROOT, "target", "soak")
    os.makedirs(out_dir, exist_ok=True)

    redis_port = bench.free_port()
    redis_args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis = subprocess.Popen(redis_args, stdout=subprocess.DEVNULL)
    time.sleep(0.5)

    sim, sim_url = bench.simulator(STATIONS, speed=30)
    database_url, prefix = bench.synced_database("csm_soak", sim_url)
    env = bench.base_env(database_url, prefix, sim_url)
    env["CSM_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}"

    cleanup = [redis, sim.proc]
    try:
        run(env, database_url, redis, redis_args, sim, out_dir, cleanup)
    finally:
        for process in cleanup:
            if process.poll() is None:
                process.kill()
        bench.forget_cache_keys()


def run(env, database_url, redis, redis_args, sim, out_dir, cleanup):
    port = bench.free_port()
    server_env = dict(env, CSM_BIND=f"127.0.0.1:{port}", CSM_REFRESH_INTERVAL_SECS="1", RUST_LOG="info",
                      CSM_LOG_FORMAT="json")
    log_path = os.path.join(out_dir, "server.log")
    server_log = open(log_path, "w")
    server = subprocess.Popen([bench.SERVER], env=server_env, stdout=server_log, stderr=subprocess.STDOUT)
    cleanup.append(server)
    base = f"http://127.0.0.1:{port}"
    bench.wait_http(f"{base}/readyz")
    bench.wait_cycles(base, 2, 120)

    rss = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            with open(f"/proc/{server.pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            rss.append((time.time(), int(fields["VmRSS"].split()[0]) / 1024))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    events_log = []

    def cut_cache():
        time.sleep(20)
        redis.send_signal(signal.SIGKILL)
        redis.wait()
        events_log.append(("redis stopped", time.time()))
        time.sleep(10)
        restarted = subprocess.Popen(redis_args, stdout=subprocess.DEVNULL)
        cleanup.append(restarted)
        events_log.append(("redis restarted", time.time()))

    cutter = threading.Thread(target=cut_cache, daemon=True)
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(STATUS_SCRIPT % {"stations": STATIONS})
    script.close()
    bench.log(f"load: wrk -t2 -c16 -d{DURATION}s on GET /api/stations/{{id}}; Redis cut off at 20 s, back at 30 s")
    started = time.time()
    cutter.start()
    wrk = subprocess.run(["wrk", "-t2", "-c16", f"-d{DURATION}s", "--latency", "-s", script.name, f"{base}/"],
                         capture_output=True, text=True, check=True).stdout
    cutter.join()
    stop.set()
    sampler.join()
    readiness_after = bench.get_json(f"{base}/readyz")

    requests = int(re.search(r"(\d+) requests in", wrk).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)$", wrk, re.M).group(1)

    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=30)
    server_log.close()
    log = open(log_path).read()
    produced = dropped = None
    for line in log.splitlines():
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if "status_events" in fields:
            produced, dropped = fields["status_events"], fields["dropped_events"]
    db = database_url.rsplit("/", 1)[1]
    stored = int(bench.mysql("SELECT COUNT(*) FROM status_events", db))
    if not os.environ.get("CSM_SOAK_KEEP_DB"):
        bench.mysql(f"DROP DATABASE IF EXISTS `{db}`")

    started_at = started
    warm = [mb for at, mb in rss if at - started_at >= 5]
    baseline = warm[0] if warm else rss[0][1]
    result = {
        "duration_secs": DURATION,
        "stations": STATIONS,
        "requests": requests,
        "requests_per_sec": round(rps),
        "p99": p99,
        "non_2xx": non_2xx,
        "readiness_after_restore": readiness_after,
        "rss_mb_after_warmup": round(baseline, 1),
        "rss_mb_max": round(max(mb for _, mb in rss), 1),
        "rss_mb_end": round(rss[-1][1], 1),
        "status_events_produced": produced,
        "status_events_dropped": dropped,
        "status_events_stored": stored,
        "server_exit_code": code,
        "redis": [(name, round(at - started, 1)) for name, at in events_log],
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    problems = []
    if non_2xx:
        problems.append(f"{non_2xx} answers were not 2xx")
    if result["rss_mb_end"] > baseline + RSS_GROWTH_LIMIT_MB:
        problems.append(f"RSS grew from {baseline:.0f} MB to {result['rss_mb_end']:.0f} MB")
    if produced is None or produced != stored or dropped:
        problems.append(f"status events: produced {produced}, stored {stored}, dropped {dropped}")
    if code != 0:
        problems.append(f"the server exited with {code}")
    if problems:
        sys.exit("soak test failed: " + "; ".join(problems))
    bench.log("soak test passed")


if __name__ == "__main__":
    main()
