/**
 * The agent's reports: each result is signed with the agent's identity key,
 * kept in `pending` until the center acknowledges it, and sent on the
 * channel of its order (or the newest open one); on start, a `crashed`
 * report for every run an earlier process took and never reported.
 */
import { signReport, type DispatchChannel, type SignedReport } from '../wire/index.js';
import type { AgentHost } from './host.js';
import { blankResult } from './results.js';
import type { AgentState } from './state.js';
import type { LoaderResult } from './types.js';

/** The reason of the `crashed` report an agent signs on start for a run its previous process never reported. */
export const LOST_RUN_REASON = 'agent restarted during the run';

/** Signs, keeps and sends the agent's reports. @internal */
export class AgentReports {
  readonly #host: AgentHost;

  constructor(host: AgentHost) {
    this.#host = host;
  }

  /** Sign a result, keep it until acknowledged, and send it (on its channel, or the newest open one). */
  async report(ch: DispatchChannel, result: LoaderResult): Promise<void> {
    const host = this.#host;
    let signed: SignedReport;
    try {
      signed = this.#sign(result);
    } catch (e) {
      host.warn(e);
      return;
    }
    host.state().addPending({ dispatchId: result.dispatchId, run: result.run, report: signed.encoded });
    await host.save();
    host.emit('report', signed);
    const target = host.channels.routeFor(ch);
    if (target) host.channels.post(target, { t: 'report', report: signed.encoded, certificate: host.settings.certificate });
  }

  /**
   * On start: every run taken by an earlier process and never reported died
   * with it (SIGKILL, power loss). Sign a `crashed` report for each (reason
   * {@link LOST_RUN_REASON}, start `none`: this process cannot know whether
   * the target had started) into `pending`, so the next `hello` delivers a
   * true outcome; the binding stays taken, so the run never starts twice.
   */
  async reportLostRuns(state: AgentState): Promise<void> {
    const lost = state.running();
    if (lost.length === 0) return;
    const now = this.#host.settings.now();
    for (const r of lost) {
      const result = blankResult(r, 'crashed', LOST_RUN_REASON, 'none', Math.min(r.startedAt, now), now);
      try {
        const signed = this.#sign(result);
        state.addPending({ dispatchId: r.dispatchId, run: r.run, report: signed.encoded });
      } catch (e) {
        // A damaged entry (edited file) cannot be signed: warn; it is retried on the next start.
        this.#host.warn(e);
      }
    }
    // Not saving is harmless: the runs are still listed as running and are reported again next start.
    await state.save().catch((e: unknown) => this.#host.warn(e));
  }

  #sign(result: LoaderResult): SignedReport {
    const { msid, identity } = this.#host.settings;
    return signReport({ ...result, agentMsid: msid }, identity);
  }
}
