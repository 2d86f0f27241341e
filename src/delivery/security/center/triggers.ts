/**
 * Triggers 3 and 4 of seed 004 §4.2, which find hosts from outside a report:
 *
 * 3. a new or changed advisory (imported here, or stored by another process
 *    and picked up by a sync): the diagnosis engine's index gives every host
 *    it affects at once;
 * 4. a remote scanner's findings (nmap XML): each open port is confirmed
 *    against the host's own report first; only confirmed ones whose listener
 *    breaks the host's policy are acted on.
 *
 * Each ends in an acting round over the findings it gave. Before the
 * engine is asked, hosts that took a report at another center sharing the
 * database (their stored `lastSeen` is not the one the engine's report came
 * with), or joined there, are loaded again from their latest stored report,
 * so this center neither acts on a finding that a newer report no longer
 * shows nor misses a host it has not seen.
 */
import { checkOption } from '../../../errors/check.js';
import type { Advisory, Countermeasure } from '../advisories/index.js';
import { findingKey } from '../diagnosis/index.js';
import { toInventory, type FullReport } from '../report/index.js';
import { confirmFindings, parseNmapXml } from '../scan/index.js';
import type { AdvisoryImportResult, CenterContext, ScanImportResult, Work } from './context.js';

/**
 * The advisory and scan triggers (one per center). Keeps the `modified` of
 * every advisory the engine holds, to see what another process stored.
 * @internal
 */
export class OutsideTriggers {
  readonly #c: CenterContext;
  readonly #known = new Map<string, string>();

  constructor(context: CenterContext) {
    this.#c = context;
  }

  /** Note advisories the engine was loaded with at open. */
  loaded(advisories: readonly Advisory[]): void {
    for (const a of advisories) this.#known.set(a.id, a.modified);
  }

  /**
   * Load into the engine the hosts whose latest report it does not hold
   * (taken at another center). Under the store lock, so a report this center
   * is applying meanwhile cannot be overtaken by an older one read here.
   */
  #refreshHosts(): Promise<void> {
    const c = this.#c;
    return c.exclusive(async () => {
      for (const h of await c.config.hosts()) {
        if (c.engineSeen.get(h.hostId) === h.lastSeen) continue;
        const r = await c.config.latest(h.hostId);
        if (r) c.engine.updateHost({ ...toInventory(r), hostId: h.hostId });
        c.engineSeen.set(h.hostId, h.lastSeen);
      }
    });
  }

  /** Add these advisories to the engine; the findings on the hosts each affects, and which hosts. */
  #addToEngine(advisories: Iterable<Advisory>): { affected: { advisoryId: string; hosts: string[] }[]; work: Work[] } {
    const affected: { advisoryId: string; hosts: string[] }[] = [];
    const work: Work[] = [];
    for (const a of advisories) {
      const impact = this.#c.engine.addAdvisory(a);
      this.#known.set(a.id, a.modified);
      affected.push({ advisoryId: a.id, hosts: impact.hosts.map((h) => h.hostId) });
      for (const h of impact.hosts) for (const f of h.findings) work.push({ finding: f, trigger: 'advisory' });
    }
    return { affected, work };
  }

  /** See {@link SecurityCenter.importAdvisories}. */
  async importAdvisories(advisories: readonly Advisory[], countermeasures?: ReadonlyMap<string, readonly Countermeasure[]>): Promise<AdvisoryImportResult> {
    const c = this.#c;
    c.checkOpen();
    checkOption(Array.isArray(advisories), 'advisories', 'must be a list of parsed advisories');
    if (countermeasures && countermeasures.size > 0) {
      await c.security.putCountermeasures(countermeasures);
      c.engine.setCountermeasureSet(countermeasures);
    }
    const stored = await c.security.putAdvisories(advisories);
    await this.#refreshHosts();
    const changed = new Set([...stored.added, ...stored.updated]);
    if (countermeasures) for (const id of countermeasures.keys()) changed.add(id);
    const { affected, work } = this.#addToEngine(advisories.filter((a) => changed.has(a.id)));
    const actions = await c.act(work);
    return { stored, affected, actions };
  }

  /** See {@link SecurityCenter.syncAdvisories}. */
  async syncAdvisories(): Promise<AdvisoryImportResult> {
    const c = this.#c;
    c.checkOpen();
    c.engine.setCountermeasureSet(await c.security.countermeasures());
    const fresh: Advisory[] = [];
    for await (const a of c.security.advisories()) if (this.#known.get(a.id) !== a.modified) fresh.push(a);
    await this.#refreshHosts();
    const { affected, work } = this.#addToEngine(fresh);
    const actions = await c.act(work);
    return { stored: { added: [], updated: fresh.map((a) => a.id), unchanged: [], stale: [] }, affected, actions };
  }

  /** See {@link SecurityCenter.importScan}. */
  async importScan(xml: string | Uint8Array): Promise<ScanImportResult> {
    const c = this.#c;
    c.checkOpen();
    const scan = parseNmapXml(xml);
    await this.#refreshHosts();
    const hosts = await c.config.hosts();
    const reports = (await Promise.all(hosts.map((h) => c.config.latest(h.hostId)))).filter((r): r is FullReport => r !== undefined);
    const findings = confirmFindings(scan, reports);
    const work: Work[] = [];
    const seen = new Set<string>();
    for (const s of findings) {
      if (s.status !== 'confirmed' || s.hostMsid === null || s.listener === null) continue;
      const host = await c.config.hostByMsid(s.hostMsid);
      if (!host) continue;
      for (const f of c.engine.diagnoseHost(host.hostId) ?? []) {
        if (f.kind !== 'service-not-allowed' || f.service.proto !== s.protocol || f.service.port !== s.port || f.service.address !== s.listener.address) continue;
        const k = `${host.hostId} ${findingKey(f)}`;
        if (seen.has(k)) continue;
        seen.add(k);
        work.push({ finding: f, trigger: 'scan' });
      }
    }
    const actions = await c.act(work);
    return { findings, actions };
  }
}
