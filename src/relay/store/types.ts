/**
 * The controller's server database (design, system 1, and "Stores"): one
 * record per server, MSID ↔ PCID, behind an interface so that the embedded
 * SQLite store and a PostgreSQL store shared by several controllers are
 * interchangeable.
 */
import { ConfigError, RelayError } from '../../errors/index.js';
import { isMsid } from '../../session/index.js';
import { checkPcid, randomPcid } from './pcid.js';

/**
 * One server's record: its MSID and the PCID users know it by.
 * Records are frozen snapshots; a later login or rename does not change one
 * already returned.
 * @public
 */
export interface ServerRecord {
  /** The server's machine ID in canonical form: `MSID-` + 64 upper-case hex digits (as `msidOf` gives). */
  readonly msid: string;
  /** The server's current name (see `isValidPcid`); unique, compared case-sensitively. */
  readonly pcid: string;
  /** SHA-256 of the DER of the certificate the server last logged in with, 64 lower-case hex digits. */
  readonly certificateHash: string;
  /** When the record was made: the server's first login. */
  readonly created: Date;
  /** The last login or rename. */
  readonly updated: Date;
}

/**
 * Options shared by the server stores.
 * @public
 */
export interface ServerStoreOptions {
  /**
   * Makes the PCID of a server seen for the first time. Default
   * `randomPcid`. Its result must be a valid PCID; when another server
   * already has it, the store calls it again (at most
   * {@link PCID_ATTEMPTS} times in all, then the login rejects with
   * `RelayError` `GS_ERR_PCID_TAKEN`). Meant for tests and for deployments
   * with their own naming scheme.
   */
  generatePcid?: () => string;
}

/**
 * How many PCIDs a store draws for one new server before it gives up. With
 * 50 random bits per draw, running out means the generator is broken, not
 * unlucky.
 * @public
 */
export const PCID_ATTEMPTS = 16;

/**
 * Where the controller keeps server records. Asynchronous so that a store
 * over the network (PostgreSQL) fits the same interface. Each call is atomic:
 * two concurrent logins of new servers never get the same PCID, and a rename
 * never takes a name that a concurrent login or rename took first.
 *
 * MSID arguments are accepted in any letter case and stored canonical
 * (upper-case hex). A call on a closed store rejects with an `Error`.
 * @public
 */
export interface ServerStore {
  /** The record of `msid`, or undefined (also when `msid` is not an MSID at all). */
  findByMsid(msid: string): Promise<ServerRecord | undefined>;
  /** The record whose PCID is exactly `pcid` (case-sensitive), or undefined (also when `pcid` is not a valid PCID). */
  findByPcid(pcid: string): Promise<ServerRecord | undefined>;
  /**
   * A server logged in. On first sight of `msid`, create its record with a
   * fresh random unique PCID (`created: true`); otherwise set `updated` to
   * `now` and `certificateHash` to the one given (`created: false`).
   * Rejects with `ConfigError` `GS_ERR_INVALID_OPTION` when `msid` is not an
   * MSID or `certificateHash` not 64 hex digits.
   * @param now - the time of the login (default: the current time)
   */
  login(msid: string, certificateHash: string, now?: Date): Promise<{ record: ServerRecord; created: boolean }>;
  /**
   * Give a known server a new PCID and set `updated` to `now`. Renaming a
   * server to the PCID it already has succeeds and changes nothing. Rejects
   * with `RelayError` `GS_ERR_PCID_INVALID` for a name that is not a valid
   * PCID, `GS_ERR_RELAY_FORBIDDEN` when `msid` has no record, and
   * `GS_ERR_PCID_TAKEN` when another server has that PCID; `ConfigError`
   * `GS_ERR_INVALID_OPTION` when `msid` is not an MSID.
   * @param now - the time of the rename (default: the current time)
   */
  rename(msid: string, pcid: string, now?: Date): Promise<ServerRecord>;
  /** Number of records. */
  count(): Promise<number>;
  /** Release the store. Later calls reject; closing again does nothing. */
  close(): Promise<void>;
}

const HASH_RE = /^[0-9a-f]{64}$/;

/** `msid` in canonical form, or undefined when it is not an MSID. @internal */
export function canonicalMsid(msid: unknown): string | undefined {
  if (typeof msid !== 'string' || !msid.startsWith('MSID-')) return undefined;
  const upper = `MSID-${msid.slice(5).toUpperCase()}`;
  return isMsid(upper) ? upper : undefined;
}

/** `msid` in canonical form; `ConfigError` when it is not an MSID. @internal */
export function checkMsid(msid: unknown): string {
  const canonical = canonicalMsid(msid);
  if (canonical === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', 'msid must be "MSID-" followed by 64 hex digits');
  return canonical;
}

/** `hash` as 64 lower-case hex digits; `ConfigError` when it is not a SHA-256 in hex. @internal */
export function checkCertificateHash(hash: unknown): string {
  const lower = typeof hash === 'string' ? hash.toLowerCase() : undefined;
  if (lower === undefined || !HASH_RE.test(lower)) throw new ConfigError('GS_ERR_INVALID_OPTION', 'certificateHash must be 64 hex digits (a SHA-256)');
  return lower;
}

/** Milliseconds of `now` (default: the current time); `ConfigError` for an invalid Date. @internal */
export function timeOf(now: Date | undefined): number {
  if (now === undefined) return Date.now();
  const ms = now instanceof Date ? now.getTime() : NaN;
  if (!Number.isFinite(ms)) throw new ConfigError('GS_ERR_INVALID_OPTION', 'now must be a valid Date');
  return ms;
}

/** A frozen record from stored fields. @internal */
export function makeRecord(msid: string, pcid: string, certificateHash: string, created: number, updated: number): ServerRecord {
  return Object.freeze({ msid, pcid, certificateHash, created: new Date(created), updated: new Date(updated) });
}

/** The error a closed store's calls reject with. @internal */
export function closedError(): Error {
  return new Error('the server store is closed');
}

/**
 * Draw PCIDs from `generate` until `isFree` accepts one; `RelayError`
 * `GS_ERR_PCID_TAKEN` after {@link PCID_ATTEMPTS} taken names.
 * @internal
 */
export function freshPcid(generate: (() => string) | undefined, isFree: (pcid: string) => boolean): string {
  for (let attempt = 0; attempt < PCID_ATTEMPTS; attempt++) {
    const pcid = checkPcid((generate ?? randomPcid)());
    if (isFree(pcid)) return pcid;
  }
  throw new RelayError('GS_ERR_PCID_TAKEN', `no free PCID after ${PCID_ATTEMPTS} draws; is the PCID generator random?`);
}
