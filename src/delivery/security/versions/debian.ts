/**
 * Debian package versions: the strict parser and the ordering of
 * deb-version(7) and Debian Policy §5.6.12, as dpkg implements it
 * (lib/dpkg/version.c `dpkg_version_compare` and `verrevcmp`).
 *
 * A version is `[epoch:]upstream_version[-debian_revision]`:
 *
 * ```text
 *   1:2.30-1+deb12u1
 *   │ │    └─ revision: after the LAST hyphen; alphanumerics and + . ~
 *   │ └─ upstream: starts with a digit; alphanumerics and . + ~ -
 *   │             (a hyphen only when there is a revision, a colon only when there is an epoch)
 *   └─ epoch: before the FIRST colon; decimal, absent means 0
 * ```
 *
 * Ordering (deb-version(7), "Sorting algorithm"): epochs numerically; then
 * upstream, then revision, each compared left to right in alternating runs of
 * non-digits and digits. Non-digit runs compare character by character where
 * `~` sorts before everything, even the end of the part, then the end of the
 * part, then letters (ASCII), then every other character (ASCII); digit runs
 * compare numerically (leading zeros ignored, an empty run is 0). So
 * `1.0~rc1 < 1.0 < 1.0a < 1.0+b1 < 1.0.1`, an absent revision equals `-0`,
 * and `1.09` equals `1.9`.
 *
 * The parser is stricter than dpkg, which only warns about some of these:
 * everything Policy forbids is refused with `SecurityCenterError`
 * `GS_ERR_SECURITY_BAD_VERSION` (a version the center cannot order must not
 * decide whether a host is vulnerable).
 */
import { SecurityCenterError } from '../../../errors/index.js';

/** Longest version string accepted (dpkg has no limit; real ones stay far below). @public */
export const MAX_VERSION_LENGTH = 256;

/** Largest epoch: dpkg stores it in an `int` and refuses larger ones. */
const MAX_EPOCH = 0x7fffffff;

/**
 * A parsed Debian version. Two versions whose parts compare equal may differ
 * in spelling (`1.09` and `1.9`); their {@link DebianVersion.sortKey}s are
 * equal exactly when the versions compare equal.
 * @public
 */
export interface DebianVersion {
  /** Epoch, 0 when absent. */
  readonly epoch: number;
  /** Upstream version. */
  readonly upstream: string;
  /** Debian revision, `''` when absent (which orders like `0`). */
  readonly revision: string;
  /** The string as given. */
  readonly text: string;
  /**
   * A string whose code-unit order is the version order (see
   * `debianSortKey`): comparing two versions is one string comparison.
   */
  readonly sortKey: string;
}

const UPSTREAM_WITH_EPOCH = /^[0-9][A-Za-z0-9.+~:-]*$/;
const UPSTREAM_NO_EPOCH = /^[0-9][A-Za-z0-9.+~-]*$/;
const REVISION = /^[A-Za-z0-9.+~]+$/;
const EPOCH = /^[0-9]+$/;

/**
 * `GS_ERR_SECURITY_BAD_VERSION`: "`text` is not a `what` version: `why`" (text shortened to 80 characters).
 * @internal
 */
export function badVersion(text: unknown, what: string, why: string): SecurityCenterError {
  const shown = typeof text === 'string' ? JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text) : typeof text;
  return new SecurityCenterError('GS_ERR_SECURITY_BAD_VERSION', `${shown} is not ${what} version: ${why}`);
}

const bad = (text: unknown, why: string) => badVersion(text, 'a Debian', why);

/**
 * The checks Debian and RPM share: a string of 1–256 characters; an epoch
 * before the first colon (decimal, at most 2^31−1); the part after the last
 * hyphen (`tailName`: revision or release) not empty. `main` is what lies
 * between. @internal
 */
