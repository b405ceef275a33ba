#!/bin/sh
# carnet hook: a mail for each event (see hooks.toml beside this file).
#
# Usage in hooks.toml: run = ["sh", "/path/to/mail.sh", "you@example.org"]
# Reads carnet's JSON event on standard input and hands a message to sendmail -t, which msmtp
# (`SENDMAIL=msmtp`), Postfix and exim all provide. The mail says what happened, by whom, and
# how many documents; it names no document (mail crosses servers you do not control).
set -eu

to=${1:?"usage: mail.sh ADDRESS (the event comes on standard input)"}
event=$(cat)
field() {
    printf '%s' "$event" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
action=$(field action)
actor=$(field actor)
count=$(field count)
time=$(field time)
vault=$(field vault_id)

{
    printf 'To: %s\n' "$to"
    printf 'Subject: [carnet] %s\n' "$action"
    printf 'Content-Type: text/plain; charset=UTF-8\n'
    printf '\n'
    printf 'Événement / event : %s\n' "$action"
    printf 'Par / by          : %s\n' "$actor"
    printf 'Documents         : %s\n' "$count"
    printf 'Heure / time      : %s\n' "$time"
    printf 'Carnet / vault    : %s\n' "$vault"
    printf '\nDétails / details : carnet log -n 5\n'
} | "${SENDMAIL:-sendmail}" -t
