#!/usr/bin/env bash
# Starts csm-server on its embedded default in a scratch folder and runs the dashboard test in
# headless Chromium against it. Screenshots land in target/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p csm-server
server="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-server"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$work/server.log"
(
  cd "$work"
  # Demo mode, with a fast simulated clock so ports change while the test watches.
  exec env -u CSM_DATABASE_URL -u CSM_REDIS_URL CSM_BIND="127.0.0.1:$port" CSM_SIMULATOR_SPEED=300 \
    CSM_REFRESH_INTERVAL_SECS=2 CSM_VENDORS_DIR="$work/vendors" CSM_ADMIN_TOKEN=e2e-token \
    CSM_ALERT_HOSTS=127.0.0.1 "$server"
) >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "error: csm-server exited during start" >&2; exit 1; }
  sleep 0.5
done

mkdir -p target/e2e
if ! CSM_E2E_URL="http://127.0.0.1:$port" CSM_E2E_TOKEN=e2e-token CSM_E2E_SCREENSHOTS="$PWD/target/e2e" node tests/browser/dashboard.mjs; then
  echo "--- server log ---"; cat "$log"; exit 1
fi

# Graceful shutdown: SIGTERM, exit 0, within 15 s.
kill -TERM "$pid"
for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$pid" 2>/dev/null; then echo "error: csm-server did not stop within 15 s of SIGTERM" >&2; exit 1; fi
wait "$pid" || { echo "error: csm-server exited with status $? after SIGTERM" >&2; cat "$log"; exit 1; }
grep -q "all writes flushed" "$log" || { echo "error: csm-server did not report its final flush" >&2; cat "$log"; exit 1; }
echo "csm-server stopped cleanly on SIGTERM"
