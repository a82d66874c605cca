#!/usr/bin/env bash
# Runs every check of csm: formatting, lints, unit and integration tests (against a real
# MariaDB and Redis, which it starts, or installs with apt-get, when needed), and the dashboard
# end-to-end in headless Chromium, the API against its OpenAPI document (schemathesis), the
# OCPP endpoint against independent 1.6 and 2.0.1 chargers (the Python ocpp package), TLS with
# client certificates of a throwaway CA (openssl), and three server
# processes as one cluster (on one Redis, and on a Redis Cluster of three masters).
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CSM_TEST_MYSQL_URL="${CSM_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}"
export CSM_TEST_REDIS_URL="${CSM_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export CSM_TEST_REDIS_CLUSTER_URL="${CSM_TEST_REDIS_CLUSTER_URL:-redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
started=$(date +%s)

source scripts/services.sh

ensure_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  # Chinese glyphs for the screenshots (the test passes without them, the pictures would not).
  fc-list 2>/dev/null | grep -qi 'noto.*cjk' || apt_install fonts-noto-cjk
  command -v node >/dev/null || apt_install nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    step "installing the browser test's npm packages"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

step "services: MariaDB, Redis and a Redis Cluster"
ensure_services
ensure_redis_cluster
ensure_browser
# The TLS tests make a throwaway CA and certificates with it.
command -v openssl >/dev/null || apt_install openssl

step "deployment files (no Docker engine here: structure only)"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
python3 scripts/check-deploy.py

step "csm-core's layers (ARCHITECTURE.md): every import points down"
python3 scripts/check-layers.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (unit, end-to-end against MariaDB and Redis, doc, examples, benches once)"
cargo test --workspace --all-targets --quiet
cargo test --workspace --doc --quiet

step "API contract: schemathesis against a running server"
./scripts/contract.sh

step "OCPP: an independent charger (the Python ocpp package) against a running server"
./scripts/ocpp-client.sh

step "cluster: three csm-server processes on one MariaDB and Redis (kill -9, a Redis restart)"
./scripts/cluster-test.sh

step "cluster: the same on a Redis Cluster of three masters"
./scripts/cluster-test.sh --redis-cluster

step "dashboard end-to-end in headless Chromium"
./scripts/e2e.sh

printf '\nall checks passed in %s s\n' "$(( $(date +%s) - started ))"
