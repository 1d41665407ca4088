#!/usr/bin/env bash
# The set-up behind `make demo`, `make test` and `make down` on a Debian/Ubuntu machine.
#
#   scripts/dev.sh setup   install what is missing, create .venv, make PostgreSQL/PostGIS and Redis answer
#   scripts/dev.sh demo    setup, migrate, load the demo region, start worker, beat and web, print URL + login
#   scripts/dev.sh test    setup, then the whole test suite (extra arguments go to pytest)
#   scripts/dev.sh loadtest  Locust (50 users) against the demo, starting it if it does not answer
#   scripts/dev.sh down    stop what `demo` started and any private servers, by PID
#   scripts/dev.sh env     print the environment the other commands use (source it in a shell)
#
# Servers: PostgreSQL at DATABASE_URL and Redis at REDIS_URL are used when they answer (defaults
# 127.0.0.1:5432 and 127.0.0.1:6379). Otherwise private ones are started under ./var on ports 54329
# and 63790 and stopped by `down` (PRIVATE_SERVICES=1 forces that). What was chosen is remembered in
# var/services.env.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VAR="$ROOT/var"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$VAR/run" "$VAR/log"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

APT_UPDATED=0
apt_install() {
  # Installs Debian packages when we are root; otherwise says exactly what to install.
  [ $# -gt 0 ] || return 0
  if ! is_root; then
    die "missing system packages: $*; install them with: sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null || die "missing $*, and this is not a Debian/Ubuntu machine (no apt-get)"
  say "Installing $* (apt)"
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq >/dev/null || say "apt-get update failed; trying the install with the lists we have"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$VAR/log/apt.log" 2>&1 \
    || { tail -n 20 "$VAR/log/apt.log" >&2; die "apt-get install $* failed (log: var/log/apt.log)"; }
}

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  local python
  if ! python=$(find_python); then
    apt_install python3.11 python3.11-venv
    python=$(find_python) || die "Python 3.11 is required and could not be installed"
  fi
  if [ ! -x "$PY" ]; then
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then apt_install python3.11-venv; fi
    say "Creating .venv with $python"
    "$python" -m venv "$VENV"
  fi
  local want have
  want=$(sha256sum requirements.lock | cut -d' ' -f1)
  have=$(cat "$VENV/.lock.sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    say "Installing the pinned Python packages (requirements.lock)"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.lock
    echo "$want" >"$VENV/.lock.sha256"
  fi
}

# --- PostgreSQL / PostGIS -------------------------------------------------------------------------
PG_PRIVATE_PORT=54329
REDIS_PRIVATE_PORT=63790

url_part() { "$PY" - "$1" "$2" <<'EOF'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print({"host": u.hostname or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres",
       "db": (u.path or "/").lstrip("/") or "postgres"}[sys.argv[2]])
EOF
}

pg_answers() {  # pg_answers URL -> exit 0 when a server accepts us on the maintenance database
  "$PY" - "$1" <<'EOF' 2>/dev/null
import sys
from urllib.parse import urlsplit, urlunsplit
import psycopg
u = urlsplit(sys.argv[1])
with psycopg.connect(urlunsplit(u._replace(path="/postgres")), connect_timeout=3) as c:
    c.execute("select 1")
EOF
}

pg_sql() {  # pg_sql URL SQL -> prints the first column of the first row
  "$PY" - "$1" "$2" <<'EOF'
import sys
from urllib.parse import urlsplit, urlunsplit
import psycopg
u = urlsplit(sys.argv[1])
with psycopg.connect(urlunsplit(u._replace(path="/postgres")), connect_timeout=5, autocommit=True) as c:
    cur = c.execute(sys.argv[2])
    row = cur.fetchone() if cur.description else None
    print("" if row is None else row[0])
EOF
}

pg_bindir() {
  local major=$1
  for dir in "/usr/lib/postgresql/$major/bin" "/usr/pgsql-$major/bin"; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

as_postgres() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_private_postgres() {
  local major=15 bindir data
  bindir=$(pg_bindir $major) || { apt_install postgresql-$major postgresql-$major-postgis-3; bindir=$(pg_bindir $major); }
  [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || apt_install postgresql-$major-postgis-3
  data="$VAR/pg"
  if is_root && ! runuser -u postgres -- test -x "$VAR"; then
    # initdb refuses root and the postgres user cannot reach this folder: keep the cluster in /var/tmp.
    local outside="/var/tmp/notary-pg-$(echo "$ROOT" | sha256sum | cut -c1-12)"
    mkdir -p "$outside"; chown postgres: "$outside"
    [ -L "$data" ] || ln -sfn "$outside" "$data"
    data="$outside"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "Creating a private PostgreSQL $major cluster in var/pg"
    mkdir -p "$data"; is_root && chown postgres: "$data"
    as_postgres "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$VAR/log/initdb.log" 2>&1 \
      || { tail -n 20 "$VAR/log/initdb.log" >&2; die "initdb failed (log: var/log/initdb.log)"; }
  fi
  if ! as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "Starting private PostgreSQL on 127.0.0.1:$PG_PRIVATE_PORT"
    local logfile="$data/server.log"
    as_postgres "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 60 \
      -o "-p $PG_PRIVATE_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data" start >/dev/null \
      || { tail -n 20 "$logfile" >&2; die "PostgreSQL did not start (log: $logfile)"; }
  fi
}

ensure_postgres() {
  local url="${DATABASE_URL:-}" private=${PG_PRIVATE:-0}
  if [ -z "$url" ]; then
    url="postgres://postgres@127.0.0.1:5432/notary"
    if [ "${PRIVATE_SERVICES:-0}" = 1 ] || ! pg_answers "$url"; then
      url="postgres://postgres@127.0.0.1:$PG_PRIVATE_PORT/notary"
      private=1
      pg_answers "$url" || start_private_postgres
    fi
  fi
  pg_answers "$url" || die "PostgreSQL at $url does not answer (DATABASE_URL); start it or unset DATABASE_URL"
  # PostGIS must be installable in that server; on a local Debian server we add the package ourselves.
  if [ "$(pg_sql "$url" "select count(*) from pg_available_extensions where name = 'postgis'")" = 0 ]; then
    local major host
    major=$(pg_sql "$url" "select current_setting('server_version_num')::int / 10000")
    host=$(url_part "$url" host)
    case "$host" in 127.*|localhost|::1) apt_install "postgresql-$major-postgis-3" ;;
      *) die "PostGIS is not installed in the PostgreSQL server at $host; install postgis there" ;; esac
  fi
  local db
  db=$(url_part "$url" db)
  if [ "$(pg_sql "$url" "select count(*) from pg_database where datname = '$db'")" = 0 ]; then
    say "Creating database $db"
    pg_sql "$url" "create database \"$db\"" >/dev/null
  fi
  DATABASE_URL="$url"; PG_PRIVATE=$private
}

# --- Redis ----------------------------------------------------------------------------------------
redis_answers() {
  "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' "$1" 2>/dev/null
}

ensure_redis() {
  local url="${REDIS_URL:-}" private=${REDIS_PRIVATE:-0}
  if [ -z "$url" ]; then
    url="redis://127.0.0.1:6379/0"
    if [ "${PRIVATE_SERVICES:-0}" = 1 ] || ! redis_answers "$url"; then
      url="redis://127.0.0.1:$REDIS_PRIVATE_PORT/0"
      private=1
      if ! redis_answers "$url"; then
        command -v redis-server >/dev/null || apt_install redis-server
        say "Starting private Redis on 127.0.0.1:$REDIS_PRIVATE_PORT"
        mkdir -p "$VAR/redis"
        redis-server --port "$REDIS_PRIVATE_PORT" --bind 127.0.0.1 --daemonize yes \
          --pidfile "$VAR/run/redis.pid" --dir "$VAR/redis" --save "" --appendonly no \
          --logfile "$VAR/log/redis.log"
        for _ in $(seq 50); do redis_answers "$url" && break; sleep 0.1; done
      fi
    fi
  fi
  redis_answers "$url" || die "Redis at $url does not answer (REDIS_URL); start it or unset REDIS_URL"
  REDIS_URL="$url"; REDIS_PRIVATE=$private
}

compile_messages() {  # the nl and fr catalogues (locale/*/LC_MESSAGES/django.po) into .mo files
  command -v msgfmt >/dev/null || apt_install gettext
  DEBUG=1 "$PY" manage.py compilemessages --ignore ".venv" --ignore "var" -v 0
}

setup() {
  ensure_venv
  compile_messages
  # A previous run's choice stands while those servers still answer.
  if [ -z "${DATABASE_URL:-}${REDIS_URL:-}" ] && [ -f "$VAR/services.env" ]; then
    # shellcheck disable=SC1091
    . "$VAR/services.env"
    pg_answers "$DATABASE_URL" || unset DATABASE_URL PG_PRIVATE
    redis_answers "$REDIS_URL" || unset REDIS_URL REDIS_PRIVATE
  fi
  ensure_postgres
  ensure_redis
  cat >"$VAR/services.env" <<EOF
export DATABASE_URL=$DATABASE_URL
export REDIS_URL=$REDIS_URL
PG_PRIVATE=$PG_PRIVATE
REDIS_PRIVATE=$REDIS_PRIVATE
EOF
  export DATABASE_URL REDIS_URL
  export MODEL_DIR="${MODEL_DIR:-$VAR/models}" DATA_DIR="${DATA_DIR:-$VAR/data}"
  mkdir -p "$MODEL_DIR" "$DATA_DIR"
}

stop_pidfile() {  # stop_pidfile FILE NAME [SIGNAL]
  local file=$1 name=$2 sig=${3:-TERM} pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid=$(head -n1 "$file")
  say "Stopping $name (pid $pid)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop_app() {
  stop_pidfile "$VAR/run/web.pid" "web server"
  stop_pidfile "$VAR/run/beat.pid" "Celery beat"
  stop_pidfile "$VAR/run/worker.pid" "Celery worker"
}

down() {
  stop_app
  stop_pidfile "$VAR/run/redis.pid" "private Redis"
  if [ -f "$VAR/pg/postmaster.pid" ]; then
    # SIGINT is PostgreSQL's fast shutdown.
    head -n1 "$VAR/pg/postmaster.pid" >"$VAR/run/postgres.pid"
    stop_pidfile "$VAR/run/postgres.pid" "private PostgreSQL" INT
  fi
  rm -f "$VAR/services.env"
}

manage() { "$PY" manage.py "$@"; }

demo() {
  setup
  export DEBUG="${DEBUG:-1}"
  local port="${PORT:-8000}"
  say "Migrating the database"
  manage migrate --no-input -v 0
  manage collectstatic --no-input -v 0
  say "Loading the synthetic demo region"
  manage demo_region
  if manage help train_model >/dev/null 2>&1; then
    say "Training and activating a model on the demo region"
    manage train_model --if-missing
  fi
  manage sync_schedules -v 0
  manage demo_user >"$VAR/demo-login.txt"
  stop_app
  # Every web and worker process writes its Prometheus figures here; /metrics reads them all.
  export PROMETHEUS_MULTIPROC_DIR="$VAR/run/prometheus"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  say "Starting Celery worker and beat"
  "$VENV/bin/celery" -A config worker -Q default,ingest,training -c 2 -n "notary-demo@%h" --detach \
    --pidfile "$VAR/run/worker.pid" --logfile "$VAR/log/worker.log" -l INFO
  "$VENV/bin/celery" -A config beat --detach --pidfile "$VAR/run/beat.pid" --logfile "$VAR/log/beat.log" -l INFO
  if "$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$port"; then
    die "port $port is taken by another program; run PORT=8001 make demo"
  fi
  say "Starting the web server"
  "$VENV/bin/gunicorn" -c config/gunicorn.py --bind "127.0.0.1:$port" --workers 2 --daemon \
    --pid "$VAR/run/web.pid" --access-logfile "$VAR/log/web-access.log" --error-logfile "$VAR/log/web.log"
  for _ in $(seq 100); do
    "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.2
  done
  manage ping_worker --timeout 30 || say "The Celery worker did not answer yet (log: var/log/worker.log)"
  echo
  echo "The demo is running at http://127.0.0.1:$port/"
  cat "$VAR/demo-login.txt"
  echo "Stop it with: make down"
}

loadtest() {  # `make loadtest`: Locust against the running demo (started when it does not answer)
  setup
  export DEBUG="${DEBUG:-1}"
  local port="${PORT:-8000}" out="$VAR/loadtest" rc=0
  local users="${LOADTEST_USERS:-50}" rate="${LOADTEST_SPAWN_RATE:-10}" window="${LOADTEST_SECONDS:-60}"
  if ! "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    say "No demo answers on port $port: starting it"
    demo
  fi
  # shellcheck disable=SC1091
  . "$VAR/services.env"
  mkdir -p "$out"
  rm -f "$out"/loadtest_*.csv "$out/summary.txt"
  say "Preparing $users notaries (one login each), a partner API key and demo addresses"
  "$PY" -m benchmarks.loadtest_prepare "$out/fixture.json" --users "$users"
  say "Locust: $users users (spawn $rate/s), then ${window} s measured, against http://127.0.0.1:$port"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" | tee "$out/load.txt"
  # -t only bounds the run: the measured window opens when every user is logged in (benchmarks/locustfile.py).
  "$VENV/bin/locust" -f benchmarks/locustfile.py --headless --only-summary \
    -u "$users" -r "$rate" -t "$((window + 120))s" --host "http://127.0.0.1:$port" \
    --fixture "$out/fixture.json" --window "$window" --p99-ms "${LOADTEST_P99_MS:-300}" \
    --csv "$out/loadtest" --exit-code-on-error 1 >"$out/locust.log" 2>&1 || rc=$?
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"
  "$PY" -m benchmarks.loadtest_prepare --retire  # the accounts' passwords and the key stop working
  if [ -f "$out/summary.txt" ]; then cat "$out/summary.txt"; else tail -n 30 "$out/locust.log" >&2; fi
  echo "Locust's own tables and log: var/loadtest/locust.log, CSV: var/loadtest/loadtest_*.csv"
  return "$rc"
}

run_tests() {
  setup
  # The browser tests drive Debian's Chromium (Playwright, executable /usr/bin/chromium).
  [ -x /usr/bin/chromium ] || apt_install chromium
  # Tests get their own Redis database so a running demo worker never takes their tasks.
  export REDIS_URL="${REDIS_URL%/*}/15"
  export DEBUG=1
  "$PY" manage.py collectstatic --no-input -v 0
  local rc=0
  "$VENV/bin/pytest" "$@" || rc=$?
  if [ "$rc" = 5 ]; then echo "error: pytest ran no test" >&2; fi
  return "$rc"
}

bench() {  # the figures of the README; ogr2ogr (gdal-bin) is the reference of the parcel-load bench
  setup
  command -v ogr2ogr >/dev/null || apt_install gdal-bin
  # shellcheck disable=SC1091
  . "$VAR/services.env"
  DEBUG=1 "$PY" -m benchmarks "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) demo ;;
  test) run_tests "$@" ;;
  down) down ;;
  env) setup >/dev/null 2>&1; cat "$VAR/services.env" ;;
  manage) setup; DEBUG="${DEBUG:-1}" manage "$@" ;;
  bench) bench "$@" ;;
  loadtest) loadtest ;;
  *) echo "usage: $0 {setup|demo|test|down|env|bench [NAME...]|loadtest|manage ARGS}" >&2; exit 2 ;;
esac
