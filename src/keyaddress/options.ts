/**
 * Options shared by the key-address client and server: one interface with a
 * doc per field, a frozen defaults object, and one verify function each
 * constructor calls (STYLE.md §3).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ConfigError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import { parsePrefix, type KeyAddressPrefix } from './address.js';
import { EPOCH_COUNT } from './generator.js';

/**
 * Options both ends must agree on (the first three), plus local ones.
 * @public
 */
export interface KeyAddressOptions {
  /** The server's /64, e.g. `2001:db8:1:2::/64`. Both ends must use the same one. */
  readonly prefix: string;
  /**
   * Length of an epoch (the time resync interval) in ms; both ends must agree.
   * Default 3,600,000 (1 hour). At least 1,000.
   */
  readonly epochMs?: number;
  /** Unix time in ms where epoch 0 starts; both ends must agree. Default 0. */
  readonly originMs?: number;
  /** The clock, Unix ms. Default `Date.now`. Tests pass their own. */
  readonly now?: () => number;
  /**
   * Labels of the per-position secrets every produced position carries
   * (`slot(t, n, label)`, 32 bytes each), e.g. for a relay PCID. Default none.
   */
  readonly slots?: readonly string[];
}

/**
 * Server-only options.
 * @public
 */
export interface KeyAddressServerOptions extends KeyAddressOptions {
  /**
   * Look-ahead window: the server accepts positions pos … pos + window − 1 of
   * an epoch, so up to window − 1 failed client attempts in a row do not lock
   * the client out. Default 8; 1..1024.
   */
  readonly window?: number;
  /**
   * Clock skew tolerated across an epoch boundary, in ms: the previous
   * epoch's window stays accepted for skewMs after a boundary and the next
   * epoch's is accepted from skewMs before it. Default 120,000 (2 minutes),
   * or epochMs / 2 when that is less; 0 ≤ skewMs ≤ epochMs / 2.
   */
  readonly skewMs?: number;
  /**
   * Positions beyond the window the server still recognises, so that it
   * answers `outside-window` (and retires the address) rather than
   * `unknown`. Default 32; 0..4096.
   */
  readonly recognizeAhead?: number;
  /**
   * How many recently retired addresses the server remembers in memory (never
   * in its exported state) to answer `retired` rather than `unknown`. A
   * captured running process reveals at most these. Default 64; 0 disables.
   */
  readonly retiredMemory?: number;
}

/**
 * Defaults of every optional field (the KDF's are {@link KEYADDRESS_KDF_DEFAULTS}).
 * @public
 */
export const KEYADDRESS_DEFAULTS = Object.freeze({
  epochMs: 3_600_000,
  originMs: 0,
  skewMs: 120_000,
  window: 8,
  recognizeAhead: 32,
  retiredMemory: 64,
});

/** Options after checking, with defaults filled in. @internal */
export interface ResolvedOptions {
  readonly prefix: KeyAddressPrefix;
  readonly epochMs: number;
  readonly originMs: number;
  readonly now: () => number;
  readonly slots: readonly string[];
  readonly window: number;
  readonly skewMs: number;
  readonly recognizeAhead: number;
  readonly retiredMemory: number;
  /** 8 bytes naming (prefix, epochMs, originMs): stored states must match it. */
  readonly fingerprint: Uint8Array;
}

const intIn = (v: number, lo: number, hi: number) => Number.isSafeInteger(v) && v >= lo && v <= hi;

/** Check options by name and fill defaults. @internal */
export function resolveOptions(o: KeyAddressServerOptions): ResolvedOptions {
  checkOption(o !== null && typeof o === 'object', 'options', 'must be an object');
  const prefix = parsePrefix(o.prefix);
  const d = KEYADDRESS_DEFAULTS;
  const epochMs = o.epochMs ?? d.epochMs;
  checkOption(intIn(epochMs, 1000, 2 ** 40), 'epochMs', 'must be an integer ≥ 1000 (ms)');
  const originMs = o.originMs ?? d.originMs;
  checkOption(Number.isSafeInteger(originMs), 'originMs', 'must be an integer (Unix ms)');
  const now = o.now ?? Date.now;
  checkOption(typeof now === 'function', 'now', 'must be a function returning Unix ms');
  const slots = o.slots ?? [];
  checkOption(Array.isArray(slots) && slots.every((s) => typeof s === 'string' && s.length > 0), 'slots', 'must be an array of non-empty strings');
  const window = o.window ?? d.window;
  checkOption(intIn(window, 1, 1024), 'window', 'must be an integer in 1..1024');
  const skewMs = o.skewMs ?? Math.min(d.skewMs, Math.floor(epochMs / 2));
  checkOption(intIn(skewMs, 0, Math.floor(epochMs / 2)), 'skewMs', 'must be an integer in 0..epochMs/2 (ms)');
  const recognizeAhead = o.recognizeAhead ?? d.recognizeAhead;
  checkOption(intIn(recognizeAhead, 0, 4096), 'recognizeAhead', 'must be an integer in 0..4096');
  const retiredMemory = o.retiredMemory ?? d.retiredMemory;
  checkOption(intIn(retiredMemory, 0, 65536), 'retiredMemory', 'must be an integer in 0..65536');
  const fingerprint = sha256(new TextEncoder().encode(`gs-ka options v1\0${prefix.text}\0${epochMs}\0${originMs}`)).slice(0, 8);
  return { prefix, epochMs, originMs, now, slots: [...slots], window, skewMs, recognizeAhead, retiredMemory, fingerprint };
}

/**
 * The epoch a Unix time falls in: floor((unixMs − originMs) / epochMs).
 * @throws ConfigError `GS_ERR_INVALID_OPTION` for a time before `originMs` or past epoch 2^32 − 1.
 * @public
 */
export function epochOf(unixMs: number, epochMs: number = KEYADDRESS_DEFAULTS.epochMs, originMs: number = KEYADDRESS_DEFAULTS.originMs): number {
  if (!Number.isFinite(unixMs)) throw new ConfigError('GS_ERR_INVALID_OPTION', `now() returned ${unixMs}, not a time`);
  const t = Math.floor((unixMs - originMs) / epochMs);
  if (!(t >= 0 && t < EPOCH_COUNT)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `time ${unixMs} is outside the epochs of originMs ${originMs}, epochMs ${epochMs} (epoch ${t})`);
  }
  return t;
}

/**
 * Unix ms at which epoch t starts.
 * @public
 */
export function epochStart(t: number, epochMs: number = KEYADDRESS_DEFAULTS.epochMs, originMs: number = KEYADDRESS_DEFAULTS.originMs): number {
  return originMs + t * epochMs;
}
