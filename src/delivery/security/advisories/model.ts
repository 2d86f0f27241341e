/**
 * The security information database's entry (seed 004 §3, Table 1: name,
 * details, affected OS and versions, countermeasure, references), in the
 * shape of the OSV schema (https://ossf.github.io/osv-schema/) with
 * camel-case names. Only ECOSYSTEM ranges are kept: they are what installed
 * packages can be compared with.
 */

/** One event of a range: where vulnerability starts or stops. @public */
export interface RangeEvent {
  /**
   * `introduced`: affected from this version on (`'0'`: from the first);
   * `fixed`: not affected from this version on; `lastAffected`: affected up to
   * and including this version; `limit`: nothing at or above it is affected
   * by this range (`'*'`: no limit).
   */
  readonly kind: 'introduced' | 'fixed' | 'lastAffected' | 'limit';
  /** The version, in the ecosystem's syntax. */
  readonly version: string;
}

/** A range of affected versions (OSV `type: ECOSYSTEM`). @public */
export interface AffectedRange {
  /** Always `ECOSYSTEM`. */
  readonly type: 'ECOSYSTEM';
  /** Events in the order given (evaluated sorted by version). */
  readonly events: readonly RangeEvent[];
}

/** One package in one ecosystem that an advisory affects. @public */
export interface AffectedPackage {
  /** OSV ecosystem (`Debian:12`). */
  readonly ecosystem: string;
  /** Package name as the ecosystem's advisories use it: the *source* package for Debian. */
  readonly name: string;
  /** Package URL when given. */
  readonly purl?: string;
  /** Affected version ranges. */
  readonly ranges: readonly AffectedRange[];
  /** Affected versions listed one by one (in addition to the ranges). */
  readonly versions: readonly string[];
  /** OSV `ecosystem_specific`, kept as given. */
  readonly ecosystemSpecific?: Readonly<Record<string, unknown>>;
  /** OSV `database_specific` of this entry, kept as given. */
  readonly databaseSpecific?: Readonly<Record<string, unknown>>;
}

/** A reference (OSV `references[]`). @public */
export interface AdvisoryReference {
  /** ADVISORY, ARTICLE, DETECTION, DISCUSSION, REPORT, FIX, INTRODUCED, GIT, PACKAGE, EVIDENCE or WEB. */
  readonly type: string;
  /** http(s) URL. */
  readonly url: string;
}

/** A severity score (OSV `severity[]`). @public */
export interface AdvisorySeverity {
  /** `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`. */
  readonly type: string;
  /** The score or vector. */
  readonly score: string;
}

/** One advisory (vulnerability entry). @public */
export interface Advisory {
  /** OSV ID (`DSA-5532-1`). */
  readonly id: string;
  /** When the entry last changed (RFC 3339). A newer `modified` replaces the stored entry. */
  readonly modified: string;
  /** When it was published (RFC 3339). */
  readonly published?: string;
  /** When it was withdrawn (RFC 3339): a withdrawn advisory affects nothing. */
  readonly withdrawn?: string;
  /** Other IDs of the same vulnerability (`CVE-2023-5363`). */
  readonly aliases: readonly string[];
  /** Related IDs that are not the same vulnerability. */
  readonly related: readonly string[];
  /** One-line summary. */
  readonly summary?: string;
  /** Full description. */
  readonly details?: string;
  /** Severity scores. */
  readonly severity: readonly AdvisorySeverity[];
  /** What it affects. */
  readonly affected: readonly AffectedPackage[];
  /** References. */
  readonly references: readonly AdvisoryReference[];
  /** OSV `database_specific`, kept as given. */
  readonly databaseSpecific?: Readonly<Record<string, unknown>>;
}
