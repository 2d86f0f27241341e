/**
 * The security center (seed 004, セキュリティセンター): three databases — the
 * configuration database ({@link ConfigurationStore}), the security
 * information database (`SecurityStore`), the policy database (the
 * {@link PolicyDocument}) — the diagnosis engine over them, a
 * `DispatchCenter` to act, and a `Notifier` for what needs a person.
 *
 * Design (issue 8):
 *
 * - Reports travel outward only. The center listens as a relay server under
 *   a PCID ({@link SecurityCenter.listen}); each security agent connects to
 *   it as a relay client when it joins and then periodically, and pushes its
 *   configuration report (full first, then deltas; the center answers
 *   `accepted`, `stale`, or `need-full` on a gap). Each report is signed by
 *   the agent's identity key with its certificate alongside (channel/), so
 *   the center knows the MSID that sent it and refuses a report for another
 *   host (`GS_ERR_SECURITY_WRONG_HOST`). A host ID is bound to the first
 *   MSID that reports under it (or to the one enrolled for it beforehand),
 *   also when several centers share one database: a report is stored with
 *   its host's entry by one conditional write
 *   ({@link ConfigurationStore.commitReport}), so of two agents racing for a
 *   host ID one is bound, and of a host's reports racing at two centers the
 *   newest stays (the other is answered `stale`).
 * - The four triggers of seed 004 §4.2 are explicit entry points, each
 *   ending in the same acting step:
 *   1. a new host joins: its first accepted report ({@link SecurityCenter.receiveReport}):
 *      it is checked against every advisory and its policy, the policy's
 *      settings that do not hold are pushed (config countermeasures), and its
 *      nftables rule set is generated from its policy (returned to
 *      network-device agents in the answer, and kept);
 *   2. periodic collection: every later report re-diagnoses that host, and
 *      confirms actions whose finding is gone;
 *   3. a new advisory ({@link SecurityCenter.importAdvisories}): the engine's
 *      index gives every affected host at once;
 *   4. a remote scanner ({@link SecurityCenter.importScan}): nmap XML, each
 *      open port confirmed against the host's own report first; only
 *      confirmed ones are acted on.
 * - Acting: each finding gets one action, also when several centers share
 *   one database: an action is made by claiming it in the configuration
 *   store ({@link ConfigurationStore.claimAction}; only the claim that
 *   stores it acts), and every later change is a compare-and-swap
 *   ({@link ConfigurationStore.replaceAction}). Automatic ones are resolved for
 *   their host (countermeasure.ts), put into one generated, signed bundle
 *   per host (hosts with identical code share a bundle) and dispatched ONLY
 *   to the hosts the matching selected, in waves; the action goes
 *   `planned → dispatched → verified-ran → confirmed` (the next report no
 *   longer shows the finding), or `failed` with the reason. Manual ones go
 *   to the notifier with the entry's instructions (`notified`; when the
 *   notifier fails, the action stays `planned` and the next report that
 *   still shows the finding tries again). Every action keeps the finding's
 *   own explanation.
 * - Bad input (malformed or hostile reports, advisories, scans) is refused
 *   with a clear reason before anything changes.
 *
 * The parts, one job each (they share a {@link CenterContext}):
 *
 * | file | job |
 * | --- | --- |
 * | `center.ts` | opening and closing, the store lock and the acting queue, the public methods |
 * | `policy-document.ts` | the policy document: checking it, a host's settings, requested files, rule set |
 * | `enrollment.ts` | which agent may report for which host |
 * | `intake.ts` | report intake (triggers 1 and 2) |
 * | `triggers.ts` | advisories and scans (triggers 3 and 4) |
 * | `acting.ts` | an acting round: one claimed action per finding |
 * | `actions.ts` | changing action records (compare and swap), confirming them by reports |
 * | `dispatching.ts` | automatic actions through verifiable dispatch |
 * | `notifications.ts` | manual actions to the notifier |
 */
