#!/usr/bin/env bash
# Back up a carnet vault into a restic repository, as one file streamed from `carnet backup -o -`:
# no key is needed, nothing is written to a temporary file, and restic deduplicates the
# unchanged encrypted objects from one night to the next.
#
# Settings, from the environment:
#   RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE (or RESTIC_PASSWORD, ...)  as for restic itself
#   CARNET_VAULT          the vault [default: carnet's own, ~/.local/share/carnet]
#   CARNET_RESTIC_FORGET  a retention policy to apply after the backup, e.g.
#                         "--keep-daily 7 --keep-weekly 5 --keep-monthly 12" [default: none]
#   CARNET, RESTIC        the programs [default: carnet and restic, from PATH]
#
# Restore the latest snapshot:
#   restic dump --tag carnet latest /carnet-backup.zip > carnet-backup.zip
#   carnet --vault ~/carnet-restored restore carnet-backup.zip
#
# Exit status: carnet's or restic's; 3 means the vault failed its integrity check (nothing was
# backed up).
set -euo pipefail

carnet=${CARNET:-carnet}
restic=${RESTIC:-restic}
: "${RESTIC_REPOSITORY:?set RESTIC_REPOSITORY (and RESTIC_PASSWORD_FILE), as for restic}"
name="carnet-backup.zip"

# Check first: a damaged vault must not become the latest snapshot.
"$carnet" verify --offline

if "$restic" backup --help 2>/dev/null | grep -q -- --stdin-from-command; then
    # restic 0.17 and later run carnet themselves, and keep no snapshot when carnet fails.
    "$restic" backup --tag carnet --stdin-filename "$name" --stdin-from-command -- \
        "$carnet" backup -o -
else
    # Older restic (Debian 12 has 0.14) reads a pipe and cannot tell that carnet failed
    # half-way: it would keep a snapshot of a truncated zip. pipefail reports the failure, and
    # the snapshot restic reported is forgotten.
    status=0
    summary=$("$carnet" backup -o - |
        "$restic" backup --json --tag carnet --stdin --stdin-filename "$name") || status=$?
    snapshot=$(sed -n 's/.*"snapshot_id":"\([0-9a-f]*\)".*/\1/p' <<<"$summary" | tail -n 1)
    if ((status != 0)); then
        if [[ -n $snapshot ]]; then
            "$restic" forget "$snapshot" >&2 || true
            echo "restic-backup: the backup failed; snapshot $snapshot was forgotten" >&2
        fi
        exit "$status"
    fi
    echo "restic-backup: snapshot ${snapshot:-?} saved" >&2
fi

if [[ -n ${CARNET_RESTIC_FORGET:-} ]]; then
    read -ra policy <<<"$CARNET_RESTIC_FORGET"
    "$restic" forget --tag carnet --prune "${policy[@]}"
fi
