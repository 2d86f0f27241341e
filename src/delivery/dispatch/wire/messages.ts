/**
 * Channel messages (docs/dispatch.md, "Channel messages"): one codec for
 * every message between center, repository and agent over one SockIo.
 *
 * ```text
 *  0          4          6
 * +----------+----------+----------------------+---------------------+
 * | len u32  | h u16    | header (JSON, UTF-8) | body (len - 2 - h)  |
 * +----------+----------+----------------------+---------------------+
 *   BE         BE         canonical, t first     only run (inline), bundle
 * ```
 *
 * `len` counts everything after itself. Header keys by `t`, in this order:
 *
 * ```text
 * hello     t agentMsid certificate pending[{report}]      agent
 *             challenge (64 hex, fresh per connection)
 * auth      t signature (base64url, 64 bytes)               center, first after a good hello
 * run       t binding inline            body = bundle iff inline   center
 * fetch     t digest                                        agent
 * bundle    t digest                    body = bundle       center, repository
 * rerun     t binding                                       center
 * accepted  t dispatchId run                                agent
 * report    t report certificate                            agent
 * ack       t dispatchId run                                center
 * cancel    t dispatchId                                    center
 * error     t code message [dispatchId] [run]               either
 * ```
 *
 * Decoding is canonical (the header re-encodes to the same bytes) and
 * strict: an unknown `t`, a missing or extra key, a body where none may be
 * (or none where one must be) are `GS_ERR_DISPATCH_MALFORMED`. Bindings,
 * reports and certificates stay text here: checking them is the receiver's
 * job (binding.ts, report.ts); this codec only bounds and shapes them.
 * `auth` is the center's signature over the hello's `challenge` and the
 * agent's MSID (auth.ts); until one verifies, an agent obeys no `ack` or
 * `cancel` on that channel.
 */
import { checkOption } from '../../../errors/check.js';
import { MAX_BINDING_JSON_BYTES, MAX_RUN } from './binding.js';
import { SIGNATURE_LEN, canonicalJson, checkDigest, checkHex, checkInt, checkMsid, checkString, expectObject, malformed, parseCanonical, type Digest } from './common.js';
import { MAX_CERTIFICATE_BYTES, MAX_REPORT_JSON_BYTES } from './report.js';
import { DEFAULT_MAX_BUNDLE_BYTES } from './bundle.js';
import { CHANNEL_CHALLENGE_HEX } from './auth.js';

const LEN_SIZE = 4;
const HEADER_LEN_SIZE = 2;
/** Bytes before the header. @public */
export const MESSAGE_PREFIX_LEN = LEN_SIZE + HEADER_LEN_SIZE;
/** Most bytes of a header (what `h` can say). @public */
export const MAX_HEADER_BYTES = 0xffff;
/** Default most bytes a {@link MessageReader} takes in one message (`len`): 64 MiB + 64 KiB. @public */
export const DEFAULT_MAX_MESSAGE_BYTES = DEFAULT_MAX_BUNDLE_BYTES + 64 * 1024;
/** Most pending reports one `hello` lists. @public */
export const MAX_PENDING_REPORTS = 64;
/** Most UTF-8 bytes of an `error` message's text. @public */
export const MAX_ERROR_MESSAGE_BYTES = 1024;

/** Longest base64url text of `n` bytes. */
const b64Len = (n: number): number => Math.ceil((n * 4) / 3);
const MAX_BINDING_TEXT = b64Len(MAX_BINDING_JSON_BYTES + SIGNATURE_LEN);
const MAX_REPORT_TEXT = b64Len(MAX_REPORT_JSON_BYTES + SIGNATURE_LEN);
const MAX_CERTIFICATE_TEXT = b64Len(MAX_CERTIFICATE_BYTES);
const MAX_SIGNATURE_TEXT = b64Len(SIGNATURE_LEN);
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const ERROR_CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const EMPTY = new Uint8Array(0);

/**
 * One message of the dispatch channel.
 * @public
 */
