#!/usr/bin/env bash
# carnet benchmark (issue 11, "Unlocking"): `carnet ls` in passphrase mode against `age -d` of a
# file made by `age -p`, both at scrypt work factor 2^18, with peak memory; then, after
# `carnet unlock`, `ls` against identity mode (`-i FILE`, no scrypt). A benchmark, not a test:
# it prints figures and met/MISSED per target, and exits 0 unless something fails to run.
# See benches/README.md.
#
# Environment:
#   BENCH_RUNS   runs per row, interleaved; the median is reported   (default 7)
#   BENCH_DOCS   documents in each vault                              (default 100)
#   CARGO_TARGET_DIR  where the release build is                      (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${BENCH_RUNS:-7}
DOCS=${BENCH_DOCS:-100}
# shellcheck source=common/lib.sh
. "$ROOT/benches/common/lib.sh"
need ".ci/install-tools, or apt-get install age util-linux" age age-keygen script
build_carnet
scratch unlock
PV=$WORK/pv
cleanup() {
    # Never leave the benchmark vault unlocked in the session keyring.
    "$CARNET" --vault "$PV" lock >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PASS="bench passphrase, four words"

log "two vaults of $DOCS documents: passphrase mode and identity mode"
mkdir "$WORK/docs"
for i in $(seq 1 "$DOCS"); do printf 'document %s\n' "$i" >"$WORK/docs/doc$i.txt"; done
CARNET_PASSPHRASE=$PASS "$CARNET" --vault "$PV" init --name Bench >/dev/null 2>&1
CARNET_PASSPHRASE=$PASS "$CARNET" --vault "$PV" add "$WORK/docs" >/dev/null 2>&1
age-keygen -o "$WORK/key.txt" 2>/dev/null
IV=$WORK/iv
"$CARNET" --vault "$IV" -i "$WORK/key.txt" init --name Bench >/dev/null 2>&1
"$CARNET" --vault "$IV" -i "$WORK/key.txt" add "$WORK/docs" >/dev/null 2>&1

log "a file made by age -p (through a pseudo-terminal: age reads passphrases from the tty only)"
head -c 4096 /dev/urandom >"$WORK/plain"
printf '%s\n%s\n' "$PASS" "$PASS" |
    script -qec "age -p -o '$WORK/p.age' '$WORK/plain'" /dev/null >/dev/null
work_factor() { head -c 200 "$1" | grep -a '^-> scrypt ' | awk '{print $4}'; }
WF_AGE=$(work_factor "$WORK/p.age")
WF_CARNET=$(work_factor "$PV/identity.age")
[ "$WF_AGE" = "$WF_CARNET" ] || die "work factors differ: age -p 2^$WF_AGE, carnet 2^$WF_CARNET"

# One run of each row; each prints "SECONDS MAXRSS_KIB".
run_age() {
    printf '%s\n' "$PASS" |
        script -qec "$TIME -f 'TIMED %e %M' age -d -o /dev/null '$WORK/p.age'" /dev/null 2>&1 |
        tr -d '\r' | sed -n 's/.*TIMED //p'
}
run_timed() { # a command that needs no terminal, under GNU time (centiseconds, fine for scrypt)
    "$TIME" -f '%e %M' -o "$WORK/t" "$@" >/dev/null 2>&1 || die "failed: $*"
    cat "$WORK/t"
}
run_fast() { # milliseconds: a nanosecond clock around the command, RSS from GNU time
    local a b
    a=$(date +%s%N)
    "$TIME" -f '%M' -o "$WORK/t" "$@" >/dev/null 2>&1 || die "failed: $*"
    b=$(date +%s%N)
    echo "$(((b - a) / 1000)) $(cat "$WORK/t")"
}

declare -A ROWS
add() { ROWS[$1]+="$2"$'\n'; }

log "$RUNS rounds: passphrase ls and age -d, interleaved"
for _ in $(seq 1 "$RUNS"); do
    add age "$(run_age)"
    add pass "$(CARNET_PASSPHRASE=$PASS run_timed "$CARNET" --vault "$PV" ls)"
done

log "$RUNS rounds: unlocked ls and identity-mode ls, interleaved"
CARNET_PASSPHRASE=$PASS "$CARNET" --vault "$PV" unlock --for 10m >/dev/null 2>&1
"$CARNET" --vault "$PV" -v ls 2>&1 >/dev/null | grep -q 'using the key kept' ||
    die "the unlocked ls did not use the kept key"
for _ in $(seq 1 "$RUNS"); do
    add unlocked "$(run_fast "$CARNET" --vault "$PV" ls)"
    add identity "$(run_fast "$CARNET" --vault "$IV" -i "$WORK/key.txt" ls)"
done
"$CARNET" --vault "$PV" lock >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { printf '%s' "${ROWS[$1]}" | awk -v c="$2" 'NF {print $c}'; }
med() { col "$1" "$2" | median; }
range() { col "$1" "$2" | sort -n | sed -n '1p;$p' | paste -sd- -; }

AGE_S=$(med age 1) PASS_S=$(med pass 1)
AGE_RSS=$(med age 2) PASS_RSS=$(med pass 2)
UNL_US=$(med unlocked 1) ID_US=$(med identity 1)
UNL_RSS=$(med unlocked 2) ID_RSS=$(med identity 2)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "MISSED"}'; }

R_PASS=$(ratio "$PASS_S" "$AGE_S")
R_UNL=$(ratio "$UNL_US" "$ID_US")
printf '\n%-34s %9s %13s %9s\n' "row ($DOCS documents)" "median" "(min-max)" "RSS MiB"
printf '%-34s %8ss %13s %9s\n' "age -d (age -p file, 2^$WF_AGE)" "$AGE_S" "($(range age 1))" "$(mib "$AGE_RSS")"
printf '%-34s %8ss %13s %9s\n' "carnet ls, passphrase (2^$WF_CARNET)" "$PASS_S" "($(range pass 1))" "$(mib "$PASS_RSS")"
printf '%-34s %7sms %13s %9s\n' "carnet ls, unlocked" "$(awk -v u="$UNL_US" 'BEGIN{printf "%.1f", u/1000}')" "" "$(mib "$UNL_RSS")"
printf '%-34s %7sms %13s %9s\n' "carnet -i FILE ls (identity mode)" "$(awk -v u="$ID_US" 'BEGIN{printf "%.1f", u/1000}')" "" "$(mib "$ID_RSS")"

cat <<EOF

summary (paste into the closing note):
  carnet $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  load average: start $LOAD_START, end $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs per row; $(age --version | head -1) (Go age)
  passphrase ls / age -d:   ${R_PASS}x (target <= 1.2x): $(verdict "$R_PASS" 1.2)
  passphrase ls peak RSS:   $(mib "$PASS_RSS") MiB (target <= 300 MiB): $(verdict "$(mib "$PASS_RSS")" 300)
  unlocked ls / identity:   ${R_UNL}x (target <= 2x): $(verdict "$R_UNL" 2)
EOF
