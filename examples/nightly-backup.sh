#!/usr/bin/env bash
# Nightly backup of a carnet vault into dated zip files, keeping the newest N.
# For cron, or for the systemd timer beside this file (carnet-backup.service, carnet-backup.timer).
#
# No key and no passphrase are needed: everything in the vault is already encrypted, and
# `carnet backup` and `carnet verify --offline` only read ciphertext. When a key is at hand
# (CARNET_IDENTITY, CARNET_PASSPHRASE) carnet also records the backup in the vault's access log.
#
# Settings, from the environment:
#   CARNET_VAULT        the vault [default: carnet's own, ~/.local/share/carnet]
#   CARNET_BACKUP_DIR   where the backups go [default: ~/carnet-backups]
#   CARNET_BACKUP_KEEP  how many backups to keep [default: 14]
#   CARNET_BACKUP_CHECK set to 1 to restore each new backup into a scratch folder and verify it
#                       (proves the file restores, at the cost of one more copy)
#   CARNET              the carnet program [default: carnet, from PATH]
#
# From cron (crontab -e), every night at 02:30:
#   30 2 * * * CARNET_BACKUP_DIR=/mnt/nas/carnet $HOME/bin/nightly-backup.sh
#
# Restore the newest one: carnet --vault ~/carnet-restored restore "$(ls -1 ~/carnet-backups/carnet-*.zip | tail -n 1)"
#
# Exit status: carnet's. 3 means the vault failed its integrity check: then no backup is made
# and no old one is removed, so the last good backups stay in rotation.
set -euo pipefail
umask 077

carnet=${CARNET:-carnet}
dest=${CARNET_BACKUP_DIR:-${HOME:?set CARNET_BACKUP_DIR or HOME}/carnet-backups}
keep=${CARNET_BACKUP_KEEP:-14}

case $keep in
'' | *[!0-9]* | 0)
    echo "nightly-backup: CARNET_BACKUP_KEEP must be a whole number of at least 1, not '$keep'" >&2
    exit 2
    ;;
esac

# Check first: a damaged vault must not push the good backups out of the rotation.
"$carnet" verify --offline

mkdir -p -- "$dest"
final="$dest/carnet-$(date -u +%Y%m%dT%H%M%SZ).zip"
if [[ -e $final ]]; then
    echo "nightly-backup: $final already exists; run again in a second" >&2
    exit 1
fi
# Written under another name, then renamed: an interrupted run never leaves a file that looks
# like a complete backup, nor one that pushes a good one out of the rotation.
part="$final.part"
trap 'rm -f -- "$part"' EXIT
"$carnet" backup -o "$part"
mv -- "$part" "$final"
trap - EXIT
echo "nightly-backup: wrote $final" >&2

if [[ ${CARNET_BACKUP_CHECK:-0} == 1 ]]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/carnet-check.XXXXXX")
    trap 'rm -rf -- "$scratch"' EXIT
    "$carnet" --vault "$scratch/vault" restore "$final"
    "$carnet" --vault "$scratch/vault" verify --offline
    rm -rf -- "$scratch"
    trap - EXIT
    echo "nightly-backup: $final restores and verifies" >&2
fi

# Keep the newest $keep. The names hold the UTC time, so they sort by age.
shopt -s nullglob
export LC_ALL=C
backups=("$dest"/carnet-*.zip)
for ((i = 0; i < ${#backups[@]} - keep; i++)); do
    rm -f -- "${backups[i]}"
    echo "nightly-backup: removed ${backups[i]}" >&2
done