export type ChannelMessage =
  | { t: 'hello'; agentMsid: string; certificate: string; pending: { report: string }[]; challenge: string }
  | { t: 'auth'; signature: string }
  | { t: 'run'; binding: string; inline: boolean; body?: Uint8Array }
  | { t: 'fetch'; digest: Digest }
  | { t: 'bundle'; digest: Digest; body: Uint8Array }
  | { t: 'rerun'; binding: string }
  | { t: 'accepted'; dispatchId: string; run: number }
  | { t: 'report'; report: string; certificate: string }
  | { t: 'ack'; dispatchId: string; run: number }
  | { t: 'cancel'; dispatchId: string }
  | { t: 'error'; code: string; message: string; dispatchId?: string; run?: number };

/** A base64url text field of at most `max` characters (not decoded here). */
function checkText(value: unknown, what: string, max: number): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !B64URL_RE.test(value)) throw malformed(`${what} must be 1–${max} characters of base64url`);
}

/**
 * Check a header object and rebuild it with its keys in canonical order.
 * `hasBody` says whether the frame carries body bytes.
 */
function buildHeader(raw: unknown, hasBody: boolean): Exclude<ChannelMessage, { body?: Uint8Array }> | { t: 'run'; binding: string; inline: boolean } | { t: 'bundle'; digest: Digest } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed('message header must be a JSON object');
  const t = (raw as { t?: unknown }).t;
  const noBody = (): void => {
    if (hasBody) throw malformed(`a ${String(t)} message has no body`);
  };
  switch (t) {
    case 'hello': {
      const o = expectObject(raw, 'hello', ['t', 'agentMsid', 'certificate', 'pending', 'challenge']);
      checkMsid(o.agentMsid, 'hello agentMsid');
      checkText(o.certificate, 'hello certificate', MAX_CERTIFICATE_TEXT);
      if (!Array.isArray(o.pending) || o.pending.length > MAX_PENDING_REPORTS) throw malformed(`hello pending must be a list of at most ${MAX_PENDING_REPORTS} reports`);
      const pending = o.pending.map((p, i) => {
        const e = expectObject(p, `hello pending[${i}]`, ['report']);
        checkText(e.report, `hello pending[${i}] report`, MAX_REPORT_TEXT);
        return { report: e.report };
      });
      checkHex(o.challenge, 'hello challenge', CHANNEL_CHALLENGE_HEX);
      noBody();
      return { t, agentMsid: o.agentMsid, certificate: o.certificate, pending, challenge: o.challenge };
    }
    case 'auth': {
      const o = expectObject(raw, 'auth', ['t', 'signature']);
      checkText(o.signature, 'auth signature', MAX_SIGNATURE_TEXT);
      if (o.signature.length !== MAX_SIGNATURE_TEXT) throw malformed(`auth signature must be ${MAX_SIGNATURE_TEXT} characters (${SIGNATURE_LEN} bytes)`);
      noBody();
      return { t, signature: o.signature };
    }
    case 'run': {
      const o = expectObject(raw, 'run', ['t', 'binding', 'inline']);
      checkText(o.binding, 'run binding', MAX_BINDING_TEXT);
      if (typeof o.inline !== 'boolean') throw malformed('run inline must be true or false');
      if (o.inline !== hasBody) throw malformed(o.inline ? 'an inline run message carries the bundle as its body' : 'a run message that is not inline has no body');
      return { t, binding: o.binding, inline: o.inline };
    }
    case 'fetch': {
      const o = expectObject(raw, 'fetch', ['t', 'digest']);
      checkDigest(o.digest, 'fetch digest');
      noBody();
      return { t, digest: o.digest };
    }
    case 'bundle': {
      const o = expectObject(raw, 'bundle', ['t', 'digest']);
      checkDigest(o.digest, 'bundle digest');
      if (!hasBody) throw malformed('a bundle message carries the bundle as its body');
      return { t, digest: o.digest };
    }
    case 'rerun': {
      const o = expectObject(raw, 'rerun', ['t', 'binding']);
      checkText(o.binding, 'rerun binding', MAX_BINDING_TEXT);
      noBody();
      return { t, binding: o.binding };
    }
    case 'accepted':
    case 'ack': {
      const o = expectObject(raw, t, ['t', 'dispatchId', 'run']);
      checkHex(o.dispatchId, `${t} dispatchId`, 32);
      checkInt(o.run, `${t} run`, 0, MAX_RUN);
      noBody();
      return { t, dispatchId: o.dispatchId, run: o.run };
    }
    case 'report': {
      const o = expectObject(raw, 'report', ['t', 'report', 'certificate']);
      checkText(o.report, 'report report', MAX_REPORT_TEXT);
      checkText(o.certificate, 'report certificate', MAX_CERTIFICATE_TEXT);
      noBody();
      return { t, report: o.report, certificate: o.certificate };
    }
    case 'cancel': {
      const o = expectObject(raw, 'cancel', ['t', 'dispatchId']);
      checkHex(o.dispatchId, 'cancel dispatchId', 32);
      noBody();
      return { t, dispatchId: o.dispatchId };
    }
    case 'error': {
      const r = raw as Record<string, unknown>;
      const keys = ['t', 'code', 'message', ...('dispatchId' in r ? ['dispatchId'] : []), ...('run' in r ? ['run'] : [])];
      const o = expectObject(raw, 'error', keys);
      if (typeof o.code !== 'string' || !ERROR_CODE_RE.test(o.code)) throw malformed('error code must be 1–64 of A-Z 0-9 _, starting with a letter');
      checkString(o.message, 'error message', MAX_ERROR_MESSAGE_BYTES);
      const m: ChannelMessage = { t, code: o.code, message: o.message };
      if (o.dispatchId !== undefined) {
        checkHex(o.dispatchId, 'error dispatchId', 32);
        m.dispatchId = o.dispatchId;
      }
      if (o.run !== undefined) {
        checkInt(o.run, 'error run', 0, MAX_RUN);
        m.run = o.run;
      }
      noBody();
      return m;
    }
    default:
      throw malformed(`unknown message type ${JSON.stringify(t)?.slice(0, 40)}`);
  }
}

