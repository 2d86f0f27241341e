/**
 * A one-way link model: given when bytes are handed to the link, say when
 * they arrive at the far end. Sans-I/O: the clock is passed in, so the same
 * inputs and seed always give the same schedule (used by the shaped
 * {@link memoryPair}; the simulated datagram network can reuse it).
 *
 * Model, per direction:
 * - bandwidth: the link serialises one segment at a time; a segment of `n`
 *   bytes occupies it for `8n / bandwidthBps` seconds, queued behind earlier
 *   segments;
 * - latency: fixed propagation delay added after serialisation;
 * - jitter: an extra delay drawn uniformly from [0, jitterMs) per segment.
 *   Jitter never reorders: a segment never arrives before the one sent ahead
 *   of it (it waits for it, as bytes in a TCP receive queue would), so the
 *   byte stream stays in order.
 *
 * @internal
 */
import type { SeededRandom } from './random.js';

/**
 * Shape of one direction of a link. Zero means "no effect" for every field.
 * @internal
 */
export interface LinkShape {
  /** One-way propagation delay, in milliseconds. */
  readonly latencyMs: number;
  /** Upper bound of the extra per-segment delay, in milliseconds. */
  readonly jitterMs: number;
  /** Link rate in bits per second; 0 means unlimited. */
  readonly bandwidthBps: number;
}

/**
 * Computes arrival times for segments sent over one direction of a shaped link.
 * @internal
 */
export class LinkShaper {
  /** When the link finishes serialising what it has been given so far. */
  private linkFreeAt = Number.NEGATIVE_INFINITY;
  /** Arrival time of the last segment scheduled; nothing may arrive before it. */
  private lastArrival = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly shape: LinkShape,
    private readonly random: SeededRandom,
  ) {}

  /**
   * Schedule a segment of `bytes` handed to the link at time `nowMs`; return
   * its arrival time in the same clock. Calls must come in sending order.
   * A 0-byte segment (end of stream) takes no link time but still waits for
   * latency, jitter and every segment ahead of it.
   */
  arrivalTime(bytes: number, nowMs: number): number {
    const { latencyMs, jitterMs, bandwidthBps } = this.shape;
    const start = Math.max(nowMs, this.linkFreeAt);
    const transmitMs = bandwidthBps > 0 ? (bytes * 8 * 1000) / bandwidthBps : 0;
    this.linkFreeAt = start + transmitMs;
    const jitter = jitterMs > 0 ? this.random.nextFloat() * jitterMs : 0;
    const arrival = Math.max(this.linkFreeAt + latencyMs + jitter, this.lastArrival);
    this.lastArrival = arrival;
    return arrival;
  }
}
