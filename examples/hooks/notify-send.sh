#!/bin/sh
# carnet hook: a desktop notification for each event (see hooks.toml beside this file).
#
# Reads carnet's JSON event on standard input and calls notify-send (libnotify). Only the
# action, the actor and the number of documents are shown: no title, whatever the event holds.
# NOTIFY_SEND names another program (tests use a stand-in).
set -eu

event=$(cat)
field() {
    # One top-level string or number field of the one-line JSON event.
    printf '%s' "$event" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
action=$(field action)
actor=$(field actor)
count=$(field count)
case $actor in
pro:*) who="le professionnel ${actor#pro:}" ;;
*) who="vous" ;;
esac
case $action in
add) text="$count document(s) ajouté(s) à votre carnet" ;;
receive) text="$count document(s) déposé(s) par $who" ;;
opened) text="Un partage a été ouvert par $who" ;;
verify-failed) text="La vérification de votre carnet a échoué : lancez carnet verify" ;;
*) text="carnet : $action" ;;
esac
exec "${NOTIFY_SEND:-notify-send}" --app-name=carnet "carnet" "$text"
