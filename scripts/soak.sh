#!/usr/bin/env bash
# Load test of csm (see scripts/soak.py): 60 s of wrk against the server while the refresh
# engine runs at full speed and Redis is cut off and restored; fails on any 5xx, on memory
# growth beyond the stated bound, or on a lost status event. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_services
command -v wrk >/dev/null || apt_install wrk

step "building release binaries"
cargo build --release --quiet -p csm-server -p csm-cli

step "load test"
exec python3 scripts/soak.py "$@"