export function splitVersion(
  text: string,
  what: string,
  tailName: string,
): { epoch: number; hasEpoch: boolean; main: string; tail: string | undefined } {
  const fail = (why: string) => badVersion(text, what, why);
  if (typeof text !== 'string') throw fail('not a string');
  if (text.length === 0) throw fail('empty');
  if (text.length > MAX_VERSION_LENGTH) throw fail(`longer than ${MAX_VERSION_LENGTH} characters`);
  let main = text;
  let epoch = 0;
  const colon = main.indexOf(':');
  if (colon >= 0) {
    const e = main.slice(0, colon);
    if (e.length === 0) throw fail('the epoch before ":" is empty');
    if (!EPOCH.test(e)) throw fail('the epoch is not a decimal number');
    epoch = Number(e);
    if (!(epoch <= MAX_EPOCH)) throw fail(`the epoch is larger than ${MAX_EPOCH}`);
    main = main.slice(colon + 1);
  }
  let tail: string | undefined;
  const hyphen = main.lastIndexOf('-');
  if (hyphen >= 0) {
    tail = main.slice(hyphen + 1);
    main = main.slice(0, hyphen);
    if (tail.length === 0) throw fail(`the ${tailName} after the last "-" is empty`);
  }
  return { epoch, hasEpoch: colon >= 0, main, tail };
}

/**
 * Parse a Debian version strictly. `SecurityCenterError`
 * `GS_ERR_SECURITY_BAD_VERSION`, naming the rule broken, for anything that is
 * not a version by Debian Policy §5.6.12.
 *
 * @example
 * ```ts
 * parseDebianVersion('1:2.30-1+deb12u1'); // { epoch: 1, upstream: '2.30', revision: '1+deb12u1', … }
 * ```
 * @public
 */
export function parseDebianVersion(text: string): DebianVersion {
  const { epoch, hasEpoch, main: rest, tail } = splitVersion(text, 'a Debian', 'revision');
  const revision = tail ?? '';
  if (tail !== undefined && !REVISION.test(revision)) throw bad(text, 'the revision may hold only letters, digits and "+.~"');
  if (rest.length === 0) throw bad(text, 'the upstream version is empty');
  if (!/^[0-9]/.test(rest)) throw bad(text, 'the upstream version must start with a digit');
  if (!(hasEpoch ? UPSTREAM_WITH_EPOCH : UPSTREAM_NO_EPOCH).test(rest)) {
    throw bad(text, `the upstream version may hold only letters, digits and "+.~-"${hasEpoch ? ' and ":"' : ''}`);
  }
  return { epoch, upstream: rest, revision, text, sortKey: debianSortKey(epoch, rest, revision) };
}

/** True when `text` parses as a Debian version. @public */
export function isDebianVersion(text: string): boolean {
  try {
    parseDebianVersion(text);
    return true;
  } catch {
    return false;
  }
}

const C0 = 48; // '0'
const C9 = 57; // '9'
const TILDE = 126;

/** An ASCII digit's char code. @internal */
export function isDigit(c: number): boolean {
  return c >= C0 && c <= C9;
}

/** An ASCII letter's char code. @internal */
export function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** deb-version(7): `~` first, then end of string, then letters, then the rest. `c` is NaN past the end. */
function order(c: number): number {
  if (Number.isNaN(c)) return 0;
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === TILDE) return -1;
  return c + 256;
}

/**
 * dpkg's `verrevcmp`: compare one part (upstream or revision). Negative,
 * zero or positive as `a` sorts before, equal to, or after `b`.
 */
