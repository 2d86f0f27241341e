/**
 * Update names and where they land: the one function that maps a name from
 * the wire to a path inside a receiver's directory.
 *
 * A name is a relative path of `/`-separated segments. The grammar
 * (docs/delivery.md, "Names"):
 *
 *     name    = segment *( "/" segment )          ; 1 … 200 bytes in all
 *     segment = 1*100 ( ALPHA / DIGIT / "." / "_" / "-" / "+" )
 *                                                 ; but never "." or ".."
 *
 * and the name must not start with `.gatesock` (receivers keep their working
 * state and version history under that prefix in the same directory).
 *
 * So no absolute path, no `..`, no empty segment, no backslash, no NUL or
 * other control character, no space, nothing outside ASCII, nothing
 * overlong. {@link resolveUpdatePath} checks this again and then checks the
 * resolved path itself, so a bug in one check cannot let a name escape.
 */
import * as path from 'node:path';
import { DeliveryError } from '../../../errors/index.js';

/** Longest update name, in bytes (ASCII). @public */
export const MAX_NAME_LENGTH = 200;
/** Longest segment of an update name. @public */
export const MAX_NAME_SEGMENT_LENGTH = 100;

const SEGMENT_RE = /^[A-Za-z0-9._+-]+$/;
/** Names starting with this are refused: receivers keep their own state under it (partial transfers, history). @public */
export const RESERVED_PREFIX = '.gatesock';

/**
 * Why `name` is not a safe update name, or `undefined` when it is.
 * @public
 */
export function unsafeNameReason(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'the name is not a string';
  if (name.length === 0) return 'the name is empty';
  if (name.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  // Control characters (NUL included), DEL and anything outside ASCII first, so the
  // message names the real problem rather than "bad segment".
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0) return 'the name contains a NUL byte';
    if (c < 0x20 || c === 0x7f) return 'the name contains a control character';
    if (c > 0x7e) return 'the name contains a character outside printable ASCII';
  }
  if (name.includes('\\')) return 'the name contains a backslash';
  if (name.startsWith('/')) return 'the name is an absolute path';
  if (name.startsWith(RESERVED_PREFIX)) return `names starting with "${RESERVED_PREFIX}" are reserved for the receiver's own state`;
  for (const segment of name.split('/')) {
    if (segment.length === 0) return 'the name has an empty segment (a "//" or a trailing "/")';
    if (segment === '.' || segment === '..') return `the name has a "${segment}" segment`;
    if (segment.length > MAX_NAME_SEGMENT_LENGTH) return `a segment is longer than ${MAX_NAME_SEGMENT_LENGTH} characters`;
    if (!SEGMENT_RE.test(segment)) return 'the name has a character outside A-Z a-z 0-9 . _ - + /';
  }
  return undefined;
}

/**
 * True when `name` follows the update-name grammar (module comment).
 * @public
 */
export function isSafeUpdateName(name: unknown): name is string {
  return unsafeNameReason(name) === undefined;
}

/**
 * Throw `DeliveryError` `GS_ERR_DELIVERY_UNSAFE_NAME` unless `name` is a
 * safe update name.
 * @public
 */
export function checkUpdateName(name: unknown): asserts name is string {
  const why = unsafeNameReason(name);
  if (why !== undefined) {
    throw new DeliveryError('GS_ERR_DELIVERY_UNSAFE_NAME', `unsafe update name ${JSON.stringify(String(name).slice(0, 60))}: ${why}`);
  }
}

/**
 * The absolute path where update `name` lands inside `directory`.
 *
 * Checks the name's grammar, then that the resolved path lies strictly
 * inside the resolved directory. (It does not follow symbolic links: a link
 * the receiver's operator placed inside the directory is theirs to trust.)
 *
 * @throws DeliveryError `GS_ERR_DELIVERY_UNSAFE_NAME` for a name that could
 * leave the directory or is not a valid update name.
 * @public
 */
export function resolveUpdatePath(directory: string, name: string): string {
  checkUpdateName(name);
  const root = path.resolve(directory);
  const target = path.resolve(root, ...name.split('/'));
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  if (!target.startsWith(prefix) || target.length === prefix.length) {
    throw new DeliveryError('GS_ERR_DELIVERY_UNSAFE_NAME', `unsafe update name ${JSON.stringify(name)}: it resolves outside ${root}`);
  }
  return target;
}
