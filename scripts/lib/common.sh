# shellcheck shell=bash
# Helpers shared by scripts/test, tests/clients/run and .ci/run. Source it; it defines functions
# and KEELSON_ROOT only, and changes no shell options of the caller.

KEELSON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export KEELSON_ROOT

keelson_log() {
    printf '[keelson] %s\n' "$*" >&2
}

keelson_die() {
    printf '[keelson] error: %s\n' "$*" >&2
    exit 1
}

keelson_section() {
    printf '\n==================== %s ====================\n' "$*"
}

# Run a command as root: directly when we are root, through sudo otherwise.
keelson_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        keelson_die "need root (or password-less sudo) to run: $*"
    fi
}

# Install Debian packages, refreshing the package lists first. No prompts: CI has no stdin.
keelson_apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        keelson_die "apt-get not found; install these packages by hand: $*"
    keelson_log "installing Debian packages: $*"
    keelson_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    keelson_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# The cargo target directory lives outside the clone so fresh clones (CI) reuse earlier builds.
keelson_default_target_dir() {
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keelson-target}"
}
