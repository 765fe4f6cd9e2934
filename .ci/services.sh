#!/usr/bin/env bash
# Make sure the servers that tests/test_stores.py uses are up:
#   PostgreSQL on 127.0.0.1:5432, database "test", user "postgres" without a password (trust);
#   Redis on 127.0.0.1:6379.
# Where one is missing it is installed from Debian's packages and started; a PostgreSQL that
# this script installed or created gets trust auth on loopback TCP. Then it waits until both
# answer (at most SERVICES_WAIT_SECONDS, default 30) and fails loudly otherwise. When both are
# already up it only checks them (well under a second).
# A service whose test URL is set (MATHBOT_TEST_POSTGRES_URL, MATHBOT_TEST_REDIS_URL) is left
# alone: whoever set the URL runs that server.
set -euo pipefail

PG_PORT="${MATHBOT_PG_PORT:-5432}" # other ports only to try this script out
REDIS_PORT="${MATHBOT_REDIS_PORT:-6379}"
SERVICES_WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-30}"
export PGCONNECT_TIMEOUT=3 DEBIAN_FRONTEND=noninteractive

log() { echo "services: $*"; }
die() {
    echo "services: ERROR: $*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -n -u postgres "$@"
    fi
}

manage_pg=1
manage_redis=1
if [ -n "${MATHBOT_TEST_POSTGRES_URL:-}" ]; then
    manage_pg=0
    log "MATHBOT_TEST_POSTGRES_URL is set: PostgreSQL is left alone"
fi
if [ -n "${MATHBOT_TEST_REDIS_URL:-}" ]; then
    manage_redis=0
    log "MATHBOT_TEST_REDIS_URL is set: Redis is left alone"
fi

pg_up() { have pg_isready && pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; }
pg_test_db_ok() {
    have psql && psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d test -w -XqAt -c 'SELECT 1' \
        >/dev/null 2>&1
}
redis_up() {
    have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# Fast path: everything answers already.
if { [ "$manage_pg" = 0 ] || { pg_up && pg_test_db_ok; }; } &&
    { [ "$manage_redis" = 0 ] || redis_up; }; then
    log "PostgreSQL and Redis are up"
    exit 0
fi

# ---------------------------------------------------------------- install what is missing
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    have sudo || die "not root and no sudo: cannot install or start services"
    SUDO=(sudo -n)
fi
pkgs=()
installed_pg=0
if [ "$manage_pg" = 1 ]; then
    pg_server_installed() {
        have pg_ctlcluster && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
    }
    if ! tcp_open "$PG_PORT" && ! pg_server_installed; then
        pkgs+=(postgresql)
        installed_pg=1
    fi
    { have pg_isready && have psql; } || pkgs+=(postgresql-client)
fi
if [ "$manage_redis" = 1 ]; then
    if ! tcp_open "$REDIS_PORT" && ! have redis-server; then
        pkgs+=(redis-server)
    fi
    have redis-cli || pkgs+=(redis-tools)
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
    log "installing ${pkgs[*]} from Debian's packages"
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "${pkgs[@]}" >/dev/null ||
        die "apt-get install ${pkgs[*]} failed"
fi

# ---------------------------------------------------------------- start them
pg_version=""
pg_cluster=""
if [ "$manage_pg" = 1 ] && ! pg_up; then
    # The cluster that owns port 5432, else a new "main" cluster of the newest version.
    if have pg_lsclusters; then
        read -r pg_version pg_cluster < <(pg_lsclusters -h 2>/dev/null |
            awk -v port="$PG_PORT" '$3 == port {print $1, $2; exit}') || true
    fi
    if [ -z "$pg_version" ]; then
        pg_version="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
        [ -n "$pg_version" ] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*)"
        pg_cluster=main
        [ ! -d "/etc/postgresql/$pg_version/main" ] || pg_cluster=mathbot-test # main: another port
        if [ ! -d "/etc/postgresql/$pg_version/$pg_cluster" ]; then
            log "creating PostgreSQL cluster $pg_version/$pg_cluster on port $PG_PORT"
            "${SUDO[@]}" pg_createcluster --port "$PG_PORT" "$pg_version" "$pg_cluster" \
                >/dev/null || die "pg_createcluster $pg_version $pg_cluster failed"
            installed_pg=1
        fi
    fi