/**
 * Encode one message (header checked exactly as a reader checks it).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a message outside
 *   the grammar, or a header longer than {@link MAX_HEADER_BYTES}.
 * @public
 */
export function encodeMessage(m: ChannelMessage): Uint8Array {
  if (typeof m !== 'object' || m === null) throw malformed('a message must be an object');
  let body: Uint8Array = EMPTY;
  let raw: unknown = m;
  if (m.t === 'run' || m.t === 'bundle') {
    const { body: b, ...rest } = m;
    if (b !== undefined && !(b instanceof Uint8Array)) throw malformed(`${m.t} body must be a Uint8Array`);
    body = b ?? EMPTY;
    raw = rest;
  }
  // Copy through the checker so that the key order is the canonical one, whatever the caller's.
  let copy: unknown;
  try {
    copy = JSON.parse(JSON.stringify(raw));
  } catch {
    throw malformed(`${String(m.t)} message is not JSON data`);
  }
  const header = canonicalJson(buildHeader(copy, body.length > 0));
  if (header.length > MAX_HEADER_BYTES) throw malformed(`${m.t} header is ${header.length} bytes, more than ${MAX_HEADER_BYTES}`);
  const len = HEADER_LEN_SIZE + header.length + body.length;
  if (len > 0xffffffff) throw malformed(`${m.t} message is too large`);
  const out = new Uint8Array(LEN_SIZE + len);
  const view = new DataView(out.buffer);
  view.setUint32(0, len);
  view.setUint16(LEN_SIZE, header.length);
  out.set(header, MESSAGE_PREFIX_LEN);
  out.set(body, MESSAGE_PREFIX_LEN + header.length);
  return out;
}

