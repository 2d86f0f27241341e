/**
 * Request suppression at a receiver (the seed's "retransmission request",
 * made to scale to a thousand receivers): when a repair pass ends, every
 * receiver still missing symbols waits a random time before it asks, and
 * one that hears another receiver's request covering all it misses stays
 * silent, because the sender answers the largest need it hears and fresh
 * repair symbols heal every receiver's own losses.
 *
 * Timing: the wait is uniform in `[0, backoffMs)`, with `backoffMs` a small
 * multiple of the group round-trip time (the sender announces both in its
 * round marker). A request takes about half an RTT to reach the others, so
 * with a window of two RTTs roughly the first quarter of the would-be
 * requesters ask before they hear each other: on the order of ln N + a few
 * requests per block per round for N receivers (docs/delivery.md, "Request
 * suppression").
 */
import type { Clock } from '../../transport/index.js';
import type { BlockNeed, PageRef } from './wire/index.js';

/** What a receiver lacks: symbols per block, and manifest pages. @internal */
export interface Wants {
  readonly needs: BlockNeed[];
  readonly pages: PageRef[];
  /**
   * Source symbols lacking in one block whose repair pool the sender has used
   * up: plain retransmission serves them, so a list like this is never
   * suppressed (another receiver's list says nothing about ours).
   */
  readonly lacking: { readonly sbn: number; readonly esis: number[] } | null;
}

/**
 * One receiver's request timer and what it heard from the others in the
 * current round.
 * @internal
 */
export class RequestScheduler {
  readonly #clock: Clock;
  readonly #random: () => number;
  /** Largest need heard per block this round, from other receivers. */
  readonly #heard = new Map<number, number>();
  /** Manifest pages (`sbn · 65536 + page`) another receiver asked for this round. */
  readonly #heardPages = new Set<number>();
  #timer: unknown;
  #round = -1;
  /** Requests this scheduler cancelled because others had asked. */
  suppressed = 0;

  constructor(clock: Clock, random: () => number) {
    this.#clock = clock;
    this.#random = random;
  }

  /** The round the scheduler is in (the last round marker seen), -1 before any. */
  get round(): number {
    return this.#round;
  }

  /** True while a request is waiting for its timer. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** A new round began: forget what was heard in the last one. */
  newRound(round: number): void {
    if (round !== this.#round) {
      this.#round = round;
      this.#heard.clear();
      this.#heardPages.clear();
    }
  }

  /** Another receiver asked for `needs` in `round`. */
  heard(round: number, needs: readonly BlockNeed[], pages: readonly PageRef[]): void {
    if (round !== this.#round) return;
    for (const n of needs) if (n.need > (this.#heard.get(n.sbn) ?? -1)) this.#heard.set(n.sbn, n.need);
    for (const p of pages) this.#heardPages.add(p.sbn * 0x10000 + p.page);
  }

  /**
   * Arm the timer (if not armed): after a uniform random wait in
   * `[0, backoffMs)`, `fire` gets what is still not covered by what was
   * heard (an empty list means the request was suppressed).
   */
  arm(backoffMs: number, wants: () => Wants, fire: (uncovered: Wants) => void): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, backoffMs) * this.#random();
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      const all = wants();
      const lackingSbn = all.lacking?.sbn;
      const uncovered: Wants = {
        needs: all.needs.filter((n) => n.sbn === lackingSbn || n.need > (this.#heard.get(n.sbn) ?? -1)),
        pages: all.pages.filter((p) => !this.#heardPages.has(p.sbn * 0x10000 + p.page)),
        lacking: all.lacking,
      };
      if (uncovered.needs.length + uncovered.pages.length === 0 && all.needs.length + all.pages.length > 0) this.suppressed++;
      fire(uncovered);
    }, wait);
  }

  /** Stop the timer. */
  cancel(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}
