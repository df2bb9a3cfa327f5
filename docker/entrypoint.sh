#!/bin/sh
# guardbot's container entrypoint.
#
#   No config.yaml in the data directory yet (first run): write config.yaml from the example and
#   registration.yaml with new tokens, say what to do next, and exit.
#   Otherwise: exec guardbot -c <data>/config.yaml (exec, so guardbot gets the stop signal).
#   With arguments, run guardbot with those instead, e.g.
#     doctor -c /data/config.yaml -r /data/registration.yaml
#
# GUARDBOT_DATA_DIR (default /data) moves the data directory, for tests.
set -eu

data="${GUARDBOT_DATA_DIR:-/data}"
config="$data/config.yaml"
# GUARDBOT_REGISTRATION_PATH: the registration somewhere the homeserver may read, apart from
# the data (compose gives Synapse that one file's volume, not guardbot's secrets).
registration="${GUARDBOT_REGISTRATION_PATH:-$data/registration.yaml}"

if [ ! -d "$data" ]; then
    echo "guardbot: the data directory $data does not exist; mount a volume there" >&2
    exit 1
fi
# Relative paths in the config (database: sqlite:guardbot.db) land in the data directory.
cd "$data"

if [ "$#" -gt 0 ]; then
    exec guardbot "$@"
fi

if [ ! -e "$config" ]; then
    if [ ! -w "$data" ]; then
        echo "guardbot: cannot write to $data; it must belong to uid $(id -u)" >&2
        exit 1
    fi
    # guardbot checks the environment's GUARDBOT_* values before it writes anything and prints a
    # one-line error if one is wrong. Its own next steps are for a host install, so they go.
    # umask first: the tokens and the PWLU secret are never readable by others, not for a moment.
    if ! (umask 077 && guardbot -c "$config" -g -r "$registration" >/dev/null); then
        rm -f "$config"  # the next run starts over instead of running a half-made config
        exit 1
    fi
    # The homeserver (another user, another container) must read the registration. None is
    # written while the config still names example.org (no GUARDBOT_* essentials given).
    [ ! -e "$registration" ] || chmod 644 "$registration"
    cat <<NEXT
guardbot: first run. Wrote $config and $registration (with new tokens).

Next:
  1. Review $config: homeserver.address, homeserver.domain, appservice.address (the URL at
     which the homeserver reaches this container) and database. GUARDBOT_* environment
     variables override any key (GUARDBOT_HOMESERVER__ADDRESS, GUARDBOT_DATABASE, ...).
     If you change the domain, bot username, appservice id or address later, run this
     container with: -c $config -g -r $registration
     (it keeps the tokens and says what to restart).
  2. Give the homeserver $registration: list it in app_service_config_files in
     homeserver.yaml, and restart the homeserver.
  3. Start this container again: it runs guardbot. To check the set-up, run it with
       doctor -c $config -r $registration
NEXT
    exit 0
fi

exec guardbot -c "$config"
