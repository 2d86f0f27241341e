/**
 * Real UDP datagram sockets (node:dgram) behind the {@link DatagramSocket}
 * contract: unicast and multicast, IPv6 first and IPv4.
 *
 * Mapping onto the socket API:
 * - `udpBind` creates a `udp6` or `udp4` socket (SO_REUSEADDR when asked, so
 *   several receivers on one host share the group port), binds it, and sets
 *   the multicast options: outgoing interface (IPV6_MULTICAST_IF /
 *   IP_MULTICAST_IF), hop limit (IPV6_MULTICAST_HOPS / IP_MULTICAST_TTL),
 *   loopback (IPV6_MULTICAST_LOOP / IP_MULTICAST_LOOP);
 * - `joinGroup` is IPV6_JOIN_GROUP / IP_ADD_MEMBERSHIP on the chosen
 *   interface (or the one the kernel picks); a failure is
 *   `GS_ERR_DELIVERY_NO_MULTICAST` with the command that fixes it;
 * - `send` copies the payload (Node may keep the buffer until the kernel
 *   takes it) and sends; a failure is silent like loss, and counted in
 *   `sendErrors` — except that a multicast send the host has no route for
 *   fails the socket with `GS_ERR_DELIVERY_NO_MULTICAST` (`error`, then
 *   `close`), since every later one would fail too;
 * - `close` stops delivery at once and emits `close` before returning.
 *
 * Interfaces are named by name (`lo`, `eth0`) or by one of their addresses.
 * IPv6 wants the interface index (written `::%name`), IPv4 an IPv4 address
 * of the interface; both are looked up in `os.networkInterfaces()`.
 *
 * Loopback multicast needs a route on Linux for IPv6; see
 * scripts/multicast-loopback.sh.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { EventEmitter } from 'eventemitter3';
import { DeliveryError, GatesockError, TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import { systemClock, type Clock } from './clock.js';
import type { DatagramAddress, DatagramSocket, DatagramSocketEvents } from './datagram.js';
import { isMulticastAddress, MAX_DATAGRAM_BYTES } from './sim-network.js';
import { describeError } from './stream-base.js';

/**
 * Options of {@link udpBind}.
 * @public
 */
