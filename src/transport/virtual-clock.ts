/**
 * A discrete-event scheduler with virtual time: a {@link Clock} whose
 * `now()` only moves when {@link VirtualClock.run} takes the next event, so a
 * simulation of minutes of protocol time runs as fast as the CPU allows, and
 * the same inputs give the same trace.
 *
 * Events are kept in one binary min-heap ordered by (time, insertion number),
 * so events due at the same virtual time fire in the order they were
 * scheduled. Each event knows its heap position, so `clearTimer` removes it
 * in O(log n) instead of leaving a dead entry behind (protocols re-arm
 * retransmission timers constantly). The simulated network puts its
 * datagram deliveries in the same heap as records it reuses, not closures.
 */
import { checkOption } from '../errors/check.js';
import type { Clock } from './clock.js';

/**
 * An event for {@link VirtualClock.schedule}: subclass it and implement
 * `fire()`. For simulations that schedule very many events (the simulated
 * network's deliveries) and want to reuse event records instead of making a
 * closure per event as `setTimer` does. A record may be scheduled again once
 * it has fired or been cancelled.
 * @public
 */
export abstract class SimEvent {
  /** Virtual time (ms) the event is due; set by `schedule`. */
  at = 0;
  /** Insertion number: orders events due at the same time. Managed by the clock. */
  seq = 0;
  /** Position in the clock's heap, or -1 when not queued. Managed by the clock. */
  heapIndex = -1;
  /** Run the event. Called once, after it left the heap. */
  abstract fire(): void;
}

class TimerEvent extends SimEvent {
  constructor(private readonly fn: () => void) {
    super();
  }
  fire(): void {
    this.fn();
  }
}

/**
 * Why {@link VirtualClock.run} returned.
 * - `condition`: `until()` returned true;
 * - `idle`: no events remain (nothing can happen any more);
 * - `time-limit`: the next event is later than the virtual-time limit (time
 *   stops at the limit);
 * - `event-limit`: `maxEvents` events ran (a guard against protocols that
 *   re-arm zero-delay timers forever, which never advance time).
 * @public
 */
export type RunOutcome = 'condition' | 'idle' | 'time-limit' | 'event-limit';

/**
 * Options of {@link VirtualClock.run}.
 * @public
 */
export interface RunOptions {
  /** Stop as soon as this returns true; checked before the first event and after each one. */
  until?: () => boolean;
  /**
   * Virtual milliseconds to run for, from the current virtual time. Events due
   * later stay queued and time stops at the limit. Default 3 600 000 (one
   * virtual hour).
   */
  maxTimeMs?: number;
  /** Most events to run. Default 100 000 000. */
  maxEvents?: number;
}

/**
 * What {@link VirtualClock.run} did.
 * @public
 */
export interface RunResult {
  /** Why it stopped. */
  readonly outcome: RunOutcome;
  /** Events run. */
  readonly events: number;
  /** Virtual time when it stopped, in ms. */
  readonly now: number;
}

const DEFAULT_MAX_TIME_MS = 3_600_000;
const DEFAULT_MAX_EVENTS = 100_000_000;

/**
 * A {@link Clock} on virtual time, and the event scheduler that moves it.
 *
 * Timers set with `setTimer(fn, ms)` fire during {@link VirtualClock.run} (or
 * {@link VirtualClock.runAsync}) when virtual time reaches them; nothing runs
 * on its own. Virtual time starts at 0 and never goes backwards. Negative or
 * non-finite delays count as 0.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock();
 * let fired = 0;
 * clock.setTimer(() => fired++, 1000);
 * clock.run({ until: () => fired > 0 }); // { outcome: 'condition', now: 1000, ... }
 * ```
 * @public
 */
export class VirtualClock implements Clock {
  private time = 0;
  private nextSeq = 0;
  // The heap: events, and their keys (due time, insertion number) in typed
  // arrays in the same order, so sifting compares contiguous numbers instead
  // of reading scattered event objects (the heap holds ~10^5 deliveries when
  // a thousand receivers each have a few datagrams in flight).
  private items: (SimEvent | undefined)[] = [];
  private ats = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private size = 0;
  private running = false;

  /** Current virtual time in milliseconds. */
  now(): number {
    return this.time;
  }

  /** Call `fn` when virtual time has advanced by `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown {
    const ev = new TimerEvent(fn);
    this.schedule(ev, this.time + (ms > 0 && Number.isFinite(ms) ? ms : 0));
    return ev;
  }

  /** Cancel a timer; a handle that already fired, or is not a timer of this clock, is ignored. */
  clearTimer(handle: unknown): void {
    if (handle instanceof TimerEvent) this.cancel(handle);
  }

  /** Events waiting. */
  get pending(): number {
    return this.size;
  }

  /** Virtual time of the next event, or undefined when none is queued. */
  get nextEventAt(): number | undefined {
    return this.size > 0 ? this.ats[0] : undefined;
  }

  /**
   * Put `ev` in the queue, due at virtual time `at` (times in the past count
   * as now). `ev` must not already be queued.
   */
  schedule(ev: SimEvent, at: number): void {
    checkOption(ev.heapIndex === -1, 'event', 'is already scheduled');
    const due = at < this.time ? this.time : at;
    const seq = this.nextSeq++;
    ev.at = due;
    ev.seq = seq;
    if (this.size === this.ats.length) this.grow();
    this.up(this.size++, ev, due, seq);
  }

