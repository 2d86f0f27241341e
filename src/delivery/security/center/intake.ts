/**
 * Report intake: triggers 1 and 2 of seed 004 §4.2. A report message is
 * checked (signature, the host its signer is bound to, the report itself),
 * stored (full first, then deltas: `accepted`, `stale`, or `need-full` on a
 * gap), its host re-diagnosed and its actions confirmed; then an acting
 * round starts in the background (the answer does not wait for dispatches).
 * A host's first report (trigger 1) also gets its nftables rule set from its
 * policy, returned to network-device agents in the answer and kept. A refused
 * report changes nothing.
 *
 * After a host is re-enrolled to another agent ({@link SecurityCenter.enrollHost}),
 * the new agent's reports start a fresh sequence for the host: a stored
 * report of the old agent is no base for them (its first full report is
 * accepted and handled as a joining host's, a delta before it is answered
 * `need-full`, and the old agent's higher numbers do not make it `stale`).
 * The old agent's reports stay stored as the host's history until the new
 * agent's reports replace them; the old agent itself is refused with
 * `GS_ERR_SECURITY_WRONG_HOST`.
 *
 * Several centers on one database: the checks (who the host is bound to, the
 * latest report's sequence number) are reads, and the report is stored with
 * its host's entry by one conditional write,
 * {@link ConfigurationStore.commitReport}, that succeeds only if what was read
 * is still stored. When another center bound the host or stored one of its
 * reports in between, the report is decided again on what is stored now: an
 * agent that lost the host ID to another is refused with
 * `GS_ERR_SECURITY_WRONG_HOST`, a report that is no longer newer is answered
 * `stale` — as if the two had reached one center one after the other.
 */
import { GatesockError } from '../../../errors/index.js';
import { checkHostInfo, verifyReportMessage, type AnswerMessage, type ReportMessage } from '../channel/index.js';
import { applyReport, parseConfigurationReport, toInventory, type FullReport } from '../report/index.js';
import type { ActionBook } from './actions.js';
import type { CenterContext } from './context.js';
import { checkReporter } from './enrollment.js';
import { firewallFor, requestedFiles } from './policy-document.js';
import type { ConfigurationStore, HostEntry, Trigger } from './store.js';

/**
 * How many times a report is decided again because another writer changed
 * its host's records between this center's reads and its commit. Each retry
 * follows a commit by someone else (a newer report, a binding, an enrolment
 * or policy change), so this is reached only under a storm of writes for one
 * host; the agent is then asked for a full report (nothing is stored).
 */
const COMMIT_TRIES = 16;

/** Who sent a report, as its message says (checked). */
type ReportInfo = { host: string; pcid: string; device: HostEntry['device'] };

function errorCode(err: unknown): string {
  return err instanceof GatesockError ? err.code : 'GS_ERR_SECURITY_MALFORMED_REPORT';
}

function answer(status: AnswerMessage['status'], seq: number | null, expectSeqAbove: number | null, message: string | null): AnswerMessage {
  return { t: 'answer', status, seq, expectSeqAbove, code: null, message: message?.slice(0, 1024) ?? null, firewall: false, files: [], body: new Uint8Array(0) };
}

/**
 * The base a report of agent `msid` is applied to: the host's stored latest
 * report when that agent sent it; undefined when another agent did (the host
 * was re-enrolled to `msid` since, {@link SecurityCenter.enrollHost}). So a
 * new agent's reports start a fresh sequence for the host: its first full
 * report is taken whatever the old agent's numbers were, and a delta before
 * it is answered `need-full` (`no-base`). The old agent's reports stay
 * stored (the history); they are never the base of the new agent's deltas.
 */
function ownReport(latest: FullReport | undefined, msid: string): FullReport | undefined {
  return latest?.hostMsid === msid ? latest : undefined;
}

/**
 * Takes report messages (one per center).
 * @internal
 */
export class ReportIntake {
  readonly #c: CenterContext;
  readonly #book: ActionBook;

  constructor(context: CenterContext, book: ActionBook) {
    this.#c = context;
    this.#book = book;
  }