export interface UdpBindOptions {
  /**
   * `ipv6` or `ipv4`. Default: the family of `address` or of the first
   * group, else `ipv6`.
   */
  family?: 'ipv6' | 'ipv4';
  /**
   * Local address to bind. Default the wildcard (`::` or `0.0.0.0`): a socket
   * that receives a group must be bound to the wildcard (or the group).
   */
  address?: string;
  /** Local port; 0 (the default) picks a free one (see `localAddress.port`). */
  port?: number;
  /** Groups to join at once, on `interface`. */
  groups?: readonly string[];
  /**
   * Interface for multicast, by name (`lo`, `eth0`) or by one of its
   * addresses: the groups are joined there and group sends leave through it.
   * Default: the kernel chooses by its routes.
   */
  interface?: string;
  /** Hop limit (IPv6) or TTL (IPv4) of multicast sends, 0–255. Default 1 (this link only). */
  hopLimit?: number;
  /**
   * Deliver this socket's multicast sends to group members on this host
   * (IP_MULTICAST_LOOP). Default true. Only matters on a real interface:
   * what is sent through `lo` comes back to this host either way.
   */
  multicastLoopback?: boolean;
  /**
   * SO_REUSEADDR: several sockets on this host may bind the port (each gets
   * every group datagram). Default true when `groups` is given, else false.
   */
  reuseAddr?: boolean;
  /** SO_RCVBUF in bytes; larger avoids drops at high multicast rates. Default: the system's. */
  receiveBufferBytes?: number;
  /** SO_SNDBUF in bytes. Default: the system's. */
  sendBufferBytes?: number;
  /** The clock protocols on this socket use. Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * What a UDP socket adds to {@link DatagramSocket}.
 * @public
 */
export interface UdpSocketInfo {
  /** `ipv6` or `ipv4`. */
  readonly family: 'ipv6' | 'ipv4';
  /** True once closed. */
  readonly closed: boolean;
  /** Sends the kernel refused (counted, otherwise silent like loss). */
  readonly sendErrors: number;
  /** The last such refusal, for diagnostics. */
  readonly lastSendError: Error | undefined;
}

/** The command that makes multicast work on `iface` (or lo), for error messages. */
function multicastFix(family: 'ipv6' | 'ipv4', iface: string | undefined): string {
  const name = iface !== undefined && !iface.includes(':') && !iface.includes('.') ? iface : undefined;
  if (family === 'ipv6') {
    if (name === undefined || name === 'lo') {
      return 'for loopback run `ip -6 route add local ff00::/8 dev lo table local` as root (scripts/multicast-loopback.sh); for a real interface name it (interface option) and check `ip -6 route show table local ff00::/8`';
    }
    return `run \`ip link set ${name} multicast on\` and \`ip -6 route add ff00::/8 dev ${name} table local\` as root, or name another interface`;
  }
  return `name the interface (interface: 'lo' or its IPv4 address), or add a route: \`ip route add 224.0.0.0/4 dev ${name ?? 'IFACE'}\` as root`;
}

/**
 * Resolve an interface option to what node:dgram wants for this family:
 * `::%name` for IPv6, an IPv4 address for IPv4.
 */
function resolveInterface(iface: string, family: 'ipv6' | 'ipv4'): { dgram: string; name: string } {
  const all = os.networkInterfaces();
  let name: string | undefined;
  if (Object.hasOwn(all, iface)) {
    name = iface;
  } else {
    const bare = iface.startsWith('::%') ? iface.slice(3) : undefined;
    if (bare !== undefined && Object.hasOwn(all, bare)) name = bare;
    else {
      const addr = iface.split('%')[0]!.toLowerCase();
      for (const [n, list] of Object.entries(all)) {
        if (list?.some((a) => a.address.toLowerCase() === addr)) {
          name = n;
          break;
        }
      }
    }
  }
  checkOption(name !== undefined, 'interface', `names no interface or address of this host (${iface}); interfaces: ${Object.keys(all).join(', ')}`);
  if (family === 'ipv6') return { dgram: `::%${name}`, name };
  const v4 = net.isIPv4(iface) ? iface : all[name]?.find((a) => a.family === 'IPv4')?.address;
  checkOption(v4 !== undefined, 'interface', `${name} has no IPv4 address, which IPv4 multicast needs to name it`);
  return { dgram: v4, name };
}

function familyOf(address: string): 'ipv6' | 'ipv4' | undefined {
  const v = net.isIP(address);
  return v === 6 ? 'ipv6' : v === 4 ? 'ipv4' : undefined;
}

/**
 * Bind a UDP socket for unicast and multicast datagrams.
 *
 * Fails with `GS_ERR_LISTEN_FAILED` when the address or port cannot be
 * bound, `GS_ERR_DELIVERY_NO_MULTICAST` when a group cannot be joined (the
 * message says what to run), and `GS_ERR_INVALID_OPTION` for bad options.
 *
 * @example
 * ```ts
 * // Two receivers on one host share the group port; the sender names lo.
 * const a = await udpBind({ port: 7000, groups: ['ff15::1'], interface: 'lo' });
 * const b = await udpBind({ port: 7000, groups: ['ff15::1'], interface: 'lo' });
 * const sender = await udpBind({ interface: 'lo' });
 * a.on('message', (data, from) => a.send(Uint8Array.of(1), from)); // unicast reply
 * sender.send(new TextEncoder().encode('hello'), { address: 'ff15::1', port: 7000 });
 * ```
 * @public
 */
export async function udpBind(options: UdpBindOptions = {}): Promise<DatagramSocket & UdpSocketInfo> {
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const groups = options.groups ?? [];
  checkOption(Array.isArray(groups), 'groups', 'must be an array of multicast addresses');
  for (const g of groups) checkOption(typeof g === 'string' && isMulticastAddress(g), 'groups', `must hold multicast addresses only (got ${String(g)})`);
  if (options.address !== undefined) checkOption(familyOf(options.address) !== undefined, 'address', `must be an IPv6 or IPv4 literal (got ${options.address})`);
  const family = options.family ?? (options.address !== undefined ? familyOf(options.address) : undefined) ?? (groups[0] !== undefined ? familyOf(groups[0]) : undefined) ?? 'ipv6';
  checkOption(family === 'ipv6' || family === 'ipv4', 'family', "must be 'ipv6' or 'ipv4'");
  if (options.address !== undefined) checkOption(familyOf(options.address) === family, 'address', `is not an ${family} address (${options.address})`);
  for (const g of groups) checkOption(familyOf(g) === family, 'groups', `${g} is not an ${family} group`);
  const port = options.port ?? 0;
  checkOption(Number.isInteger(port) && port >= 0 && port <= 65535, 'port', 'must be an integer from 0 to 65535');
  const hopLimit = options.hopLimit ?? 1;
  checkOption(Number.isInteger(hopLimit) && hopLimit >= 0 && hopLimit <= 255, 'hopLimit', 'must be an integer from 0 to 255');
  for (const name of ['receiveBufferBytes', 'sendBufferBytes'] as const) {
    const v = options[name];
    checkOption(v === undefined || (Number.isInteger(v) && v > 0), name, 'must be a positive integer');
  }
  const iface = options.interface === undefined ? undefined : (checkOption(typeof options.interface === 'string' && options.interface.length > 0, 'interface', 'must be a non-empty string'), resolveInterface(options.interface, family));
  const reuseAddr = options.reuseAddr ?? groups.length > 0;
  const address = options.address ?? (family === 'ipv6' ? '::' : '0.0.0.0');

  const socket = dgram.createSocket({
    type: family === 'ipv6' ? 'udp6' : 'udp4',
    reuseAddr,
    ipv6Only: family === 'ipv6',
    recvBufferSize: options.receiveBufferBytes,
    sendBufferSize: options.sendBufferBytes,
  });
  const where = `${address.includes(':') ? `[${address}]` : address}:${port}`;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(new TransportError('GS_ERR_LISTEN_FAILED', `UDP bind to ${where} failed: ${describeError(err)}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: false }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  const udp = new UdpSocket(socket, family, iface, options.clock ?? systemClock);
  try {
    socket.setMulticastTTL(hopLimit);
    socket.setMulticastLoopback(options.multicastLoopback ?? true);
    if (iface !== undefined) socket.setMulticastInterface(iface.dgram);
    for (const g of groups) udp.joinGroup(g);
  } catch (err) {
    udp.close();
    if (err instanceof GatesockError) throw err;
    throw new DeliveryError('GS_ERR_DELIVERY_NO_MULTICAST', `cannot set multicast options on ${where}${iface ? ` (interface ${iface.name})` : ''}: ${describeError(err as Error)}; ${multicastFix(family, iface?.name)}`, { cause: err });
  }
  return udp;
}

/** Errors of a multicast send that mean the host cannot send to groups at all. */
const NO_MULTICAST_SEND = new Set(['ENETUNREACH', 'EADDRNOTAVAIL', 'ENODEV', 'EHOSTUNREACH']);

/** A bound node:dgram socket as a {@link DatagramSocket}. */
class UdpSocket extends EventEmitter<DatagramSocketEvents> implements DatagramSocket, UdpSocketInfo {
  readonly localAddress: DatagramAddress;
  closed = false;
  sendErrors = 0;
  lastSendError: Error | undefined = undefined;
  private readonly groups = new Set<string>();
  /** One callback for every unicast send, so a send makes no closure. */
  private readonly afterSend = (err: Error | null): void => {
    if (err === null || err === undefined) return;
    this.sendErrors++;
    this.lastSendError = err;
  };

  constructor(
    private readonly socket: dgram.Socket,
    readonly family: 'ipv6' | 'ipv4',
    private readonly iface: { dgram: string; name: string } | undefined,
    readonly clock: Clock,
  ) {
    super();
    const a = socket.address();
    this.localAddress = Object.freeze({ address: a.address, port: a.port });
    socket.on('message', (msg, rinfo) => {
      if (!this.closed) this.emit('message', msg, { address: rinfo.address, port: rinfo.port });
    });
    socket.on('error', (err) => this.fail(new TransportError('GS_ERR_TRANSPORT_CLOSED', `UDP socket ${this.describe()} failed: ${describeError(err)}`, { cause: err })));
  }

  send(data: Uint8Array, to: DatagramAddress): void {
    if (this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `send on a closed UDP socket ${this.describe()}`);
    checkOption(data instanceof Uint8Array, 'data', 'must be a Uint8Array');
    if (data.length > MAX_DATAGRAM_BYTES) checkOption(false, 'data', `must be at most ${MAX_DATAGRAM_BYTES} bytes (got ${data.length})`);
    const dest = this.destination(to);
    const copy = Buffer.allocUnsafe(data.length);
    copy.set(data);
    this.socket.send(copy, dest.port, dest.address, dest.done);
  }

  /** The last destination checked: a sender sends datagram after datagram to the same one. */
  private lastDestination: { readonly address: string; readonly port: number; readonly done: (err: Error | null) => void } | undefined;

  /**
   * Check `to` (family, literal, port) once per distinct destination, not per
   * datagram; returns it with its send callback.
   */
  private destination(to: DatagramAddress): { readonly address: string; readonly port: number; readonly done: (err: Error | null) => void } {
    const last = this.lastDestination;
    if (last !== undefined && typeof to === 'object' && to !== null && to.address === last.address && to.port === last.port) return last;
    checkOption(typeof to === 'object' && to !== null && typeof to.address === 'string' && familyOf(to.address) !== undefined, 'to.address', `must be an IPv6 or IPv4 literal (got ${String(to?.address)})`);
    checkOption(familyOf(to.address) === this.family, 'to.address', `is not an ${this.family} address (${to.address}); this socket is ${this.family}`);
    checkOption(Number.isInteger(to.port) && to.port >= 1 && to.port <= 65535, 'to.port', 'must be an integer from 1 to 65535');
    const address = to.address;
    const done = isMulticastAddress(address)
      ? (err: Error | null): void => {
          if (err === null || err === undefined) return;
          const code = (err as NodeJS.ErrnoException).code ?? '';
          if (NO_MULTICAST_SEND.has(code)) {
            this.fail(
              new DeliveryError('GS_ERR_DELIVERY_NO_MULTICAST', `cannot send to group ${address} from ${this.describe()}: ${describeError(err)}; ${multicastFix(this.family, this.iface?.name)}`, { cause: err }),
            );
          } else {
            this.afterSend(err);
          }
        }
      : this.afterSend;
    this.lastDestination = { address, port: to.port, done };
    return this.lastDestination;
  }

  joinGroup(group: string): void {
    this.checkOpen('joinGroup');
    checkOption(typeof group === 'string' && isMulticastAddress(group), 'group', `must be a multicast address (ff00::/8 or 224.0.0.0/4), got ${String(group)}`);
    checkOption(familyOf(group) === this.family, 'group', `${group} is not an ${this.family} group; this socket is ${this.family}`);
    if (this.groups.has(group)) return;
    try {
      this.socket.addMembership(group, this.iface?.dgram);
    } catch (err) {
      throw new DeliveryError(
        'GS_ERR_DELIVERY_NO_MULTICAST',
        `cannot join ${group}${this.iface ? ` on ${this.iface.name}` : ''}: ${describeError(err as Error)}; ${multicastFix(this.family, this.iface?.name)}`,
        { cause: err },
      );
    }
    this.groups.add(group);
  }

  leaveGroup(group: string): void {
    this.checkOpen('leaveGroup');
    if (!this.groups.delete(group)) return;
    try {
      this.socket.dropMembership(group, this.iface?.dgram);
    } catch {
      // The kernel forgot it already (interface gone): nothing left to leave.
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.groups.clear();
    try {
      this.socket.close();
    } catch {
      // Already closed by node after an error.
    }
    this.emit('close');
  }

  private fail(error: GatesockError): void {
    if (this.closed) return;
    this.emit('error', error);
    this.close();
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `${what} on a closed UDP socket ${this.describe()}`);
  }

  private describe(): string {
    const { address, port } = this.localAddress;
    return `${address.includes(':') ? `[${address}]` : address}:${port}`;
  }
}
