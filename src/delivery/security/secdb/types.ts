/**
 * The security information database (seed 004 §3: "セキュリティ情報 DB",
 * security holes and how to deal with them): advisories with their affected
 * packages and ranges, and the countermeasure steps for each advisory.
 *
 * Two implementations share this contract and one test suite:
 * {@link MemorySecurityStore} and {@link SqliteSecurityStore}.
 */
import type { Advisory } from '../advisories/model.js';
import type { Countermeasure, CountermeasureSet } from '../advisories/countermeasures.js';

/** What {@link SecurityStore.putAdvisories} did with each ID. @public */
export interface PutAdvisoriesResult {
  /** IDs not stored before. */
  readonly added: readonly string[];
  /** IDs replaced (a newer `modified`, or the same `modified` with different content). */
  readonly updated: readonly string[];
  /** IDs already stored exactly so. */
  readonly unchanged: readonly string[];
  /** IDs not replaced because the stored entry has a newer `modified`. */
  readonly stale: readonly string[];
}

/** Counts of what a store holds. @public */
export interface SecurityStoreCounts {
  /** Advisories (withdrawn ones included). */
  readonly advisories: number;
  /** Advisory IDs with countermeasure steps. */
  readonly countermeasures: number;
}

/**
 * The security information database. Advisories go in already checked
 * (from {@link parseOsv} or {@link parseOsvRecord}); countermeasures from
 * {@link parseCountermeasureFile}. Every write is atomic: all of a call's
 * entries are stored, or none.
 * @public
 */
export interface SecurityStore {
  /**
   * Store advisories, replacing stored ones with the same ID unless the
   * stored one is newer (by `modified`).
   */
  putAdvisories(list: readonly Advisory[]): Promise<PutAdvisoriesResult>;
  /** The advisory with this ID. */
  getAdvisory(id: string): Promise<Advisory | undefined>;
  /** Advisories whose ID or one of whose aliases is `alias` (`CVE-2024-6387`). */
  findByAlias(alias: string): Promise<Advisory[]>;
  /** Advisories with an affected entry for this ecosystem and package name, by ID. */
  advisoriesFor(ecosystem: string, packageName: string): Promise<Advisory[]>;
  /** Every advisory, by ID, read in pages (for loading a diagnosis engine). */
  advisories(): AsyncIterable<Advisory>;
  /** Remove an advisory; its countermeasures stay. True when it was stored. */
  deleteAdvisory(id: string): Promise<boolean>;
  /** Store countermeasure steps, replacing each advisory ID's steps whole. */
  putCountermeasures(set: CountermeasureSet): Promise<void>;
  /** The steps for an advisory ID. */
  getCountermeasures(id: string): Promise<readonly Countermeasure[] | undefined>;
  /** Every advisory ID's steps. */
  countermeasures(): Promise<Map<string, readonly Countermeasure[]>>;
  /** Remove an advisory ID's steps. True when there were some. */
  deleteCountermeasures(id: string): Promise<boolean>;
  /** How much is stored. */
  count(): Promise<SecurityStoreCounts>;
  /** Close; later calls reject. Closing twice is harmless. */
  close(): Promise<void>;
}

/** The error for a call on a closed store. */
export function storeClosed(): Error {
  return new Error('the security store is closed');
}

/** `modified` as milliseconds, for ordering. */
export function modifiedMs(a: Advisory): number {
  return Date.parse(a.modified);
}

/** JSON of an advisory with object keys sorted, to tell "unchanged" from "updated" whatever the key order. */
export function advisoryJson(a: Advisory): string {
  return JSON.stringify(a, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}
