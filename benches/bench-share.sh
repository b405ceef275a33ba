#!/usr/bin/env bash
# carnet benchmark for sharing and backups (issues 4 and 5), on one machine in one run:
#   grant   `carnet grant` of BENCH_GRANT_MB of documents vs `zip -0 -r - DIR | age -r R > out`
#   open    `carnet open` of that bundle vs `age -d -i KEY bundle > x.zip && unzip x.zip`
#   offline `carnet verify --offline` of a BENCH_VAULT_MB vault vs `sha256sum` of its files
#   backup  `carnet backup -o` of that vault vs `zip -0 -r` of the vault folder
# Wall time is the median of BENCH_RUNS runs (tools interleaved), peak RSS from GNU time.
# A benchmark, not a test: it prints figures and met/MISSED, and exits 0 unless a tool fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GRANT_MB=${BENCH_GRANT_MB:-256}
VAULT_MB=${BENCH_VAULT_MB:-1024}
RUNS=${BENCH_RUNS:-3}
TIME=/usr/bin/time

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
for t in age age-keygen zip unzip sha256sum "$TIME"; do
    command -v "$t" >/dev/null || die "$t is needed (apt-get install -y age zip unzip time)"
done

log "cargo build --release"
cargo build --release --quiet
CARNET=$ROOT/target/release/carnet

mkdir -p "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-share.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
export CARNET_KNOWN_PATIENTS=$WORK/known.toml
unset CARNET_VAULT CARNET_IDENTITY CARNET_PASSPHRASE

