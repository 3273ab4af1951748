# shellcheck shell=bash
# PostgreSQL for the PostgreSQL-backed tests: install (Debian packages), start the local cluster,
# create the `keelson` role and the `keelson_test` database, drop the per-test schemas earlier
# runs left there, and export KEELSON_TEST_DATABASE_URL. Every step is idempotent; on a machine
# where all of it is done already it costs a few psql calls. Source scripts/lib/common.sh first.
#
# The cluster is a machine service (Debian's `pg_ctlcluster`), so it is left running afterwards:
# the next run, and anyone running `cargo nextest` by hand, finds it up.

KEELSON_PG_ROLE="keelson"
KEELSON_PG_DATABASE="keelson_test"
# A loopback-only test database; the password only has to satisfy scram over TCP.
KEELSON_PG_PASSWORD="${KEELSON_TEST_DB_PASSWORD:-keelson-test}"

# Run psql as the `postgres` superuser over the cluster's Unix socket (peer authentication).
# Runs from / so psql does not warn that it cannot read the caller's working directory.
keelson_pg_superuser_psql() {
    local port="$1"
    shift
    local -a psql=(psql -X -q -v ON_ERROR_STOP=1 -p "$port" "$@")
    if [[ "$(id -un)" == postgres ]]; then
        (cd / && "${psql[@]}")
    elif [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u postgres -- "${psql[@]}")
    else
        (cd / && sudo -n -u postgres -- "${psql[@]}")
    fi
}

keelson_pg_install() {
    if command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
        return 0
    fi
    keelson_log "PostgreSQL is not installed; installing it from Debian packages"
    keelson_apt_install postgresql
}

# Prints "VERSION NAME PORT STATUS" of the cluster to use, creating one if the machine has none.
keelson_pg_pick_cluster() {
    local line
    # Newest version first; prefer a cluster named `main` within it.
    line="$(pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2, $3, $4}' |
        sort -k1,1Vr -k2,2 | awk '$2 == "main" {print; found=1; exit} NR == 1 {first=$0} END {if (!found && first != "") print first}')"
    if [[ -z "$line" ]]; then
        local version
        version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -Vr | head -n 1)"
        [[ -n "$version" ]] || keelson_die "no PostgreSQL server found under /usr/lib/postgresql"
        keelson_log "no PostgreSQL cluster exists; creating ${version}/main"
        keelson_as_root pg_createcluster "$version" main >&2
        line="$(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" {print $1, $2, $3, $4}')"
        [[ -n "$line" ]] || keelson_die "pg_createcluster ${version} main did not create a cluster"
    fi
    printf '%s\n' "$line"
}

keelson_pg_start() {
    local version="$1" name="$2" port="$3" status="$4"
    if [[ "$status" != online* ]]; then
        keelson_log "starting PostgreSQL cluster ${version}/${name} on port ${port}"
        keelson_as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
    fi
    local deadline=$((SECONDS + 30))
    until pg_isready -q -h 127.0.0.1 -p "$port"; do
        if ((SECONDS >= deadline)); then
            keelson_die "PostgreSQL ${version}/${name} did not accept connections on 127.0.0.1:${port} within 30 s (see /var/log/postgresql/postgresql-${version}-${name}.log)"
        fi
        sleep 0.2
    done
}

# Create (or refresh) the role and the database. \gexec runs the generated statement only when
# the SELECT returns a row, which makes CREATE conditional without a DO block (CREATE DATABASE
# cannot run inside one). CREATEDB lets tests make throw-away databases of their own.
keelson_pg_provision() {
    local port="$1"
    keelson_pg_superuser_psql "$port" -d postgres \
        -v role="$KEELSON_PG_ROLE" -v db="$KEELSON_PG_DATABASE" -v pw="$KEELSON_PG_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

# Drop the per-test schemas earlier runs left in the test database (keelson-store's `t_<uuid>`,
# keelson-cli's `cli_<pid>`, the workspace schemas `keelson_ws_<name>` tests made), so they do
# not pile up. Skipped while anyone else is connected to the database: another run's tests may be
# using their schemas right now.
keelson_pg_drop_test_schemas() {
    local port="$1"
    keelson_pg_superuser_psql "$port" -d "$KEELSON_PG_DATABASE" <<'SQL'
SET client_min_messages = warning;
SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', nspname)
  FROM pg_namespace
 WHERE (nspname LIKE 't\_%' OR nspname LIKE 'cli\_%' OR nspname LIKE 'keelson\_ws\_%')
   AND NOT EXISTS (SELECT FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid())
 ORDER BY nspname \gexec
SQL
}

# Entry point. Leaves a KEELSON_TEST_DATABASE_URL that the caller set untouched (and then does
# nothing else: that database is the caller's to provide).
keelson_postgres_setup() {
    if [[ -n "${KEELSON_TEST_DATABASE_URL:-}" ]]; then
        keelson_log "using KEELSON_TEST_DATABASE_URL from the environment"
        return 0
    fi
    [[ "$KEELSON_PG_PASSWORD" =~ ^[A-Za-z0-9._~-]+$ ]] ||
        keelson_die "KEELSON_TEST_DB_PASSWORD may hold only letters, digits and . _ ~ - (it goes into a URL unescaped)"

    keelson_pg_install

    local version name port status
    read -r version name port status <<<"$(keelson_pg_pick_cluster)"
    keelson_pg_start "$version" "$name" "$port" "$status"
    keelson_pg_provision "$port"
    keelson_pg_drop_test_schemas "$port"

    local url="postgres://${KEELSON_PG_ROLE}:${KEELSON_PG_PASSWORD}@127.0.0.1:${port}/${KEELSON_PG_DATABASE}"
    # Prove the URL works the way the tests will use it: TCP, password (scram).
    if ! (cd / && psql -X -q -tA -c 'SELECT 1' "$url" >/dev/null); then
        keelson_die "cannot log in to ${url%%:*}://${KEELSON_PG_ROLE}:***@127.0.0.1:${port}/${KEELSON_PG_DATABASE} over TCP; check pg_hba.conf of cluster ${version}/${name}"
    fi
    export KEELSON_TEST_DATABASE_URL="$url"
    keelson_log "PostgreSQL ${version}/${name} ready: postgres://${KEELSON_PG_ROLE}:***@127.0.0.1:${port}/${KEELSON_PG_DATABASE}"
}
