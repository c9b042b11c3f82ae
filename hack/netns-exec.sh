#!/bin/sh
# go test -exec wrapper: runs one test binary in a network namespace of its own, with only
# loopback up. Test packages run in parallel; each one creates links, addresses, nft tables,
# VIP devices and test worlds (the LAN 198.51.100.0/24) in the namespace it starts in, so two
# packages sharing one namespace would see each other's state. The namespace, and everything
# in it, goes away when the binary exits.
exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' netns-exec "$@"
