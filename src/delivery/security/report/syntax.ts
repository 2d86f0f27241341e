/**
 * Field syntax shared by the report validator and the collectors: host paths,
 * version strings, names. Each check answers one question so the validator can
 * say which rule a field broke.
 */
import * as posix from 'node:path/posix';
import { SecurityCenterError } from '../../../errors/index.js';
import { isDebianVersion as isDebianVersionText, parseRpmVersion } from '../versions/index.js';

/** Longest path accepted (Linux PATH_MAX). */
export const MAX_PATH_LENGTH = 4096;
/** Longest path component accepted in bytes (Linux NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;

/**
 * Why `path` is not an absolute, normalised host path, or undefined when it is
 * one. Refused: non-strings, empty, relative, `.`/`..` segments, `//`, a
 * trailing `/`, the root itself, NUL and other control characters, over
 * {@link MAX_PATH_LENGTH} characters or a component over {@link MAX_COMPONENT_BYTES} bytes.
 */
export function hostPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'is not a string';
  if (path.length === 0) return 'is empty';
  if (path.length > MAX_PATH_LENGTH) return `is longer than ${MAX_PATH_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'holds a NUL or control character';
  if (!path.startsWith('/')) return 'is not absolute';
  if (path === '/') return 'is the root directory';
  if (path.endsWith('/')) return 'ends with "/"';
  const parts = path.slice(1).split('/');
  if (parts.some((p) => p === '..')) return 'climbs with ".."';
  if (parts.some((p) => p === '.' || p === '')) return 'is not normalised';
  if (posix.normalize(path) !== path) return 'is not normalised';
  if (parts.some((p) => Buffer.byteLength(p, 'utf8') > MAX_COMPONENT_BYTES)) return `has a component over ${MAX_COMPONENT_BYTES} bytes`;
  return undefined;
}

/** Throw `GS_ERR_SECURITY_UNSAFE_PATH` naming `what` unless `path` is a safe host path. */
export function checkHostPath(path: unknown, what: string): asserts path is string {
  const problem = hostPathProblem(path);
  if (problem !== undefined) {
    throw new SecurityCenterError('GS_ERR_SECURITY_UNSAFE_PATH', `${what} ${JSON.stringify(String(path).slice(0, 200))} ${problem}`);
  }
}

/**
 * True when `v` is a Debian version by deb-version(7) (the versions module's
 * strict parser decides).
 */
function isDebianVersion(v: unknown): v is string {
  return typeof v === 'string' && isDebianVersionText(v);
}

/**
 * True when `v` has the shape the rpm collector writes, `[epoch:]version-release`
 * (the versions module's strict parser, with the release required).
 */
function isRpmVersion(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    return parseRpmVersion(v).release !== undefined;
  } catch {
    return false;
  }
}

/** True when `v` is a version of `manager`'s syntax (Debian for dpkg, `[epoch:]version-release` for rpm). */
export function isPackageVersion(manager: 'dpkg' | 'rpm', v: unknown): v is string {
  return manager === 'dpkg' ? isDebianVersion(v) : isRpmVersion(v);
}

/** Package names: dpkg's `[a-z0-9][a-z0-9+.-]+` and rpm's wider set (letters of both cases, `_`), at most 256 characters. */
export function isPackageName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 256 && /^[A-Za-z0-9][A-Za-z0-9+._-]*$/.test(v);
}

/** Architectures (`amd64`, `all`, `x86_64`, `noarch`, `(none)` for rpm's gpg-pubkey). */
export function isArch(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 64 && /^(?:[A-Za-z0-9_.-]+|\(none\))$/.test(v);
}

/** Printable text without control characters, at most `max` characters. */
export function isPrintable(v: unknown, max: number): v is string {
  // eslint-disable-next-line no-control-regex
  return typeof v === 'string' && v.length <= max && !/[\u0000-\u001f\u007f]/.test(v);
}
