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
  private readonly heap: SimEvent[] = [];
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
    return this.heap.length;
  }

  /** Virtual time of the next event, or undefined when none is queued. */
  get nextEventAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /**
   * Put `ev` in the queue, due at virtual time `at` (times in the past count
   * as now). `ev` must not already be queued.
   */
  schedule(ev: SimEvent, at: number): void {
    checkOption(ev.heapIndex === -1, 'event', 'is already scheduled');
    ev.at = at < this.time ? this.time : at;
    ev.seq = this.nextSeq++;
    const heap = this.heap;
    ev.heapIndex = heap.length;
    heap.push(ev);
    this.up(ev.heapIndex);
  }

  /** Remove `ev` from the queue if it is there. */
  cancel(ev: SimEvent): void {
    const i = ev.heapIndex;
    const heap = this.heap;
    if (i < 0 || heap[i] !== ev) return;
    ev.heapIndex = -1;
    const last = heap.pop()!;
    if (i < heap.length) {
      heap[i] = last;
      last.heapIndex = i;
      this.down(i);
      this.up(last.heapIndex);
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
      const heap = this.heap;
      for (;;) {
        if (events >= maxEvents) return { outcome: 'event-limit', events, now: this.time };
        const ev = heap[0];
        if (ev === undefined) return { outcome: 'idle', events, now: this.time };
        if (ev.at > limit) {
          this.time = limit;
          return { outcome: 'time-limit', events, now: this.time };
        }
        this.popTop();
        this.time = ev.at;
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
      const heap = this.heap;
      for (;;) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (until?.() === true) return { outcome: 'condition', events, now: this.time };
        if (events >= maxEvents) return { outcome: 'event-limit', events, now: this.time };
        const first = heap[0];
        if (first === undefined) return { outcome: 'idle', events, now: this.time };
        if (first.at > limit) {
          this.time = limit;
          return { outcome: 'time-limit', events, now: this.time };
        }
        // Every event due at this instant, then turn the event loop.
        const at = first.at;
        this.time = at;
        while (heap[0] !== undefined && heap[0].at === at && events < maxEvents) {
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
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    top.heapIndex = -1;
    if (last !== top) {
      heap[0] = last;
      last.heapIndex = 0;
      this.down(0);
    }
    return top;
  }

  private static less(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private up(i: number): void {
    const heap = this.heap;
    const ev = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!VirtualClock.less(ev, parent)) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    heap[i] = ev;
    ev.heapIndex = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const ev = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && VirtualClock.less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!VirtualClock.less(child, ev)) break;
      heap[i] = child;
      child.heapIndex = i;
      i = c;
    }
    heap[i] = ev;
    ev.heapIndex = i;
  }
}
