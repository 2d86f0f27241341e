/**
 * Several receivers on one host share the group's port (they must: a group
 * is sent to one port), so their answers would all come from the same
 * address and port, and the sender's unicast acks would reach only one of
 * them. {@link withReplySocket} gives a receiver a second, ephemeral socket
 * to answer from: every send goes out of it, and what comes back to it is
 * delivered as if it had arrived on the group socket.
 */
import { EventEmitter } from 'eventemitter3';
import type { DatagramAddress, DatagramSocket, DatagramSocketEvents } from '../../../transport/index.js';

class ReplySocket extends EventEmitter<DatagramSocketEvents> implements DatagramSocket {
  readonly #listen: DatagramSocket;
  readonly #reply: DatagramSocket;
  #closed = false;

  constructor(listen: DatagramSocket, reply: DatagramSocket) {
    super();
    this.#listen = listen;
    this.#reply = reply;
    for (const s of [listen, reply]) {
      s.on('message', (data, from) => this.emit('message', data, from));
      s.on('error', (err) => this.emit('error', err));
      s.on('close', () => this.close());
    }
  }
  get localAddress(): DatagramAddress {
    return this.#listen.localAddress;
  }
  get clock(): DatagramSocket['clock'] {
    return this.#listen.clock;
  }
  send(data: Uint8Array, to: DatagramAddress): void {
    this.#reply.send(data, to);
  }
  joinGroup(group: string): void {
    this.#listen.joinGroup(group);
  }
  leaveGroup(group: string): void {
    this.#listen.leaveGroup(group);
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listen.close();
    this.#reply.close();
    this.emit('close');
  }
}

/**
 * One socket made of two: `listen` (bound to the group's port; joins groups,
 * receives) and `reply` (any port; every send leaves from it and its
 * arrivals are delivered too). Closing either closes both. Give it to an
 * `UpdateReceiver` when several receivers share a host.
 * @public
 */
export function withReplySocket(listen: DatagramSocket, reply: DatagramSocket): DatagramSocket {
  return new ReplySocket(listen, reply);
}
