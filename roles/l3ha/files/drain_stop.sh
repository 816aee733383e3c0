#!/bin/sh
# drain_stop.sh SUPERVISOR RUN_DIR ROUTER...: hand every listed router's master over at
# once. Its result is one line "l3ha-drain-result {"ROUTER": EPOCH_OF_THE_STOP, ...}" for
# the routers it stopped: the role picks that line, so a banner, motd or sudo warning on
# the same output (ansible.builtin.script's pty mixes stderr in) cannot break it.
#
# First each router's namespace gets a table that drops its outgoing MLD reports: the
# ports of every replica carry the same MAC, and the reports this replica sends when it
# lets go of the router (addresses removed, IPv6 forwarding off; the kernel repeats them
# up to 1 s later) would teach the switches that MAC back onto this node, so traffic
# would go here until the new master happened to send again (measured: up to 1.9 s).
# drain_unmute.sh removes the table on undrain. Then one kill sends SIGTERM to all the
# keepalived at once; each sends a priority-0 advert, so its backup takes over at once.
set -eu
supervisor=$1
run_dir=$2
shift 2
mute='table inet l3ha_drain {
    chain output {
        type filter hook output priority 0; policy accept;
        icmpv6 type { mld-listener-report, mld-listener-done, mld2-listener-report } drop
    }
}'
pids=
units=
stopped=
for router in "$@"; do
    if [ "$supervisor" = systemd ]; then
        systemctl is-active --quiet "l3ha-keepalived@$router.service" || continue
        units="$units l3ha-keepalived@$router.service"
    else
        pid=
        read -r pid <"$run_dir/routers/$router/keepalived.pid" 2>/dev/null || true
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            continue
        fi
        pids="$pids $pid"
    fi
    # Best effort: without the table the handover still happens, only slower.
    printf '%s\n' "$mute" | ip netns exec "qrouter-$router" nft -f - 2>/dev/null || true
    stopped="$stopped $router"
done
at=$(date +%s.%N)
if [ -n "$units" ]; then
    # One systemctl call: the stop jobs run in parallel.
    # shellcheck disable=SC2086
    systemctl stop $units || true
elif [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
fi
# Wait (at most 10 s) until the stopped keepalived are gone: the backups take over at
# once, but some keepalived took up to 5 s more to exit, and an undrain run right after
# would take a keepalived still exiting for a running one and not start it.
gone() {
    [ ! -d "/proc/$1" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}
deadline=$(($(date +%s) + 10))
for pid in $pids; do
    while ! gone "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.05
    done
done
separator=
printf '\nl3ha-drain-result {'
for router in $stopped; do
    printf '%s"%s": %s' "$separator" "$router" "$at"
    separator=', '
done
printf '}\n'
