/**
 * What every dispatch codec shares (docs/dispatch.md, "Formats"): digests,
 * random IDs and evidence values, canonical base64url and hex, the
 * canonical-JSON discipline, strict field checks, the safe target path, and
 * the center key's text form and key ID (those two are the multicast
 * updater's, imported, not copied).
 *
 * Canonical JSON here means: the encoder builds every object with its keys
 * in the order docs/dispatch.md gives, and `JSON.stringify` writes it with
 * no spaces. A decoder parses, checks every field, rebuilds the object in
 * that order, re-encodes it and compares the bytes; any other spelling of
 * the same value (spaces, another key order, `1.0`, `\u0041`, a duplicate
 * key) is refused, so every value has exactly one encoding and a signature
 * covers exactly the bytes that were checked.
 */
import { DeliveryError, DispatchError, type DispatchErrorCode } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { getCryptoBackend, isMsid } from '../../../session/index.js';
import { parsePublicKey, publisherKeyId } from '../../update/index.js';

/**
 * A SHA-256 digest as text: `sha256:` followed by 64 lowercase hex digits.
 * @public
 */
export type Digest = string;

/** Prefix of a {@link Digest}. @public */
export const DIGEST_PREFIX = 'sha256:';
/** Bytes of an Ed25519 signature. @public */
export const SIGNATURE_LEN = 64;
/** Bytes of an Ed25519 public key. */
const PUBLIC_KEY_LEN = 32;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HEX_RE = /^[0-9a-f]*$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
/** In `u` mode a surrogate pair is one code point, so this matches only a lone surrogate. */
const LONE_SURROGATE_RE = /[\ud800-\udfff]/u;

/** A `DispatchError` `GS_ERR_DISPATCH_MALFORMED`. @internal */
export function malformed(what: string): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_MALFORMED', what);
}

/** A `DispatchError` with `code`. @internal */
export function dispatchError(code: DispatchErrorCode, what: string): DispatchError {
  return new DispatchError(code, what);
}

// ---------------------------------------------------------------------------
// Digests, IDs, evidence

/**
 * The {@link Digest} of `bytes` (SHA-256).
 * @public
 */
export function sha256Digest(bytes: Uint8Array): Digest {
  return DIGEST_PREFIX + toHex(getCryptoBackend().sha256(bytes));
}

/**
 * True when `value` is a {@link Digest} in canonical form.
 * @public
 */
export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/**
 * A fresh dispatch ID: 16 random bytes as 32 lowercase hex digits.
 * @public
 */
export function newDispatchId(): string {
  return toHex(getCryptoBackend().randomBytes(16));
}

/**
 * A fresh evidence value: 32 random bytes (the backend's CSPRNG) as 64
 * lowercase hex digits. The center issues one per agent per run and never
 * reuses it.
 * @public
 */
export function newEvidence(): string {
  return toHex(getCryptoBackend().randomBytes(32));
}

/**
 * What the evidence log records when an evidence value is issued: the
 * {@link Digest} of its 64 hex digits as ASCII, so the log proves which value
 * was issued without revealing it before its result.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` unless `evidence` is 64 lowercase hex digits.
 * @public
 */
export function evidenceHash(evidence: string): Digest {
  checkHex(evidence, 'evidence', 64);
  return sha256Digest(utf8(evidence));
}

// ---------------------------------------------------------------------------
// Center keys

/**
 * The key ID of a center public key: the first 8 bytes of its SHA-256 as 16
 * lowercase hex digits (the multicast updater's key ID).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` unless `publicKey` is 32 bytes.
 * @public
 */
export function centerKeyId(publicKey: Uint8Array): string {
  return publisherKeyId(checkPublicKey(publicKey));
}

/**
 * A center public key from its text form (`ed25519:` + base64url, or a
 * `PUBLIC KEY` PEM block, as the updater reads them) or from its 32 bytes
 * (returned as a copy).
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for anything else.
 * @public
 */
export function parseCenterKey(key: Uint8Array | string): Uint8Array {
  if (key instanceof Uint8Array) return checkPublicKey(key).slice();
  try {
    return parsePublicKey(key);
  } catch (err) {
    if (err instanceof DeliveryError) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `invalid center key: ${err.message}`, { cause: err });
    throw err;
  }
}