# measure NAME FUNCTION: appends "seconds kib" of one run to $WORK/NAME.times (the function is
# exported and run by a child bash, so GNU time sees the whole pipeline)
measure() {
    local name=$1 fn=$2
    sync
    "$TIME" -f "%e %M" -o "$WORK/one.time" bash -c "$fn" >/dev/null 2>"$WORK/one.err" || {
        cat "$WORK/one.err" >&2; die "$name failed"; }
    cat "$WORK/one.time" >>"$WORK/$name.times"
}
# median NAME -> "seconds kib" (the run with the median wall time)
median() { sort -n "$WORK/$1.times" | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# make_docs DIR MB: documents of a few sizes (pseudo-random, incompressible), MB in all
make_docs() {
    local dir=$1 mb=$2 i=0 left=$2
    mkdir -p "$dir"
    while [ "$left" -gt 0 ]; do
        local n=$(( left < 64 ? left : 64 ))
        head -c "$((n * 1024 * 1024))" /dev/urandom >"$dir/scan-$i.dcm"
        left=$((left - n)); i=$((i + 1))
    done
    for j in $(seq 1 20); do head -c 20000 /dev/urandom >"$dir/lettre-$j.pdf"; done
}

age-keygen -o "$WORK/patient.key" 2>/dev/null

# ---------------------------------------------------------------- grant / open
log "grant: $GRANT_MB MiB of documents"
make_docs "$WORK/docs" "$GRANT_MB"
V=$WORK/vault
"$CARNET" --vault "$V" -i "$WORK/patient.key" init --name "Bench Patient" 2>/dev/null
"$CARNET" --vault "$V" -i "$WORK/patient.key" add "$WORK/docs" >/dev/null
"$CARNET" keygen --name "Dr Bench" --unprotected -o "$WORK/pro.key" >/dev/null 2>&1
"$CARNET" --vault "$V" -i "$WORK/patient.key" pro add --card "$WORK/pro.card.toml" >/dev/null 2>&1
R=$(grep '^recipient' "$WORK/pro.card.toml" | cut -d'"' -f2)

grant() { "$CARNET" --vault "$V" -i "$WORK/patient.key" grant --to bench --all --expires 1h -o "$WORK/bundle.age" --force; }
pipeline() { bash -c 'cd "$1" && zip -q -0 -r - . | age -r "$2" > "$3"' _ "$WORK/docs" "$R" "$WORK/pipe.age"; }
c_open() { rm -rf "$WORK/opened"; "$CARNET" open "$WORK/bundle.age" -i "$WORK/pro.key" -o "$WORK/opened"; }
s_open() { bash -c 'rm -rf "$3"; age -d -i "$1" "$2" > "$4" && unzip -q "$4" -d "$3" && rm -f "$4"' _ "$WORK/pro.key" "$WORK/bundle.age" "$WORK/unzipped" "$WORK/x.zip"; }
export CARNET WORK V R
export -f grant pipeline c_open s_open
for _ in $(seq "$RUNS"); do
    cat "$WORK"/docs/* >/dev/null
    measure grant grant
    measure pipeline pipeline
    measure open c_open
    measure unzip s_open
done

# ---------------------------------------------------------------- offline verify / backup
log "offline verify and backup: a $VAULT_MB MiB vault"
rm -rf "$WORK/docs" "$WORK/opened" "$WORK/unzipped"
make_docs "$WORK/docs2" "$VAULT_MB"
V2=$WORK/vault2
"$CARNET" --vault "$V2" -i "$WORK/patient.key" init 2>/dev/null
"$CARNET" --vault "$V2" -i "$WORK/patient.key" add "$WORK/docs2" >/dev/null
rm -rf "$WORK/docs2"
offline() { "$CARNET" --vault "$V2" verify --offline; }
sums() { bash -c 'cd "$1" && find . -type f ! -name lock -print0 | xargs -0 sha256sum' _ "$V2"; }
backup() { "$CARNET" --vault "$V2" backup -o "$WORK/b.zip" --force; }
zipit() { bash -c 'rm -f "$2"; cd "$1" && zip -q -0 -r "$2" .' _ "$V2" "$WORK/z.zip"; }
export V2
export -f offline sums backup zipit
for _ in $(seq "$RUNS"); do
    find "$V2" -type f -exec cat {} + >/dev/null
    measure offline offline
    measure sha256sum sums
    measure backup backup
    measure zip zipit
done

# ---------------------------------------------------------------- report
row() { # name label mb
    read -r s k <<<"$(median "$1")"
    printf '  %-34s %7.2f s  %8.0f MiB/s  %6.1f MiB RSS\n' "$2" "$s" "$(echo "$3 / $s" | bc -l)" "$(echo "$k / 1024" | bc -l)"
}
ratio() { read -r a _ <<<"$(median "$1")"; read -r b _ <<<"$(median "$2")"; echo "$a / $b" | bc -l; }
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi; }
rss_mib() { read -r _ k <<<"$(median "$1")"; echo "$k / 1024" | bc -l; }

echo
echo "carnet share/backup benchmark — $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), sha_ni: $(grep -q sha_ni /proc/cpuinfo && echo yes || echo no), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "grant/open, $GRANT_MB MiB in $(find "$V/objects" -type f | wc -l) documents (median of $RUNS):"
row grant "carnet grant" "$GRANT_MB"
row pipeline "zip -0 -r - | age -r" "$GRANT_MB"
row open "carnet open -o DIR" "$GRANT_MB"
row unzip "age -d > x.zip && unzip" "$GRANT_MB"
g=$(ratio grant pipeline); o=$(ratio open unzip)
printf '  grant/pipeline %.2f (target <= 1.0: %s); peak RSS %.1f MiB (target < 32: %s); open/(age+unzip) %.2f\n' \
    "$g" "$(verdict "$g <= 1.0")" "$(rss_mib grant)" "$(verdict "$(rss_mib grant) < 32")" "$o"
echo "keyless checks and backups, $VAULT_MB MiB vault (median of $RUNS):"
row offline "carnet verify --offline" "$VAULT_MB"
row sha256sum "sha256sum of the vault's files" "$VAULT_MB"
row backup "carnet backup -o" "$VAULT_MB"
row zip "zip -0 -r" "$VAULT_MB"
v=$(ratio sha256sum offline); b=$(ratio backup zip)
printf '  verify --offline is %.1fx faster than sha256sum (target >= 3: %s); backup/zip %.2f (target <= 1.0: %s)\n' \
    "$v" "$(verdict "$v >= 3")" "$b" "$(verdict "$b <= 1.0")"
