#!/usr/bin/env bash
# carnet benchmark: `carnet add` of a large file against the Go `age` CLI and rage, and
# `carnet ls` on a vault of many small documents. A benchmark, not a test: it prints figures
# and a pass/miss against the targets, and exits 0 unless something fails to run.
# See benches/README.md for what each figure means.
#
# Environment:
#   BENCH_SIZE_MB   size of the random file, MiB              (default 1024)
#   BENCH_DOCS      documents in the `ls` vault               (default 10000)
#   BENCH_RUNS      runs per encryption tool (median kept)    (default 3)
#   BENCH_LS_RUNS   runs per `ls` measurement (median kept)   (default 5)
#   BENCH_TOOLS     where `cargo install rage` puts rage      (default target/bench-tools)
#   BENCH_NO_INSTALL=1  never install anything (missing age/rage rows are skipped)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SIZE_MB=${BENCH_SIZE_MB:-1024}
DOCS=${BENCH_DOCS:-10000}
RUNS=${BENCH_RUNS:-3}
LS_RUNS=${BENCH_LS_RUNS:-5}
TOOLS=${BENCH_TOOLS:-$ROOT/target/bench-tools}
NO_INSTALL=${BENCH_NO_INSTALL:-0}
TIME=/usr/bin/time

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}
apt_install() {
    [ "$NO_INSTALL" = 1 ] && return 1
    command -v apt-get >/dev/null || return 1
    log "apt-get install -y $*"
    as_root apt-get install -y "$@" >/dev/null 2>&1 && return 0
    as_root apt-get update >/dev/null 2>&1 || true
    as_root apt-get install -y "$@" >/dev/null 2>&1
}

[ -x "$TIME" ] || apt_install time || die "GNU time is needed at $TIME (apt-get install time)"
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
    apt_install age || true
fi
command -v age-keygen >/dev/null || die "age-keygen is needed to make the benchmark's identity (apt-get install age)"
HAVE_AGE=0
command -v age >/dev/null && HAVE_AGE=1

RAGE=""
if command -v rage >/dev/null; then
    RAGE=$(command -v rage)
elif [ -x "$TOOLS/bin/rage" ]; then
    RAGE=$TOOLS/bin/rage
elif [ "$NO_INSTALL" != 1 ]; then
    log "cargo install rage --locked --root $TOOLS (once; cached there)"
    if cargo install rage --locked --root "$TOOLS" >"$ROOT/target/bench-rage-install.log" 2>&1; then
        RAGE=$TOOLS/bin/rage
    else
        log "cargo install rage failed (see target/bench-rage-install.log); continuing without rage"
    fi
fi

log "cargo build --release"
cargo build --release --quiet
CARNET=$ROOT/target/release/carnet
[ -x "$CARNET" ] || die "no $CARNET after the build"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- scratch space
# Under target/ so it is on the same file system as the outputs (not a tmpfs /tmp).
mkdir -p "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

KEY=$WORK/key.txt
age-keygen -o "$KEY" 2>/dev/null
RECIPIENT=$(age-keygen -y "$KEY")

# ---------------------------------------------------------------- helpers
# measure RESULT_FILE CMD... : runs CMD under GNU time; appends "wall_s rss_kib user_s sys_s".
# Wall time comes from a nanosecond clock (GNU time's %e has 10 ms resolution).
measure() {
    local res=$1 tf=$WORK/time.out t0 t1
    shift
    t0=$(date +%s%N)
    if ! "$TIME" -f '%M %U %S' -o "$tf" "$@"; then
        die "command failed: $*"
    fi
    t1=$(date +%s%N)
    awk -v t0="$t0" -v t1="$t1" '{ printf "%.4f %s %s %s\n", (t1 - t0) / 1e9, $1, $2, $3 }' "$tf" >>"$res"
}