fi
if [ "$manage_pg" = 1 ] && [ "$installed_pg" = 1 ]; then
    if [ -z "$pg_version" ]; then # the package's post-install script started it already
        read -r pg_version pg_cluster < <(pg_lsclusters -h 2>/dev/null |
            awk -v port="$PG_PORT" '$3 == port {print $1, $2; exit}') || true
    fi
    hba="/etc/postgresql/$pg_version/$pg_cluster/pg_hba.conf"
    [ -f "$hba" ] || die "no $hba: cannot configure PostgreSQL's loopback auth"
    trust_line='^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust'
    if ! "${SUDO[@]}" grep -Eq "$trust_line" "$hba"; then
        log "trusting loopback TCP connections in $hba (a test server only)"
        # First match wins: the trust lines go on top. `cat >` keeps the file's owner and mode.
        tmp="$(mktemp)"
        {
            echo "# Added by mathbot's .ci/services.sh: a test server; loopback TCP needs no password"
            echo "host all all 127.0.0.1/32 trust"
            echo "host all all ::1/128 trust"
            "${SUDO[@]}" cat "$hba"
        } >"$tmp"
        "${SUDO[@]}" sh -c 'cat "$1" > "$2"' sh "$tmp" "$hba"
        rm -f "$tmp"
        if pg_up; then
            "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" reload
        fi
    fi
fi
if [ "$manage_pg" = 1 ] && ! pg_up && [ -n "$pg_version" ]; then
    log "starting PostgreSQL $pg_version/$pg_cluster"
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" start ||
        log "pg_ctlcluster start failed (already starting?); waiting for it anyway"
fi

redis_log=/tmp/mathbot-redis.log
if [ "$manage_redis" = 1 ] && ! redis_up && ! tcp_open "$REDIS_PORT"; then
    redis_dir=/tmp
    [ -d /var/lib/redis ] && redis_dir=/var/lib/redis
    [ -d /var/log/redis ] && redis_log=/var/log/redis/ci.log
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$redis_dir" --logfile "$redis_log" ||
        die "redis-server did not start (log: $redis_log)"
fi

# ---------------------------------------------------------------- wait for them
deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
wait_for() { # NAME CHECK...
    local name="$1"
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
    log "$name is up"
}
if [ "$manage_pg" = 1 ]; then
    wait_for PostgreSQL pg_up ||
        die "PostgreSQL does not accept connections on 127.0.0.1:$PG_PORT" \
            "after ${SERVICES_WAIT_SECONDS}s (see /var/log/postgresql/)"
fi
if [ "$manage_redis" = 1 ]; then
    wait_for Redis redis_up ||
        die "Redis does not answer PING on 127.0.0.1:$REDIS_PORT" \
            "after ${SERVICES_WAIT_SECONDS}s (log: $redis_log)"
fi

# ---------------------------------------------------------------- the "test" database
if [ "$manage_pg" = 1 ] && ! pg_test_db_ok; then
    pg_sql() { # DB SQL: over loopback TCP, else as the postgres OS user over the socket
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -w -XqAt -c "$2" 2>/dev/null ||
            as_postgres psql -p "$PG_PORT" -d "$1" -XqAt -c "$2"
    }
    if [ "$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
        log "creating database test"
        pg_sql postgres "CREATE DATABASE test" >/dev/null || die "could not create database test"
    fi
    pg_test_db_ok ||
        die "PostgreSQL refuses user postgres on 127.0.0.1:$PG_PORT database test without a" \
            "password: add 'host all all 127.0.0.1/32 trust' to pg_hba.conf, or set" \
            "MATHBOT_TEST_POSTGRES_URL"
fi
log "PostgreSQL and Redis are ready"
