/**
 * The evidence log (docs/dispatch.md, "Evidence log"): append-only JSON
 * lines, hash-chained and signed by the center, that anyone holding the
 * center's public key can verify offline.
 *
 * ```text
 * {"seq":0,"prev":"000…000","at":1800000000000,"kind":"bundle","data":{…},"sig":"<86 base64url>"}\n
 * {"seq":1,"prev":"<sha256 hex of line 0's bytes>","at":…,"kind":"dispatch","data":{…},"sig":"…"}\n
 *
 * prev   = SHA-256 of the previous line's UTF-8 bytes (without its "\n"), 64 lowercase hex;
 *          64 zeros for the first line
 * signed = "gatesock-dispatch-log-v1\n" ‖ {"seq","prev","at","kind","data"} (canonical JSON)
 * sig    = the center's Ed25519 signature of `signed`, unpadded base64url
 * ```
 *
 * Each line is canonical: it must equal `JSON.stringify` of what it
 * parses to (which fixes the key order of `data` too, as JSON.parse
 * preserves it). Kinds: `bundle`, `dispatch`, `issued`, `result`, `failure`;
 * `data` is any JSON object the center chooses (the verifier checks only
 * that it is one). The file ends with a line feed; a missing final line feed
 * is a torn write and fails verification at that line.
 */
import { open as openFile, readFile, type FileHandle } from 'node:fs/promises';
import { DispatchError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { getCryptoBackend, type IdentityKey } from '../../../session/index.js';
import { checkHex, checkInt, checkPublicKey, concat, fromBase64url, toBase64url, toHex, utf8, verifyEd25519 } from './common.js';

/**
 * What a log line records.
 * @public
 */
export type LogKind = 'bundle' | 'dispatch' | 'issued' | 'result' | 'failure';

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
export const LOG_KINDS: readonly LogKind[] = Object.freeze(['bundle', 'dispatch', 'issued', 'result', 'failure']);
/** Most UTF-8 bytes of one log line. @public */
export const MAX_LOG_LINE_BYTES = 1024 * 1024;
/** `prev` of the first line. @public */
export const LOG_GENESIS = '0'.repeat(64);

/** Deepest nesting of `data`. */
const MAX_DEPTH = 32;
const CONTEXT_BYTES = utf8(LOG_CONTEXT);
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
// Verification

interface LogState {
  entries: number;
  kinds: Record<LogKind, number>;
  /** `prev` of the next line. */
  prev: string;
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

function verifyText(text: string, publicKey: Uint8Array): LogState {
  const state: LogState = { entries: 0, kinds: { bundle: 0, dispatch: 0, issued: 0, result: 0, failure: 0 }, prev: LOG_GENESIS };
  if (text.length === 0) return state;
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '') throw invalid(lines.length + 1, 'no final line feed (a torn write?)');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const e = checkLine(line, i + 1, state.prev, publicKey);
    state.entries++;
    state.kinds[e.kind]++;
    state.prev = lineHash(line);
  }
  return state;
}

/**
 * Verify a whole evidence log offline: every line's form, `seq`, hash chain
 * and signature under the center's public key.
 * @returns How many entries, and how many of each kind.
 * @throws DispatchError `GS_ERR_DISPATCH_LOG_INVALID` naming the first bad
 *   line (1-based); `GS_ERR_DISPATCH_MALFORMED` for a bad key.
 * @public
 */
export function verifyEvidenceLog(text: string, centerPublicKey: Uint8Array): { entries: number; kinds: Record<LogKind, number> } {
  const key = checkPublicKey(centerPublicKey);
  if (typeof text !== 'string') throw invalid(1, 'the log must be text');
  const { entries, kinds } = verifyText(text, key);
  return { entries, kinds };
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
  /** `fsync` after each line (default false: the OS flushes; a crash can lose the last lines, never reorder them). */
  fsync?: boolean;
}

/**
 * The center's evidence log file. Appends are serialised: each entry takes
 * its `seq` and `prev` when `append` is called, and lines reach the file in
 * that order, so concurrent callers never interleave or fork the chain. A
 * failed write breaks the log for good (`GS_ERR_DISPATCH_LOG_WRITE_FAILED`
 * for that and every later append) until it is re-opened.
 *
 * @example
 * ```ts
 * const log = await EvidenceLog.open('evidence.log', centerKey);
 * await log.append('bundle', { digest: bundle.digest, metadata: bundle.metadata });
 * await log.close();
 * verifyEvidenceLog(await readFile('evidence.log', 'utf8'), centerKey.publicKey); // { entries: 1, … }
 * ```
 * @public
 */
export class EvidenceLog {
  /** The file. */
  readonly path: string;
  readonly #key: IdentityKey;
  readonly #file: FileHandle;
  readonly #now: () => number;
  readonly #fsync: boolean;
  #seq: number;
  #prev: string;
  #chain: Promise<void> = Promise.resolve();
  #broken: DispatchError | undefined;
  #closed = false;

  private constructor(path: string, key: IdentityKey, file: FileHandle, state: LogState, options: EvidenceLogOptions) {
    this.path = path;
    this.#key = key;
    this.#file = file;
    this.#now = options.now ?? Date.now;
    this.#fsync = options.fsync ?? false;

    this.#seq = state.entries;
    this.#prev = state.prev;
  }

  /**
   * Open (or create) a log. An existing file is verified whole under
   * `centerKey`'s public key first, and the chain continues after its last line.
   * @throws DispatchError `GS_ERR_DISPATCH_LOG_INVALID` when the existing file does not verify.
   */
  static async open(path: string, centerKey: IdentityKey, options: EvidenceLogOptions = {}): Promise<EvidenceLog> {
    checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function returning ms since the epoch');
    checkOption(options.fsync === undefined || typeof options.fsync === 'boolean', 'fsync', 'must be true or false');
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const state = verifyText(text, centerKey.publicKey);
    const file = await openFile(path, 'a');
    return new EvidenceLog(path, centerKey, file, state, options);
  }

  /** Entries in the log (the next entry's `seq`). */
  get entries(): number {
    return this.#seq;
  }

  /**
   * Append an entry. Its place in the chain is fixed at the call; the
   * promise resolves once its line was written (and synced, with `fsync`).
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
      // The stored copy is what JSON gives back, so the returned entry equals what a reader parses.
      const unsigned = { seq: this.#seq, prev: this.#prev, at: this.#now(), kind, data: JSON.parse(JSON.stringify(data)) as Record<string, unknown> };
      checkInt(unsigned.at, 'log time', 0, Number.MAX_SAFE_INTEGER);
      const sig = toBase64url(this.#key.sign(concat(CONTEXT_BYTES, utf8(unsignedJson(unsigned)))));
      const entry: LogEntry = { ...unsigned, sig };
      const line = JSON.stringify(entry);
      if (Buffer.byteLength(line, 'utf8') > MAX_LOG_LINE_BYTES) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `log line would be longer than ${MAX_LOG_LINE_BYTES} bytes`);
      this.#seq++;
      this.#prev = lineHash(line);
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

  /** Wait for pending appends, then close the file. Later appends fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#chain;
    await this.#file.close();
  }
}
