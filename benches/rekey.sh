#!/usr/bin/env bash
# carnet benchmark (issue 11, "Re-encryption"): `carnet rekey` of a vault holding one large
# document and many small ones, against the Go `age` CLI re-encrypting the same objects
# (`age -d -i KEY OBJ | age -r NEW > out`). Target: within 2x. A benchmark, not a test: it
# prints figures and met/MISSED, and exits 0 unless something fails to run.
# See benches/README.md.
#
# Environment:
#   BENCH_SIZE_MB     size of the large random document, MiB             (default 1024)
#   BENCH_SMALL       small documents (4 KiB each) beside it              (default 300)
#   BENCH_RUNS        runs per row, interleaved; the median is reported   (default 5)
#   CARGO_TARGET_DIR  where the release build is                          (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZE_MB=${BENCH_SIZE_MB:-1024}
SMALL=${BENCH_SMALL:-300}
RUNS=${BENCH_RUNS:-5}
# shellcheck source=common/lib.sh
. "$ROOT/benches/common/lib.sh"
need "apt-get install age" age age-keygen
build_carnet
scratch rekey
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
V=$WORK/vault
KEY=$WORK/key.txt
age-keygen -o "$KEY" 2>/dev/null
# The baseline's recipient: a fresh key, as rekey's new vault identity is.
age-keygen -o "$WORK/baseline.key" 2>/dev/null
NEWR=$(age-keygen -y "$WORK/baseline.key")

log "a vault with one ${SIZE_MB} MiB random document and $SMALL small ones (4 KiB)"
"$CARNET" --vault "$V" -i "$KEY" init --name Bench >/dev/null 2>&1
mkdir "$WORK/small"
for i in $(seq 1 "$SMALL"); do head -c 4096 /dev/urandom >"$WORK/small/doc$i.bin"; done
"$CARNET" --vault "$V" -i "$KEY" add "$WORK/small" >/dev/null 2>&1
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/big.bin"
"$CARNET" --vault "$V" -i "$KEY" add "$WORK/big.bin" >/dev/null 2>&1
rm -f "$WORK/big.bin" "$WORK"/small/*
BIG_OBJ=$(find "$V/objects" -name '*.age' -size +1M -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
[ -n "$BIG_OBJ" ] || die "no large object in the vault"
# Every object (documents, shards, profile, slots) and every log segment: what rekey rewrites,
# bar the few small metadata files.
ALL_LIST=$WORK/all.list
list_all() { find "$V/objects" "$V/log" -type f -name '*.age' | sort >"$ALL_LIST"; }
list_all
N_ALL=$(wc -l <"$ALL_LIST")
VAULT_MIB=$(du -sm "$V" | cut -f1)

# One run under GNU time -v; appends "wall_s rss_kib user_s sys_s" to a result file.
measure() {
    local res=$1 tf=$WORK/time.out
    shift
    "$TIME" -v -o "$tf" "$@" >/dev/null 2>"$WORK/err.out" || {
        cat "$WORK/err.out" >&2
        die "command failed: $*"
    }
    awk -F': ' '
        /Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
        /Maximum resident set size/ { m = $2 }
        /User time/ { u = $2 }
        /System time/ { s = $2 }
        END { printf "%.2f %s %s %s\n", w, m, u, s }' "$tf" >>"$res"
}

# Before each run: the previous run's output gone and its dirty pages written out (not on the
# next run's clock), then the vault read once so that every row starts from a warm page cache.
prepare() {
    rm -rf "$WORK/out" "$WORK/new.key"
    sync
    find "$V" -type f -exec cat {} + >/dev/null
}

run_carnet() {
    prepare
    measure "$WORK/res.carnet" "$CARNET" --vault "$V" -i "$KEY" rekey -o "$WORK/new.key"
    # The new identity is the vault's key from now on (object ids do not change).
    mv "$WORK/new.key" "$KEY"
    list_all
}
run_age_big() {
    prepare
    # shellcheck disable=SC2016 # $1..$4 are expanded by the inner sh
    measure "$WORK/res.age" sh -c 'age -d -i "$1" "$2" | age -r "$3" -o "$4" && sync "$4"' \
        sh "$KEY" "$BIG_OBJ" "$NEWR" "$WORK/out"
}
run_age_all() {
    prepare
    mkdir "$WORK/out"
    # shellcheck disable=SC2016
    measure "$WORK/res.ageall" sh -c 'i=0; while read -r f; do i=$((i + 1))
            age -d -i "$1" "$f" | age -r "$2" -o "$3/$i.age" || exit 1
        done <"$4"; sync -f "$3"' sh "$KEY" "$NEWR" "$WORK/out" "$ALL_LIST"
}

for r in carnet age ageall; do : >"$WORK/res.$r"; done
for ((i = 1; i <= RUNS; i++)); do
    log "round $i/$RUNS: carnet rekey"
    run_carnet
    log "round $i/$RUNS: age -d | age -r (the large object)"
    run_age_big
    log "round $i/$RUNS: age -d | age -r (each of the $N_ALL objects and log segments)"
    run_age_all
done
"$CARNET" --vault "$V" -i "$KEY" verify >/dev/null 2>&1 || die "the vault does not verify after the rekeys"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c }
    END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "(%.2f-%.2f)", lo, hi }'; }

C_W=$(median "$WORK/res.carnet" 1)
A_W=$(median "$WORK/res.age" 1)
AA_W=$(median "$WORK/res.ageall" 1)
row() { # label result-file
    awk -v l="$1" -v w="$(median "$2" 1)" -v rg="$(range "$2")" -v m="$(median "$2" 2)" \
        -v u="$(median "$2" 3)" -v s="$(median "$2" 4)" -v a="$A_W" -v mb="$SIZE_MB" 'BEGIN {
        printf "%-40s %7.2f %13s %7.0f %8.1f %7.2f %7.2f %7.2fx\n", l, w, rg, mb / w, m / 1024, u, s, w / a }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
R_BIG=$(ratio "$C_W" "$A_W")
R_ALL=$(ratio "$C_W" "$AA_W")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "met" : "MISSED" }'; }

echo
echo "## Re-encrypting a vault of $VAULT_MIB MiB: one ${SIZE_MB} MiB document, $SMALL small ones; $N_ALL objects and log segments (median of $RUNS, interleaved)"
printf '%-40s %7s %13s %7s %8s %7s %7s %8s\n' row "wall s" "(min-max)" "MiB/s" "RSS MiB" "user s" "sys s" "vs age"
row "carnet rekey -o NEW (whole vault)" "$WORK/res.carnet"
row "age -d | age -r, large object, + sync" "$WORK/res.age"
row "age -d | age -r, each of $N_ALL files, + sync" "$WORK/res.ageall"
cat <<EOF

summary (paste into the closing note):
  carnet $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }'); load average: start $LOAD_START, end $LOAD_END; $RUNS runs per row; Go age $(age --version | head -1)
  rekey / age of the large object:  ${R_BIG}x (target <= 2x): $(verdict "$R_BIG" 2)
  rekey / age of every object:      ${R_ALL}x
  rekey peak RSS: $(awk -v k="$(median "$WORK/res.carnet" 2)" 'BEGIN { printf "%.1f", k / 1024 }') MiB
EOF