export function compareDebianPart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const la = a.length;
  const lb = b.length;
  while (i < la || j < lb) {
    // Non-digit run, character by character.
    while ((i < la && !isDigit(a.charCodeAt(i))) || (j < lb && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < la ? a.charCodeAt(i) : NaN);
      const bc = order(j < lb ? b.charCodeAt(j) : NaN);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    // Digit run, numerically: skip leading zeros, then the longer run is larger, else the first difference.
    while (i < la && a.charCodeAt(i) === C0) i++;
    while (j < lb && b.charCodeAt(j) === C0) j++;
    let firstDiff = 0;
    while (i < la && j < lb && isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < la && isDigit(a.charCodeAt(i))) return 1;
    if (j < lb && isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/**
 * Compare two parsed Debian versions: negative, zero or positive. One
 * comparison of their sort keys; `compareParsedDebianReference` is the
 * same ordering computed the way dpkg does, and a property test keeps the two
 * equal.
 * @public
 */
export function compareParsedDebian(a: DebianVersion, b: DebianVersion): number {
  return a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0;
}

/** dpkg's `dpkg_version_compare` written out: epoch, then `verrevcmp` on upstream and revision. The reference twin. */
export function compareParsedDebianReference(a: DebianVersion, b: DebianVersion): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  return Math.sign(compareDebianPart(a.upstream, b.upstream)) || Math.sign(compareDebianPart(a.revision, b.revision));
}

/**
 * Compare two Debian version strings as `dpkg --compare-versions` does:
 * -1, 0 or 1. Both are parsed strictly first (`GS_ERR_SECURITY_BAD_VERSION`).
 *
 * @example
 * ```ts
 * compareDebianVersions('1.0~rc1-1', '1.0-1'); // -1: a tilde sorts before the end
 * compareDebianVersions('1:0.9', '2.0');        //  1: the epoch wins
 * ```
 * @public
 */
export function compareDebianVersions(a: string, b: string): -1 | 0 | 1 {
  return Math.sign(compareParsedDebian(parseDebianVersion(a), parseDebianVersion(b))) as -1 | 0 | 1;
}

// Sort-key code units. In verrevcmp a non-digit character ranks `~` < end of
// the run < letters < everything else, so: `~` → 0x01, end of a run → 0x02,
// letters → their ASCII code (0x41–0x7a), others → their code + 0x100.
const K_TILDE = '\u0001';
const K_RUN_END = '\u0002';

/**
 * One part (upstream or revision) as a string that sorts like verrevcmp.
 * Each (non-digit run, digit run) pair becomes the run's characters mapped as
 * above, `K_RUN_END`, then the number as one code unit holding its length
 * (leading zeros dropped) and its digits — a longer number is larger, equal
 * lengths compare digit by digit. A closing `K_RUN_END` ends the part.
 *
 * Why that is the order: the keys stay aligned pair by pair. Where one part
 * has ended and the other goes on, the other's next pair starts with a
 * non-digit (only a part's first pair can start with a digit), so the
 * closing `K_RUN_END` meets that character: below it for `~`, above it for a
 * letter or separator — as the end of a part does in verrevcmp. An empty
 * part (a missing revision) is keyed as `0`, which verrevcmp finds equal.
 */
function partSortKey(part: string): string {
  const p = part === '' ? '0' : part;
  let out = '';
  let i = 0;
  const n = p.length;
  while (i < n) {
    for (; i < n; i++) {
      const c = p.charCodeAt(i);
      if (isDigit(c)) break;
      out += c === TILDE ? K_TILDE : isAlpha(c) ? p[i] : String.fromCharCode(c + 0x100);
    }
    let start = i;
    while (i < n && isDigit(p.charCodeAt(i))) i++;
    while (start < i && p.charCodeAt(start) === C0) start++;
    out += K_RUN_END + String.fromCharCode(i - start) + p.slice(start, i);
  }
  return out + K_RUN_END;
}

/**
 * The sort key of a Debian version: epoch (as its digit count and digits),
 * then the upstream and revision parts by {@link partSortKey}. Keys compare
 * (as JavaScript strings, by code unit) exactly as the versions do, and are
 * equal exactly when the versions are.
 */
export function debianSortKey(epoch: number, upstream: string, revision: string): string {
  const e = String(epoch);
  return String.fromCharCode(e.length) + e + partSortKey(upstream) + partSortKey(revision);
}

/**
 * A string that is equal for two versions exactly when they compare equal
 * (`1.09`, `0:1.9` and `1.9-0` share one key). Used to look versions up in sets.
 * @public
 */
export function debianVersionKey(v: DebianVersion): string {
  return v.sortKey;
}
