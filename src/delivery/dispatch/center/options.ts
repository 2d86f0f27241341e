/**
 * What a dispatch is asked to do: {@link DispatchOptions}, their defaults
 * and the checks that turn them into the stored form (bad input fails the
 * call with a `ConfigError` naming the option, before anything is stored).
 */
import { checkOption } from '../../../errors/check.js';
import { MAX_TARGET_ARGS, MAX_TARGET_ARGS_TOTAL_BYTES, MAX_TARGET_ARG_BYTES, type Digest } from '../wire/index.js';
import type { AgentRef } from './connector.js';
import type { StoredDispatchOptions } from './store.js';
import { DEFAULT_FAILURE_THRESHOLD, DEFAULT_WAVES, checkWaveSpec } from './waves.js';

/**
 * Defaults of {@link DispatchOptions}.
 * @public
 */
export const DISPATCH_DEFAULTS = Object.freeze({
  concurrency: 64,
  waves: DEFAULT_WAVES,
  failureThreshold: DEFAULT_FAILURE_THRESHOLD,
  retries: 3,
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 15_000,
  inlineMaxBytes: 1024 * 1024,
  /** Added to the bundle's `timeoutMs` to get the report wait when `timeoutMs` is not given. */
  reportMarginMs: 10_000,
  /** How long a re-attempt waits for the report of an order issued before, before issuing a new one. */
  reissueGraceMs: 2_000,
});

/**
 * What to dispatch, to whom, and how.
 * @public
 */
export interface DispatchOptions {
  /** Digest of a bundle this center created or added. */
  bundle: Digest;
  /** The agents; each MSID once. */
  agents: readonly AgentRef[];
  /** Most agents worked on at once in this dispatch. Default 64. */
  concurrency?: number;
  /** Canary waves: whole counts or fractions of the fleet; the rest is one last wave. Default `[1, 0.1]`. */
  waves?: readonly number[];
  /** A wave whose failure rate is above this stops the dispatch (the rest `skipped`). Default 0.2. */
  failureThreshold?: number;
  /** Attempts after the first for an agent that cannot be reached or drops the connection. Default 3. */
  retries?: number;
  /** First retry delay, ms (doubles each time, with jitter). Default 1000. */
  backoffMs?: number;
  /** Largest retry delay, ms. Default 30 000. */
  maxBackoffMs?: number;
  /** How long to wait for the report after the order, ms. Default: the bundle's `timeoutMs` + 10 000. */
  timeoutMs?: number;
  /** How long to wait for a connection and the agent's hello, ms. Default 15 000. */
  connectTimeoutMs?: number;
  /** Bundles up to this size travel inline with the order; bigger ones the agent fetches. Default 1 MiB. */
  inlineMaxBytes?: number;
  /** Target arguments; `null` or absent: the bundle's. */
  args?: readonly string[] | null;
}

/** MSIDs are kept in canonical form: `MSID-` + upper-case hex. @internal */
export function canonical(msid: string): string {
  return msid.toUpperCase();
}

const MSID_RE = /^MSID-[0-9A-F]{64}$/;

/** The agents of a dispatch, checked (each a machine ID once, with a PCID) and in canonical form. @internal */
export function checkAgents(agents: unknown): AgentRef[] {
  checkOption(Array.isArray(agents) && agents.length > 0, 'agents', 'must be a non-empty array of { msid, pcid }');
  const seen = new Set<string>();
  return (agents as unknown[]).map((a, i) => {
    const ref = a as Partial<AgentRef> | null;
    checkOption(typeof ref === 'object' && ref !== null && typeof ref.msid === 'string' && MSID_RE.test(ref.msid.toUpperCase()), `agents[${i}].msid`, 'must be a machine ID (MSID- and 64 hex digits)');
    checkOption(typeof ref.pcid === 'string' && ref.pcid.length > 0 && ref.pcid.length <= 31, `agents[${i}].pcid`, 'must be a PCID');
    const msid = canonical(ref.msid);
    checkOption(!seen.has(msid), `agents[${i}].msid`, 'appears twice');
    seen.add(msid);
    return { msid, pcid: ref.pcid };
  });
}

/** Target arguments, checked against the binding's limits here, so that a bad list fails the call and not every order. @internal */
export function checkArgs(args: unknown): string[] | null {
  if (args === undefined || args === null) return null;
  checkOption(Array.isArray(args) && args.length <= MAX_TARGET_ARGS, 'args', `must be an array of at most ${MAX_TARGET_ARGS} strings, or null`);
  let total = 0;
  for (const a of args as unknown[]) {
    checkOption(typeof a === 'string' && !a.includes('\0'), 'args', 'entries must be strings without NUL');
    const n = Buffer.byteLength(a, 'utf8');
    total += n;
    checkOption(n <= MAX_TARGET_ARG_BYTES, 'args', `entries must be at most ${MAX_TARGET_ARG_BYTES} bytes`);
  }
  checkOption(total <= MAX_TARGET_ARGS_TOTAL_BYTES, 'args', `must be at most ${MAX_TARGET_ARGS_TOTAL_BYTES} bytes together`);
  return [...(args as string[])];
}

/** The options as stored with the dispatch: defaults filled in, each checked. @internal */
export function storedOptions(o: DispatchOptions): StoredDispatchOptions {
  const d = DISPATCH_DEFAULTS;
  const int = (v: unknown, name: string, min: number, dflt: number): number => {
    if (v === undefined) return dflt;
    checkOption(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= 2 ** 31 - 1, name, `must be a whole number from ${min} to ${2 ** 31 - 1}`);
    return v as number;
  };
  const waves = o.waves === undefined ? [...d.waves] : [...o.waves];
  checkWaveSpec(waves);
  const threshold = o.failureThreshold ?? d.failureThreshold;
  checkOption(typeof threshold === 'number' && threshold >= 0 && threshold <= 1, 'failureThreshold', 'must be a number from 0 to 1');
  const backoffMs = int(o.backoffMs, 'backoffMs', 0, d.backoffMs);
  const maxBackoffMs = int(o.maxBackoffMs, 'maxBackoffMs', 0, Math.max(d.maxBackoffMs, backoffMs));
  checkOption(maxBackoffMs >= backoffMs, 'maxBackoffMs', 'must be ≥ backoffMs');
  return {
    concurrency: int(o.concurrency, 'concurrency', 1, d.concurrency),
    waves,
    failureThreshold: threshold,
    retries: int(o.retries, 'retries', 0, d.retries),
    backoffMs,
    maxBackoffMs,
    timeoutMs: o.timeoutMs === undefined ? null : int(o.timeoutMs, 'timeoutMs', 1, 0),
    connectTimeoutMs: int(o.connectTimeoutMs, 'connectTimeoutMs', 1, d.connectTimeoutMs),
    inlineMaxBytes: int(o.inlineMaxBytes, 'inlineMaxBytes', 0, d.inlineMaxBytes),
  };
}
