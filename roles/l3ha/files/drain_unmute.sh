#!/bin/sh
# drain_unmute.sh: remove the MLD-dropping table drain_stop.sh put into the router
# namespaces of this node, so that a replica that becomes master again reports its
# multicast groups (switches that snoop MLD need them for IPv6 neighbour discovery).
# Prints "l3ha-unmuted ROUTER" for each router it unmuted (other output, such as a sudo
# warning, is not part of the result).
set -eu
for namespace in $(ip netns list | sed -n 's/^\(qrouter-[a-z0-9-]*\).*/\1/p'); do
    if ip netns exec "$namespace" nft delete table inet l3ha_drain 2>/dev/null; then
        echo "l3ha-unmuted ${namespace#qrouter-}"
    fi
done
