/**
 * An in-memory pair of connected {@link ByteStream}s, for tests and
 * experiments, optionally shaped like a real link (latency, jitter,
 * bandwidth) with a deterministic, seeded schedule.
 */
import { TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { ByteStream, TransportInfo } from './byte-stream.js';
import { SeededRandom } from './random.js';
import { LinkShaper, type LinkShape } from './shaper.js';
import { StreamBase } from './stream-base.js';

/**
 * Options of {@link memoryPair}. Shaping applies to each direction
 * separately; with every shaping option at 0 (the default), bytes move on the
 * next microtask.
 * @public
 */
export interface MemoryPairOptions {
  /**
   * Bytes a side may have written but its peer not yet read (in flight on a
   * shaped link plus waiting in the peer's inbox) before `write()` returns
   * false. Default 1 MiB.
   */
  highWaterMark?: number;
  /** One-way delay added to every byte, in milliseconds. Default 0. */
  latencyMs?: number;
  /**
   * Extra one-way delay per segment, uniform in [0, jitterMs), in
   * milliseconds. Never reorders bytes: a delayed segment holds back those
   * behind it. Default 0.
   */
  jitterMs?: number;
  /** Link rate of each direction in bits per second; 0 means unlimited. Default 0. */
  bandwidthBps?: number;
  /**
   * Seed of the jitter schedule (an integer in [0, 2^53)). The same seed and
   * the same writes at the same times give the same arrival times. Default:
   * a random seed.
   */
  seed?: number;
}

/** A shaped link splits writes into segments of at most this size, so bytes arrive progressively. */
const SEGMENT_BYTES = 16 * 1024;

function now(): number {
  return performance.now();
}

/** One direction of a shaped link: segments in flight, delivered by one timer in arrival order. */
class ShapedLink {
  inFlightBytes = 0;
  /** The end-of-stream marker has reached the target. */
  endDelivered = false;
  private queue: { at: number; chunk: Uint8Array | undefined }[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly shaper: LinkShaper,
    private readonly source: MemoryStream,
    private readonly target: MemoryStream,
  ) {}

  send(chunk: Uint8Array): void {
    for (let offset = 0; offset < chunk.length; offset += SEGMENT_BYTES) {
      const segment = chunk.slice(offset, offset + SEGMENT_BYTES);
      this.queue.push({ at: this.shaper.arrivalTime(segment.length, now()), chunk: segment });
      this.inFlightBytes += segment.length;
    }
    this.arm();
  }

  sendEnd(): void {
    this.queue.push({ at: this.shaper.arrivalTime(0, now()), chunk: undefined });
    this.arm();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.head = 0;
    this.inFlightBytes = 0;
  }

  private arm(): void {
    const next = this.queue[this.head];
    if (this.timer !== undefined || next === undefined) return;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(next.at - now())));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const t = now();
    // Timers may fire a fraction of a millisecond before `at`; such a
    // segment waits for the re-armed timer, so nothing arrives early.
    for (let next = this.queue[this.head]; next !== undefined && next.at <= t; next = this.queue[this.head]) {
      this.head++;
      if (next.chunk === undefined) {
        this.endDelivered = true;
        this.target.arrivedEnd();
        this.source.maybeClose();
      } else {
        this.inFlightBytes -= next.chunk.length;
        this.target.arrived(next.chunk);
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.arm();
  };
}

class MemoryStream extends StreamBase {
  peer!: MemoryStream;
  /** Link carrying what this side writes; undefined when unshaped. */
  outLink: ShapedLink | undefined;
  readonly info: TransportInfo;
  private wantDrain = false;

  constructor(
    name: 'a' | 'b',
    private readonly highWaterMark: number,
  ) {
    super();
    this.info = { kind: 'memory', local: name, remote: name === 'a' ? 'b' : 'a' };
  }

  arrived(chunk: Uint8Array): void {
    this.deliver(chunk);
  }

  arrivedEnd(): void {
    this.deliverEnd();
  }

  /** Bytes written to this side and not yet emitted as `data`. */
  private unread(): number {
    return this.inboxBytes + (this.peer.outLink?.inFlightBytes ?? 0);
  }

  protected send(chunk: Uint8Array, owned: boolean): boolean {
    if (this.outLink !== undefined) this.outLink.send(chunk);
    else this.peer.deliver(owned ? chunk : chunk.slice());
    const full = this.peer.unread() >= this.highWaterMark;
    if (full) this.wantDrain = true;
    return !full;
  }

  protected sendEnd(): void {
    if (this.outLink !== undefined) this.outLink.sendEnd();
    else this.peer.deliverEnd();
    this.maybeClose();
  }

  protected abort(): void {
    this.peer.finish(new TransportError('GS_ERR_TRANSPORT_CLOSED', 'memory stream reset by peer'));
  }

  protected onPause(): void {}
  protected onResume(): void {}

  protected override onFlushed(): void {
    if (this.peer.wantDrain && !this.peer.closed && this.unread() < this.highWaterMark) {
      this.peer.wantDrain = false;
      this.peer.emit('drain');
    }
  }

  protected onEndEmitted(): void {
    this.maybeClose();
  }

  /** Close once both directions are done: we ended (and our end has crossed the link) and the peer's end was emitted. */
  maybeClose(): void {
    if (this.localEnded && this.endEmitted && (this.outLink === undefined || this.outLink.endDelivered)) this.finish();
  }

  protected override onFinish(): void {
    this.outLink?.cancel();
  }
}

function verifyOptions(options: MemoryPairOptions): Required<Omit<MemoryPairOptions, 'seed'>> & { seed: number } {
  const o = {
    highWaterMark: options.highWaterMark ?? 1 << 20,
    latencyMs: options.latencyMs ?? 0,
    jitterMs: options.jitterMs ?? 0,
    bandwidthBps: options.bandwidthBps ?? 0,
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 32),
  };
  checkOption(Number.isSafeInteger(o.highWaterMark) && o.highWaterMark > 0, 'highWaterMark', 'must be a positive integer');
  checkOption(Number.isFinite(o.latencyMs) && o.latencyMs >= 0, 'latencyMs', 'must be a finite number >= 0');
  checkOption(Number.isFinite(o.jitterMs) && o.jitterMs >= 0, 'jitterMs', 'must be a finite number >= 0');
  checkOption(Number.isFinite(o.bandwidthBps) && o.bandwidthBps >= 0, 'bandwidthBps', 'must be a finite number >= 0 (0 = unlimited)');
  checkOption(Number.isSafeInteger(o.seed) && o.seed >= 0, 'seed', 'must be an integer in [0, 2^53)');
  return o;
}

