/**
 * Exponential backoff with full jitter (each delay uniform in
 * [0, min(max, first × 2^attempt)]), so that a thousand servers that lost
 * the same gateway do not come back to the controller in the same second.
 */
import { checkOption } from '../errors/check.js';

/**
 * Backoff settings.
 * @public
 */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. Default 250. */
  firstMs?: number;
  /** Largest delay, in ms. Default 10000. */
  maxMs?: number;
}

/**
 * Defaults of {@link BackoffOptions}.
 * @public
 */
export const DEFAULT_BACKOFF = Object.freeze({ firstMs: 250, maxMs: 10_000 });

export class Backoff {
  private attempt = 0;
  private readonly firstMs: number;
  private readonly maxMs: number;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.firstMs = options.firstMs ?? DEFAULT_BACKOFF.firstMs;
    this.maxMs = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
    checkOption(Number.isFinite(this.firstMs) && this.firstMs >= 0, 'backoff.firstMs', 'must be ≥ 0');
    checkOption(Number.isFinite(this.maxMs) && this.maxMs >= this.firstMs, 'backoff.maxMs', 'must be ≥ firstMs');
  }

  /** The next delay, in ms. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.firstMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** After a success: start from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }
}

/** Resolve after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