  /** Remove `ev` from the queue if it is there. */
  cancel(ev: SimEvent): void {
    const i = ev.heapIndex;
    if (i < 0 || this.items[i] !== ev) return;
    ev.heapIndex = -1;
    const n = --this.size;
    const last = this.items[n]!;
    const at = this.ats[n]!;
    const seq = this.seqs[n]!;
    this.items[n] = undefined;
    if (i < n) {
      this.down(i, last, at, seq);
      if (last.heapIndex === i) this.up(i, last, at, seq);
    }
  }

  /**
   * Run events in time order, advancing virtual time as fast as the CPU
   * allows, until `until()` holds, no events remain, the virtual-time limit
   * passes, or `maxEvents` ran. Synchronous: promises that handlers start do
   * not settle in between (use {@link VirtualClock.runAsync} for handlers
   * that await). Not re-entrant.
   */
  run(options: RunOptions = {}): RunResult {
    const { until, limit, maxEvents } = this.checkRun(options);
    this.running = true;
    let events = 0;
    try {
      if (until?.() === true) return { outcome: 'condition', events, now: this.time };
      for (;;) {
        if (events >= maxEvents) return { outcome: 'event-limit', events, now: this.time };
        if (this.size === 0) return { outcome: 'idle', events, now: this.time };
        const at = this.ats[0]!;
        if (at > limit) {
          this.time = limit;
          return { outcome: 'time-limit', events, now: this.time };
        }
        const ev = this.popTop();
        this.time = at;
        events++;
        ev.fire();
        if (until?.() === true) return { outcome: 'condition', events, now: this.time };
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * {@link VirtualClock.run} for handlers that await: before virtual time
   * moves to a later instant, it lets the event loop turn once
   * (`setImmediate`), so promises started by events at the current instant
   * settle (and may schedule more) at that instant. Slower than `run` by the
   * cost of one event-loop turn per distinct event time.
   */
  async runAsync(options: RunOptions = {}): Promise<RunResult> {
    const { until, limit, maxEvents } = this.checkRun(options);
    this.running = true;
    let events = 0;
    try {
      for (;;) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (until?.() === true) return { outcome: 'condition', events, now: this.time };
        if (events >= maxEvents) return { outcome: 'event-limit', events, now: this.time };
        if (this.size === 0) return { outcome: 'idle', events, now: this.time };
        const at = this.ats[0]!;
        if (at > limit) {
          this.time = limit;
          return { outcome: 'time-limit', events, now: this.time };
        }
        // Every event due at this instant, then turn the event loop.
        this.time = at;
        while (this.size > 0 && this.ats[0] === at && events < maxEvents) {
          const ev = this.popTop();
          events++;
          ev.fire();
          if (until?.() === true) return { outcome: 'condition', events, now: this.time };
        }
      }
    } finally {
      this.running = false;
    }
  }

  private checkRun(options: RunOptions): { until: (() => boolean) | undefined; limit: number; maxEvents: number } {
    checkOption(!this.running, 'run', 'is already running on this clock (run is not re-entrant)');
    const maxTimeMs = options.maxTimeMs ?? DEFAULT_MAX_TIME_MS;
    const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    checkOption(typeof maxTimeMs === 'number' && maxTimeMs >= 0 && !Number.isNaN(maxTimeMs), 'maxTimeMs', 'must be a number ≥ 0');
    checkOption(Number.isInteger(maxEvents) && maxEvents >= 0, 'maxEvents', 'must be an integer ≥ 0');
    checkOption(options.until === undefined || typeof options.until === 'function', 'until', 'must be a function');
    return { until: options.until, limit: this.time + maxTimeMs, maxEvents };
  }

  private popTop(): SimEvent {
    const top = this.items[0]!;
    top.heapIndex = -1;
    const n = --this.size;
    const last = this.items[n]!;
    this.items[n] = undefined;
    if (n > 0) this.down(0, last, this.ats[n]!, this.seqs[n]!);
    return top;
  }

  private grow(): void {
    const ats = new Float64Array(this.ats.length * 2);
    const seqs = new Float64Array(this.seqs.length * 2);
    ats.set(this.ats);
    seqs.set(this.seqs);
    this.ats = ats;
    this.seqs = seqs;
  }

  /** Put `ev` (keys `at`, `seq`) at hole `i` or above it. */
  private up(i: number, ev: SimEvent, at: number, seq: number): void {
    const { items, ats, seqs } = this;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pAt = ats[p]!;
      if (at > pAt || (at === pAt && seq > seqs[p]!)) break;
      const parent = items[p]!;
      items[i] = parent;
      ats[i] = pAt;
      seqs[i] = seqs[p]!;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = ev;
    ats[i] = at;
    seqs[i] = seq;
    ev.heapIndex = i;
  }

  /** Put `ev` (keys `at`, `seq`) at hole `i` or below it. */
  private down(i: number, ev: SimEvent, at: number, seq: number): void {
    const { items, ats, seqs } = this;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let cAt = ats[c]!;
      const r = c + 1;
      if (r < n) {
        const rAt = ats[r]!;
        if (rAt < cAt || (rAt === cAt && seqs[r]! < seqs[c]!)) {
          c = r;
          cAt = rAt;
        }
      }
      if (at < cAt || (at === cAt && seq < seqs[c]!)) break;
      const child = items[c]!;
      items[i] = child;
      ats[i] = cAt;
      seqs[i] = seqs[c]!;
      child.heapIndex = i;
      i = c;
    }
    items[i] = ev;
    ats[i] = at;
    seqs[i] = seq;
    ev.heapIndex = i;
  }
}
