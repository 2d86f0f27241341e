/**
 * A server store in memory: two Maps, gone when the process ends. For tests,
 * examples and throwaway controllers; use the SQLite store to keep names
 * across restarts.
 */
import { RelayError } from '../../errors/index.js';
import { isValidPcid, checkPcid } from './pcid.js';
import {
  canonicalMsid,
  checkCertificateHash,
  checkMsid,
  closedError,
  freshPcid,
  makeRecord,
  timeOf,
  type ServerRecord,
  type ServerStore,
  type ServerStoreOptions,
} from './types.js';

interface Row {
  readonly msid: string;
  pcid: string;
  certificateHash: string;
  readonly created: number;
  updated: number;
}

/**
 * A {@link ServerStore} held in memory. Every call runs to completion
 * without yielding, so calls are atomic with respect to each other.
 * @public
 */
export class MemoryServerStore implements ServerStore {
  readonly #byMsid = new Map<string, Row>();
  readonly #byPcid = new Map<string, Row>();
  readonly #generatePcid: (() => string) | undefined;
  #closed = false;

  /** An empty store. */
  constructor(options: ServerStoreOptions = {}) {
    this.#generatePcid = options.generatePcid;
  }

  /** {@inheritDoc ServerStore.findByMsid} */
  async findByMsid(msid: string): Promise<ServerRecord | undefined> {
    this.#open();
    const key = canonicalMsid(msid);
    const row = key === undefined ? undefined : this.#byMsid.get(key);
    return row && snapshot(row);
  }

  /** {@inheritDoc ServerStore.findByPcid} */
  async findByPcid(pcid: string): Promise<ServerRecord | undefined> {
    this.#open();
    const row = isValidPcid(pcid) ? this.#byPcid.get(pcid) : undefined;
    return row && snapshot(row);
  }

  /** {@inheritDoc ServerStore.login} */
  async login(msid: string, certificateHash: string, now?: Date): Promise<{ record: ServerRecord; created: boolean }> {
    this.#open();
    const key = checkMsid(msid);
    const hash = checkCertificateHash(certificateHash);
    const t = timeOf(now);
    const existing = this.#byMsid.get(key);
    if (existing) {
      existing.certificateHash = hash;
      existing.updated = t;
      return { record: snapshot(existing), created: false };
    }
    const pcid = freshPcid(this.#generatePcid, (p) => !this.#byPcid.has(p));
    const row: Row = { msid: key, pcid, certificateHash: hash, created: t, updated: t };
    this.#byMsid.set(key, row);
    this.#byPcid.set(pcid, row);
    return { record: snapshot(row), created: true };
  }

  /** {@inheritDoc ServerStore.rename} */
  async rename(msid: string, pcid: string, now?: Date): Promise<ServerRecord> {
    this.#open();
    const name = checkPcid(pcid);
    const key = checkMsid(msid);
    const t = timeOf(now);
    const row = this.#byMsid.get(key);
    if (!row) throw new RelayError('GS_ERR_RELAY_FORBIDDEN', `${key} has no record in the server database; a server must log in before it can be renamed`);
    if (row.pcid === name) return snapshot(row);
    if (this.#byPcid.has(name)) throw new RelayError('GS_ERR_PCID_TAKEN', `PCID "${name}" belongs to another server`);
    this.#byPcid.delete(row.pcid);
    row.pcid = name;
    row.updated = t;
    this.#byPcid.set(name, row);
    return snapshot(row);
  }

  /** {@inheritDoc ServerStore.count} */
  async count(): Promise<number> {
    this.#open();
    return this.#byMsid.size;
  }

  /** {@inheritDoc ServerStore.close} */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw closedError();
  }
}

function snapshot(row: Row): ServerRecord {
  return makeRecord(row.msid, row.pcid, row.certificateHash, row.created, row.updated);
}
