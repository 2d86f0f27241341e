/**
 * What a host needs before a key-address listener can run, checked up front
 * so that a missing piece is a {@link KeyAddressError} naming the command
 * that fixes it, not a listener that silently never sees a connection.
 *
 * Linux only. Two set-ups, matching the two listener modes (listener.ts):
 *
 * - `admit` (one listener on `[::]:PORT`, admission by destination address):
 *   every address of the /64 must be local, which a *local route* does:
 *
 *   ```sh
 *   ip -6 route add local 2001:db8:1:2::/64 dev lo
 *   ```
 *
 *   The kernel then delivers a SYN to any address of the /64 to a socket
 *   bound to `::` (or answers RST when nothing listens on the port). The
 *   route needs `CAP_NET_ADMIN`; the listener itself needs nothing else
 *   (a port below 1024 also needs `CAP_NET_BIND_SERVICE`).
 *
 * - `bind` (one listener per acceptable address): the same route, and
 *   `bind()` to an address that is routed locally but not assigned to an
 *   interface fails with `EADDRNOTAVAIL` unless non-local binds are allowed
 *   (checked on Linux 6.18: the IPv6 bind path asks `ipv6_chk_addr`, which
 *   looks at assigned addresses, not routes). Node has no `IP_FREEBIND`
 *   socket option, so the host switch is the way:
 *
 *   ```sh
 *   sysctl -w net.ipv6.ip_nonlocal_bind=1
 *   ```
 *
 *   (per network namespace; reading it needs no privilege, setting it does).
 *
 * The route is read from `/proc/net/ipv6_route`, which lists every table,
 * the `local` one included: a line whose flags carry `RTF_LOCAL`
 * (0x80000000) and whose destination, of length ≤ 64, covers the prefix.
 */
import { readFileSync } from 'node:fs';
import { KeyAddressError } from '../errors/index.js';
import { formatIpv6, parseIpv6, parsePrefix } from './address.js';

/** `RTF_LOCAL` in `/proc/net/ipv6_route`'s flags column (include/uapi/linux/ipv6_route.h). */
const RTF_LOCAL = 0x80000000;
/** `RTF_UP`. */
const RTF_UP = 0x0001;

/**
 * An IPv6 address in its one canonical text form (RFC 5952, as
 * `socket.localAddress` prints it), or undefined if `text` is not one.
 * @internal
 */
export function canonicalIpv6(text: string): string | undefined {
  const b = parseIpv6(text);
  return b === undefined ? undefined : formatIpv6(b);
}

/**
 * The first 8 bytes of a `/64` prefix written `2001:db8:1:2::/64`.
 * @throws KeyAddressError `GS_ERR_KEYADDR_INVALID_PREFIX`.
 * @internal
 */
export function prefix64(prefix: string): Uint8Array {
  return parsePrefix(prefix).bytes.subarray(0, 8);
}

/** The prefix as `ip` wants it: `2001:db8:1:2::/64`. @internal */
export function prefixText(prefix: string): string {
  return parsePrefix(prefix).text;
}

/**
 * The command that routes a /64 to this host, for messages and docs:
 * `ip -6 route add local 2001:db8:1:2::/64 dev lo`.
 * @public
 */
export function localRouteCommand(prefix: string, dev = 'lo'): string {
  return `ip -6 route add local ${prefixText(prefix)} dev ${dev}`;
}

/**
 * The command that lets a process bind addresses that are routed here but
 * not assigned to an interface (listener mode `bind`).
 * @public
 */
export const NONLOCAL_BIND_COMMAND = 'sysctl -w net.ipv6.ip_nonlocal_bind=1';

/**
 * True if `/proc/net/ipv6_route` (or the given text of it) holds a local
 * route (type `local`, flags `RTF_LOCAL`) of length ≤ 64 that covers the
 * whole /64 `prefix`. False where the file cannot be read (not Linux).
 * @public
 */