# median FILE COLUMN : the median of a column (mean of the two middle values for an even count).
median() {
    sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
        END { if (NR == 0) { print "nan"; exit }
              if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fresh_vault() {
    rm -rf "$1"
    "$CARNET" --vault "$1" init -i "$KEY" >/dev/null 2>&1 || die "carnet init failed for $1"
}

# ---------------------------------------------------------------- 1. add vs age vs rage
BIG=$WORK/big.bin
log "creating a ${SIZE_MB} MiB random file"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$BIG"
sync
BYTES=$(stat -c %s "$BIG")

TOOL_LIST=(carnet)
[ "$HAVE_AGE" = 1 ] && TOOL_LIST+=(age age+fsync)
[ -n "$RAGE" ] && TOOL_LIST+=(rage)

run_tool() {
    local tool=$1 res=$WORK/res.$1 out=$WORK/out.age vault=$WORK/vault-add
    rm -f "$out"
    if [ "$tool" = carnet ]; then fresh_vault "$vault"; fi
    sync # flush the previous run's and the setup's dirty pages outside the timed region
    cat "$BIG" >/dev/null
    # shellcheck disable=SC2016 # age+fsync: $1..$3 are expanded by the inner sh
    case $tool in
        carnet) measure "$res" "$CARNET" --vault "$vault" -i "$KEY" add "$BIG" >/dev/null ;;
        age) measure "$res" age -r "$RECIPIENT" -o "$out" "$BIG" ;;
        age+fsync) measure "$res" sh -c 'age -r "$1" -o "$2" "$3" && sync "$2"' sh "$RECIPIENT" "$out" "$BIG" ;;
        rage) measure "$res" "$RAGE" -r "$RECIPIENT" -o "$out" "$BIG" ;;
    esac
    rm -rf "$out" "$vault"
}

for t in "${TOOL_LIST[@]}"; do : >"$WORK/res.$t"; done
# Interleaved rounds, so that noise from other work on the machine spreads over every tool.
for ((r = 1; r <= RUNS; r++)); do
    for t in "${TOOL_LIST[@]}"; do
        log "round $r/$RUNS: $t"
        run_tool "$t"
    done
done

AGE_WALL=""
AGE_WALL_2=n/a
if [ "$HAVE_AGE" = 1 ]; then
    AGE_WALL=$(median "$WORK/res.age" 1)
    AGE_WALL_2=$(awk -v w="$AGE_WALL" 'BEGIN { printf "%.2f", w }')
fi

ENC_TABLE=$WORK/enc.table
{
    printf '%-10s %10s %13s %9s %10s %9s %9s %9s\n' tool "wall s" "(min-max)" "MiB/s" "RSS MiB" "user s" "sys s" "vs age"
    for t in carnet age age+fsync rage; do
        if [ ! -s "$WORK/res.$t" ] 2>/dev/null; then
            case $t in
                age) [ "$HAVE_AGE" = 1 ] || printf '%-10s not available\n' age ;;
                rage) [ -n "$RAGE" ] || printf '%-10s not available\n' rage ;;
            esac
            continue
        fi
        w=$(median "$WORK/res.$t" 1)
        range=$(sort -g "$WORK/res.$t" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "(%.2f-%.2f)", lo, hi }')
        m=$(median "$WORK/res.$t" 2)
        u=$(median "$WORK/res.$t" 3)
        s=$(median "$WORK/res.$t" 4)
        awk -v t="$t" -v w="$w" -v rg="$range" -v m="$m" -v u="$u" -v s="$s" -v b="$BYTES" -v a="$AGE_WALL" 'BEGIN {
            ratio = (a == "" ? "-" : sprintf("%.2fx", w / a))
            printf "%-10s %10.2f %13s %9.0f %10.1f %9.2f %9.2f %9s\n", t, w, rg, b / 1048576 / w, m / 1024, u, s, ratio }'
    done
} >"$ENC_TABLE"

# ---------------------------------------------------------------- 2. ls on many documents
LSV=$WORK/vault-ls
DOCDIR=$WORK/docs
log "creating $DOCS small distinct files"
mkdir -p "$DOCDIR"
awk -v d="$DOCDIR" -v n="$DOCS" 'BEGIN {
    for (i = 0; i < n; i++) {
        f = sprintf("%s/compte-rendu-%06d.txt", d, i)
        printf "Compte rendu de consultation n° %d\nTension 12/8, rien à signaler.\n", i > f
        close(f)
    } }'
fresh_vault "$LSV"
sync
log "carnet add of a folder of $DOCS files (one call)"
: >"$WORK/res.adddir"
measure "$WORK/res.adddir" "$CARNET" --vault "$LSV" -i "$KEY" add "$DOCDIR" >/dev/null
ADDDIR_WALL=$(median "$WORK/res.adddir" 1)
ADDDIR_RSS=$(median "$WORK/res.adddir" 2)

"$CARNET" --vault "$LSV" -i "$KEY" ls --json >"$WORK/ls.json"
COUNT=$(grep -c '"sha256":' "$WORK/ls.json" || true)
[ "$COUNT" -eq "$DOCS" ] || die "the vault lists $COUNT documents, expected $DOCS"
ONE_ID=$(grep -m1 -o '"short_id": *"[^"]*"' "$WORK/ls.json" | sed 's/.*"\([^"]*\)"$/\1/')
MANIFEST_KIB=$(( $(stat -c %s "$LSV/manifest.age") / 1024 ))

