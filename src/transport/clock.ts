/**
 * The time source and timers every timed protocol in gatesock takes as an
 * option: the multiplexed session's keepalives, the multicast updater's
 * rounds and backoffs, the simulated network's delays. Production code uses
 * {@link systemClock}; tests and simulations pass a manual or virtual clock
 * so time-dependent behaviour runs deterministically and faster than real
 * time.
 */

/**
 * Time source and timers. The default reads `performance.now()` and uses
 * unref'd Node timers; tests pass a manual clock.
 * @public
 */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Call `fn` after `ms` milliseconds; return a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancel a timer from `setTimer` (a handle already fired is ignored). */
  clearTimer(handle: unknown): void;
}

/**
 * The process clock: `performance.now()` and timers that do not keep the
 * process alive.
 * @public
 */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimer(fn: () => void, ms: number): unknown {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimer(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
});
