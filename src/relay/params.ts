/**
 * Checks of request parameters that came over the network (internal). A
 * field of the wrong type or size is the peer's fault: `GS_ERR_PROTOCOL`
 * naming the field, never a crash.
 */
import { SessionError } from '../errors/index.js';
import type { RpcParams } from './rpc.js';

function bad(field: string, what: string): SessionError {
  return new SessionError('GS_ERR_PROTOCOL', `field "${field}" ${what}`);
}

/** A string field of at most `max` characters. */
export function stringField(p: RpcParams, field: string, max = 256): string {
  const v = p[field];
  if (typeof v !== 'string' || v.length > max) throw bad(field, `must be a string of at most ${max} characters`);
  return v;
}

/** An optional string field. */
export function optionalStringField(p: RpcParams, field: string, max = 256): string | undefined {
  return p[field] === undefined || p[field] === null ? undefined : stringField(p, field, max);
}

/** A finite number field within [min, max]. */
export function numberField(p: RpcParams, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = p[field];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw bad(field, `must be a number in [${min}, ${max}]`);
  return v;
}

/** A boolean field, `fallback` when absent. */
export function booleanField(p: RpcParams, field: string, fallback: boolean): boolean {
  const v = p[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw bad(field, 'must be true or false');
  return v;
}

/** A base64url field decoded to bytes, of at most `max` bytes. */
export function bytesField(p: RpcParams, field: string, max = 4096): Uint8Array {
  const v = p[field];
  if (typeof v !== 'string' || v.length > Math.ceil((max * 4) / 3) + 4 || !/^[A-Za-z0-9_-]*$/.test(v)) throw bad(field, 'must be base64url');
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

/** Bytes as base64url, for a field. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** An array field of strings, each at most `max` characters, at most `maxItems` of them. */
export function stringArrayField(p: RpcParams, field: string, max = 256, maxItems = 100_000): string[] {
  const v = p[field];
  if (!Array.isArray(v) || v.length > maxItems || !v.every((s) => typeof s === 'string' && s.length <= max)) {
    throw bad(field, `must be an array of at most ${maxItems} strings`);
  }
  return v as string[];
}
