#!/usr/bin/env bash
# Runs every check of csm: formatting, lints, unit and integration tests (against a real
# MariaDB and Redis, which it starts, or installs with apt-get, when needed), and the dashboard
# end-to-end in headless Chromium. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CSM_TEST_MYSQL_URL="${CSM_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}"
export CSM_TEST_REDIS_URL="${CSM_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
started=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
apt_install() {
  step "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # wait_for <what> <command…>: up to 30 s
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "$what did not come up within 30 s"
}

mariadb_answers() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }
root_over_tcp() { mysql --protocol=tcp -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }
ensure_mariadb() {
  if ! mariadb_answers; then
    [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    step "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for "MariaDB on 127.0.0.1:3306" mariadb_answers
  fi
  if ! root_over_tcp; then
    # A fresh Debian install lets root in only through the local socket: allow the empty
    # password over TCP, which is what the tests (and the task's environment) use.
    step "allowing root with an empty password over TCP"
    mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;"
    root_over_tcp || fail "cannot log in to MariaDB as root over TCP"
  fi
  mysql --protocol=tcp -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
  # Databases left by an interrupted earlier run.
  mysql --protocol=tcp -h127.0.0.1 -uroot -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'csm\\_t\\_%'" |
    while read -r db; do mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE \`$db\`"; done
}

redis_answers() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
ensure_redis() {
  redis_answers && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  step "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for "Redis on 127.0.0.1:6379" redis_answers
}

ensure_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  command -v node >/dev/null || apt_install nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    step "installing the browser test's npm packages"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

step "services: MariaDB and Redis"
command -v mysql >/dev/null || apt_install mariadb-client
command -v redis-cli >/dev/null || apt_install redis-tools
ensure_mariadb
ensure_redis
ensure_browser

step "deployment files (no Docker engine here: structure only)"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
python3 scripts/check-deploy.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (unit, integration against MariaDB and Redis, doc, examples, benches once)"
cargo test --workspace --all-targets --quiet
cargo test --workspace --doc --quiet

step "dashboard end-to-end in headless Chromium"
./scripts/e2e.sh

printf '\nall checks passed in %s s\n' "$(( $(date +%s) - started ))"
