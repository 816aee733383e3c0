#!/bin/sh
# drain_stop.sh SUPERVISOR RUN_DIR ROUTER...: stop each router's keepalived with SIGTERM
# (keepalived sends a priority-0 advert and removes its addresses). Prints a JSON object
# {"ROUTER": EPOCH_OF_THE_STOP, ...} for the routers it stopped.
set -eu
supervisor=$1
run_dir=$2
shift 2
separator=
printf '{'
for router in "$@"; do
    at=$(date +%s.%N)
    if [ "$supervisor" = systemd ]; then
        systemctl stop "l3ha-keepalived@$router.service" || continue
    else
        pid=$(cat "$run_dir/routers/$router/keepalived.pid" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || continue
    fi
    printf '%s"%s": %s' "$separator" "$router" "$at"
    separator=', '
done
printf '}\n'
