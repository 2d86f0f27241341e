/**
 * Whether a version falls in an advisory's affected ranges, following the
 * OSV schema's evaluation ("Evaluation" in the schema: events sorted by
 * version; `introduced` opens, `fixed` closes before, `last_affected` closes
 * after; a version at or above every `limit` is outside), with the
 * ecosystem's own ordering. Each range is turned once into closed-open or
 * closed intervals, so a match also says which interval it fell in — the
 * explanation a finding carries.
 */
import { schemeForEcosystem, type VersionScheme } from '../versions/scheme.js';
import type { AffectedPackage, AffectedRange } from './model.js';

/** Why a version is affected: the interval it fell in, or the explicit list. @public */
export interface RangeHit {
  /** Where the interval starts (`'0'`: from the first version). Absent for a listed version. */
  readonly introduced?: string;
  /** The first fixed version after it, when the range has one. */
  readonly fixed?: string;
  /** The last affected version, when the range says so instead of a fix. */
  readonly lastAffected?: string;
  /** True when the version is affected because `versions[]` lists it. */
  readonly listed?: true;
}

interface Interval<V> {
  readonly start: V | undefined; // undefined: from the first version
  readonly end: V | undefined; // undefined: open-ended
  readonly inclusiveEnd: boolean;
  readonly hit: RangeHit;
  readonly limits: readonly V[];
}

function compileRange<V>(scheme: VersionScheme<V>, range: AffectedRange): Interval<V>[] {
  const limits: V[] = [];
  const events: { kind: string; text: string; v: V | undefined }[] = [];
  for (const e of range.events) {
    if (e.kind === 'limit') {
      if (e.version !== '*') limits.push(scheme.parse(e.version));
      continue;
    }
    events.push({ kind: e.kind, text: e.version, v: e.kind === 'introduced' && e.version === '0' ? undefined : scheme.parse(e.version) });
  }
  // Sort by version; "0" first; at equal versions an opening event goes first, so
  // {introduced X, fixed X} is empty and {introduced X, last_affected X} is [X, X].
  events.sort((a, b) => {
    if (a.v === undefined || b.v === undefined) return a.v === b.v ? 0 : a.v === undefined ? -1 : 1;
    return scheme.compare(a.v, b.v) || (a.kind === 'introduced' ? -1 : 0) - (b.kind === 'introduced' ? -1 : 0);
  });
  const out: Interval<V>[] = [];
  let open: { v: V | undefined; text: string } | undefined;
  for (const e of events) {
    if (e.kind === 'introduced') {
      open ??= { v: e.v, text: e.text }; // a second introduced while affected changes nothing
    } else if (open) {
      const last = e.kind === 'lastAffected';
      out.push({
        start: open.v,
        end: e.v,
        inclusiveEnd: last,
        hit: last ? { introduced: open.text, lastAffected: e.text } : { introduced: open.text, fixed: e.text },
        limits,
      });
      open = undefined;
    }
  }
  if (open) out.push({ start: open.v, end: undefined, inclusiveEnd: false, hit: { introduced: open.text }, limits });
  return out;
}

/**
 * One {@link AffectedPackage} compiled for matching: versions parsed once,
 * ranges as intervals, listed versions as a key set.
 * @public
 */
export class AffectedMatcher<V = unknown> {
  /** The entry this was compiled from. */
  readonly affected: AffectedPackage;
  /** Its ecosystem's version scheme. */
  readonly scheme: VersionScheme<V>;
  readonly #intervals: Interval<V>[];
  readonly #listed: ReadonlySet<string>;
  static readonly #LISTED: RangeHit = Object.freeze({ listed: true as const });

  /** Compile `affected`; its versions must be valid (as {@link parseOsv} checks). */
  constructor(affected: AffectedPackage) {
    const scheme = schemeForEcosystem(affected.ecosystem) as VersionScheme<V> | undefined;
    if (scheme === undefined) throw new RangeError(`no version scheme for ${affected.ecosystem}`);
    this.affected = affected;
    this.scheme = scheme;
    this.#intervals = affected.ranges.flatMap((r) => compileRange(scheme, r));
    this.#listed = new Set(affected.versions.map((v) => scheme.key(scheme.parse(v))));
  }

  /**
   * The interval `version` (parsed with {@link AffectedMatcher.scheme}) falls
   * in, or `undefined` when it is not affected. `key` is its
   * `scheme.key(version)` when the caller has it already.
   */
  match(version: V, key?: string): RangeHit | undefined {
    const { compare } = this.scheme;
    for (const iv of this.#intervals) {
      if (iv.start !== undefined && compare(version, iv.start) < 0) continue;
      if (iv.end !== undefined) {
        const c = compare(version, iv.end);
        if (iv.inclusiveEnd ? c > 0 : c >= 0) continue;
      }
      if (iv.limits.length > 0 && !iv.limits.some((l) => compare(version, l) < 0)) continue;
      return iv.hit;
    }
    if (this.#listed.size > 0 && this.#listed.has(key ?? this.scheme.key(version))) return AffectedMatcher.#LISTED;
    return undefined;
  }

  /** {@link AffectedMatcher.match} on a version string (parsed strictly). */
  matchText(version: string): RangeHit | undefined {
    return this.match(this.scheme.parse(version));
  }
}
