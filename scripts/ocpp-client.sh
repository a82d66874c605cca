#!/usr/bin/env bash
# Independent OCPP chargers against csm: the Python `ocpp` package (from PyPI, in a virtual
# environment this script makes under target/) drives tests/ocpp/charger.py (OCPP 1.6J) and
# tests/ocpp/charger201.py (OCPP 2.0.1) against csm-server on its embedded default (chargers
# register themselves); each answers the operators' commands sent through csm's API and csm-cli. Usage:
# ./scripts/ocpp-client.sh [path/to/csm-server [path/to/csm-cli]]  (default: the debug builds,
# built first)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

if [ $# -ge 2 ]; then
  server=$1 cli=$2
else
  cargo build --quiet -p csm-server -p csm-cli
  server="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-server"
  cli="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-cli"
fi
server=$(realpath "$server") cli=$(realpath "$cli")
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
python=$(ensure_ocpp_venv)

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work" && exec env -u CSM_DATABASE_URL -u CSM_REDIS_URL CSM_BIND="127.0.0.1:$port" CSM_ADMIN_TOKEN="$token" \
  CSM_VENDORS_DIR=/nonexistent RUST_LOG=warn "$server" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for "csm-server on port $port" curl -sf "http://127.0.0.1:$port/readyz"

for charger in charger.py charger201.py; do
  "$python" "tests/ocpp/$charger" "http://127.0.0.1:$port" "$token" "$cli" \
    || { echo "server log:"; tail -20 "$work/server.log"; fail "the Python OCPP charger $charger failed (see above)"; }
done