import { EventEmitter } from 'eventemitter3';
import { ConfigError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { serverStart, type ServerStartOptions, type SockServer } from '../../../socket/index.js';
import { DispatchCenter } from '../../dispatch/index.js';
import { importAdvisoryFiles, type Advisory, type Countermeasure, type ImportReport } from '../advisories/index.js';
import { serveReportConnection, type AnswerMessage, type ReportMessage } from '../channel/index.js';
import { DiagnosisEngine, type Finding } from '../diagnosis/index.js';
import { toInventory } from '../report/index.js';
import type { SecurityStore } from '../secdb/index.js';
import { MemorySecurityStore, PostgresSecurityStore, SqliteSecurityStore, isPostgresUrl } from '../secdb/index.js';
import { Acting } from './acting.js';
import { ActionBook } from './actions.js';
import type { AdvisoryImportResult, CenterContext, ScanImportResult, SecurityCenterEvents, SecurityCenterOptions } from './context.js';
import { Dispatching } from './dispatching.js';
import { HOST_TRIES, checkEnrollment, enroll, setFirewall } from './enrollment.js';
import { ReportIntake } from './intake.js';
import { Notifications } from './notifications.js';
import { EMPTY_POLICY, checkPolicyDocument, firewallFor } from './policy-document.js';
import { PostgresConfigurationStore } from './postgres.js';
import { SqliteConfigurationStore } from './sqlite.js';
import { MemoryConfigurationStore, type ActionRecord, type ConfigurationStore, type HostEntry, type PolicyDocument } from './store.js';
import { OutsideTriggers } from './triggers.js';

/** The security center. Open one with {@link SecurityCenter.open}. @public */
export class SecurityCenter extends EventEmitter<SecurityCenterEvents> {
  /** The configuration database. */
  readonly config: ConfigurationStore;
  /** The security information database. */
  readonly security: SecurityStore;
  /** The dispatch center that carries countermeasures. */
  readonly dispatcher: DispatchCenter;
  /** The diagnosis engine (loaded from the databases at open). */
  readonly engine: DiagnosisEngine;
  readonly #options: SecurityCenterOptions;
  #policy: PolicyDocument;
  readonly #intake: ReportIntake;
  readonly #triggers: OutsideTriggers;
  readonly #acting: Acting;
  /** {@inheritDoc CenterContext.engineSeen} */
  readonly #engineSeen = new Map<string, number>();
  /** Acting rounds run one at a time, so an agent never has two countermeasure dispatches at once. */
  #queue: Promise<void> = Promise.resolve();
  /** Tail of {@link SecurityCenter.#exclusive}'s chain. */
  #lock: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #servers = new Set<SockServer>();

  private constructor(options: SecurityCenterOptions, config: ConfigurationStore, security: SecurityStore, dispatcher: DispatchCenter, policy: PolicyDocument) {
    super();
    this.#options = options;
    this.config = config;
    this.security = security;
    this.dispatcher = dispatcher;
    this.#policy = policy;
    this.engine = new DiagnosisEngine(policy.policy ? { policy: policy.policy } : {});
    // What the parts see of this center.
    const context: CenterContext = {
      config,
      security,
      dispatcher,
      engine: this.engine,
      engineSeen: this.#engineSeen,
      options,
      now: options.now ?? Date.now,
      policy: () => this.#policy,
      closed: () => this.#closed,
      checkOpen: () => this.#checkOpen(),
      emit: this.emit.bind(this),
      exclusive: (fn) => this.#exclusive(fn),
      act: (work) => this.#enqueue(() => this.#acting.act(work)),
    };
    const book = new ActionBook(context);
    this.#acting = new Acting(context, book, new Notifications(context, book), new Dispatching(context, book));
    this.#intake = new ReportIntake(context, book);
    this.#triggers = new OutsideTriggers(context);
  }

  /**
   * Open a center: load the policy, every advisory and countermeasure, and
   * every host's latest report into the diagnosis engine. The center owns
   * the stores it is given (it closes them, also when opening fails).
   */
  static async open(options: SecurityCenterOptions): Promise<SecurityCenter> {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    checkOption(options.enrollment === undefined || options.enrollment === 'open' || options.enrollment === 'closed', 'enrollment', 'must be "open" or "closed"');
    const t = options.countermeasureTimeoutMs;
    checkOption(t === undefined || (Number.isInteger(t) && t > 0 && t <= 86_400_000), 'countermeasureTimeoutMs', 'must be an integer from 1 to 86 400 000');
    const given = options.policy !== undefined ? checkPolicyDocument(options.policy) : undefined;
    const opened: { close(): Promise<void> }[] = [];
    try {
      const cs = options.configStore;
      const store = typeof cs === 'string' ? await (isPostgresUrl(cs) ? PostgresConfigurationStore.open(cs) : SqliteConfigurationStore.open(cs)) : (cs ?? new MemoryConfigurationStore());
      opened.push(store);
      const ss = options.securityStore;
      const security = typeof ss === 'string' ? await (isPostgresUrl(ss) ? PostgresSecurityStore.open(ss) : SqliteSecurityStore.open(ss)) : (ss ?? new MemorySecurityStore());
      opened.push(security);
      if (given !== undefined) await store.setPolicy(given);
      const policy = given ?? checkPolicyDocument((await store.getPolicy()) ?? EMPTY_POLICY);
      const dispatcher = await DispatchCenter.open({
        key: options.key,
        connector: options.connector,
        ...(options.dispatchStore !== undefined ? { store: options.dispatchStore } : {}),
        ...(options.dispatchLog !== undefined ? { logPath: options.dispatchLog } : {}),
        ...(options.now !== undefined ? { now: options.now } : {}),
      });
      opened.push(dispatcher);
      const center = new SecurityCenter(options, store, security, dispatcher, policy);
      const adv: Advisory[] = [];
      for await (const a of security.advisories()) adv.push(a);
      center.engine.setCountermeasureSet(await security.countermeasures());
      center.engine.addAdvisories(adv);
      center.#triggers.loaded(adv);
      for (const h of await store.hosts()) {
        const r = await store.latest(h.hostId);
        if (r) center.engine.updateHost({ ...toInventory(r), hostId: h.hostId });
        center.#engineSeen.set(h.hostId, h.lastSeen);
      }
      return center;
    } catch (err) {
      for (const o of opened.reverse()) await o.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- the channel (triggers 1 and 2) ----

  /**
   * Go online as a relay server: agents connect to this PCID and push their
   * reports (one exchange per connection).
   */
  async listen(options: ServerStartOptions): Promise<SockServer> {
    const server = await serverStart(options, (sock) => serveReportConnection(sock, (m) => this.receiveReport(m)));
    this.#servers.add(server);
    return server;
  }

  /**
   * Take one report message (triggers 1 and 2): check its signature, that it
   * speaks for the host its certificate is bound to, and the report itself;
   * store it; diagnose the host; start acting (in the background: the
   * answer does not wait for dispatches). A refused report changes nothing
   * and is answered `refused` with the code.
   */
  receiveReport(m: ReportMessage): Promise<AnswerMessage> {
    return this.#intake.receive(m);
  }

  // ---- triggers 3 and 4 ----

  /**
   * Trigger 3: new or changed advisories (parsed with `parseOsv`) and their
   * countermeasures. They are stored, the engine's index gives every host
   * each affects at once, and the center acts on those hosts only.
   * Resolves once the resulting actions are dispatched and settled (or notified).
   */
  importAdvisories(advisories: readonly Advisory[], countermeasures?: ReadonlyMap<string, readonly Countermeasure[]>): Promise<AdvisoryImportResult> {
    return this.#triggers.importAdvisories(advisories, countermeasures);
  }

  /**
   * Trigger 3 for advisories another process stored in the security
   * database (`gatesock center import-advisories` while `center run` runs):
   * take every advisory that is new or changed since this center loaded it,
   * with the current countermeasures, and act on the hosts it affects
   * (findings that already have an action, made by that other process or
   * here, get none again). `gatesock center run` calls it periodically.
   */
  syncAdvisories(): Promise<AdvisoryImportResult> {
    return this.#triggers.syncAdvisories();
  }

  /**
   * Trigger 3 from files: OSV JSON records and `gatesock-countermeasures/1`
   * files (folders: every `*.json`). A file that does not parse changes
   * nothing; it is listed in `rejected`.
   */
  async importAdvisoryFiles(paths: readonly string[]): Promise<AdvisoryImportResult & { readonly rejected: ImportReport['rejected'] }> {
    const report = await importAdvisoryFiles(paths);
    const result = await this.importAdvisories(report.advisories, report.countermeasures);
    return { ...result, rejected: report.rejected };
  }

  /**
   * Trigger 4: a remote scanner's findings (nmap `-oX`). Each open port is
   * confirmed against the reported configuration first; only confirmed
   * ones whose listener breaks the host's policy are acted on.
   * @throws SecurityCenterError `GS_ERR_SECURITY_MALFORMED_ADVISORY` for a file that is not nmap XML (nothing changes).
   */
  importScan(xml: string | Uint8Array): Promise<ScanImportResult> {
    return this.#triggers.importScan(xml);
  }

  // ---- the policy database ----

  /**
   * Replace the policy document (checked first). Takes effect on the next
   * diagnosis; firewall rule sets are regenerated for known hosts. Resolves
   * once the document and the rule sets are stored.
   */
  async setPolicy(doc: PolicyDocument): Promise<void> {
    this.#checkOpen();
    const checked = checkPolicyDocument(doc);
    // In force at once (as before the stores were asynchronous); stored under the store lock.
    this.engine.setPolicy(checked.policy ?? undefined);
    this.#policy = checked;
    await this.#exclusive(async () => {
      await this.config.setPolicy(checked);
      for (const h of await this.config.hosts()) {
        if (!(await setFirewall(this.config, h, firewallFor(this.#policy, h.hostId, (err) => this.emit('error', err))))) {
          this.emit('error', new Error(`host ${h.hostId}: its entry changed ${HOST_TRIES} times in a row while its rule set was replaced; the rule set was not stored`));
        }
      }
    });
  }

  /** The policy document in force. */
  get policy(): PolicyDocument {
    return this.#policy;
  }

  /**
   * Enrol a host before it reports: only the agent with this MSID may report
   * under `hostId` (with `enrollment: 'closed'`, only enrolled hosts may).
   * Resolves with the stored entry.
   *
   * For a host already bound to another agent, this re-enrols it: from now
   * on the old agent is refused with `GS_ERR_SECURITY_WRONG_HOST`, and the
   * new agent's reports start a fresh sequence for the host — its first full
   * report is accepted whatever number the old agent had reached and is
   * handled as a joining host's (diagnosis, actions with trigger `join`, the
   * rule set, the `joined` event); a delta before it is answered
   * `need-full`. The stored reports are not deleted: the old agent's stay as
   * the host's history until the new agent's replace them (after its first
   * report, the old agent's last one is the host's previous report), but
   * they are never the base of the new agent's deltas.
   * @throws SecurityCenterError `GS_ERR_SECURITY_WRONG_HOST` when the agent is enrolled as another host.
   */
  async enrollHost(hostId: string, msid: string, pcid: string, device: HostEntry['device'] = 'server'): Promise<HostEntry> {
    this.#checkOpen();
    checkEnrollment(hostId, msid, pcid, device);
    return this.#exclusive(() => enroll(this.config, hostId, msid, pcid, device));
  }

  // ---- views ----

  /** Every host. */
  hosts(): Promise<HostEntry[]> {
    return this.config.hosts();
  }

  /** Current findings of one host, or of every host. */
  findings(hostId?: string): Finding[] {
    const ids = hostId === undefined ? this.engine.hostIds().sort() : [hostId];
    return ids.flatMap((h) => this.engine.diagnoseHost(h) ?? []);
  }

  /** Actions, oldest first (of one host when given). */
  actions(hostId?: string): Promise<ActionRecord[]> {
    return this.config.actions(hostId);
  }

  /** Resolves when every acting round queued so far has finished. */
  async settled(): Promise<void> {
    let q: Promise<void>;
    do {
      q = this.#queue;
      await q;
    } while (q !== this.#queue);
  }

  /** Stop: relay servers close, queued rounds finish, the dispatch center and stores close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#servers].map((s) => s.close()));
    await this.#queue;
    await this.#lock;
    await this.dispatcher.close();
    await this.#options.notifier?.close().catch(() => undefined);
    await this.config.close();
    await this.security.close();
  }

  // ---- the store lock and the acting queue ----

  #checkOpen(): void {
    if (this.#closed) throw new ConfigError('GS_ERR_INVALID_OPTION', 'the security center is closed');
  }

  /**
   * Run `fn` alone among the center's store read-modify-writes (a report
   * being applied, action state changes, policy changes), so that they do
   * not interleave now that the stores are asynchronous. Never nested.
   */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Queue an acting round (or anything that must not overlap one). */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.then(
      () => undefined,
      (err: unknown) => {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      },
    );
    return run;
  }
}
