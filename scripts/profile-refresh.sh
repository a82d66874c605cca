#!/usr/bin/env bash
# Profiles one steady-state `csm-cli refresh --all` (the refresh part of scripts/bench.sh):
# the simulator serves N stations over HTTP, a first cycle fills MariaDB and Redis, and the
# second cycle runs under a profiler.
#
#   ./scripts/profile-refresh.sh [--stations N] [--callgrind | --perf]
#
#   --callgrind  (default) instructions of csm-cli per station, from valgrind's callgrind;
#                repeatable whatever else the machine does. Two figures: the second of three
#                rounds in one process (`refresh --all --rounds 3`, cut where each round
#                begins), the steady cycle of a running server; and one round in a fresh
#                process, with the cost of starting it (a refresh of one station) taken off,
#                which also pays for preparing statements, loading the catalogue and the last
#                readings. Output: target/profile/callgrind.out.3 and callgrind-fresh.out (read
#                them with callgrind_annotate).
#   --perf       where the time goes: perf record with call graphs, 2,000 samples a second.
#                Output: target/profile/perf.data (read it with perf report).
#   --clients    no refresh: instructions per request of an HTTP client alone, reqwest against
#                hyper-util's client (what csm's vendor client is built on), N requests
#                to the same simulator (bench/src/bin/http_client_cost.rs under callgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

stations=2000
mode=callgrind
while [ $# -gt 0 ]; do
  case $1 in
    --stations) stations=$2; shift 2 ;;
    --callgrind) mode=callgrind; shift ;;
    --perf) mode=perf; shift ;;
    --clients) mode=clients; shift ;;
    *) fail "unknown argument $1 (use --stations N, --callgrind, --perf or --clients)" ;;
  esac
done

ensure_services
if [ "$mode" != perf ]; then command -v valgrind >/dev/null || apt_install valgrind; fi
if [ "$mode" = perf ]; then command -v perf >/dev/null || apt_install linux-perf; fi

step "building csm-cli (release)"
cargo build --release --quiet -p csm-cli
if [ "$mode" = clients ]; then cargo build --release --quiet -p csm-bench --bin http_client_cost; fi
cli=target/release/csm-cli
out=target/profile
mkdir -p "$out"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
database=csm_profile
prefix="csmprofile:$$:"
"$cli" simulate --stations "$stations" --ports 12 --bind "127.0.0.1:$port" --speed 20 >"$out/simulator.log" 2>&1 &
simulator=$!
cleanup() {
  kill "$simulator" 2>/dev/null || true
  mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $database" || true
  redis-cli --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli del >/dev/null || true
}
trap cleanup EXIT
wait_for "the simulator" curl -sf "http://127.0.0.1:$port/api/v1/stations"
instructions() { grep -o 'Collected : [0-9]*' "$1" | grep -o '[0-9]*$'; }

if [ "$mode" = clients ]; then
  step "HTTP client alone, $stations requests each"
  for client in reqwest hyper; do
    valgrind --tool=callgrind --callgrind-out-file="$out/client-$client.out" \
      target/release/http_client_cost "$client" "http://127.0.0.1:$port" "$stations" \
      2>"$out/client-$client.log"
    valgrind --tool=callgrind --callgrind-out-file="$out/client-$client-start.out" \
      target/release/http_client_cost "$client" "http://127.0.0.1:$port" 1 \
      2>"$out/client-$client-start.log"
    total=$(instructions "$out/client-$client.log")
    start=$(instructions "$out/client-$client-start.log")
    printf '%s: %s instructions a request (%s in all, %s of them starting the process)\n' \
      "$client" "$(( (total - start) / (stations - 1) ))" "$total" "$start"
  done
  exit 0
fi

mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $database"
export CSM_DATABASE_URL="mysql://root@127.0.0.1:3306/$database" CSM_REDIS_URL=redis://127.0.0.1:6379
export CSM_CACHE_PREFIX="$prefix" CSM_VENDORS_DIR=/nonexistent CSM_HTTP_TIMEOUT_MS=20000
export CSM_VENDOR_CSM_BASE_URL="http://127.0.0.1:$port" RUST_LOG=warn
"$cli" init-db >/dev/null
"$cli" stations sync --vendor csm >/dev/null
step "first cycle (every port new)"
"$cli" refresh --all | tail -1
# A simulated minute passes (the clock runs 20×), so a few percent of the ports change.
sleep 3

step "steady cycle under $mode"
case $mode in
  callgrind)
    # Three rounds in one process, 10 s apart (about as many ports change as the fresh
    # process below sees), cut where each begins: the second round (file .3) is a
    # steady cycle as a server runs it (statements prepared, last readings in memory, the
    # catalogue loaded); a fresh process's one round also pays for those.
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind-fresh.out" \
      "$cli" refresh --all 2>"$out/valgrind-fresh.log" | tail -1
    rm -f "$out"/callgrind.out*
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
      --dump-before='*round_begins*' \
      "$cli" refresh --all --rounds 3 --every 10 2>"$out/valgrind.log" | tail -3
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind-start.out" \
      "$cli" refresh S0001 >/dev/null 2>"$out/valgrind-start.log" || true
    steady=$(grep -o '^summary: [0-9]*' "$out/callgrind.out.3" | grep -o '[0-9]*$')
    total=$(instructions "$out/valgrind-fresh.log")
    start=$(instructions "$out/valgrind-start.log")
    printf 'csm-cli, steady round in a running process: %s instructions a station (%s in all)\n' \
      "$(( steady / stations ))" "$steady"
    printf 'csm-cli, one round in a fresh process: %s instructions a station (%s in all, %s of them starting the process)\n' \
      "$(( (total - start) / stations ))" "$total" "$start"
    echo "details: callgrind_annotate --inclusive=yes $out/callgrind.out.3 | less (a fresh process: $out/callgrind-fresh.out)"
    ;;
  perf)
    perf record -F 2000 --call-graph dwarf,16384 -o "$out/perf.data" -- \
      "$cli" refresh --all 2>/dev/null | tail -1
    echo "details: perf report -i $out/perf.data --no-children"
    ;;
esac
