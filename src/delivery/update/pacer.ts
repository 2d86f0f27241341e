/**
 * The sender's rate limit: every datagram the multicast sender sends — data,
 * repair, manifests, announcements, acks, round markers — goes through one
 * {@link Pacer}, so the limit (bits per second, always on) holds for the
 * whole transfer, and the byte count it keeps is the "sender bytes" of the
 * benchmark.
 *
 * A token bucket on the socket's {@link Clock}. Credit accrues by the clock
 * time that elapsed — `rateBps / 8` bytes per second — not per timer tick,
 * so a timer that fires late loses no sending time: the datagrams it finds
 * waiting leave at once, up to the credit earned meanwhile. The credit is
 * capped by the burst allowance, set in time: `burstMs` worth of bytes at
 * the current rate, but never less than `minBurstBytes` (the sender uses
 * 20 ms and 16 full datagrams: 250,000 bytes at 100 Mbit/s). Over any
 * window of W ms the pacer therefore sends at most
 * `rateBps · W / 8000 + burst` bytes, and never more than that on average.
 *
 * A datagram leaves when the credit holds its size, or, for one larger than
 * the allowance, when the credit is full; its whole size is taken (the
 * credit may go below zero, so the bound above holds for any size).
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
  #burstBytes: number;
  readonly #minBurstBytes: number;
  readonly #burstMs: number;
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

  /**
   * @param clock - time source (virtual on a simulated network)
   * @param rateBps - the limit, bits per second
   * @param minBurstBytes - the smallest credit cap, bytes
   * @param burstMs - the credit cap in time at the current rate (0: `minBurstBytes` only)
   */
  constructor(clock: Clock, rateBps: number, minBurstBytes: number, burstMs = 0) {
    this.#clock = clock;
    this.#rateBps = rateBps;
    this.#minBurstBytes = minBurstBytes;
    this.#burstMs = burstMs;
    this.#burstBytes = this.#capFor(rateBps);
    this.#tokens = this.#burstBytes;
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
    this.#burstBytes = this.#capFor(rateBps);
    if (this.#tokens > this.#burstBytes) this.#tokens = this.#burstBytes;
  }

  /** The credit cap now in force, bytes. */
  get burstBytes(): number {
    return this.#burstBytes;
  }

  #capFor(rateBps: number): number {
    return Math.max(this.#minBurstBytes, (rateBps * this.#burstMs) / 8000);
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
      this.#tokens -= next.bytes.length;
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
