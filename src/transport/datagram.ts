/**
 * The one datagram contract the multicast updater (src/delivery) uses and
 * every datagram transport implements: real UDP (unicast and multicast, IPv6
 * and IPv4) and the seeded simulated network.
 *
 * Contract:
 * - Datagrams are unreliable and unordered, as in UDP: `send` never throws
 *   for a datagram lost on the way, and a transport may drop, delay or
 *   reorder. Protocols above carry their own sequence numbers and repair.
 * - A socket is bound to one port. `joinGroup` makes it also receive what is
 *   sent to that multicast group on that port; `send` to a group address
 *   reaches every member (including the sender's own socket only when
 *   `loopback` is on).
 * - `message` hands the listener a datagram it owns, and the sender's
 *   unicast address, to which a reply can be sent.
 * - `send` does not keep `data`: the caller may reuse it once `send`
 *   returns. A payload above `MAX_DATAGRAM_BYTES` (65,507) throws
 *   `GS_ERR_INVALID_OPTION`.
 * - A group is an `ff00::/8` or `224.0.0.0/4` literal (`isMulticastAddress`);
 *   `joinGroup` of anything else throws `GS_ERR_INVALID_OPTION`.
 * - `close()` stops delivery at once; sending after close throws
 *   `GS_ERR_TRANSPORT_CLOSED`.
 */
import type { EventEmitter } from 'eventemitter3';
import type { GatesockError } from '../errors/index.js';
import type { Clock } from './clock.js';

/**
 * Where a datagram goes or came from. `address` is an IPv6 or IPv4 literal
 * without brackets (`ff15::1`, `127.0.0.1`); a simulated network uses its
 * own host names.
 * @public
 */
export interface DatagramAddress {
  /** Host or group address. */
  readonly address: string;
  /** UDP port. */
  readonly port: number;
}

/**
 * Events of a {@link DatagramSocket}.
 * @public
 */
export interface DatagramSocketEvents {
  /** A datagram arrived. The listener owns `data`. */
  message: (data: Uint8Array, from: DatagramAddress) => void;
  /** The socket failed after it was bound (it closes afterwards). */
  error: (error: GatesockError) => void;
  /** The socket is closed; emitted once. */
  close: () => void;
}

/**
 * One bound datagram socket.
 * @public
 */
export interface DatagramSocket extends EventEmitter<DatagramSocketEvents> {
  /** The address and port this socket receives unicast datagrams on. */
  readonly localAddress: DatagramAddress;
  /** The clock this socket's network runs on (virtual on a simulated network). */
  readonly clock: Clock;
  /** Send one datagram to a host or a group. Loss is silent, as in UDP. */
  send(data: Uint8Array, to: DatagramAddress): void;
  /** Receive datagrams sent to `group` on this socket's port. */
  joinGroup(group: string): void;
  /** Stop receiving datagrams sent to `group`. */
  leaveGroup(group: string): void;
  /** Stop sending and receiving. */
  close(): void;
}
