/**
 * The benchmark contract and the runner's arithmetic.
 *
 * A benchmark module is a file `bench/<area>.bench.ts` that exports
 * `figures`, a list of {@link Figure}s (build it with {@link defineFigures},
 * which checks it). `npm run bench` (scripts/bench.mjs) imports every such
 * module, runs the figures one after the other in one process, and prints one
 * line per figure:
 *
 * ```text
 * name: ours UNIT | baseline-name: theirs UNIT | ratio R | target T | met
 * ```
 *
 * A figure always measures ours and a baseline in the same run (DESIGN.md,
 * "How it is checked"), so the ratio is what compares across machines; the
 * absolute numbers only describe this one. `ratio` is always
 * `ours / baseline`, in the figure's unit, so for a `lower`-is-better unit
 * (latency) a ratio under 1 means we are faster.
 *
 * Benchmarks check before they time (STYLE.md §1): `run()` verifies that ours
 * and the baseline delivered the right bytes (or the right answer) and throws
 * otherwise; the runner then prints the failure instead of the figure.
 *
 * @example
 * ```ts
 * import { defineFigures, sideBySide } from './harness.js';
 * export const figures = defineFigures([{
 *   name: 'handshake x25519 1-RTT',
 *   unit: 'handshakes/s',
 *   target: { better: 'higher', ours: 2000, ratio: 0.5 },  // both must hold
 *   async run() {
 *     const m = await sideBySide(5, () => oursPerSecond(), () => tlsPerSecond());
 *     return { ...m, baselineName: 'node-tls-1.3' };
 *   },
 * }]);
 * ```
 */

/** Which direction is good for a figure's unit: throughput `higher`, latency `lower`. */
export type Better = 'higher' | 'lower';

/**
 * What a figure must reach. `ratio` bounds `ours / baseline`; `ours` bounds
 * our absolute value in the figure's unit (e.g. "handshakes/s ≥ 2000"). Give
 * one or both; when both are given, both must hold. `better` says which side
 * of each bound passes: `higher` means `≥`, `lower` means `≤`.
 */
export type Target =
  | { readonly better: Better; readonly ratio: number; readonly ours?: number }
  | { readonly better: Better; readonly ratio?: number; readonly ours: number };

/** What {@link Figure.run} measured: ours and the baseline, in the figure's unit. */
export interface Measurement {
  /** Our value, e.g. MB/s through the gateway relay. */
  readonly ours: number;
  /** The baseline's value in the same unit, measured in the same run. */
  readonly baseline: number;
  /** Short name of the baseline, printed before its value (`raw-loopback-tcp`). */
  readonly baselineName: string;
}

/** One benchmark figure: one line of `npm run bench` output. */
export interface Figure {
  /**
   * Unique name carrying the shape of the measurement
   * (`tcp-relay-pipe throughput 256MiB/64KiB`); `npm run bench -- NAME`
   * runs the figures whose name contains NAME.
   */
  readonly name: string;
  /** Unit of `ours` and `baseline`, printed after each (`MB/s`, `µs`, `handshakes/s`). */
  readonly unit: string;
  /** What the figure must reach to be `met`. */
  readonly target: Target;
  /**
   * Check, then measure ours and the baseline. Throws if either delivered
   * wrong results. Should bound itself in bytes and time (tens of seconds
   * at most) and talk only to 127.0.0.1.
   */
  run(): Promise<Measurement>;
}

/** A measured figure as printed, and as written by `--json FILE` (one array element). */
export interface FigureResult {
  readonly name: string;
  readonly unit: string;
  /** Our value. */
  readonly ours: number;
  /** The baseline's name. */
  readonly baseline: string;
  /** The baseline's value. */
  readonly baselineValue: number;
  /** `ours / baselineValue`. */
  readonly ratio: number;
  readonly target: Target;
  /** Whether every bound in `target` holds. */
  readonly met: boolean;
}

