/**
 * A loss injector for real datagram sockets: wraps a {@link DatagramSocket}
 * and drops a seeded random share of the datagrams it receives, with the
 * same loss models as the simulated network (independent or
 * Gilbert–Elliott). This is how tests and benchmarks make loopback
 * multicast, which loses nothing, behave like a lossy network — e.g. several
 * receiver processes each losing 5% of what the sender multicasts, each with
 * its own seed.
 *
 * Only arrivals are dropped; sends pass through untouched. The decision is
 * made per datagram in arrival order, so with the same seed and the same
 * arrival order the same datagrams are dropped (on a real network the
 * arrival order itself may vary).
 */
import { EventEmitter } from 'eventemitter3';
import { checkOption } from '../errors/check.js';
import type { Clock } from './clock.js';
import type { DatagramAddress, DatagramSocket, DatagramSocketEvents } from './datagram.js';
import { checkLossModel, LossProcess, type LossModel } from './loss.js';
import { SeededRandom } from './random.js';

/**
 * Options of {@link withLoss}.
 * @public
 */
export interface LossInjectorOptions {
  /** Which received datagrams to drop: {@link independentLoss} or {@link gilbertElliottLoss}. */
  loss: LossModel;
  /** Seed of the drop decisions (an integer in [0, 2^53)). Default 0. */
  seed?: number;
}

/**
 * What a loss-injecting socket adds to {@link DatagramSocket}.
 * @public
 */
export interface LossInjectorInfo {
  /** The wrapped socket. */
  readonly inner: DatagramSocket;
  /** Received datagrams dropped so far. */
  readonly dropped: number;
  /** Received datagrams passed on so far. */
  readonly passed: number;
}

class LossySocket extends EventEmitter<DatagramSocketEvents> implements DatagramSocket, LossInjectorInfo {
  dropped = 0;
  passed = 0;
  private readonly process: LossProcess;

  constructor(
    readonly inner: DatagramSocket,
    loss: LossModel,
    seed: number,
  ) {
    super();
    this.process = new LossProcess(loss, new SeededRandom(seed));
    inner.on('message', (data, from) => {
      if (this.process.drop()) {
        this.dropped++;
        return;
      }
      this.passed++;
      this.emit('message', data, from);
    });
    inner.on('error', (error) => this.emit('error', error));
    inner.on('close', () => this.emit('close'));
  }

  get localAddress(): DatagramAddress {
    return this.inner.localAddress;
  }

  get clock(): Clock {
    return this.inner.clock;
  }

  send(data: Uint8Array, to: DatagramAddress): void {
    this.inner.send(data, to);
  }

  joinGroup(group: string): void {
    this.inner.joinGroup(group);
  }

  leaveGroup(group: string): void {
    this.inner.leaveGroup(group);
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * Wrap `socket` so that it drops a seeded random share of what it receives.
 * The wrapper owns the socket from now on: listen on the wrapper, and
 * closing either closes both.
 *
 * @example
 * ```ts
 * const raw = await udpBind({ port: 7000, groups: ['ff15::1'], interface: 'lo' });
 * const lossy = withLoss(raw, { loss: independentLoss(0.05), seed: 3 });
 * lossy.on('message', (data) => { ... }); // about 95% of what arrives
 * ```
 * @public
 */
export function withLoss(socket: DatagramSocket, options: LossInjectorOptions): DatagramSocket & LossInjectorInfo {
  checkOption(typeof socket === 'object' && socket !== null && typeof socket.send === 'function', 'socket', 'must be a DatagramSocket');
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const seed = options.seed ?? 0;
  checkOption(Number.isSafeInteger(seed) && seed >= 0, 'seed', 'must be an integer in [0, 2^53)');
  return new LossySocket(socket, checkLossModel(options.loss, 'loss'), seed);
}
