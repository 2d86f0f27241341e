/**
 * Shared by the experiment scripts: a plain-text table printer and a flag
 * reader. The measurements themselves live in bench/relay-measure.ts, which
 * `npm run bench` uses too, so a table here and a bench line measure alike.
 */
import { parseArgs } from 'node:util';

/** Print rows under a header, each column as wide as its widest cell; numbers right-aligned. */
export function printTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const right = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: readonly string[]) => r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(line(cells[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
}

/** A number with about three significant digits. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/**
 * Read `--name value` flags with numeric (or string) defaults; `--help` prints them and exits.
 * @example const { servers } = flags('balancing.ts', { servers: 500 });
 */
export function flags<T extends Record<string, number | string>>(script: string, defaults: T): T {
  const options = Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({ options: { ...options, help: { type: 'boolean' } }, strict: true });
  if (values.help) {
    console.log(`usage: npx tsx examples/experiments/${script} ${Object.entries(defaults).map(([k, v]) => `[--${k} ${v}]`).join(' ')}`);
    process.exit(0);
  }
  const out: Record<string, number | string> = { ...defaults };
  for (const [k, d] of Object.entries(defaults)) {
    const v = (values as Record<string, unknown>)[k];
    if (typeof v !== 'string') continue;
    if (typeof d === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${k} must be a positive number, got ${JSON.stringify(v)}`);
      out[k] = n;
    } else out[k] = v;
  }
  return out as T;
}