/** Check a benchmark module's figure list: names unique and non-empty, targets well formed. */
export function defineFigures(figures: readonly Figure[]): readonly Figure[] {
  const seen = new Set<string>();
  for (const f of figures) {
    if (typeof f.name !== 'string' || f.name.trim() === '' || f.name.includes('\n')) {
      throw new TypeError(`figure name must be a non-empty single line, got ${JSON.stringify(f.name)}`);
    }
    if (seen.has(f.name)) throw new TypeError(`duplicate figure name ${JSON.stringify(f.name)}`);
    seen.add(f.name);
    if (typeof f.unit !== 'string' || f.unit === '') throw new TypeError(`${f.name}: unit must be a non-empty string`);
    checkTarget(f.name, f.target);
    if (typeof f.run !== 'function') throw new TypeError(`${f.name}: run must be a function`);
  }
  return figures;
}

function checkTarget(name: string, t: Target): void {
  if (t === null || typeof t !== 'object') throw new TypeError(`${name}: target must be an object`);
  if (t.better !== 'higher' && t.better !== 'lower') throw new TypeError(`${name}: target.better must be 'higher' or 'lower'`);
  if (t.ratio === undefined && t.ours === undefined) throw new TypeError(`${name}: target needs ratio, ours or both`);
  for (const key of ['ratio', 'ours'] as const) {
    const v = t[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`${name}: target.${key} must be a positive number`);
  }
}

/** Compare a measurement with its figure's target. Throws on a non-finite or non-positive value. */
export function evaluate(figure: Figure, m: Measurement): FigureResult {
  for (const [key, v] of [['ours', m.ours], ['baseline', m.baseline]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${figure.name}: ${key} must be a positive number, got ${v}`);
  }
  const ratio = m.ours / m.baseline;
  const { better } = figure.target;
  const passes = (value: number, bound: number | undefined) =>
    bound === undefined || (better === 'higher' ? value >= bound : value <= bound);
  return {
    name: figure.name,
    unit: figure.unit,
    ours: m.ours,
    baseline: m.baselineName,
    baselineValue: m.baseline,
    ratio,
    target: figure.target,
    met: passes(ratio, figure.target.ratio) && passes(m.ours, figure.target.ours),
  };
}

/** A number with about three significant digits, no exponent for everyday magnitudes. */
export function formatNumber(x: number): string {
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** `ratio ≥ 0.50`, `≥ 2000 handshakes/s`, or both joined with `and`. */
export function formatTarget(t: Target, unit: string): string {
  const op = t.better === 'higher' ? '≥' : '≤';
  const parts: string[] = [];
  if (t.ratio !== undefined) parts.push(`ratio ${op} ${t.ratio.toFixed(2)}`);
  if (t.ours !== undefined) parts.push(`${op} ${formatNumber(t.ours)} ${unit}`);
  return parts.join(' and ');
}

/** The one output line of a figure. */
export function formatLine(r: FigureResult): string {
  return (
    `${r.name}: ${formatNumber(r.ours)} ${r.unit} | ${r.baseline}: ${formatNumber(r.baselineValue)} ${r.unit}` +
    ` | ratio ${r.ratio.toFixed(2)} | target ${formatTarget(r.target, r.unit)} | ${r.met ? 'met' : 'NOT met'}`
  );
}

/** Median of a non-empty list (mean of the middle two for an even length). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Measure ours and the baseline `rounds` times each, alternating which goes
 * first so drift (CPU frequency, GC, page cache) hits both alike, and return
 * the medians. Each callback returns one sample in the figure's unit.
 */
export async function sideBySide(
  rounds: number,
  ours: () => Promise<number>,
  baseline: () => Promise<number>,
): Promise<{ ours: number; baseline: number }> {
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new RangeError('rounds must be a positive integer');
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      a.push(await ours());
      b.push(await baseline());
    } else {
      b.push(await baseline());
      a.push(await ours());
    }
  }
  return { ours: median(a), baseline: median(b) };
}

/** Call `op` until about `ms` of wall time has passed: how many calls, and the exact wall time they took. */
export function timedLoop(op: () => void, ms: number): { calls: number; wallMs: number } {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    op();
    calls++;
    t = performance.now();
  } while (t - t0 < ms);
  return { calls, wallMs: t - t0 };
}