  /** Take one report message (see {@link SecurityCenter.receiveReport}). */
  async receive(m: ReportMessage): Promise<AnswerMessage> {
    const c = this.#c;
    let msid: string | null = null;
    let hostId: string | null = null;
    try {
      c.checkOpen();
      const info = checkHostInfo(m);
      hostId = info.host;
      ({ msid } = verifyReportMessage(m));
      const report = parseConfigurationReport(m.body, { authenticatedMsid: msid, limits: c.options.limits ?? {} });
      const signer = msid;
      return await c.exclusive(() => this.#apply(info, signer, report));
    } catch (err) {
      const code = errorCode(err);
      const message = err instanceof Error ? err.message : String(err);
      c.emit('refused', { msid, host: hostId, code, message });
      throw err;
    }
  }

  /**
   * The store part of {@link ReportIntake.receive}, under the center's store
   * lock: read, decide, commit only if what was read is still stored
   * ({@link ConfigurationStore.commitReport}); else read and decide again.
   * The commit expects the stored latest report's sequence number as read,
   * also when that report is another agent's and so not the base (after a
   * re-enrolment): a report another center stored meanwhile still makes the
   * commit fail and the report be decided again.
   */
  async #apply(info: ReportInfo, msid: string, report: ReturnType<typeof parseConfigurationReport>): Promise<AnswerMessage> {
    const c = this.#c;
    for (let attempt = 0; attempt < COMMIT_TRIES; attempt++) {
      c.checkOpen();
      const known = await checkReporter(c.config, info.host, msid, c.options.enrollment);
      const latest = await c.config.latest(info.host);
      const previous = ownReport(latest, report.hostMsid);
      const outcome = applyReport(previous, report, c.options.limits ?? {});
      if (outcome.status === 'stale') return answer('stale', null, outcome.expectSeqAbove, `report ${report.seq} is not newer than ${outcome.expectSeqAbove}`);
      if (outcome.status === 'need-full') return answer('need-full', null, null, outcome.message);
      const now = c.now();
      const first = known === undefined || known.lastSeen === 0;
      const firewall = first ? firewallFor(c.policy(), info.host, (err) => c.emit('error', err)) : known.firewall;
      const host: HostEntry = { hostId: info.host, msid, pcid: info.pcid, device: info.device, firstSeen: known?.firstSeen || now, lastSeen: now, firewall };
      if (await c.config.commitReport({ expectedHost: known, expectedSeq: latest?.seq ?? null, host, report: outcome.report })) return this.#accepted(first, previous, host, outcome.report);
    }
    const message = `report ${report.seq} for host ${info.host} was not stored: its records changed under it ${COMMIT_TRIES} times in a row (other writers); the agent is asked for a full report`;
    c.emit('error', new Error(message));
    return answer('need-full', null, null, message);
  }

  /** After a report was committed: diagnose the host, confirm its actions, answer, start acting. */
  async #accepted(first: boolean, previous: FullReport | undefined, host: HostEntry, report: FullReport): Promise<AnswerMessage> {
    const c = this.#c;
    const diagnosis = c.engine.updateHost({ ...toInventory(report), hostId: host.hostId });
    c.engineSeen.set(host.hostId, host.lastSeen);
    await this.#book.confirm(host, diagnosis, report);
    c.emit(first ? 'joined' : 'report', host, diagnosis);
    // Still joining while the host has not yet reported every file its policy asked for (the report right after the first).
    const wanted = requestedFiles(c.policy(), host.hostId);
    const completes = previous !== undefined && wanted.some((w) => !previous.files.some((f) => f.path === w.path));
    const trigger: Trigger = first || completes ? 'join' : 'report';
    void c.act(diagnosis.findings.map((f) => ({ finding: f, trigger })));
    const sendRules = host.device === 'network-device' && host.firewall !== null;
    return { ...answer('accepted', report.seq, null, null), firewall: sendRules, files: wanted, body: sendRules ? Buffer.from(host.firewall!, 'utf8') : new Uint8Array(0) };
  }
}