for m in ls lsjson show; do : >"$WORK/res.$m"; done
"$CARNET" --vault "$LSV" -i "$KEY" ls >/dev/null # warm the page cache
for ((r = 1; r <= LS_RUNS; r++)); do
    measure "$WORK/res.ls" "$CARNET" --vault "$LSV" -i "$KEY" ls >/dev/null
    measure "$WORK/res.lsjson" "$CARNET" --vault "$LSV" -i "$KEY" ls --json >/dev/null
    measure "$WORK/res.show" "$CARNET" --vault "$LSV" -i "$KEY" show "$ONE_ID" >/dev/null
done

LS_TABLE=$WORK/ls.table
{
    printf '%-32s %10s %10s\n' "command ($DOCS docs)" "median ms" "RSS MiB"
    for m in ls lsjson show; do
        case $m in
            ls) label="carnet ls" ;;
            lsjson) label="carnet ls --json" ;;
            show) label="carnet show ID (unlock+manifest)" ;;
        esac
        awk -v l="$label" -v w="$(median "$WORK/res.$m" 1)" -v k="$(median "$WORK/res.$m" 2)" \
            'BEGIN { printf "%-32s %10.1f %10.1f\n", l, w * 1000, k / 1024 }'
    done
    awk -v n="$DOCS" -v w="$ADDDIR_WALL" -v k="$ADDDIR_RSS" \
        'BEGIN { printf "%-32s %10.0f %10.1f   (%.0f files/s)\n", "carnet add DIR (once)", w * 1000, k / 1024, n / w }'
    printf 'manifest.age: %d KiB\n' "$MANIFEST_KIB"
} >"$LS_TABLE"

# ---------------------------------------------------------------- 3. report
verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; then echo met; else echo MISSED; fi; }
CARNET_WALL=$(median "$WORK/res.carnet" 1)
CARNET_WALL_2=$(awk -v w="$CARNET_WALL" 'BEGIN { printf "%.2f", w }')
CARNET_RSS_MIB=$(awk -v k="$(median "$WORK/res.carnet" 2)" 'BEGIN { printf "%.1f", k / 1024 }')
LS_MS=$(awk -v w="$(median "$WORK/res.ls" 1)" 'BEGIN { printf "%.1f", w * 1000 }')
LSJ_MS=$(awk -v w="$(median "$WORK/res.lsjson" 1)" 'BEGIN { printf "%.1f", w * 1000 }')
if [ -n "$AGE_WALL" ]; then
    RATIO=$(awk -v c="$CARNET_WALL" -v a="$AGE_WALL" 'BEGIN { printf "%.2f", c / a }')
    RATIO_V=$(verdict "$RATIO" 1.1)
else
    RATIO="n/a"
    RATIO_V="not measured (no age)"
fi

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
SHANI=no
grep -qw sha_ni /proc/cpuinfo && SHANI=yes
AGE_V=$([ "$HAVE_AGE" = 1 ] && age --version 2>/dev/null || echo "not available")
RAGE_V=$([ -n "$RAGE" ] && "$RAGE" --version 2>/dev/null | head -1 || echo "not available")
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then DIRTY="+dirty"; fi

echo
echo "## Encrypting a $SIZE_MB MiB file (median of $RUNS, interleaved runs)"
cat "$ENC_TABLE"
echo
echo "## carnet ls (median of $LS_RUNS; external identity, so no scrypt unlock)"
cat "$LS_TABLE"
echo
cat <<EOF
----- benchmark summary (paste into a closing note) -----
carnet $REV$DIRTY, release build; $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(nproc) CPUs, $CPU, sha_ni: $SHANI, kernel $(uname -r)
load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)
tools: age $AGE_V; rage: $RAGE_V
add ${SIZE_MB} MiB: carnet ${CARNET_WALL_2}s vs age ${AGE_WALL_2}s -> ${RATIO}x (target <= 1.1x: $RATIO_V)
add ${SIZE_MB} MiB: carnet peak RSS ${CARNET_RSS_MIB} MiB (target < 32 MiB: $(verdict "$CARNET_RSS_MIB" 32))
ls of $DOCS docs: ${LS_MS} ms, --json ${LSJ_MS} ms (target < 100 ms: $(verdict "$LS_MS" 100))
add of a $DOCS-file folder: $(awk -v w="$ADDDIR_WALL" 'BEGIN { printf "%.1f", w }') s
---------------------------------------------------------
EOF
