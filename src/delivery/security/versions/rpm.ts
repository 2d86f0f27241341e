/**
 * RPM versions: the strict parser and the ordering of rpm's `rpmvercmp`
 * (rpmio/rpmvercmp.c, rpm ≥ 4.15 with the caret) and `rpmverCmp`
 * (epoch, then version, then release when both sides have one).
 *
 * An EVR is `[epoch:]version[-release]`:
 *
 * ```text
 *   2:8.7p1-38.el9_4.1
 *   │ │     └─ release: after the LAST hyphen
 *   │ └─ version: no hyphen
 *   └─ epoch: decimal, absent means 0
 * ```
 *
 * Both version and release hold letters, digits and the separators `. _ +`,
 * plus `~` (sorts before everything, even the end: `1.0~rc1 < 1.0`) and `^`
 * (sorts after the end but before anything else: `1.0 < 1.0^git1 < 1.0.1`).
 * Comparison walks alphanumeric segments, skipping separators; digit
 * segments compare numerically and beat letter segments.
 *
 * Anything else is refused with `SecurityCenterError`
 * `GS_ERR_SECURITY_BAD_VERSION`.
 */
import { badVersion, isAlpha, isDigit, splitVersion } from './debian.js';

/** A parsed RPM epoch-version-release. @public */
export interface RpmVersion {
  /** Epoch, 0 when absent. */
  readonly epoch: number;
  /** Version. */
  readonly version: string;
  /** Release, `undefined` when absent (then the release is not compared). */
  readonly release: string | undefined;
  /** The string as given. */
  readonly text: string;
}

const PART = /^[A-Za-z0-9._+~^]+$/;

const bad = (text: unknown, why: string) => badVersion(text, 'an RPM', why);

/**
 * Parse an RPM `[epoch:]version[-release]` strictly
 * (`GS_ERR_SECURITY_BAD_VERSION` naming the rule broken).
 * @public
 */
export function parseRpmVersion(text: string): RpmVersion {
  const { epoch, main: rest, tail: release } = splitVersion(text, 'an RPM', 'release');
  if (release !== undefined && !PART.test(release)) throw bad(text, 'the release may hold only letters, digits and "._+~^"');
  if (rest.length === 0) throw bad(text, 'the version is empty');
  if (!PART.test(rest)) throw bad(text, 'the version may hold only letters, digits and "._+~^"');
  if (!/[A-Za-z0-9]/.test(rest)) throw bad(text, 'the version has no letter or digit');
  return { epoch, version: rest, release, text };
}

function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}
const TILDE = 126;
const CARET = 94;

/**
 * rpm's `rpmvercmp` on one part (version or release): -1, 0 or 1.
 */
export function compareRpmPart(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const la = a.length;
  const lb = b.length;
  while (i < la || j < lb) {
    while (i < la && !isAlnum(a.charCodeAt(i)) && a.charCodeAt(i) !== TILDE && a.charCodeAt(i) !== CARET) i++;
    while (j < lb && !isAlnum(b.charCodeAt(j)) && b.charCodeAt(j) !== TILDE && b.charCodeAt(j) !== CARET) j++;
    const ca = i < la ? a.charCodeAt(i) : -1;
    const cb = j < lb ? b.charCodeAt(j) : -1;
    // Tilde sorts before everything else, the end included.
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    // Caret: like tilde, except that the end of the other string sorts before it.
    if (ca === CARET || cb === CARET) {
      if (ca === -1) return -1;
      if (cb === -1) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === -1 || cb === -1) break;
    const si = i;
    const sj = j;
    const isNum = isDigit(ca);
    if (isNum) {
      while (i < la && isDigit(a.charCodeAt(i))) i++;
      while (j < lb && isDigit(b.charCodeAt(j))) j++;
    } else {
      while (i < la && isAlpha(a.charCodeAt(i))) i++;
      while (j < lb && isAlpha(b.charCodeAt(j))) j++;
    }
    // `a`'s segment is never empty here; `b`'s is when the kinds differ: digits beat letters.
    if (sj === j) return isNum ? 1 : -1;
    let sa = a.slice(si, i);
    let sb = b.slice(sj, j);
    if (isNum) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
  }
  const endA = i >= la;
  const endB = j >= lb;
  if (endA && endB) return 0;
  return endA ? -1 : 1;
}

/** Compare two parsed RPM EVRs as rpm does: epoch, version, then release when both have one. @public */
export function compareParsedRpm(a: RpmVersion, b: RpmVersion): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  const v = compareRpmPart(a.version, b.version);
  if (v !== 0 || a.release === undefined || b.release === undefined) return v;
  return compareRpmPart(a.release, b.release);
}

/**
 * Compare two RPM EVR strings: -1, 0 or 1 (both parsed strictly first).
 *
 * @example
 * ```ts
 * compareRpmVersions('1.0~rc1-1', '1.0-1');   // -1
 * compareRpmVersions('1.0^git1-1', '1.0-1');  //  1
 * ```
 * @public
 */
export function compareRpmVersions(a: string, b: string): -1 | 0 | 1 {
  return compareParsedRpm(parseRpmVersion(a), parseRpmVersion(b));
}

/** Tokens of one part as rpmvercmp sees them (separators dropped, numbers without leading zeros). */
function partKey(p: string): string {
  const tokens = p.match(/[0-9]+|[A-Za-z]+|~|\^/g) ?? [];
  return tokens.map((t) => (isDigit(t.charCodeAt(0)) ? t.replace(/^0+(?=.)/, '') : t)).join('.');
}

/**
 * A string equal for two EVRs that compare equal *including* the release
 * (`1.0-1` and `1.0` get different keys, though rpm calls them equal because
 * one side has no release).
 * @public
 */
export function rpmVersionKey(v: RpmVersion): string {
  return `${v.epoch}:${partKey(v.version)}-${v.release === undefined ? '' : partKey(v.release)}`;
}