/**
 * Make two connected in-memory byte streams: what one writes, the other reads.
 * Both start paused, like every {@link ByteStream}. `destroy()` on one side
 * closes the other with a `GS_ERR_TRANSPORT_CLOSED` error, as a TCP reset would.
 *
 * @example
 * ```ts
 * // A 20 ms, 10 Mbit/s link with up to 5 ms jitter, reproducible by seed.
 * const [a, b] = memoryPair({ latencyMs: 20, jitterMs: 5, bandwidthBps: 10e6, seed: 1 });
 * b.on('data', (chunk) => console.log(chunk.length));
 * b.resume();
 * a.write(new Uint8Array(64 * 1024));
 * ```
 * @public
 */
export function memoryPair(options: MemoryPairOptions = {}): [ByteStream, ByteStream] {
  const o = verifyOptions(options);
  const a = new MemoryStream('a', o.highWaterMark);
  const b = new MemoryStream('b', o.highWaterMark);
  a.peer = b;
  b.peer = a;
  if (o.latencyMs > 0 || o.jitterMs > 0 || o.bandwidthBps > 0) {
    const shape: LinkShape = { latencyMs: o.latencyMs, jitterMs: o.jitterMs, bandwidthBps: o.bandwidthBps };
    // One generator per direction, a jump apart, so the a→b schedule does not
    // depend on how much b writes.
    const forward = new SeededRandom(o.seed);
    const backward = forward.clone().jump();
    a.outLink = new ShapedLink(new LinkShaper(shape, forward), a, b);
    b.outLink = new ShapedLink(new LinkShaper(shape, backward), b, a);
  }
  return [a, b];
}
