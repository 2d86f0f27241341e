/**
 * Canary waves: a run goes out to its targets in waves, one after the
 * other; after each wave the center looks at its failure rate and stops the
 * run (the rest `skipped`, reason `canary-stopped`) when it passes the
 * threshold. Pure functions, so the plan can be tested apart and stored.
 */
import { checkOption } from '../../../errors/check.js';

/**
 * Default wave spec: one agent, then a tenth of the fleet, then the rest.
 * @public
 */
export const DEFAULT_WAVES: readonly number[] = Object.freeze([1, 0.1]);

/** Default failure rate above which a wave stops the run. @public */
export const DEFAULT_FAILURE_THRESHOLD = 0.2;

/**
 * Check a wave spec: each entry is either a whole count (≥ 1) or a fraction
 * of the fleet (0 < f < 1).
 * @internal
 */
export function checkWaveSpec(spec: readonly number[], name = 'waves'): void {
  checkOption(Array.isArray(spec) && spec.length <= 1000, name, 'must be an array of at most 1000 wave sizes');
  for (const v of spec) {
    checkOption(
      typeof v === 'number' && Number.isFinite(v) && ((Number.isSafeInteger(v) && v >= 1) || (v > 0 && v < 1)),
      name,
      'entries must be whole counts ≥ 1 or fractions of the fleet between 0 and 1',
    );
  }
}

/**
 * The wave sizes for `total` targets: each spec entry in order (a fraction
 * is rounded up, so it is at least 1), as long as targets are left, then one
 * last wave with the rest. Sizes sum to `total`; no wave is empty.
 *
 * @example
 * ```ts
 * planWaves(50, [1, 0.1]);   // [1, 5, 44]
 * planWaves(3, [1, 0.1]);    // [1, 1, 1]
 * planWaves(10, []);         // [10]
 * ```
 * @public
 */
export function planWaves(total: number, spec: readonly number[] = DEFAULT_WAVES): number[] {
  checkOption(Number.isSafeInteger(total) && total >= 0, 'total', 'must be a whole number ≥ 0');
  checkWaveSpec(spec);
  const sizes: number[] = [];
  let left = total;
  for (const v of spec) {
    if (left === 0) break;
    const size = Math.min(left, v < 1 ? Math.max(1, Math.ceil(v * total)) : v);
    sizes.push(size);
    left -= size;
  }
  if (left > 0) sizes.push(left);
  return sizes;
}

/**
 * The wave each of `total` targets (in order) belongs to, for the plan `sizes`.
 * @internal
 */
export function waveOf(index: number, sizes: readonly number[]): number {
  let end = 0;
  for (let w = 0; w < sizes.length; w++) {
    end += sizes[w]!;
    if (index < end) return w;
  }
  return Math.max(0, sizes.length - 1);
}

/**
 * Whether a finished wave stops the run: its failure rate (failures / size)
 * is above `threshold`. A threshold of 1 never stops; 0 stops on the first
 * failure.
 * @public
 */
export function waveStops(failures: number, size: number, threshold: number): boolean {
  return size > 0 && failures / size > threshold;
}
