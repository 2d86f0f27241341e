/**
 * The security information database in memory: for tests, for a center
 * that reloads its advisories from files at start, and as the reference the
 * SQLite store is tested against.
 */
import type { Countermeasure, CountermeasureSet } from '../advisories/countermeasures.js';
import type { Advisory } from '../advisories/model.js';
import {
  advisoryJson,
  modifiedMs,
  storeClosed,
  type PutAdvisoriesResult,
  type SecurityStore,
  type SecurityStoreCounts,
} from './types.js';

const pkgKey = (ecosystem: string, name: string) => `${ecosystem}\u0000${name}`;

/** A {@link SecurityStore} in memory. @public */
export class MemorySecurityStore implements SecurityStore {
  readonly #advisories = new Map<string, { advisory: Advisory; json: string }>();
  readonly #byPackage = new Map<string, Set<string>>();
  readonly #byAlias = new Map<string, Set<string>>();
  readonly #countermeasures = new Map<string, readonly Countermeasure[]>();
  #closed = false;

  /** {@inheritDoc SecurityStore.putAdvisories} */
  async putAdvisories(list: readonly Advisory[]): Promise<PutAdvisoriesResult> {
    this.#open();
    const added: string[] = [];
    const updated: string[] = [];
    const unchanged: string[] = [];
    const stale: string[] = [];
    // Decide everything first, then write: nothing half-done if a later entry is odd.
    const writes: { advisory: Advisory; json: string }[] = [];
    const pending = new Map<string, { advisory: Advisory; json: string }>();
    for (const a of list) {
      const json = advisoryJson(a);
      const old = pending.get(a.id) ?? this.#advisories.get(a.id);
      if (old === undefined) added.push(a.id);
      else if (modifiedMs(old.advisory) > modifiedMs(a)) {
        stale.push(a.id);
        continue;
      } else if (old.json === json) {
        unchanged.push(a.id);
        continue;
      } else updated.push(a.id);
      pending.set(a.id, { advisory: a, json });
      writes.push({ advisory: a, json });
    }
    for (const w of writes) {
      this.#unindex(w.advisory.id);
      this.#advisories.set(w.advisory.id, w);
      this.#index(w.advisory);
    }
    return { added, updated, unchanged, stale };
  }

  /** {@inheritDoc SecurityStore.getAdvisory} */
  async getAdvisory(id: string): Promise<Advisory | undefined> {
    this.#open();
    return this.#advisories.get(id)?.advisory;
  }

  /** {@inheritDoc SecurityStore.findByAlias} */
  async findByAlias(alias: string): Promise<Advisory[]> {
    this.#open();
    return this.#collect(this.#byAlias.get(alias));
  }

  /** {@inheritDoc SecurityStore.advisoriesFor} */
  async advisoriesFor(ecosystem: string, packageName: string): Promise<Advisory[]> {
    this.#open();
    return this.#collect(this.#byPackage.get(pkgKey(ecosystem, packageName)));
  }

  /** {@inheritDoc SecurityStore.advisories} */
  async *advisories(): AsyncIterable<Advisory> {
    this.#open();
    for (const id of [...this.#advisories.keys()].sort()) {
      const e = this.#advisories.get(id);
      if (e) yield e.advisory;
    }
  }

  /** {@inheritDoc SecurityStore.deleteAdvisory} */
  async deleteAdvisory(id: string): Promise<boolean> {
    this.#open();
    if (!this.#advisories.has(id)) return false;
    this.#unindex(id);
    this.#advisories.delete(id);
    return true;
  }

  /** {@inheritDoc SecurityStore.putCountermeasures} */
  async putCountermeasures(set: CountermeasureSet): Promise<void> {
    this.#open();
    for (const [id, steps] of set) this.#countermeasures.set(id, steps);
  }

  /** {@inheritDoc SecurityStore.getCountermeasures} */
  async getCountermeasures(id: string): Promise<readonly Countermeasure[] | undefined> {
    this.#open();
    return this.#countermeasures.get(id);
  }

  /** {@inheritDoc SecurityStore.countermeasures} */
  async countermeasures(): Promise<Map<string, readonly Countermeasure[]>> {
    this.#open();
    return new Map([...this.#countermeasures].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** {@inheritDoc SecurityStore.deleteCountermeasures} */
  async deleteCountermeasures(id: string): Promise<boolean> {
    this.#open();
    return this.#countermeasures.delete(id);
  }

  /** {@inheritDoc SecurityStore.count} */
  async count(): Promise<SecurityStoreCounts> {
    this.#open();
    return { advisories: this.#advisories.size, countermeasures: this.#countermeasures.size };
  }

  /** {@inheritDoc SecurityStore.close} */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw storeClosed();
  }

  #collect(ids: Set<string> | undefined): Advisory[] {
    if (!ids) return [];
    return [...ids].sort().map((id) => this.#advisories.get(id)!.advisory);
  }

  #index(a: Advisory): void {
    for (const p of a.affected) addTo(this.#byPackage, pkgKey(p.ecosystem, p.name), a.id);
    addTo(this.#byAlias, a.id, a.id);
    for (const al of a.aliases) addTo(this.#byAlias, al, a.id);
  }

  #unindex(id: string): void {
    const old = this.#advisories.get(id)?.advisory;
    if (!old) return;
    for (const p of old.affected) removeFrom(this.#byPackage, pkgKey(p.ecosystem, p.name), id);
    removeFrom(this.#byAlias, id, id);
    for (const al of old.aliases) removeFrom(this.#byAlias, al, id);
  }
}

function addTo(m: Map<string, Set<string>>, k: string, id: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(id);
}

function removeFrom(m: Map<string, Set<string>>, k: string, id: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) m.delete(k);
}
