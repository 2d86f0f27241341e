/**
 * Size limits and shared checks for advisory input. Every limit is far above
 * what real OSV records hold (a large Debian record lists a few hundred
 * versions) and low enough that a hostile file cannot make the center
 * allocate without bound.
 */
import { SecurityCenterError } from '../../../errors/index.js';

/** Limits on imported advisory and countermeasure data. @public */
export const ADVISORY_LIMITS = Object.freeze({
  /** Bytes of one imported file (OSV document or countermeasure file). */
  fileBytes: 16 * 1024 * 1024,
  /** Advisories in one document. */
  advisories: 100_000,
  /** Characters of an ID or alias. */
  id: 128,
  /** Aliases, related IDs or references of one advisory. */
  listItems: 1_000,
  /** Characters of a summary. */
  summary: 1_024,
  /** Characters of details or manual instructions. */
  details: 64 * 1024,
  /** Affected packages of one advisory. */
  affected: 1_000,
  /** Ranges of one affected package. */
  ranges: 64,
  /** Events of one range. */
  events: 256,
  /** Explicitly listed versions of one affected package. */
  versions: 10_000,
  /** Characters of a URL. */
  url: 2_048,
  /** Characters of a package name. */
  packageName: 128,
  /** Steps in one advisory's countermeasure. */
  steps: 32,
  /** Arguments of one command step, and keys of one config step. */
  argv: 64,
  /** Characters of one argument, setting value or path. */
  arg: 4_096,
});

/** Package names: Debian's rules widened by RPM's (capitals, underscores). */
export const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `SecurityCenterError` `GS_ERR_SECURITY_MALFORMED_ADVISORY` naming where and what. */
export function malformed(where: string, why: string, cause?: unknown): SecurityCenterError {
  return new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_ADVISORY', `${where}: ${why}`, cause === undefined ? undefined : { cause });
}

/** A string of 1..max characters without control characters, or throw naming `where`. */
export function checkString(v: unknown, where: string, max: number, opts: { multiline?: boolean } = {}): string {
  if (typeof v !== 'string') throw malformed(where, `must be a string, got ${describe(v)}`);
  if (v.length === 0) throw malformed(where, 'must not be empty');
  if (v.length > max) throw malformed(where, `longer than ${max} characters`);
  // eslint-disable-next-line no-control-regex
  if ((opts.multiline ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/).test(v)) {
    throw malformed(where, 'contains control characters');
  }
  return v;
}

/** An array of at most `max` items, or throw naming `where`. */
export function checkArray(v: unknown, where: string, max: number): readonly unknown[] {
  if (!Array.isArray(v)) throw malformed(where, `must be an array, got ${describe(v)}`);
  if (v.length > max) throw malformed(where, `has ${v.length} items, more than ${max}`);
  return v;
}

/** Short description of a value's JSON type, for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40) ?? ''}`.trim();
}

/** Decode a file's bytes as UTF-8 JSON, refusing oversized input before parsing. */
export function parseJsonText(input: string | Uint8Array, where: string, maxBytes: number = ADVISORY_LIMITS.fileBytes): unknown {
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > maxBytes) throw malformed(where, `${size} bytes, more than the limit of ${maxBytes}`);
  let text: string;
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch (err) {
    throw malformed(where, 'not UTF-8', err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw malformed(where, `not JSON (${(err as Error).message})`, err);
  }
}
