/**
 * The evidence log (docs/dispatch.md, "Evidence log"): append-only JSON
 * lines, hash-chained and signed by the center, that anyone holding the
 * center's public key can verify offline, and the signed head beside it
 * that makes lines cut off the end detectable.
 *
 * ```text
 * {"seq":0,"prev":"000…000","at":1800000000000,"kind":"log","data":{"format":"gatesock-evidence-log-v2"},"sig":"<86 base64url>"}\n
 * {"seq":1,"prev":"<sha256 hex of line 0's bytes>","at":…,"kind":"bundle","data":{…},"sig":"…"}\n
 *
 * prev   = SHA-256 of the previous line's UTF-8 bytes (without its "\n"), 64 lowercase hex;
 *          64 zeros for the first line
 * signed = "gatesock-dispatch-log-v1\n" ‖ {"seq","prev","at","kind","data"} (canonical JSON)
 * sig    = the center's Ed25519 signature of `signed`, unpadded base64url
 * ```
 *
 * Each line is canonical: it must equal `JSON.stringify` of what it
 * parses to (which fixes the key order of `data` too, as JSON.parse
 * preserves it). Kinds: `log`, `bundle`, `dispatch`, `issued`, `result`,
 * `failure`; `data` is any JSON object the center chooses (the verifier
 * checks only that it is one), except for `log`, whose data is exactly
 * `{"format":"gatesock-evidence-log-v2"}`. The file ends with a line feed;
 * a missing final line feed is a torn write and fails verification at that line.
 *
 * Versions. A log whose lines include a `log` line is version 2: from
 * that line on the center keeps a signed **head** in the file `LOG.head`,
 * replaced atomically (write `LOG.head.tmp`, rename) once the lines of a
 * burst of appends are written:
 *
 * ```text
 * {"format":"gatesock-log-head-v1","entries":N,"hash":"<64 hex>","at":…,"sig":"<86 base64url>"}\n
 *
 * entries = lines in the log when the head was taken; hash = SHA-256 of line N's bytes
 *           (the `prev` the next line will carry; 64 zeros when N = 0)
 * signed  = "gatesock-dispatch-log-head-v1\n" ‖ {"format","entries","hash","at"} (canonical JSON)
 * ```
 *
 * A log without a `log` line is version 1 (written before heads existed);
 * it verifies as before, and a center that opens one appends the `log` line
 * and keeps a head from then on. Lines cut off the end of a log are found
 * only against a head: the one beside it, or better one kept elsewhere
 * (text form `N/hash`, {@link formatLogHead}).
 */
