#!/usr/bin/env bash
# A professional's side: make a key once, then open each bundle a patient sends into a dated
# folder, refusing it unless it is signed by the patient key fingerprint they gave you.
#
# Usage:
#   pro-receive.sh                        first time: make your key and contact card
#   pro-receive.sh BUNDLE                 show who sent it, its terms and the patient's key
#   pro-receive.sh BUNDLE FINGERPRINT     check and extract into $CARNET_PRO_INBOX/DATE-NAME
#
# Settings, from the environment:
#   CARNET_PRO_KEY      your key [default: ~/.config/carnet/pro.key]; the contact card to send to
#                       patients is written beside it (pro.card.toml)
#   CARNET_PRO_INBOX    where bundles are extracted [default: ~/Patients]
#   CARNET_PRO_NAME, CARNET_PRO_RPPS or CARNET_PRO_ADELI, CARNET_PRO_PROFESSION
#                       who you are, for the first run only
#   CARNET_PASSPHRASE   your key's passphrase, for scripts [default: asked on the terminal]
#   CARNET              the carnet program [default: carnet, from PATH]
#
# Get the FINGERPRINT from the patient by another channel than the bundle (in person, by
# phone). Exit status: carnet's; 3 when the bundle is damaged or not signed by that key,
# 4 when the patient's consent is expired or not yet valid. Nothing is extracted then.
set -euo pipefail
# Patients' documents: readable by you only.
umask 077

carnet=${CARNET:-carnet}
key=${CARNET_PRO_KEY:-${XDG_CONFIG_HOME:-${HOME:?set CARNET_PRO_KEY or HOME}/.config}/carnet/pro.key}
inbox=${CARNET_PRO_INBOX:-${HOME:?set CARNET_PRO_INBOX or HOME}/Patients}

if [[ ! -e $key ]]; then
    if [[ -z ${CARNET_PRO_NAME:-} ]]; then
        echo "pro-receive: no key at $key yet; to make it, run again with your name, e.g." >&2
        echo "  CARNET_PRO_NAME=\"Dr Jeanne Martin\" CARNET_PRO_RPPS=10005173140 $0" >&2
        exit 2
    fi
    mkdir -p -- "$(dirname -- "$key")"
    args=(keygen --name "$CARNET_PRO_NAME" -o "$key")
    [[ -n ${CARNET_PRO_RPPS:-} ]] && args+=(--rpps "$CARNET_PRO_RPPS")
    [[ -n ${CARNET_PRO_ADELI:-} ]] && args+=(--adeli "$CARNET_PRO_ADELI")
    [[ -n ${CARNET_PRO_PROFESSION:-} ]] && args+=(--profession "$CARNET_PRO_PROFESSION")
    "$carnet" "${args[@]}" >/dev/null
    echo "pro-receive: send ${key%.*}.card.toml to your patients; they add it with \`carnet pro add --card\`" >&2
fi
if (($# == 0)); then
    exit 0
fi

bundle=$1
if (($# == 1)); then
    "$carnet" open "$bundle" -i "$key" --list
    echo "pro-receive: check the patient key above with the patient, then run: $0 $bundle FINGERPRINT" >&2
    exit 2
fi
fingerprint=$2

base=$(basename -- "$bundle")
base=${base%.*}
dest="$inbox/$(date +%Y-%m-%d)-$base"
n=2
while [[ -e $dest ]]; do
    dest="$inbox/$(date +%Y-%m-%d)-$base-$n"
    n=$((n + 1))
done
mkdir -p -- "$inbox"

status=0
"$carnet" open "$bundle" -i "$key" --from "$fingerprint" -o "$dest" || status=$?
case $status in
0) echo "pro-receive: the documents are in $dest" >&2 ;;
3) echo "pro-receive: refused: the bundle is damaged or not signed by $fingerprint; ask the patient to send it again" >&2 ;;
4) echo "pro-receive: refused: the patient's consent is not valid now; ask for a new grant" >&2 ;;
esac
exit "$status"
