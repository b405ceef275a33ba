# Sourced by the shell benchmarks (rekey.sh, unlock.sh): messages, the tools they need, the
# release build, and a scratch folder under the target folder (on the disk, like a real vault,
# not a tmpfs /tmp). The caller sets ROOT and sets its own trap for cleanup.

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TIME=/usr/bin/time

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# need HINT TOOL...: GNU time and each TOOL on PATH, else HINT says how to get them.
need() {
    local hint=$1
    shift
    [ -x "$TIME" ] || die "GNU time is needed at $TIME (apt-get install time)"
    for t in "$@"; do
        command -v "$t" >/dev/null || die "$t is needed ($hint)"
    done
}

# build_carnet: the release binary in $CARNET, with no test hook or caller setting in force
# (the production scrypt work factor, no fixed clock, no vault or key from the environment).
build_carnet() {
    log "cargo build --release"
    cargo build --release --quiet
    CARNET=$TARGET/release/carnet
    [ -x "$CARNET" ] || die "no $CARNET after the build"
    unset CARNET_SCRYPT_LOG_N CARNET_IDENTITY CARNET_NOW CARNET_PASSPHRASE CARNET_VAULT
}

# scratch NAME: a new folder for this run in $WORK.
scratch() {
    mkdir -p "$TARGET"
    WORK=$(mktemp -d "$TARGET/bench-$1.XXXXXX")
}
