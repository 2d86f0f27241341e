/**
 * Readiness events for the socket API: the seed's `SOCK_EVENT` (paper §4.5.6),
 * which on Windows was a Win32 auto-reset event handed to
 * `WaitForSingleObject` / `WaitForMultipleObjects`.
 *
 * Semantics follow the Win32 auto-reset event:
 * - `set()` with waits pending releases exactly one of them (the oldest) and
 *   leaves the event unset; with none pending, the event stays set until a
 *   wait consumes it (or `reset()` clears it). Setting a set event changes
 *   nothing: signals do not count up.
 * - A wait on a set event returns at once and consumes the signal.
 *
 * Nothing polls: a wait is a promise resolved by `set()` or by its one timer,
 * and whichever comes first removes the wait from every event it was
 * registered on and clears the timer.
 */
import { checkOption } from '../errors/check.js';

/** One pending wait, registered on one or more events. */
interface Waiter {
  /** Called by the event that releases this wait; the signal is consumed. */
  release(source: SockEvent): void;
}

// Assigned in SockEvent's static block, the one place that can reach the
// events' private fields; waitForMultiple and SockEvent.wait share it.
let waitAny: (events: readonly SockEvent[], timeoutMs: number) => Promise<number>;

/**
 * An auto-reset event that signals readiness, like a Win32 auto-reset event
 * (the seed's `SOCK_EVENT`). A {@link SockIo} sets its event whenever it may
 * have become readable, writable or closed; many sockets can share one event
 * (see {@link SockIo.replaceEvent}), and {@link waitForMultiple} waits on
 * several events at once.
 *
 * A signal is a hint, not a promise of data: after a wake-up, call
 * `recvAsync` / `sendAsync` on the sockets it may concern until they return
 * {@link WOULD_BLOCK}, then wait again. No signal is lost, because the event
 * stays set until a wait consumes it.
 *
 * @example
 * ```ts
 * const ev = new SockEvent();
 * setTimeout(() => ev.set(), 10);
 * await ev.wait(1000); // true: set within the timeout, and now unset again
 * await ev.wait(0);    // false: nothing set, and 0 means "do not wait"
 * ```
 * @public
 */
export class SockEvent {
  #signaled = false;
  /** Pending waits, oldest first (a Set keeps insertion order). */
  readonly #waiters = new Set<Waiter>();

  static {
    waitAny = (events, timeoutMs) => {
      // Already set: consume the lowest-indexed one, as WaitForMultipleObjects does.
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (e.#signaled) {
          e.#signaled = false;
          return Promise.resolve(i);
        }
      }
      if (timeoutMs === 0) return Promise.resolve(-1);
      return new Promise<number>((resolve) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const unregister = (): void => {
          for (const e of events) e.#waiters.delete(waiter);
          if (timer !== undefined) clearTimeout(timer);
        };
        const waiter: Waiter = {
          release: (source) => {
            unregister();
            resolve(events.indexOf(source)); // the first index if listed twice
          },
        };
        for (const e of events) e.#waiters.add(waiter);
        if (timeoutMs !== Infinity) {
          timer = setTimeout(() => {
            unregister();
            resolve(-1);
          }, timeoutMs);
        }
      });
    };
  }

  /**
   * Signal the event: release the oldest pending wait, or, with none
   * pending, stay set until a wait consumes the signal.
   */
  set(): void {
    for (const w of this.#waiters) {
      // The released waiter removes itself from this and every other event.
      w.release(this);
      return;
    }
    this.#signaled = true;
  }

  /** Clear the signal without waking anyone. */
  reset(): void {
    this.#signaled = false;
  }

  /** True while the event is set and no wait has consumed the signal. */
  get isSet(): boolean {
    return this.#signaled;
  }

  /**
   * Waits pending on this event right now (including those of
   * {@link waitForMultiple}); for diagnostics and leak checks.
   */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Wait until the event is set, consuming the signal.
   *
   * @param timeoutMs - Longest wait in milliseconds: omitted or `Infinity`
   *   waits for ever; `0` only checks (Win32's `WaitForSingleObject(h, 0)`).
   *   Note that this differs from {@link SockIo.setTimeout}, where 0 means
   *   no timeout, as in the seed.
   * @returns true when the event was set, false when the timeout passed first.
   */
  async wait(timeoutMs?: number): Promise<boolean> {
    return (await waitAny([this], checkWaitTimeout(timeoutMs))) === 0;
  }
}

/** Node's timers overflow past 2^31 − 1 ms (about 24.8 days) and would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkWaitTimeout(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return Infinity;
  checkOption(
    typeof timeoutMs === 'number' && ((timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS) || timeoutMs === Infinity),
    'timeoutMs',
    `must be a number from 0 to ${MAX_TIMER_MS} (Infinity or omitted waits for ever)`,
  );
  return timeoutMs;
}

/**
 * Wait until any of `events` is set: the seed's use of
 * `WaitForMultipleObjects` / `select()` to serve many sockets from one loop.
 * The signal of the event that ends the wait is consumed; the others are left
 * as they are. When several are already set, the lowest index wins.
 *
 * @param events - One or more events; listing an event twice is allowed
 *   (its first index is reported).
 * @param timeoutMs - Longest wait in milliseconds: omitted or `Infinity`
 *   waits for ever; `0` only checks.
 * @returns The index in `events` of the event that was set, or -1 when the
 *   timeout passed first.
 *
 * @example
 * ```ts
 * // One loop serving many sockets, each with its own event.
 * const events = socks.map((s) => s.getEvent());
 * for (;;) {
 *   const i = await waitForMultiple(events, 5000);
 *   if (i < 0) continue; // idle
 *   const data = socks[i].recvAsync();
 *   if (data !== WOULD_BLOCK) handle(i, data);
 * }
 * ```
 * @public
 */
export async function waitForMultiple(events: readonly SockEvent[], timeoutMs?: number): Promise<number> {
  checkOption(Array.isArray(events) && events.length > 0, 'events', 'must be a non-empty array of SockEvent');
  checkOption(events.every((e) => e instanceof SockEvent), 'events', 'must contain only SockEvent objects');
  return waitAny(events.slice(), checkWaitTimeout(timeoutMs));
}
