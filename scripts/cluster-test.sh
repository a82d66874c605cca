#!/usr/bin/env bash
# Three csm-server processes on one MariaDB and one Redis (its own, on a loopback port, which
# it restarts), with a vendor simulator counting requests, a webhook receiver and an OCPP
# charger (the Python ocpp package): tests/cluster/cluster_test.py. Usage:
# ./scripts/cluster-test.sh [path/to/csm-server path/to/csm-cli] [--redis-cluster]  (default: the
# debug builds; --redis-cluster: on a Redis Cluster of three masters of the test's own)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

flags=()
if [ "${*: -1}" = "--redis-cluster" ] 2>/dev/null; then
  flags=(--redis-cluster)
  set -- "${@:1:$(($# - 1))}"
fi
if [ $# -ge 2 ]; then
  server=$1 cli=$2
else
  cargo build --quiet -p csm-server -p csm-cli
  server="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-server"
  cli="${CARGO_TARGET_DIR:-$PWD/target}/debug/csm-cli"
fi
command -v redis-server >/dev/null || apt_install redis-server
python=$(ensure_ocpp_venv)
timeout 300 "$python" tests/cluster/cluster_test.py "$(realpath "$server")" "$(realpath "$cli")" "${flags[@]}"
