/**
 * Small helpers every wire codec of the updater shares: the typed error
 * constructors, canonical decimal and hex fields, big-endian integers.
 * Internal to src/delivery/update/wire.
 */
import { DeliveryError, type DeliveryErrorCode } from '../../../errors/index.js';

/** A `DeliveryError` `GS_ERR_DELIVERY_MALFORMED` with `what` as the message. @internal */
export function malformed(what: string): DeliveryError {
  return new DeliveryError('GS_ERR_DELIVERY_MALFORMED', what);
}

/** A `DeliveryError` with `code`. @internal */
export function deliveryError(code: DeliveryErrorCode, what: string): DeliveryError {
  return new DeliveryError(code, what);
}

/** Canonical unsigned decimal: `0` or no leading zero, at most 16 digits. */
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Parse a canonical unsigned decimal field in `min … max` (both safe
 * integers). Throws `GS_ERR_DELIVERY_MALFORMED` naming the field otherwise.
 * @internal
 */
export function parseDecimal(text: string, field: string, min: number, max: number): number {
  if (!DECIMAL.test(text)) throw malformed(`${field} must be a canonical decimal number, got ${JSON.stringify(text.slice(0, 40))}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw malformed(`${field} must be in ${min}…${max}, got ${text}`);
  return n;
}

/** True when `value` is an integer in `min … max`. @internal */
export function inRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** Throw `GS_ERR_DELIVERY_MALFORMED` unless `value` is an integer in `min … max`. @internal */
export function checkInt(value: unknown, field: string, min: number, max: number): asserts value is number {
  if (!inRange(value, min, max)) throw malformed(`${field} must be an integer in ${min}…${max}, got ${String(value)}`);
}

const HEX_RE = /^[0-9a-f]*$/;

/** Throw `GS_ERR_DELIVERY_MALFORMED` unless `text` is lowercase hex of exactly `chars` characters. @internal */
export function checkHex(text: unknown, field: string, chars: number): asserts text is string {
  if (typeof text !== 'string' || text.length !== chars || !HEX_RE.test(text)) {
    throw malformed(`${field} must be ${chars} lowercase hex digits`);
  }
}

/** Lowercase hex of `bytes`. @internal */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of lowercase hex (checked by the caller). @internal */
export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Unpadded base64url of `bytes`. @internal */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * Bytes of canonical unpadded base64url that must decode to `length` bytes:
 * re-encoding must give `text` back (no stray low bits), so every value has
 * exactly one spelling. Throws `GS_ERR_DELIVERY_MALFORMED`.
 * @internal
 */
export function fromBase64url(text: string, field: string, length: number): Uint8Array {
  if (text.length !== Math.ceil((length * 4) / 3) || !B64URL_RE.test(text)) throw malformed(`${field} must be ${length} bytes of unpadded base64url`);
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (bytes.length !== length || toBase64url(bytes) !== text) throw malformed(`${field} is not canonical base64url`);
  return bytes;
}

/** Constant-time-enough equality of two byte arrays (lengths are public). @internal */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** ASCII bytes of a string known to be ASCII. @internal */
export function ascii(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}
