#!/usr/bin/env bash
# carnet at scale: vaults of N small documents (1-4 KiB each, made from a fixed seed), and what
# each everyday command costs on them: seconds, peak memory, bytes written. A benchmark, not a
# test: it prints one table and exits 0 unless something fails to run.
# The vault is opened with an external age identity (`init -i`), so that scrypt, a fixed cost
# per command, does not hide how the commands scale with N.
# See benches/README.md.
#
# Usage: benches/scale.sh [--quick]      N = 1,000 and 100,000; with --quick 1,000 and 10,000
# Environment:
#   SCALE_SIZES="1000 5000"   other sizes (overrides --quick)
#   SCALE_NO_BUILD=1          use target/release/carnet as it is (no `cargo build --release`)
#   SCALE_KEEP=1              keep the scratch folder (its path is printed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SIZES="1000 100000"
for a in "$@"; do
    case $a in
        --quick) SIZES="1000 10000" ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'scale: unknown argument %s (only --quick)\n' "$a" >&2; exit 2 ;;
    esac
done
SIZES=${SCALE_SIZES:-$SIZES}
TIME=/usr/bin/time

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'scale: %s\n' "$*" >&2; exit 1; }

[ -x "$TIME" ] || die "GNU time is needed at $TIME (apt-get install time)"
command -v age-keygen >/dev/null || die "age-keygen is needed for the external identity (apt-get install age)"
command -v python3 >/dev/null || die "python3 is needed to make the documents"
HAVE_RESTIC=0
command -v restic >/dev/null && HAVE_RESTIC=1

if [ "${SCALE_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release --quiet
fi
CARNET=$ROOT/target/release/carnet
[ -x "$CARNET" ] || die "no $CARNET (build it with cargo build --release)"

# Under target/, on the disk the vault would live on (a tmpfs /tmp would count no writes).
WORK=$(mktemp -d "$ROOT/target/scale.XXXXXX")
cleanup() { if [ "${SCALE_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Never the caller's vault, key or passphrase.
unset CARNET_VAULT CARNET_IDENTITY CARNET_PASSPHRASE
KEY=$WORK/key.txt
age-keygen -o "$KEY" 2>/dev/null

ROWS=$WORK/rows.tsv
: >"$ROWS"

# measure NAME N CMD...: runs CMD once, stdout to /dev/null, and appends a row. Bytes written
# are the storage writes (write_bytes of /proc/PID/io) of a shell that waits for CMD, since a
# reaped child's I/O is added to its parent's; max RSS is GNU time's (the largest process).
measure() {
    local name=$1 n=$2
    shift 2
    local tf=$WORK/time.txt io=$WORK/io.txt
    if ! "$TIME" -v -o "$tf" bash -c '"$@" >/dev/null; rc=$?; grep "^write_bytes" /proc/$$/io >"$IO_OUT"; exit $rc' \
        _ "$@" 2>"$WORK/stderr.txt"; then
        cat "$WORK/stderr.txt" >&2
        die "$name failed (N=$n)"
    fi
    local secs rss wbytes
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$tf")
    wbytes=$(awk '{print $2}' "$io")
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$secs" "$rss" "$wbytes" >>"$ROWS"
}
export IO_OUT=$WORK/io.txt

# make_docs DIR N: N text files of 1-4 KiB, the same bytes on every run (seed 42).
make_docs() {
    python3 - "$1" "$2" <<'EOF'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [b"patient", b"ordonnance", b"analyse", b"glycemie", b"tension", b"radio", b"thorax",
         b"cardiologie", b"compte-rendu", b"posologie", b"mg", b"matin", b"soir", b"2026"]
for i in range(n):
    # 1,000 files per folder, as a scanner or a phone export lays them out.
    d = os.path.join(out, f"{i // 1000:03d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randint(1024, 4096)
    body = bytearray()
    while len(body) < size:
        body += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    with open(os.path.join(d, f"doc{i:06d}.txt"), "wb") as f:
        f.write(bytes(body[:size]))
EOF
}

for N in $SIZES; do
    log "N=$N: making $N documents"
    D=$WORK/n$N
    mkdir -p "$D"
    make_docs "$D/docs" "$N"
    V=$D/vault
    c() { "$CARNET" --vault "$V" -i "$KEY" "$@"; }
    c init --name "Bench Patient" >/dev/null 2>&1

    log "N=$N: folder import"
    measure "add (folder of N files)" "$N" "$CARNET" --vault "$V" -i "$KEY" add "$D/docs"

    printf 'Compte rendu de consultation\n' >"$D/one.txt"
    # The first add after the import reads the import's log entry (it lists every document);
    # the next ones start a fresh log segment.
    measure "add (one small file)" "$N" "$CARNET" --vault "$V" -i "$KEY" add "$D/one.txt"
    printf 'Ordonnance du jour\n' >"$D/two.txt"
    measure "add (one more small file)" "$N" "$CARNET" --vault "$V" -i "$KEY" add "$D/two.txt"
    ID=$(c ls --json | python3 -c 'import json, sys; print([d["id"] for d in json.load(sys.stdin) if d["title"] == "one"][0])')

    measure "cat (one document)" "$N" "$CARNET" --vault "$V" -i "$KEY" cat "$ID"
    measure "show (one document)" "$N" "$CARNET" --vault "$V" -i "$KEY" show "$ID"
    measure "ls" "$N" "$CARNET" --vault "$V" -i "$KEY" ls
    measure "log -n 20 (last 20 entries)" "$N" "$CARNET" --vault "$V" -i "$KEY" log -n 20

    if [ ! -f "$WORK/pro.txt" ]; then
        "$CARNET" keygen --name "Dr Jeanne Martin" --rpps 10000000007 -o "$WORK/pro.txt" \
            --card "$WORK/pro.card.toml" --unprotected >/dev/null 2>&1
    fi
    c pro add --card "$WORK/pro.card.toml" --handle martin >/dev/null 2>&1
    measure "grant --doc (one document)" "$N" "$CARNET" --vault "$V" -i "$KEY" \
        grant --doc "$ID" --to martin --expires 7d -o "$D/bundle.age"

    measure "backup --to DIR (first)" "$N" "$CARNET" --vault "$V" -i "$KEY" backup --to "$D/mirror"

    if [ "$HAVE_RESTIC" = 1 ]; then
        export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/restic-cache
        restic init --repo "$D/restic" >/dev/null 2>&1
        measure "restic backup (same folder)" "$N" restic --repo "$D/restic" backup --quiet "$D/docs"
        unset RESTIC_PASSWORD RESTIC_CACHE_DIR
    fi
    # The next size starts from a clean disk budget.
    rm -rf "$D"
done

printf '\ncarnet %s on %s CPUs, load at the end %s\n' \
    "$("$CARNET" --version | awk '{print $2}')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$HAVE_RESTIC" = 1 ] || printf '(restic not installed: no comparison row)\n'
printf '\n| %-28s | %7s | %8s | %11s | %13s |\n' command N seconds "max RSS MiB" "written MiB"
printf '|%s|%s|%s|%s|%s|\n' ------------------------------ --------- ---------- ------------- ---------------
awk -F'\t' '{printf "| %-28s | %7s | %8s | %11s | %13.2f |\n", $1, $2, $3, $4, $5 / 1048576}' "$ROWS"