import { open as openFile, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { getCryptoBackend, type IdentityKey } from '../../../session/index.js';
import { checkHex, checkInt, checkPublicKey, concat, fromBase64url, toBase64url, toHex, utf8, verifyEd25519 } from './common.js';

/**
 * What a log line records. `log` says the log's format (version 2: it keeps a head).
 * @public
 */
export type LogKind = 'log' | 'bundle' | 'dispatch' | 'issued' | 'result' | 'failure';

/**
 * One line of the evidence log.
 * @public
 */
export interface LogEntry {
  /** 0 for the first line, then one more per line. */
  seq: number;
  /** SHA-256 of the previous line's bytes, 64 lowercase hex (64 zeros for the first line). */
  prev: string;
  /** When it was appended, ms since the epoch. */
  at: number;
  /** What happened. */
  kind: LogKind;
  /** The facts of the entry, by kind. */
  data: Record<string, unknown>;
  /** The center's signature, unpadded base64url. */
  sig: string;
}

/** Context string of a log line signature. @public */
export const LOG_CONTEXT = 'gatesock-dispatch-log-v1\n';
/** Every {@link LogKind}. @public */
export const LOG_KINDS: readonly LogKind[] = Object.freeze(['log', 'bundle', 'dispatch', 'issued', 'result', 'failure']);
/** Most UTF-8 bytes of one log line. @public */
export const MAX_LOG_LINE_BYTES = 1024 * 1024;
/** `prev` of the first line. @public */
export const LOG_GENESIS = '0'.repeat(64);
/** `data.format` of a `log` line: the log keeps a signed head beside it. @public */
export const LOG_FORMAT = 'gatesock-evidence-log-v2';
/** Context string of a log head signature. @public */
export const LOG_HEAD_CONTEXT = 'gatesock-dispatch-log-head-v1\n';
/** `format` of a log head. @public */
export const LOG_HEAD_FORMAT = 'gatesock-log-head-v1';

/**
 * Where a log ends: how many lines it has, and the SHA-256 (64 lowercase
 * hex) of the last one ({@link LOG_GENESIS} for none). Text form `N/hash`
 * ({@link formatLogHead}).
 * @public
 */
export interface LogHead {
  /** Lines in the log. */
  entries: number;
  /** SHA-256 of line `entries` (1-based), 64 lowercase hex: the `prev` the next line carries. */
  hash: string;
}

/**
 * A head the center signed (the file `LOG.head`).
 * @public
 */
export interface SignedLogHead extends LogHead {
  /** When the center wrote it, ms since the epoch. */
  at: number;
}

/** Deepest nesting of `data`. */
const MAX_DEPTH = 32;
const CONTEXT_BYTES = utf8(LOG_CONTEXT);
const HEAD_CONTEXT_BYTES = utf8(LOG_HEAD_CONTEXT);
/** Most characters of a head file (one line, about 200). */
const MAX_HEAD_CHARS = 1024;
const HEAD_TEXT_RE = /^(0|[1-9][0-9]{0,15})\/([0-9a-f]{64})$/;
const LONE_SURROGATE_RE = /[\ud800-\udfff]/u;

const lineHash = (line: string): string => toHex(getCryptoBackend().sha256(utf8(line)));

/** The JSON of an entry without `sig`, exactly as signed. */
function unsignedJson(e: Omit<LogEntry, 'sig'>): string {
  return JSON.stringify({ seq: e.seq, prev: e.prev, at: e.at, kind: e.kind, data: e.data });
}

/** Throw MALFORMED unless `value` is JSON data that survives a round trip unchanged. */
function checkData(value: unknown, where: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log data nests deeper than ${MAX_DEPTH} at ${where}`);
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log data ${where} is not a finite number`);
    return;
  }
  if (typeof value === 'string') {
    if (LONE_SURROGATE_RE.test(value)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log data ${where} holds a lone surrogate`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkData(v, `${where}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log data ${where} is not a plain object or array`);
    for (const [k, v] of Object.entries(value)) checkData(v, `${where}.${k}`, depth + 1);
    return;
  }
  throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log data ${where} is ${typeof value}, not JSON data`);
}

// ---------------------------------------------------------------------------
// Heads

/**
 * The text form of a head, `N/hash` (what `gatesock dispatch verify-log`
 * prints; keep it somewhere the log's host cannot rewrite).
 * @public
 */
export function formatLogHead(head: LogHead): string {
  return `${head.entries}/${head.hash}`;
}

/**
 * Parse the text form `N/hash` of a head ({@link formatLogHead}).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` when it is not one.
 * @public
 */
export function parseLogHead(text: string): LogHead {
  const m = typeof text === 'string' ? HEAD_TEXT_RE.exec(text.trim()) : null;
  const entries = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(entries)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'a log head is N/HASH: the number of lines, a slash, and 64 lowercase hex');
  if (entries === 0 && m[2] !== LOG_GENESIS) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'the head of an empty log has 64 zeros as its hash');
  return { entries, hash: m[2]! };
}

/** The JSON of a head without `sig`, exactly as signed. */
function unsignedHeadJson(h: SignedLogHead): string {
  return JSON.stringify({ format: LOG_HEAD_FORMAT, entries: h.entries, hash: h.hash, at: h.at });
}