/** `publicKey` when it is a 32-byte array; MALFORMED otherwise. @internal */
export function checkPublicKey(publicKey: unknown): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LEN) throw malformed(`a center public key is ${PUBLIC_KEY_LEN} bytes`);
  return publicKey;
}

/** Ed25519 verification through the crypto backend; false (never a throw) for a bad key or signature. @internal */
export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return getCryptoBackend().ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/**
 * `now` (default `Date.now()`), checked: a NaN or fractional time would make
 * every expiry comparison false and accept anything.
 * @internal
 */
export function timeNow(now: number | undefined, name = 'now'): number {
  const t = now ?? Date.now();
  checkOption(Number.isSafeInteger(t) && t >= 0, name, 'must be a non-negative integer (ms since the epoch)');
  return t;
}

// ---------------------------------------------------------------------------
// Bytes and text

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of `text`. @internal */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** `bytes` as UTF-8 text; MALFORMED for invalid UTF-8. @internal */
export function fromUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
}

/** Lowercase hex of `bytes`. @internal */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Unpadded base64url of `bytes` (RFC 4648 §5).
 * @public
 */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Bytes of canonical unpadded base64url: only the base64url alphabet, and
 * re-encoding must give `text` back (no padding, no stray low bits), so each
 * value has exactly one spelling.
 * @param what - Names the field in the error.
 * @param maxBytes - Most decoded bytes accepted.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`.
 * @public
 */
export function fromBase64url(text: unknown, what: string, maxBytes: number): Uint8Array {
  if (typeof text !== 'string' || !B64URL_RE.test(text)) throw malformed(`${what} must be unpadded base64url`);
  if (text.length > Math.ceil((maxBytes * 4) / 3)) throw malformed(`${what} is longer than ${maxBytes} bytes`);
  const buf = Buffer.from(text, 'base64url');
  if (buf.toString('base64url') !== text) throw malformed(`${what} is not canonical base64url`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Concatenation of byte arrays, in a fresh array of its own. @internal */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Equality of two byte arrays. @internal */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// ---------------------------------------------------------------------------
// Canonical JSON

/**
 * The canonical bytes of a JSON value built by a codec (keys already in
 * their fixed order): `JSON.stringify` with no spaces, as UTF-8.
 * @internal
 */
export function canonicalJson(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

/**
 * Decode canonical JSON: strict UTF-8, `JSON.parse`, `build` (which checks
 * every field and rebuilds the value in its fixed key order), then the
 * re-encoding must equal `bytes`. Every failure is MALFORMED (or whatever
 * `build` throws, always a DispatchError).
 * @internal
 */
export function parseCanonical<T>(bytes: Uint8Array, what: string, build: (raw: unknown) => T): T {
  const text = fromUtf8(bytes, what);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  const value = build(raw);
  if (!bytesEqual(canonicalJson(value), bytes)) throw malformed(`${what} is not in canonical form (key order, spacing or number/string spelling)`);
  return value;
}

// ---------------------------------------------------------------------------
// Field checks (all throw MALFORMED naming the field)

/**
 * `raw` as a plain object with exactly the keys `keys` (order is checked
 * later, by the canonical re-encoding).
 * @internal
 */
export function expectObject(raw: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed(`${what} must be a JSON object`);
  const own = Object.keys(raw);
  if (own.length !== keys.length || !keys.every((k) => Object.prototype.hasOwnProperty.call(raw, k))) {
    throw malformed(`${what} must have exactly the fields ${keys.join(', ')}`);
  }
  return raw as Record<string, unknown>;
}

/** Throw MALFORMED unless `value` is an integer in `min … max`. @internal */
export function checkInt(value: unknown, what: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max || Object.is(value, -0)) {
    throw malformed(`${what} must be an integer in ${min}…${max}`);
  }
}

/** Throw MALFORMED unless `value` is `chars` lowercase hex digits. @internal */
export function checkHex(value: unknown, what: string, chars: number): asserts value is string {
  if (typeof value !== 'string' || value.length !== chars || !HEX_RE.test(value)) throw malformed(`${what} must be ${chars} lowercase hex digits`);
}

/** Throw MALFORMED unless `value` is a canonical {@link Digest}. @internal */
export function checkDigest(value: unknown, what: string): asserts value is Digest {
  if (!isDigest(value)) throw malformed(`${what} must be "sha256:" followed by 64 lowercase hex digits`);
}

/** Throw MALFORMED unless `value` is a string of at most `maxBytes` UTF-8 bytes (and at least `minBytes`). @internal */
export function checkString(value: unknown, what: string, maxBytes: number, minBytes = 0): asserts value is string {
  if (typeof value !== 'string') throw malformed(`${what} must be a string`);
  const n = Buffer.byteLength(value, 'utf8');
  if (n < minBytes || n > maxBytes) throw malformed(`${what} must be ${minBytes}–${maxBytes} bytes of UTF-8`);
  if (LONE_SURROGATE_RE.test(value)) throw malformed(`${what} holds a lone surrogate`);
}

/** Most arguments a target may be given. @public */
export const MAX_TARGET_ARGS = 256;
/** Most UTF-8 bytes of one target argument. @public */
export const MAX_TARGET_ARG_BYTES = 4096;

/** Most UTF-8 bytes of all a target's arguments together. @public */
export const MAX_TARGET_ARGS_TOTAL_BYTES = 16 * 1024;

/**
 * Throw MALFORMED unless `value` is a list of at most {@link MAX_TARGET_ARGS}
 * strings of at most {@link MAX_TARGET_ARG_BYTES} bytes each and
 * {@link MAX_TARGET_ARGS_TOTAL_BYTES} together, with no NUL (a process
 * argument cannot hold one). Returns a copy.
 * @internal
 */
export function checkArgs(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_TARGET_ARGS) throw malformed(`${what} must be a list of at most ${MAX_TARGET_ARGS} strings`);
  let total = 0;
  return value.map((a, i) => {
    checkString(a, `${what}[${i}]`, MAX_TARGET_ARG_BYTES);
    if (a.includes('\0')) throw malformed(`${what}[${i}] holds a NUL character`);
    total += Buffer.byteLength(a, 'utf8');
    if (total > MAX_TARGET_ARGS_TOTAL_BYTES) throw malformed(`${what} are more than ${MAX_TARGET_ARGS_TOTAL_BYTES} bytes together`);
    return a;
  });
}

/** Throw MALFORMED unless `value` is an MSID (`MSID-` + 64 upper-case hex digits). @internal */
export function checkMsid(value: unknown, what: string): asserts value is string {
  if (!isMsid(value)) throw malformed(`${what} must be "MSID-" followed by 64 upper-case hex digits`);
}

// ---------------------------------------------------------------------------
// Target paths

/** Most UTF-8 bytes of a target path. @public */
export const MAX_TARGET_PATH_BYTES = 255;

/**
 * Why `path` is not a safe target path, or `null` when it is. A safe path
 * is relative to the agent's work directory and stays inside it: 1–255
 * bytes of UTF-8, `/`-separated, no leading `/`, no empty, `.` or `..`
 * segment, no backslash (a separator on Windows), no NUL or other control
 * character, and no `:` (a drive or stream name on Windows).
 * @public
 */
export function unsafeTargetPathReason(path: unknown): string | null {
  if (typeof path !== 'string') return 'it is not a string';
  const n = Buffer.byteLength(path, 'utf8');
  if (n === 0 || n > MAX_TARGET_PATH_BYTES) return `it must be 1–${MAX_TARGET_PATH_BYTES} bytes`;
  if (LONE_SURROGATE_RE.test(path)) return 'it holds a lone surrogate';
  if (path.startsWith('/')) return 'it is absolute';
  if (path.includes('\\')) return 'it holds a backslash';
  if (path.includes(':')) return 'it holds a colon';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'it holds a NUL or another control character';
  for (const seg of path.split('/')) {
    if (seg === '') return 'it has an empty segment';
    if (seg === '.' || seg === '..') return `it has a "${seg}" segment`;
  }
  return null;
}

/**
 * Throw `DispatchError` `GS_ERR_DISPATCH_UNSAFE_PATH` unless `path` is a
 * safe target path ({@link unsafeTargetPathReason}).
 * @public
 */
export function checkTargetPath(path: unknown): asserts path is string {
  const why = unsafeTargetPathReason(path);
  if (why !== null) throw new DispatchError('GS_ERR_DISPATCH_UNSAFE_PATH', `target path ${JSON.stringify(String(path).slice(0, 80))} is not safe: ${why}`);
}

// ---------------------------------------------------------------------------
// Signed envelopes (bindings and reports)

/**
 * One kind of signed envelope: the text form of a binding or report.
 *
 * ```text
 * encoded = base64url( canonical JSON (n bytes) ‖ Ed25519 signature (64 bytes) )
 * signed  = context ‖ canonical JSON
 * ```
 *
 * `keys` is the JSON's key order, `format` its first key's value, and
 * `build` checks a parsed value and rebuilds it in that order.
 * @internal
 */
export interface EnvelopeKind<F> {
  readonly what: string;
  readonly format: string;
  readonly keys: readonly string[];
  readonly context: Uint8Array;
  readonly maxJsonBytes: number;
  readonly build: (raw: unknown) => F & { format: string };
}

/** An envelope's parts: the checked fields (without `format`, frozen), the JSON and the signature. @internal */
export interface EnvelopeParts<F> {
  readonly fields: F;
  readonly json: Uint8Array;
  readonly signature: Uint8Array;
  readonly encoded: string;
}

/** `fields` without `format`, frozen one level down (nested objects and arrays too). */
function freezeFields<F>(built: F & { format: string }): F {
  const { format: _format, ...fields } = built;
  for (const v of Object.values(fields)) if (typeof v === 'object' && v !== null) Object.freeze(v);
  return Object.freeze(fields) as F;
}

/**
 * Sign `fields` as an envelope of `kind`: only the kind's keys are taken
 * (in its order), checked by `build`, then signed by `sign`.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a field outside the grammar or JSON over the limit.
 * @internal
 */
export function sealEnvelope<F>(kind: EnvelopeKind<F>, fields: F, sign: (message: Uint8Array) => Uint8Array): EnvelopeParts<F> {
  if (typeof fields !== 'object' || fields === null) throw malformed(`${kind.what} fields must be an object`);
  const src: Record<string, unknown> = { ...(fields as Record<string, unknown>), format: kind.format };
  const built = kind.build(Object.fromEntries(kind.keys.map((k) => [k, src[k]])));
  const json = canonicalJson(built);
  if (json.length > kind.maxJsonBytes) throw malformed(`${kind.what} is ${json.length} bytes, more than ${kind.maxJsonBytes}`);
  const signature = sign(concat(kind.context, json));
  return { fields: freezeFields(built), json, signature, encoded: toBase64url(concat(json, signature)) };
}

/**
 * Decode an envelope of `kind`: canonical base64url of at most
 * `maxJsonBytes + 64` bytes, then canonical JSON checked by `build`. The
 * signature is split off, not checked.
 * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED`.
 * @internal
 */
export function openEnvelope<F>(kind: EnvelopeKind<F>, encoded: unknown): EnvelopeParts<F> {
  const bytes = fromBase64url(encoded, kind.what, kind.maxJsonBytes + SIGNATURE_LEN);
  if (bytes.length < SIGNATURE_LEN + 2) throw malformed(`${kind.what} is too short to hold JSON and a signature`);
  const json = bytes.subarray(0, bytes.length - SIGNATURE_LEN);
  const built = parseCanonical(json, kind.what, kind.build);
  return { fields: freezeFields(built), json, signature: bytes.subarray(bytes.length - SIGNATURE_LEN), encoded: encoded as string };
}

/** True when `signature` is `publicKey`'s over `context ‖ json` of an envelope. @internal */
export function envelopeSigned<F>(kind: EnvelopeKind<F>, parts: EnvelopeParts<F>, publicKey: Uint8Array): boolean {
  return verifyEd25519(parts.signature, concat(kind.context, parts.json), publicKey);
}