export function hasLocalRoute(prefix: string, routes?: string): boolean {
  const p = prefix64(prefix);
  let text = routes;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/net/ipv6_route', 'latin1');
    } catch {
      return false;
    }
  }
  for (const line of text.split('\n')) {
    // dest plen src splen nexthop metric refcnt use flags dev
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[0]!.length !== 32) continue;
    const flags = parseInt(f[8]!, 16);
    const plen = parseInt(f[1]!, 16);
    if ((flags & RTF_LOCAL) === 0 || (flags & RTF_UP) === 0 || !(plen <= 64)) continue;
    let covers = true;
    for (let bit = 0; bit < plen && covers; bit++) {
      const byte = bit >> 3;
      const mask = 0x80 >> (bit & 7);
      const d = parseInt(f[0]!.slice(2 * byte, 2 * byte + 2), 16);
      covers = (d & mask) === (p[byte]! & mask);
    }
    if (covers) return true;
  }
  return false;
}

/**
 * `net.ipv6.ip_nonlocal_bind` of this network namespace: true, false, or
 * undefined where it cannot be read (not Linux).
 * @public
 */
export function nonlocalBindEnabled(): boolean | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv6/ip_nonlocal_bind', 'latin1').trim() !== '0';
  } catch {
    return undefined;
  }
}

/**
 * Check that this host can run a key-address listener for `prefix` in
 * `mode`; throw the error that names the fix otherwise.
 *
 * @throws KeyAddressError `GS_ERR_KEYADDR_NO_ROUTE` (the local route is
 *   missing; the message has the `ip -6 route add local …` command),
 *   `GS_ERR_KEYADDR_NOT_PERMITTED` (mode `bind` without
 *   `net.ipv6.ip_nonlocal_bind=1`; the message has the `sysctl` command),
 *   `GS_ERR_KEYADDR_INVALID_PREFIX`.
 * @public
 */
export function checkKeyAddressHost(prefix: string, mode: 'admit' | 'bind' = 'admit'): void {
  prefix64(prefix);
  if (process.platform !== 'linux') {
    throw new KeyAddressError(
      'GS_ERR_KEYADDR_NO_ROUTE',
      `key-address listeners need Linux (a local route for the whole /64); this is ${process.platform}. Use the relay variant (keyAddressRelayServer) instead`,
    );
  }
  if (!hasLocalRoute(prefix)) {
    throw new KeyAddressError(
      'GS_ERR_KEYADDR_NO_ROUTE',
      `${prefixText(prefix)} is not routed to this host, so no connection to its key addresses can arrive here. As root, run: ${localRouteCommand(prefix)}`,
    );
  }
  if (mode === 'bind' && nonlocalBindEnabled() !== true) {
    throw new KeyAddressError(
      'GS_ERR_KEYADDR_NOT_PERMITTED',
      `listener mode 'bind' binds addresses that are routed here but not assigned to an interface, which this host refuses (net.ipv6.ip_nonlocal_bind is 0). As root, run: ${NONLOCAL_BIND_COMMAND} (or use mode 'admit')`,
    );
  }
}

/**
 * Turn an error from `listen()` into the key-address error that names the
 * fix, or return it unchanged.
 * @internal
 */
export function listenError(error: unknown, prefix: string, port: number, host: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new KeyAddressError(
      'GS_ERR_KEYADDR_NOT_PERMITTED',
      `listening on [${host}]:${port} was refused (${code}): a port below 1024 needs root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(command -v node)), or use a port ≥ 1024`,
      { cause: error },
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new KeyAddressError(
      'GS_ERR_KEYADDR_NOT_PERMITTED',
      `binding [${host}]:${port} failed (EADDRNOTAVAIL): the address is not local. As root, run: ${localRouteCommand(prefix)} and ${NONLOCAL_BIND_COMMAND}`,
      { cause: error },
    );
  }
  return error;
}