/** The head file's text (one line with its line feed), signed with `key`. */
function signHead(h: SignedLogHead, key: IdentityKey): string {
  const sig = toBase64url(key.sign(concat(HEAD_CONTEXT_BYTES, utf8(unsignedHeadJson(h)))));
  return JSON.stringify({ format: LOG_HEAD_FORMAT, entries: h.entries, hash: h.hash, at: h.at, sig }) + '\n';
}

function badHead(why: string): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_LOG_HEAD_INVALID', `evidence log head: ${why}`);
}

/**
 * Check a head file's text (the file `LOG.head`): its form and the center's
 * signature. Says nothing about a log yet: give it to
 * {@link verifyEvidenceLog} as `head`.
 * @throws DispatchError `GS_ERR_DISPATCH_LOG_HEAD_INVALID` when it does not
 *   decode or its signature does not verify under the center key;
 *   `GS_ERR_DISPATCH_MALFORMED` for a bad key.
 * @public
 */
export function verifyLogHead(text: string, centerPublicKey: Uint8Array): SignedLogHead {
  const key = checkPublicKey(centerPublicKey);
  if (typeof text !== 'string' || text.length > MAX_HEAD_CHARS) throw badHead(`must be one line of at most ${MAX_HEAD_CHARS} characters`);
  if (!text.endsWith('\n') || text.indexOf('\n') !== text.length - 1) throw badHead('must be one line ending in a line feed (a torn write?)');
  const line = text.slice(0, -1);
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw badHead('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badHead('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (Object.keys(o).join(',') !== 'format,entries,hash,at,sig') throw badHead('fields must be exactly format, entries, hash, at, sig in that order');
  if (o.format !== LOG_HEAD_FORMAT) throw badHead(`format must be ${LOG_HEAD_FORMAT}`);
  try {
    checkInt(o.entries, 'entries', 0, Number.MAX_SAFE_INTEGER);
    checkHex(o.hash, 'hash', 64);
    checkInt(o.at, 'at', 0, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    throw badHead((err as Error).message);
  }
  if (o.entries === 0 && o.hash !== LOG_GENESIS) throw badHead('the head of an empty log has 64 zeros as its hash');
  if (JSON.stringify(o) !== line) throw badHead('not in canonical form');
  let sig: Uint8Array;
  try {
    sig = fromBase64url(o.sig, 'sig', 64);
  } catch {
    throw badHead('sig must be 64 bytes of unpadded base64url');
  }
  if (sig.length !== 64) throw badHead('sig must be 64 bytes of unpadded base64url');
  const head: SignedLogHead = { entries: o.entries, hash: o.hash, at: o.at };
  if (!verifyEd25519(sig, concat(HEAD_CONTEXT_BYTES, utf8(unsignedHeadJson(head))), key)) throw badHead('the signature does not verify under the center key (rewritten, or another center\'s)');
  return head;
}

// ---------------------------------------------------------------------------
// Verification

interface LogState {
  entries: number;
  kinds: Record<LogKind, number>;
  /** `prev` of the next line. */
  prev: string;
  /** 1-based number of the first `log` line (the log keeps a head from there), or 0. */
  headFrom: number;
  /** The chain hash after `captureAt` lines, when the log has that many. */
  hashAt: string | undefined;
}

function invalid(line: number, why: string): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_LOG_INVALID', `evidence log line ${line}: ${why}`);
}

/** Check one line (1-based `n`) against the chain so far; returns its entry. */
function checkLine(line: string, n: number, prev: string, publicKey: Uint8Array): LogEntry {
  if (Buffer.byteLength(line, 'utf8') > MAX_LOG_LINE_BYTES) throw invalid(n, `longer than ${MAX_LOG_LINE_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw invalid(n, 'not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(n, 'not a JSON object');
  const o = raw as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.join(',') !== 'seq,prev,at,kind,data,sig') throw invalid(n, 'fields must be exactly seq, prev, at, kind, data, sig in that order');
  try {
    checkInt(o.seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
    checkHex(o.prev, 'prev', 64);
    checkInt(o.at, 'at', 0, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    throw invalid(n, (err as Error).message);
  }
  if (o.seq !== n - 1) throw invalid(n, `seq is ${o.seq}, expected ${n - 1} (a line is missing, added or moved)`);
  if (o.prev !== prev) throw invalid(n, 'prev does not match the previous line (the chain is broken)');
  if (!LOG_KINDS.includes(o.kind as LogKind)) throw invalid(n, `kind must be one of ${LOG_KINDS.join(', ')}`);
  if (typeof o.data !== 'object' || o.data === null || Array.isArray(o.data)) throw invalid(n, 'data must be a JSON object');
  if (o.kind === 'log' && JSON.stringify(o.data) !== JSON.stringify({ format: LOG_FORMAT })) throw invalid(n, `a log line's data must be {"format":"${LOG_FORMAT}"}`);
  if (JSON.stringify(o) !== line) throw invalid(n, 'not in canonical form');
  let sig: Uint8Array;
  try {
    sig = fromBase64url(o.sig, 'sig', 64);
  } catch {
    throw invalid(n, 'sig must be 64 bytes of unpadded base64url');
  }
  if (sig.length !== 64) throw invalid(n, 'sig must be 64 bytes of unpadded base64url');
  const entry = o as unknown as LogEntry;
  if (!verifyEd25519(sig, concat(CONTEXT_BYTES, utf8(unsignedJson(entry))), publicKey)) throw invalid(n, 'the signature does not verify under the center key');
  return entry;
}

/** Verify every line; note the chain hash after `captureAt` lines on the way. */
function verifyText(text: string, publicKey: Uint8Array, captureAt?: number): LogState {
  const state: LogState = {
    entries: 0,
    kinds: { log: 0, bundle: 0, dispatch: 0, issued: 0, result: 0, failure: 0 },
    prev: LOG_GENESIS,
    headFrom: 0,
    hashAt: captureAt === 0 ? LOG_GENESIS : undefined,
  };
  if (text.length === 0) return state;
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '') throw invalid(lines.length + 1, 'no final line feed (a torn write?)');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const e = checkLine(line, i + 1, state.prev, publicKey);
    state.entries++;
    state.kinds[e.kind]++;
    if (e.kind === 'log' && state.headFrom === 0) state.headFrom = i + 1;
    state.prev = lineHash(line);
    if (state.entries === captureAt) state.hashAt = state.prev;
  }
  return state;
}

