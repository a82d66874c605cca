#!/usr/bin/env bash
# Benchmarks csm on this machine with MariaDB and Redis (see scripts/bench.py for what is
# measured). Writes target/bench/results.json and target/bench/results.md.
# Usage: ./scripts/bench.sh [--quick] [--only PART…]  (--quick: 1,000 stations, short runs;
# --only cluster: 1, 2 and 3 instances on one database and Redis; --only failover: the charger
# storm after an instance dies; --only cluster-instructions: 1 and 3 instances under callgrind,
# the coordination's cost in instructions, not part of a full run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_services
command -v wrk >/dev/null || apt_install wrk
command -v openssl >/dev/null || apt_install openssl
case " $* " in *" cluster-instructions "*) command -v valgrind >/dev/null || apt_install valgrind ;; esac
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

step "building release binaries"
cargo build --release --quiet -p csm-server -p csm-cli
cargo build --release --quiet -p csm-bench

step "benchmarking"
exec python3 scripts/bench.py "$@"
