#!/usr/bin/env bash
# Make IP multicast work on the loopback interface, so tests can send to a
# group and receive it on the same host without touching a real network.
# Idempotent and safe to run as root in CI; prints what it did. Without root
# it only reports what is missing.
#
# What Linux needs (checked on kernel 6.18):
#
# IPv6: a route for ff00::/8 on lo, of type `local`:
#     ip -6 route add local ff00::/8 dev lo table local
#   Without it, a send to ff15::1 with IPV6_MULTICAST_IF = lo fails with
#   ENETUNREACH. A plain (unicast-type) or `multicast`-type route via lo does
#   not work: the kernel turns any non-local route through the loopback
#   device into a reject route (net/ipv6/route.c, fib6_is_reject), so the
#   send is dropped (Ip6OutNoRoutes) and nothing arrives. Setting the
#   MULTICAST flag on lo is not needed. The route only matters for sockets
#   that choose lo (`interface: 'lo'`); it does not change where other
#   multicast goes (a real interface's own ff00::/8 route has a lower metric).
#
# IPv4: nothing. Sockets that name the interface (`interface: 'lo'` or
#   `'127.0.0.1'`, i.e. IP_MULTICAST_IF = 127.0.0.1 and the membership on lo)
#   send to 224.0.0.0/4 through lo and receive there, with no route. Only a
#   socket that does not name an interface needs a route; on a host without
#   a default route, `ip route add 224.0.0.0/4 dev lo` gives it one (this
#   script adds it only when no route for 224.0.0.0/4 exists at all).
set -u

say() { printf 'multicast-loopback: %s\n' "$*"; }

if ! command -v ip >/dev/null 2>&1; then
  say "iproute2 (ip) is not installed; nothing done"
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  ROOT=0
else
  ROOT=1
fi

status=0

# IPv6 ----------------------------------------------------------------------
if [ ! -e /proc/sys/net/ipv6 ] || [ "$(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6 2>/dev/null || echo 1)" = 1 ]; then
  say "IPv6 is disabled on lo; IPv6 multicast tests will be skipped (enable: sysctl -w net.ipv6.conf.lo.disable_ipv6=0)"
elif ip -6 route show table local type local ff00::/8 dev lo 2>/dev/null | grep -q 'ff00::/8'; then
  say "IPv6: local route ff00::/8 on lo already present"
elif [ "$ROOT" = 1 ]; then
  if ip -6 route add local ff00::/8 dev lo table local; then
    say "IPv6: added 'ip -6 route add local ff00::/8 dev lo table local'"
  else
    say "IPv6: could not add the local route ff00::/8 on lo"
    status=1
  fi
else
  say "IPv6: missing; as root run: ip -6 route add local ff00::/8 dev lo table local"
  status=1
fi

# IPv4 ----------------------------------------------------------------------
if [ -n "$(ip -4 route show 224.0.0.0/4 2>/dev/null)$(ip -4 route show default 2>/dev/null)" ]; then
  say "IPv4: nothing needed (sockets naming interface lo / 127.0.0.1 work without a route)"
elif [ "$ROOT" = 1 ]; then
  if ip route add 224.0.0.0/4 dev lo; then
    say "IPv4: no default route, added 'ip route add 224.0.0.0/4 dev lo'"
  else
    say "IPv4: could not add 224.0.0.0/4 dev lo (sockets naming 127.0.0.1 still work)"
  fi
else
  say "IPv4: nothing needed for sockets naming interface lo / 127.0.0.1"
fi

exit "$status"
