# shellcheck shell=bash
# An S3-compatible server for the S3 artifact-store tests: moto's `moto_server` from the client
# venv (tests/clients/requirements.txt pins it), on loopback and a free port, exported as
# KEELSON_TEST_S3_ENDPOINT. Unlike PostgreSQL it is not a machine service: it lives only as long
# as the calling script, which must call keelson_s3_stop when it exits (an EXIT trap).
# Source scripts/lib/common.sh and scripts/lib/venv.sh first, and run keelson_venv_setup.

KEELSON_S3_PID=""
KEELSON_S3_DIR=""

# Seconds to wait for moto_server to answer HTTP after it was started.
KEELSON_S3_START_TIMEOUT=20

# Stops the server this shell started, if any; safe to call more than once.
keelson_s3_stop() {
    if [[ -n "$KEELSON_S3_PID" ]]; then
        kill "$KEELSON_S3_PID" 2>/dev/null || true
        wait "$KEELSON_S3_PID" 2>/dev/null || true
        KEELSON_S3_PID=""
    fi
    if [[ -n "$KEELSON_S3_DIR" ]]; then
        rm -rf "$KEELSON_S3_DIR"
        KEELSON_S3_DIR=""
    fi
}

keelson_s3_fail() {
    local log="$KEELSON_S3_DIR/moto_server.log"
    if [[ -s "$log" ]]; then
        printf '[keelson] last lines of %s:\n' "$log" >&2
        tail -n 20 "$log" >&2
    fi
    keelson_s3_stop
    keelson_die "$@"
}

# Entry point. Leaves a KEELSON_TEST_S3_ENDPOINT that the caller set untouched (that server is the
# caller's to provide).
keelson_s3_setup() {
    if [[ -n "${KEELSON_TEST_S3_ENDPOINT:-}" ]]; then
        keelson_log "using KEELSON_TEST_S3_ENDPOINT from the environment"
        return 0
    fi
    [[ -n "${KEELSON_VENV:-}" ]] || keelson_die "keelson_s3_setup needs KEELSON_VENV (run keelson_venv_setup first)"
    local server="$KEELSON_VENV/bin/moto_server"
    [[ -x "$server" ]] || keelson_die "$server not found; is moto[server] in tests/clients/requirements.txt?"

    KEELSON_S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/keelson-s3.XXXXXX")"
    local log="$KEELSON_S3_DIR/moto_server.log"
    # Port 0: the kernel picks a free port and werkzeug logs the address it bound, so no other
    # process can take the port between choosing and binding it.
    "$server" -H 127.0.0.1 -p 0 </dev/null >"$log" 2>&1 &
    KEELSON_S3_PID=$!

    local deadline=$((SECONDS + KEELSON_S3_START_TIMEOUT)) port=""
    until [[ -n "$port" ]]; do
        kill -0 "$KEELSON_S3_PID" 2>/dev/null || keelson_s3_fail "moto_server exited during start-up"
        ((SECONDS < deadline)) ||
            keelson_s3_fail "moto_server did not report its address within ${KEELSON_S3_START_TIMEOUT} s"
        sleep 0.2
        port="$(sed -nE 's#.*Running on http://127\.0\.0\.1:([0-9]+).*#\1#p' "$log" | head -n 1)"
    done

    local endpoint="http://127.0.0.1:${port}"
    # Any HTTP answer, an error status included, shows the server is serving requests.
    local probe='import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass'
    until "$KEELSON_VENV/bin/python" -c "$probe" "$endpoint" >/dev/null 2>&1; do
        kill -0 "$KEELSON_S3_PID" 2>/dev/null || keelson_s3_fail "moto_server exited during start-up"
        ((SECONDS < deadline)) ||
            keelson_s3_fail "moto_server did not answer on ${endpoint} within ${KEELSON_S3_START_TIMEOUT} s"
        sleep 0.2
    done
    export KEELSON_TEST_S3_ENDPOINT="$endpoint"
    keelson_log "moto_server ready: ${endpoint} (pid ${KEELSON_S3_PID}, log ${log})"
}
