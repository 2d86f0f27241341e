/**
 * Carrying out automatic actions through verifiable dispatch (seed 004
 * §4.4): each host's resolved steps become one generated, signed bundle
 * (hosts with identical code share it, countermeasure.ts), dispatched ONLY
 * to those hosts, in waves. Each action goes `planned → dispatched →
 * verified-ran` (or `confirmed` when a report without the finding came
 * first), or `failed` with the reason, as the run's signed results arrive.
 */
import { createHash } from 'node:crypto';
import { decodeReport, type AgentRef, type TargetResult } from '../../dispatch/index.js';
import { fromBase64url } from '../../dispatch/wire/index.js';
import type { ActionBook } from './actions.js';
import type { CenterContext } from './context.js';
import { countermeasureCode, type ResolvedStep } from './countermeasure.js';
import type { ActionRecord, HostEntry } from './store.js';

/** A planned automatic action and the steps resolved for its host. @internal */
export interface Planned {
  readonly action: ActionRecord;
  readonly steps: readonly ResolvedStep[];
}

/** The hosts that run one bundle, each with the actions it carries. */
type Group = { host: HostEntry; actions: ActionRecord[] }[];

/**
 * Dispatches automatic actions (one per center).
 * @internal
 */
export class Dispatching {
  readonly #c: CenterContext;
  readonly #book: ActionBook;

  constructor(context: CenterContext, book: ActionBook) {
    this.#c = context;
    this.#book = book;
  }

  /** One bundle per distinct code; each dispatched only to its hosts. Resolves when every run ended and its results are applied. */
  async dispatchAll(planned: readonly Planned[]): Promise<void> {
    if (planned.length === 0) return;
    const byHost = new Map<string, Planned[]>();
    for (const p of planned) byHost.set(p.action.hostId, [...(byHost.get(p.action.hostId) ?? []), p]);
    const timeoutMs = this.#c.options.countermeasureTimeoutMs ?? 600_000;
    const byCode = new Map<string, { code: string; hosts: Group }>();
    for (const [hostId, list] of byHost) {
      const host = (await this.#c.config.getHost(hostId))!;
      const steps: ResolvedStep[] = [];
      const seen = new Set<string>();
      for (const p of list) for (const s of p.steps) if (!seen.has(JSON.stringify(s))) (seen.add(JSON.stringify(s)), steps.push(s));
      const code = countermeasureCode(steps, timeoutMs);
      const g = byCode.get(code) ?? { code, hosts: [] };
      g.hosts.push({ host, actions: list.map((p) => p.action) });
      byCode.set(code, g);
    }
    await Promise.all([...byCode.values()].map((g) => this.#dispatchGroup(g.code, g.hosts, timeoutMs)));
  }

  async #dispatchGroup(code: string, hosts: Group, timeoutMs: number): Promise<void> {
    const c = this.#c;
    const fail = async (detail: string) => {
      for (const h of hosts) for (const a of h.actions) await this.#book.update(a, { state: 'failed', detail });
    };
    let bundle;
    try {
      const name = `gs-countermeasure-${createHash('sha256').update(code).digest('hex').slice(0, 16)}`;
      bundle = await c.dispatcher.createBundle({ name, version: 1, code, timeoutMs: timeoutMs + 5_000, now: c.now() });
    } catch (err) {
      await fail(`could not make the bundle: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const agents: AgentRef[] = hosts.map((h) => ({ msid: h.host.msid, pcid: h.host.pcid }));
    const byMsid = new Map(hosts.map((h) => [h.host.msid, h]));
    let run;
    try {
      run = c.dispatcher.dispatch({ waves: [1, 0.5], ...c.options.dispatch, bundle: bundle.digest, agents });
    } catch (err) {
      await fail(`could not dispatch: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // Marked dispatched before any result is applied: both go through the store lock in this order.
    const marked = Promise.all(hosts.flatMap((h) => h.actions.map((a) => this.#book.update(a, { state: 'dispatched', dispatchId: run.dispatchId, bundle: bundle.digest }))));
    // One result at a time under the store lock (the run's events and its summary may both carry a target).
    const onResult = (r: TargetResult): Promise<void> =>
      c.exclusive(async () => {
        const h = byMsid.get(r.msid);
        if (!h) return;
        const ended = r.state === 'verified' && r.outcome === 'ran' ? this.#ranEndedAt(r) : null;
        for (const a0 of h.actions) {
          await this.#book.changeNow(a0.id, (a) => {
            if (a.state !== 'dispatched') return null;
            if (r.state === 'verified' && r.outcome === 'ran') {
              if (a.fixReportedAt !== null) return { state: 'confirmed', ranEndedAt: ended, detail: 'the run verified; a report after it no longer shows the finding' };
              return { state: 'verified-ran', ranEndedAt: ended, detail: `run verified on ${h.host.hostId}` };
            }
            if (r.state === 'verified') return { state: 'failed', detail: `the countermeasure ${r.outcome}${r.reason ? `: ${r.reason}` : ''}` };
            return { state: 'failed', detail: `dispatch ${r.state}${r.reason ? `: ${r.reason}` : ''}` };
          });
        }
      });
    const pending: Promise<void>[] = [];
    run.on('result', (r) => pending.push(onResult(r)));
    await marked;
    const summary = await run.done;
    await Promise.all(pending);
    for (const t of summary.targets) await onResult(t);
  }

  /** `endedAt` of the verified run's signed report (agent clock), or null. */
  #ranEndedAt(r: TargetResult): number | null {
    try {
      const stored = this.#c.dispatcher.store.getTarget({ dispatchId: r.dispatchId, run: r.run, msid: r.msid });
      if (!stored?.report || !stored.certificate) return null;
      return decodeReport(stored.report, fromBase64url(stored.certificate, 'certificate', 16 * 1024)).fields.endedAt;
    } catch {
      return null;
    }
  }
}