/**
 * Decode one whole message (`len` and all). The body is a view into `frame`.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`.
 * @public
 */
export function decodeMessage(frame: Uint8Array): ChannelMessage {
  if (!(frame instanceof Uint8Array) || frame.length < MESSAGE_PREFIX_LEN) throw malformed('a message is at least 6 bytes');
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const len = view.getUint32(0);
  if (len !== frame.length - LEN_SIZE) throw malformed(`message length field says ${len}, the message is ${frame.length - LEN_SIZE}`);
  const h = view.getUint16(LEN_SIZE);
  if (h + HEADER_LEN_SIZE > len) throw malformed(`message header length ${h} runs past the message`);
  const body = frame.subarray(MESSAGE_PREFIX_LEN + h);
  const header = parseCanonical(frame.subarray(MESSAGE_PREFIX_LEN, MESSAGE_PREFIX_LEN + h), 'message header', (raw) => buildHeader(raw, body.length > 0));
  if (header.t === 'run') return header.inline ? { ...header, body } : header;
  if (header.t === 'bundle') return { ...header, body };
  return header;
}

/**
 * An incremental reader of channel messages: push received chunks, get
 * whole messages back. It never assumes a chunk is a message, and refuses a
 * `len` above its limit before it buffers the body. After an error it stays
 * failed.
 * @public
 */
export class MessageReader {
  readonly #maxBytes: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** `len` of the message being read, once its 4 bytes arrived. */
  #need: number | undefined;
  #failed: Error | undefined;

  /** @param options.maxBytes - Largest `len` accepted (default 64 MiB + 64 KiB). */
  constructor(options: { maxBytes?: number } = {}) {
    const max = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    checkOption(Number.isSafeInteger(max) && max >= HEADER_LEN_SIZE && max <= 0xffffffff, 'maxBytes', 'must be an integer from 2 to 2^32 − 1');
    this.#maxBytes = max;
  }

  /** Bytes held that are not yet a whole message. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Take a chunk; return every message it completes, in order.
   * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` (and on every later call).
   */
  push(chunk: Uint8Array): ChannelMessage[] {
    if (this.#failed) throw this.#failed;
    if (!(chunk instanceof Uint8Array)) throw malformed('push takes a Uint8Array');
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: ChannelMessage[] = [];
    try {
      for (;;) {
        if (this.#need === undefined) {
          if (this.#buffered < LEN_SIZE) break;
          const len = new DataView(this.#peek(LEN_SIZE).buffer).getUint32(0);
          if (len < HEADER_LEN_SIZE) throw malformed(`message length ${len} is too short`);
          if (len > this.#maxBytes) throw malformed(`message length ${len} is more than the limit of ${this.#maxBytes}`);
          this.#need = len;
        }
        if (this.#buffered < LEN_SIZE + this.#need) break;
        const frame = this.#take(LEN_SIZE + this.#need);
        this.#need = undefined;
        out.push(decodeMessage(frame));
      }
    } catch (err) {
      this.#failed = err as Error;
      this.#chunks = [];
      this.#buffered = 0;
      throw err;
    }
    return out;
  }

  /** The first `n` buffered bytes (a copy), without taking them. */
  #peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.#chunks) {
      const part = c.subarray(0, n - off);
      out.set(part, off);
      off += part.length;
      if (off === n) break;
    }
    return out;
  }

  /** Take the first `n` buffered bytes into one array of our own. */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    let used = 0; // whole chunks consumed; dropped in one splice (shift() per chunk is quadratic)
    while (off < n) {
      const c = this.#chunks[used]!;
      const want = n - off;
      if (c.length <= want) {
        out.set(c, off);
        off += c.length;
        used++;
      } else {
        out.set(c.subarray(0, want), off);
        off += want;
        this.#chunks[used] = c.subarray(want);
      }
    }
    this.#chunks.splice(0, used);
    this.#buffered -= n;
    return out;
  }
}
