# shellcheck shell=bash
# The Python virtualenv for the client tests under tests/clients/. It lives outside the clone, in
# ${KEELSON_VENV_DIR:-$HOME/.cache/keelson-venv}/<hash of tests/clients/requirements.txt>, so a
# fresh clone (CI) reuses it and a change to the pins builds a new one beside the old.
# pip runs only when that venv is not complete yet. Source scripts/lib/common.sh first.

keelson_venv_requirements() {
    printf '%s\n' "$KEELSON_ROOT/tests/clients/requirements.txt"
}

keelson_venv_path() {
    local requirements hash
    requirements="$(keelson_venv_requirements)"
    hash="$(sha256sum "$requirements" | cut -c1-16)"
    printf '%s/%s\n' "${KEELSON_VENV_DIR:-$HOME/.cache/keelson-venv}" "$hash"
}

# Make sure the interpreter can create virtualenvs with pip in them (Debian's system Python needs
# the python3-venv package for that).
keelson_venv_ensure_python() {
    local python="$1"
    command -v "$python" >/dev/null 2>&1 || keelson_apt_install python3 python3-venv
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        keelson_apt_install python3-venv
    fi
}

# keelson_venv_build REQUIREMENTS DIR: makes DIR a virtualenv with REQUIREMENTS installed, unless
# it is one already (a marker written last tells a complete install from an interrupted one).
keelson_venv_build() {
    local requirements="$1" venv="$2" python marker lock_fd
    marker="$venv/.keelson-venv-ready"
    python="${KEELSON_PYTHON:-python3}"
    if [[ -f "$marker" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p "$(dirname "$venv")"
    # Serialise concurrent runs so two of them never pip-install into one venv at once.
    exec {lock_fd}>"$venv.lock"
    flock "$lock_fd"
    if ! { [[ -f "$marker" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1; }; then
        keelson_venv_ensure_python "$python"
        keelson_log "creating Python virtualenv $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv" || keelson_die "could not create a virtualenv with $python"
        PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$venv/bin/python" -m pip install -q -r "$requirements" ||
            keelson_die "pip could not install $requirements into $venv"
        # Written last: a venv without it (an interrupted install) is rebuilt next time.
        cp "$requirements" "$marker"
    fi
    flock -u "$lock_fd"
    exec {lock_fd}>&-
}

# Entry point: builds the venvs if needed and exports KEELSON_VENV (the client tests' venv) and
# KEELSON_KSERVE_VENV (the KServe client's, which cannot share the first one's pins) and
# KEELSON_SCHEMATHESIS_VENV (the API fuzzer's, likewise).
keelson_venv_setup() {
    local requirements kserve_requirements kserve_hash
    requirements="$(keelson_venv_requirements)"
    [[ -f "$requirements" ]] || keelson_die "missing $requirements"
    keelson_venv_build "$requirements" "$(keelson_venv_path)"
    export KEELSON_VENV
    KEELSON_VENV="$(keelson_venv_path)"

    kserve_requirements="$KEELSON_ROOT/tests/clients/kserve/requirements.txt"
    [[ -f "$kserve_requirements" ]] || keelson_die "missing $kserve_requirements"
    kserve_hash="$(sha256sum "$kserve_requirements" | cut -c1-16)"
    export KEELSON_KSERVE_VENV="${KEELSON_VENV_DIR:-$HOME/.cache/keelson-venv}/kserve-$kserve_hash"
    keelson_venv_build "$kserve_requirements" "$KEELSON_KSERVE_VENV"

    local fuzz_requirements fuzz_hash
    fuzz_requirements="$KEELSON_ROOT/tests/clients/schemathesis/requirements.txt"
    [[ -f "$fuzz_requirements" ]] || keelson_die "missing $fuzz_requirements"
    fuzz_hash="$(sha256sum "$fuzz_requirements" | cut -c1-16)"
    export KEELSON_SCHEMATHESIS_VENV="${KEELSON_VENV_DIR:-$HOME/.cache/keelson-venv}/schemathesis-$fuzz_hash"
    keelson_venv_build "$fuzz_requirements" "$KEELSON_SCHEMATHESIS_VENV"
}
