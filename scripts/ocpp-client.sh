#!/usr/bin/env bash
# An independent OCPP 1.6J charger against csm: the Python `ocpp` package (from PyPI, in a
# virtual environment this script makes under target/) drives tests/ocpp/charger.py against
# csm-server on its embedded default (chargers register themselves). Usage:
# ./scripts/ocpp-client.sh [path/to/csm-server]  (default: the debug build, built first)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

if [ $# -ge 1 ]; then
  server=$1
else
  cargo build --quiet -p csm-server
  server="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-server"
fi
server=$(realpath "$server")
python=$(ensure_ocpp_venv)

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work" && exec env -u CSM_DATABASE_URL -u CSM_REDIS_URL CSM_BIND="127.0.0.1:$port" \
  CSM_VENDORS_DIR=/nonexistent RUST_LOG=warn "$server" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for "csm-server on port $port" curl -sf "http://127.0.0.1:$port/readyz"

"$python" tests/ocpp/charger.py "http://127.0.0.1:$port" \
  || { echo "server log:"; tail -20 "$work/server.log"; fail "the Python OCPP charger's run failed (see above)"; }
