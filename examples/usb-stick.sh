#!/usr/bin/env bash
# Keep a copy of a carnet vault on a USB stick: `carnet backup --to` updates a mirror folder on
# the stick (only what changed is copied, so it is quick after the first time), then
# `carnet verify --offline` checks the mirror itself, without any key.
#
# Usage: usb-stick.sh [MOUNT_POINT]      [default: $CARNET_USB, else /media/$USER/CARNET]
#
# Settings, from the environment:
#   CARNET_VAULT        the vault to copy [default: carnet's own, ~/.local/share/carnet]
#   CARNET_FINGERPRINT  the vault's key fingerprint (SHA256:...): the mirror must be signed by it
#   CARNET_USB_ALLOW_UNMOUNTED=1  accept a MOUNT_POINT that is a plain folder (a test, a share)
#   CARNET              the carnet program [default: carnet, from PATH]
#
# The stick holds only encrypted files: losing it reveals no document, title or name.
# On another computer, get the vault back with:
#   carnet --vault ~/carnet restore /media/$USER/CARNET/carnet
set -euo pipefail
umask 077

carnet=${CARNET:-carnet}
stick=${1:-${CARNET_USB:-/media/${USER:-$(id -un)}/CARNET}}
mirror="$stick/carnet"

if [[ ! -d $stick ]]; then
    echo "usb-stick: $stick is not there: plug the stick in, or give its mount point" >&2
    exit 1
fi
# An unmounted stick leaves an empty folder behind: copying there would fill the laptop's own
# disk and give a false sense of safety.
if [[ ${CARNET_USB_ALLOW_UNMOUNTED:-0} != 1 ]] && command -v mountpoint >/dev/null &&
    ! mountpoint -q -- "$stick"; then
    echo "usb-stick: $stick is not a mount point: is the stick mounted?" >&2
    echo "usb-stick: (set CARNET_USB_ALLOW_UNMOUNTED=1 if it is meant to be a plain folder)" >&2
    exit 1
fi

# A damaged vault is not copied over a good mirror.
"$carnet" verify --offline
"$carnet" backup --to "$mirror"

expect=()
if [[ -n ${CARNET_FINGERPRINT:-} ]]; then
    expect=(--expect "$CARNET_FINGERPRINT")
fi
"$carnet" --vault "$mirror" verify --offline ${expect[@]+"${expect[@]}"}

# Flush the stick's write cache before anyone pulls it out.
sync
echo "usb-stick: $mirror is up to date and verified; unmount the stick before unplugging it" >&2