/** `entries` of a head file not verified yet (where to note the chain hash), if it has one. */
function headEntriesHint(text: string): number | undefined {
  if (text.length > MAX_HEAD_CHARS) return undefined;
  try {
    const entries = (JSON.parse(text) as { entries?: unknown }).entries;
    return Number.isSafeInteger(entries) ? (entries as number) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Throw unless the verified log `state` reaches `head`: TRUNCATED when it
 * has fewer lines, HEAD_INVALID when its line at the head is another one.
 */
function checkHead(state: LogState, head: LogHead): void {
  const end = formatLogHead({ entries: state.entries, hash: state.prev });
  if (state.entries < head.entries) {
    const missing = head.entries - state.entries;
    throw new DispatchError(
      'GS_ERR_DISPATCH_LOG_TRUNCATED',
      `evidence log truncated: expected head ${formatLogHead(head)}, found ${state.entries} ${state.entries === 1 ? 'entry' : 'entries'} (ends at ${end}); ${missing} line${missing === 1 ? ' is' : 's are'} missing from the end`,
    );
  }
  if (state.hashAt !== head.hash) {
    throw new DispatchError(
      'GS_ERR_DISPATCH_LOG_HEAD_INVALID',
      `evidence log line ${head.entries} is not the line the head ${formatLogHead(head)} names (the log was rewritten from there, or the head is another log's)`,
    );
  }
}

/**
 * Options of {@link verifyEvidenceLog}.
 * @public
 */
export interface VerifyEvidenceLogOptions {
  /**
   * The head the log must reach: the text of a head file (`LOG.head`; its
   * signature is checked under the same center key), or a {@link LogHead}
   * you trust because you kept it elsewhere ({@link parseLogHead} reads
   * `N/hash`). A log with more lines than the head passes (they were
   * appended after it was taken: {@link EvidenceLogVerification.pastHead}).
   */
  head?: string | LogHead;
  /**
   * Verify a version 2 log without a head (default false: refused, since
   * lines cut off its end would go unnoticed). A version 1 log never needs one.
   */
  allowNoHead?: boolean;
}

/**
 * What {@link verifyEvidenceLog} found.
 * @public
 */
export interface EvidenceLogVerification {
  /** Lines in the log. */
  entries: number;
  /** Lines of each kind. */
  kinds: Record<LogKind, number>;
  /** 2 when the log has a `log` line (it keeps a head), else 1. */
  version: 1 | 2;
  /** Where the log ends. */
  end: LogHead;
  /** The head it was checked against (with `at` when signed), or null when none was given. */
  head: (LogHead & { at?: number }) | null;
  /** Lines after the head (appended after it was taken); 0 without a head. */
  pastHead: number;
}

/**
 * Verify a whole evidence log offline: every line's form, `seq`, hash chain
 * and signature under the center's public key; then, with a head, that no
 * line was cut off its end.
 * @throws DispatchError `GS_ERR_DISPATCH_LOG_INVALID` naming the first bad
 *   line (1-based); `GS_ERR_DISPATCH_LOG_TRUNCATED` when the log has fewer
 *   lines than the head; `GS_ERR_DISPATCH_LOG_HEAD_INVALID` when the head
 *   file does not verify, the log's line at the head is another one, or a
 *   version 2 log comes without a head (see `allowNoHead`);
 *   `GS_ERR_DISPATCH_MALFORMED` for a bad key. ConfigError for bad options.
 * @public
 */
export function verifyEvidenceLog(text: string, centerPublicKey: Uint8Array, options: VerifyEvidenceLogOptions = {}): EvidenceLogVerification {
  const key = checkPublicKey(centerPublicKey);
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  checkOption(options.allowNoHead === undefined || typeof options.allowNoHead === 'boolean', 'allowNoHead', 'must be true or false');
  const given = options.head;
  checkOption(
    given === undefined ||
      typeof given === 'string' ||
      (typeof given === 'object' && given !== null && Number.isSafeInteger(given.entries) && given.entries >= 0 && typeof given.hash === 'string' && /^[0-9a-f]{64}$/.test(given.hash)),
    'head',
    "must be a head file's text or { entries, hash } (parseLogHead reads N/hash)",
  );
  if (typeof text !== 'string') throw invalid(1, 'the log must be text');
  // The lines first (a bad line is named even when the head is bad too), then the head.
  const state = verifyText(text, key, typeof given === 'string' ? headEntriesHint(given) : given?.entries);
  const head: (LogHead & { at?: number }) | undefined = typeof given === 'string' ? verifyLogHead(given, key) : given === undefined ? undefined : { entries: given.entries, hash: given.hash };
  const version = state.headFrom > 0 ? 2 : 1;
  if (head) checkHead(state, head);
  else if (version === 2 && options.allowNoHead !== true) {
    throw new DispatchError(
      'GS_ERR_DISPATCH_LOG_HEAD_INVALID',
      `evidence log: no head given, but the log keeps one from line ${state.headFrom} on; give its head file (LOG.head) or a head kept elsewhere (N/hash), or allow no head (lines cut off the end then go unnoticed)`,
    );
  }
  return {
    entries: state.entries,
    kinds: state.kinds,
    version,
    end: { entries: state.entries, hash: state.prev },
    head: head ?? null,
    pastHead: head ? state.entries - head.entries : 0,
  };
}

// ---------------------------------------------------------------------------
// Writing

/**
 * Options of {@link EvidenceLog.open}.
 * @public
 */
export interface EvidenceLogOptions {
  /** Clock for `at` (default `Date.now`). */
  now?: () => number;
  /**
   * `fsync` after each line and each head (default false: the OS flushes;
   * a crash can lose the last lines, never reorder them, and a lost line
   * the head already counted then reads as a truncated log).
   */
  fsync?: boolean;
  /**
   * Least time between two head writes, ms (default
   * {@link DEFAULT_LOG_HEAD_INTERVAL_MS}; 0: as soon as the lines before
   * it are written). Lines appended meanwhile share the next head, so a
   * busy center signs and renames a head a few dozen times a second, not
   * once per line; the head lags the log by about this much.
   */
  headIntervalMs?: number;
}

/** Default of {@link EvidenceLogOptions.headIntervalMs}. @public */
export const DEFAULT_LOG_HEAD_INTERVAL_MS = 25;

/**
 * The center's evidence log file and its head file (`path + '.head'`).
 * Appends are serialised: each entry takes its `seq` and `prev` when
 * `append` is called, and lines reach the file in that order, so concurrent
 * callers never interleave or fork the chain. Once lines are written, the
 * signed head is replaced (atomically, by rename) at most every
 * `headIntervalMs`; it only ever names written lines, so the log is never
 * behind its head. {@link EvidenceLog.flush} and {@link EvidenceLog.close}
 * bring the head up to date. A failed write breaks the log for good
 * (`GS_ERR_DISPATCH_LOG_WRITE_FAILED` for that and every later append)
 * until it is re-opened.
 *
 * @example
 * ```ts
 * const log = await EvidenceLog.open('evidence.log', centerKey);
 * await log.append('bundle', { digest: bundle.digest, metadata: bundle.metadata });
 * await log.close();
 * verifyEvidenceLog(await readFile('evidence.log', 'utf8'), centerKey.publicKey, {
 *   head: await readFile('evidence.log.head', 'utf8'),
 * }); // { entries: 2, version: 2, … }
 * ```
 * @public
 */
export class EvidenceLog {
  /** The file. */
  readonly path: string;
  /** The head file beside it: `path + '.head'`. */
  readonly headPath: string;
  readonly #key: IdentityKey;
  readonly #file: FileHandle;
  readonly #now: () => number;
  readonly #fsync: boolean;
  readonly #headIntervalMs: number;
  /** Where the chain ends, counting appends not written yet. */
  #seq: number;
  #prev: string;
  /** Where the file ends: the lines written so far. */
  #written: LogHead;
  /** What the head file says (entries 0 before the first head). */
  #headed: number;
  #lastHeadAt = -Infinity;
  #headTimer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #broken: DispatchError | undefined;
  #closed = false;

  private constructor(path: string, key: IdentityKey, file: FileHandle, state: LogState, head: LogHead | undefined, options: EvidenceLogOptions) {
    this.path = path;
    this.headPath = path + '.head';
    this.#key = key;
    this.#file = file;
    this.#now = options.now ?? Date.now;
    this.#fsync = options.fsync ?? false;
    this.#headIntervalMs = options.headIntervalMs ?? DEFAULT_LOG_HEAD_INTERVAL_MS;

    this.#seq = state.entries;
    this.#prev = state.prev;
    this.#written = { entries: state.entries, hash: state.prev };
    this.#headed = head?.entries ?? -1;
  }

  /**
   * Open (or create) a log. An existing file is verified whole under
   * `centerKey`'s public key first, and against its head file when there
   * is one; the chain continues after its last line. A new log, or one of
   * version 1, gets a `log` line first. The head is up to date when this resolves.
   * @throws DispatchError `GS_ERR_DISPATCH_LOG_INVALID` when the existing
   *   file does not verify; `GS_ERR_DISPATCH_LOG_TRUNCATED` when it has
   *   fewer lines than its head (continuing it would fork the chain);
   *   `GS_ERR_DISPATCH_LOG_HEAD_INVALID` when the head file does not verify
   *   or does not match, or a version 2 log has lost its head file.
   */
  static async open(path: string, centerKey: IdentityKey, options: EvidenceLogOptions = {}): Promise<EvidenceLog> {
    checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function returning ms since the epoch');
    checkOption(options.fsync === undefined || typeof options.fsync === 'boolean', 'fsync', 'must be true or false');
    checkOption(
      options.headIntervalMs === undefined || (Number.isSafeInteger(options.headIntervalMs) && options.headIntervalMs >= 0 && options.headIntervalMs <= 60_000),
      'headIntervalMs',
      'must be a whole number of ms from 0 to 60000',
    );
    const text = await readIfThere(path);
    const headPath = path + '.head';
    const headText = await readIfThere(headPath);
    const aside = `keep both files for the record and move them aside to start a new log`;
    const state = verifyText(text ?? '', centerKey.publicKey, headText === undefined ? undefined : headEntriesHint(headText));
    let head: SignedLogHead | undefined;
    try {
      head = headText === undefined ? undefined : verifyLogHead(headText, centerKey.publicKey);
    } catch (err) {
      throw new DispatchError((err as DispatchError).code, `${headPath}: ${(err as Error).message}; ${aside}`, { cause: err });
    }
    if (head) {
      try {
        checkHead(state, head);
      } catch (err) {
        throw new DispatchError((err as DispatchError).code, `${path}: ${(err as Error).message}; the center will not continue it (that would fork the chain): ${aside}`, { cause: err });
      }
    } else if (state.headFrom > 0) {
      throw new DispatchError('GS_ERR_DISPATCH_LOG_HEAD_INVALID', `${path} keeps a head from line ${state.headFrom} on, but ${headPath} is missing, so lines cut off its end would go unnoticed; ${aside}`);
    }
    const file = await openFile(path, 'a');
    const log = new EvidenceLog(path, centerKey, file, state, head, options);
    try {
      if (state.headFrom === 0) await log.append('log', { format: LOG_FORMAT });
      await log.flush();
    } catch (err) {
      await log.close().catch(() => undefined);
      throw err;
    }
    return log;
  }

  /** Entries in the log (the next entry's `seq`). */
  get entries(): number {
    return this.#seq;
  }

  /** Where the log ends once every append made so far is written (what {@link EvidenceLog.flush} resolves with). */
  get head(): LogHead {
    return { entries: this.#seq, hash: this.#prev };
  }

  /**
   * Append an entry. Its place in the chain is fixed at the call; the
   * promise resolves once its line was written (and synced, with `fsync`);
   * the head counts it within about `headIntervalMs`.
   * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for an unknown kind or
   *   `data` that is not JSON data (nothing is appended);
   *   `GS_ERR_DISPATCH_LOG_WRITE_FAILED` when the log is closed or a write failed.
   */
  append(kind: LogKind, data: Record<string, unknown>): Promise<LogEntry> {
    try {
      if (this.#closed) throw new DispatchError('GS_ERR_DISPATCH_LOG_WRITE_FAILED', `evidence log ${this.path} is closed`);
      if (this.#broken) throw this.#broken;
      if (!LOG_KINDS.includes(kind)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log kind must be one of ${LOG_KINDS.join(', ')}`);
      if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'log data must be a JSON object');
      checkData(data, 'data', 0);
      if (kind === 'log' && JSON.stringify(data) !== JSON.stringify({ format: LOG_FORMAT })) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `a log line's data must be {"format":"${LOG_FORMAT}"}`);
      // The stored copy is what JSON gives back, so the returned entry equals what a reader parses.
      const unsigned = { seq: this.#seq, prev: this.#prev, at: this.#now(), kind, data: JSON.parse(JSON.stringify(data)) as Record<string, unknown> };
      checkInt(unsigned.at, 'log time', 0, Number.MAX_SAFE_INTEGER);
      const sig = toBase64url(this.#key.sign(concat(CONTEXT_BYTES, utf8(unsignedJson(unsigned)))));
      const entry: LogEntry = { ...unsigned, sig };
      const line = JSON.stringify(entry);
      if (Buffer.byteLength(line, 'utf8') > MAX_LOG_LINE_BYTES) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log line would be longer than ${MAX_LOG_LINE_BYTES} bytes`);
      this.#seq++;
      this.#prev = lineHash(line);
      const after: LogHead = { entries: this.#seq, hash: this.#prev };
      const bytes = utf8(line + '\n');
      const write = this.#chain.then(async () => {
        if (this.#broken) throw this.#broken;
        try {
          for (let off = 0; off < bytes.length; ) off += (await this.#file.write(bytes, off, bytes.length - off)).bytesWritten;
          if (this.#fsync) await this.#file.sync();
        } catch (err) {
          this.#broken = new DispatchError('GS_ERR_DISPATCH_LOG_WRITE_FAILED', `evidence log ${this.path}: writing line ${entry.seq + 1} failed (${String(err)}); re-open the log`, { cause: err });
          throw this.#broken;
        }
        this.#written = after;
        this.#scheduleHead();
        return entry;
      });
      this.#chain = write.then(
        () => undefined,
        () => undefined,
      );
      return write;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Wait until every append made so far is written and the head file
   * names the last of them.
   * @returns That head.
   * @throws DispatchError `GS_ERR_DISPATCH_LOG_WRITE_FAILED` when a write failed.
   */
  async flush(): Promise<LogHead> {
    if (this.#broken) throw this.#broken;
    // This head covers every line a pending timer would (each later line schedules its own).
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
    const task = this.#chain.then(() => this.#writeHead());
    this.#chain = task.then(
      () => undefined,
      () => undefined,
    );
    await task;
    return { ...this.#written };
  }

  /**
   * Wait for pending appends, bring the head up to date, then close the
   * file. Later appends fail. Idempotent.
   * @throws DispatchError `GS_ERR_DISPATCH_LOG_WRITE_FAILED` when a line or the head could not be written (the file is closed anyway).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let failure: unknown;
    if (!this.#broken) await this.flush().catch((err: unknown) => (failure = err));
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
    await this.#chain;
    await this.#file.close();
    if (failure !== undefined) throw failure;
  }

  /** After a line is written: queue a head write, at most one per `headIntervalMs`. */
  #scheduleHead(): void {
    if (this.#headTimer !== undefined || this.#closed) return;
    const wait = Math.max(0, this.#lastHeadAt + this.#headIntervalMs - performance.now());
    this.#headTimer = setTimeout(() => {
      this.#headTimer = undefined;
      if (this.#closed || this.#broken) return; // close() writes the last head itself
      this.#chain = this.#chain.then(() => this.#writeHead()).catch(() => undefined);
    }, wait);
    this.#headTimer.unref();
  }

  /** Replace the head file by the written lines' head (nothing when it already says so). Runs inside the chain. */
  async #writeHead(): Promise<void> {
    if (this.#broken) throw this.#broken;
    const head = this.#written;
    if (head.entries === this.#headed) return;
    const tmp = this.headPath + '.tmp';
    try {
      const text = signHead({ ...head, at: this.#now() }, this.#key);
      const file = await openFile(tmp, 'w');
      try {
        await file.writeFile(text, 'utf8');
        if (this.#fsync) await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.headPath);
      if (this.#fsync) await syncDir(dirname(this.headPath));
    } catch (err) {
      this.#broken = new DispatchError('GS_ERR_DISPATCH_LOG_WRITE_FAILED', `evidence log ${this.path}: writing its head (${head.entries} lines) failed (${String(err)}); re-open the log`, { cause: err });
      throw this.#broken;
    }
    this.#headed = head.entries;
    this.#lastHeadAt = performance.now();
  }
}

/** The file's text, or undefined when there is none. */
async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** fsync a folder, so a rename in it is durable. */
async function syncDir(dir: string): Promise<void> {
  const d = await openFile(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
