/**
 * The sender's rate limit: every datagram the multicast sender sends — data,
 * repair, manifests, announcements, acks, round markers — goes through one
 * {@link Pacer}, so the limit (bits per second, always on) holds for the
 * whole transfer, and the byte count it keeps is the "sender bytes" of the
 * benchmark.
 *
 * A token bucket on the socket's {@link Clock}: the bucket holds at most
 * `burstBytes` (the sender uses 16 full datagrams), refills at `rateBps / 8`
 * bytes per second, and a datagram leaves when the bucket holds its size (one
 * larger than the bucket leaves when the bucket is full).
 * Queued datagrams leave in order; one timer waits for the next to fit.
 * Time comes only from the clock, so on a simulated network the pacing runs
 * in virtual time.
 */
import type { Clock } from '../../transport/index.js';

/** One queued datagram: bytes, and what to do to send it. */
interface Queued {
  readonly bytes: Uint8Array;
  readonly send: () => void;
}

/**
 * Token-bucket pacer over a {@link Clock}.
 * @internal
 */
export class Pacer {
  #rateBps: number;
  readonly #burstBytes: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  readonly #queue: Queued[] = [];
  #head = 0;
  #timer: unknown;
  #closed = false;
  #onDrain: (() => void) | undefined;
  /** Datagrams sent so far. */
  datagrams = 0;
  /** Bytes sent so far (UDP payload bytes). */
  bytes = 0;

  constructor(clock: Clock, rateBps: number, burstBytes: number) {
    this.#clock = clock;
    this.#rateBps = rateBps;
    this.#burstBytes = burstBytes;
    this.#tokens = burstBytes;
    this.#last = clock.now();
  }

  /** The rate now in force, bits per second. */
  get rateBps(): number {
    return this.#rateBps;
  }

  /** Change the rate (the loss back-off); takes effect for the next datagram. */
  setRate(rateBps: number): void {
    this.#refill();
    this.#rateBps = rateBps;
  }

  /** Datagrams waiting for tokens. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Queue a datagram; `send` runs when the rate allows (perhaps at once).
   * `bytes.length` is what it costs.
   */
  push(bytes: Uint8Array, send: () => void): void {
    if (this.#closed) return;
    this.#queue.push({ bytes, send });
    if (this.#timer === undefined) this.#pump();
  }

  /** Call `fn` once the queue is empty (at once when it already is). */
  whenDrained(fn: () => void): void {
    if (this.queued === 0) {
      this.#onDrain = undefined;
      fn();
    } else this.#onDrain = fn;
  }

  /** Drop everything queued and stop the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#head = 0;
    this.#onDrain = undefined;
  }

  #refill(): void {
    const now = this.#clock.now();
    const dt = now - this.#last;
    this.#last = now;
    if (dt > 0) this.#tokens = Math.min(this.#burstBytes, this.#tokens + (dt * this.#rateBps) / 8000);
  }

  #pump(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    this.#refill();
    while (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]!;
      // A datagram bigger than the bucket still goes once the bucket is full.
      const cost = Math.min(next.bytes.length, this.#burstBytes);
      if (this.#tokens < cost) {
        const waitMs = ((cost - this.#tokens) * 8000) / this.#rateBps;
        this.#timer = this.#clock.setTimer(() => this.#pump(), Math.max(waitMs, 0.001));
        return;
      }
      this.#tokens -= cost;
      this.#queue[this.#head++] = undefined as unknown as Queued;
      this.datagrams++;
      this.bytes += next.bytes.length;
      next.send();
      if (this.#closed) return;
    }
    this.#queue.length = 0;
    this.#head = 0;
    const drained = this.#onDrain;
    this.#onDrain = undefined;
    drained?.();
  }
}
