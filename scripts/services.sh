# Shared by scripts/test.sh and scripts/bench.sh: make sure MariaDB (127.0.0.1:3306, root
# without a password) and Redis (127.0.0.1:6379) answer, starting them when they are installed
# but stopped, and installing them with apt-get when they are missing.
# shellcheck shell=bash

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

# A Redis Cluster of three masters on 127.0.0.1:7001-7003 (no replicas, no persistence; its
# nodes files under /tmp/csm-redis-cluster), for the tests that run on a cluster. Made again
# from scratch when its nodes answer but do not form a healthy cluster.
REDIS_CLUSTER_PORTS=(7001 7002 7003)
redis_cluster_ok() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
  done
}
ensure_redis_cluster() {
  redis_cluster_ok && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  step "starting a Redis Cluster of three masters on 127.0.0.1:${REDIS_CLUSTER_PORTS[*]}"
  local dir=/tmp/csm-redis-cluster port nodes=()
  mkdir -p "$dir"
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if ! redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      rm -f "$dir/nodes-$port.conf"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
        --cluster-config-file "nodes-$port.conf" --dir "$dir" --save "" --appendonly no \
        --logfile "$dir/redis-$port.log" >/dev/null
    fi
    wait_for "Redis on 127.0.0.1:$port" redis-cli -p "$port" ping
    nodes+=("127.0.0.1:$port")
  done
  # Fresh nodes (or ones left half-formed): forget everything and form the cluster.
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$port" flushall >/dev/null 2>&1 || true
    redis-cli -p "$port" cluster reset hard >/dev/null
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null \
    || fail "redis-cli --cluster create ${nodes[*]} failed"
  wait_for "the Redis Cluster on ${nodes[*]}" redis_cluster_ok
}

# Both services and their command-line clients.
ensure_services() {
  command -v mysql >/dev/null || apt_install mariadb-client
  command -v redis-cli >/dev/null || apt_install redis-tools
  ensure_mariadb
  ensure_redis
}

# The Python `ocpp` package (an OCPP implementation csm shares no code with) in a virtual
# environment under target/; prints the environment's python.
ensure_ocpp_venv() {
  local venv=target/venv-ocpp
  if ! "$venv/bin/python" -c 'import ocpp, websockets' 2>/dev/null; then
    step "installing the Python ocpp package in $venv" >&2
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv >&2; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ocpp>=2,<3" "websockets>=12" >&2
  fi
  echo "$PWD/$venv/bin/python"
}
