#!/usr/bin/env bash
# The OpenAPI document is the contract: schemathesis (from PyPI, in a virtual environment this
# script makes under target/) fuzzes a running csm-server against its own
# /api/openapi.json with every check, 25 examples per operation under each of three fixed
# seeds, and fails on any finding. Usage: ./scripts/contract.sh [path/to/csm-server]  (default: the debug build,
# built first)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

if [ $# -ge 1 ]; then
  server=$1
else
  cargo build --quiet -p csm-server
  server="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-server"
fi
[ -x "$server" ] || fail "$server is missing: build it first (cargo build -p csm-server)"
server=$(realpath "$server")
venv=target/venv-contract
version=4.32.5
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  step "installing schemathesis $version in $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=contract-$RANDOM$RANDOM
# The embedded default (SQLite, in-process cache, simulated stations) with writes switched on;
# alert channels it creates may only post to 127.0.0.1.
(cd "$work" && exec env -u CSM_DATABASE_URL -u CSM_REDIS_URL CSM_BIND="127.0.0.1:$port" \
  CSM_ADMIN_TOKEN="$token" CSM_VENDORS_DIR=/nonexistent RUST_LOG=warn CSM_ALERT_HOSTS=127.0.0.1 \
  "$server" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for "csm-server on port $port" curl -sf "http://127.0.0.1:$port/readyz"

for seed in ${CSM_CONTRACT_SEEDS:-1 2 3}; do
  step "schemathesis against http://127.0.0.1:$port/api/openapi.json (seed $seed)"
  "$venv/bin/st" --config-file tests/contract/schemathesis.toml run "http://127.0.0.1:$port/api/openapi.json" \
    --checks all --seed "$seed" --max-examples "${CSM_CONTRACT_EXAMPLES:-25}" --no-color \
    --header "Authorization: Bearer $token" \
    --report-dir "target/contract/seed-$seed" --report junit \
    || { echo "server log:"; tail -20 "$work/server.log"; fail "the server does not keep to its OpenAPI document (seed $seed, see above)"; }
done
