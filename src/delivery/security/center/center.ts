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
 *   MSID that reports under it (or to the one enrolled for it beforehand).
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
 */
import { randomBytes, createHash } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { ConfigError, GatesockError, SecurityCenterError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { IdentityKey } from '../../../session/index.js';
import { serverStart, type ServerStartOptions, type SockServer } from '../../../socket/index.js';
import {
  DispatchCenter,
  decodeReport,
  type AgentConnector,
  type AgentRef,
  type DispatchOptions,
  type DispatchStore,
  type TargetResult,
} from '../../dispatch/index.js';
import { fromBase64url } from '../../dispatch/wire/index.js';
import { importAdvisoryFiles, type Advisory, type Countermeasure, type ImportReport } from '../advisories/index.js';
import { MAX_REQUESTED_FILES, checkHostInfo, serveReportConnection, verifyReportMessage, type AnswerMessage, type ReportMessage, type RequestedFile } from '../channel/index.js';
import { DiagnosisEngine, checkPolicy, findingKey, resolveHostPolicy, type Finding, type HostDiagnosis, type Policy } from '../diagnosis/index.js';
import { firewallForHost } from '../firewall/index.js';
import type { Notifier, SecurityNotification } from '../notify/index.js';
import { applyReport, parseConfigurationReport, toInventory, type FullReport, type ReportLimits } from '../report/index.js';
import { confirmFindings, parseNmapXml, type ScanFinding } from '../scan/index.js';
import type { PutAdvisoriesResult, SecurityStore } from '../secdb/index.js';
import { MemorySecurityStore, PostgresSecurityStore, SqliteSecurityStore, isPostgresUrl } from '../secdb/index.js';
import { PostgresConfigurationStore } from './postgres.js';
import { SqliteConfigurationStore } from './sqlite.js';
import { checkConfigRoot, checkUpgradeCommand, countermeasureCode, resolveSteps, type ResolvedStep } from './countermeasure.js';
import { MemoryConfigurationStore, type ActionRecord, type ActionSettings, type ConfigurationStore, type HostEntry, type PolicyDocument, type Trigger } from './store.js';

/** Options of {@link SecurityCenter.open}. @public */
export interface SecurityCenterOptions {
  /** The dispatch center's signing key: countermeasure bundles are signed with it; agents pin its public half. */
  readonly key: IdentityKey;
  /** How agents' dispatch servers are reached (a `RelayAgentConnector` on the relay). */
  readonly connector: AgentConnector;
  /**
   * The configuration database, a PostgreSQL connection string (`postgres://…`: a
   * `PostgresConfigurationStore`), or a SQLite file path to open one on.
   * Default: a {@link MemoryConfigurationStore}.
   */
  readonly configStore?: ConfigurationStore | string;
  /**
   * The security information database, a PostgreSQL connection string
   * (`postgres://…`: a `PostgresSecurityStore`; it may be the same database as
   * `configStore`'s), or a SQLite file path to open one on. Default: a `MemorySecurityStore`.
   */
  readonly securityStore?: SecurityStore | string;
  /** The dispatch store (or a SQLite path). Default: in memory. */
  readonly dispatchStore?: DispatchStore | string;
  /** The dispatch center's evidence log file. */
  readonly dispatchLog?: string;
  /** Where findings that need a person go. Without one, manual actions fail with "no notifier". */
  readonly notifier?: Notifier;
  /** Replaces the stored policy document at open. */
  readonly policy?: PolicyDocument;
  /** Dispatch settings for countermeasures (waves, retries, timeouts…). Default: the dispatch center's, with waves `[1, 0.5]`. */
  readonly dispatch?: Omit<DispatchOptions, 'bundle' | 'agents' | 'args'>;
  /** Longest a countermeasure run may take, ms. Default 600 000. */
  readonly countermeasureTimeoutMs?: number;
  /**
   * `open` (default): a host ID unknown to the center is bound to the first
   * agent that reports under it. `closed`: only hosts enrolled with
   * {@link SecurityCenter.enrollHost} may report.
   */
  readonly enrollment?: 'open' | 'closed';
  /** Report limits. */
  readonly limits?: Partial<ReportLimits>;
  /** Clock, ms since the epoch. */
  readonly now?: () => number;
}

/** Events of a {@link SecurityCenter}. @public */
export interface SecurityCenterEvents {
  /** Trigger 1: a host's first report was accepted. */
  joined: (host: HostEntry, diagnosis: HostDiagnosis) => void;
  /** A report was accepted and diagnosed. */
  report: (host: HostEntry, diagnosis: HostDiagnosis) => void;
  /** A report was refused (nothing changed). */
  refused: (info: { msid: string | null; host: string | null; code: string; message: string }) => void;
  /** An action was made or changed state. */
  action: (action: ActionRecord) => void;
  /** Something failed that stops nothing (a notifier, a dispatch). */
  error: (error: Error) => void;
}

/** What {@link SecurityCenter.importAdvisories} did. @public */
export interface AdvisoryImportResult {
  /** What the security store did with each advisory: added, updated, unchanged or stale. */
  readonly stored: PutAdvisoriesResult;
  /** Per advisory, the hosts it affects now (host IDs). */
  readonly affected: readonly { readonly advisoryId: string; readonly hosts: readonly string[] }[];
  /** The actions this import made. */
  readonly actions: readonly ActionRecord[];
}

/** What {@link SecurityCenter.importScan} did. @public */
export interface ScanImportResult {
  /** Every open port of the scan, judged against the reports. */
  readonly findings: readonly ScanFinding[];
  /** The actions made for confirmed ones. */
  readonly actions: readonly ActionRecord[];
}

/** Compare-and-swap attempts on one action before a change is given up (each lost one means another center changed it). */
const MAX_SWAPS = 16;
/** `detail` of a manual action whose notification failed starts so: the next trigger tries again. */
const NOTIFY_FAILED = 'notification failed';
/** `detail` of a manual action while a center sends it again. */
const NOTIFYING = 'being notified again';
/** A manual action planned this long (ms) without a result is taken as abandoned by the center that was sending it. */
const NOTIFY_LEASE_MS = 10 * 60_000;

const EMPTY_POLICY: PolicyDocument = Object.freeze({ policy: null, defaults: Object.freeze({}), hosts: Object.freeze({}) });
const HOST_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function errorCode(err: unknown): string {
  return err instanceof GatesockError ? err.code : 'GS_ERR_SECURITY_MALFORMED_REPORT';
}

function checkSettings(s: unknown, where: string): ActionSettings {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `${where} must be an object`);
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'upgradeCommand' && k !== 'configRoot') throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `${where}.${k} is not a setting`);
  return {
    ...(o.upgradeCommand !== undefined ? { upgradeCommand: checkUpgradeCommand(o.upgradeCommand, `${where}.upgradeCommand`) } : {}),
    ...(o.configRoot !== undefined ? { configRoot: checkConfigRoot(o.configRoot, `${where}.configRoot`) } : {}),
  };
}

/**
 * Check a policy document (policy database content): the diagnosis policy
 * (`checkPolicy`) and every action setting.
 * @throws SecurityCenterError `GS_ERR_SECURITY_MALFORMED_POLICY`.
 * @public
 */
export function checkPolicyDocument(doc: unknown): PolicyDocument {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', 'the policy document must be an object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['policy', 'defaults', 'hosts'].includes(k)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `the policy document has an unknown key ${JSON.stringify(k)}`);
  const policy = o.policy === undefined || o.policy === null ? null : checkPolicy(o.policy);
  const defaults = o.defaults === undefined ? {} : checkSettings(o.defaults, 'defaults');
  const hosts: Record<string, ActionSettings> = {};
  if (o.hosts !== undefined) {
    if (typeof o.hosts !== 'object' || o.hosts === null || Array.isArray(o.hosts)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', 'hosts must be an object of host ID → settings');
    for (const [h, s] of Object.entries(o.hosts)) {
      if (!HOST_ID_RE.test(h)) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_POLICY', `hosts: ${JSON.stringify(h.slice(0, 40))} is not a host ID`);
      hosts[h] = checkSettings(s, `hosts.${h}`);
    }
  }
  return { policy, defaults, hosts };
}

/** A planned automatic action and the steps resolved for its host. */
interface Planned {
  readonly action: ActionRecord;
  readonly steps: readonly ResolvedStep[];
}

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
  readonly #now: () => number;
  #policy: PolicyDocument;
  /** `modified` of every advisory the engine holds, to see what another process stored ({@link SecurityCenter.syncAdvisories}). */
  readonly #known = new Map<string, string>();
  /** Acting rounds run one at a time, so an agent never has two countermeasure dispatches at once. */
  #queue: Promise<void> = Promise.resolve();
  /** Tail of {@link SecurityCenter.#exclusive}'s chain. */
  #lock: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #servers = new Set<SockServer>();

  private constructor(options: SecurityCenterOptions, config: ConfigurationStore, security: SecurityStore, dispatcher: DispatchCenter, policy: PolicyDocument) {
    super();
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.config = config;
    this.security = security;
    this.dispatcher = dispatcher;
    this.#policy = policy;
    this.engine = new DiagnosisEngine(policy.policy ? { policy: policy.policy } : {});
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
      for (const a of adv) center.#known.set(a.id, a.modified);
      for (const h of await store.hosts()) {
        const r = await store.latest(h.hostId);
        if (r) center.engine.updateHost({ ...toInventory(r), hostId: h.hostId });
      }
      return center;
    } catch (err) {
      for (const o of opened.reverse()) await o.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- the channel ----

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
  async receiveReport(m: ReportMessage): Promise<AnswerMessage> {
    let msid: string | null = null;
    let hostId: string | null = null;
    try {
      this.#checkOpen();
      const info = checkHostInfo(m);
      hostId = info.host;
      ({ msid } = verifyReportMessage(m));
      const report = parseConfigurationReport(m.body, { authenticatedMsid: msid, limits: this.#options.limits ?? {} });
      const signer = msid;
      return await this.#exclusive(() => this.#apply(info, signer, report));
    } catch (err) {
      const code = errorCode(err);
      const message = err instanceof Error ? err.message : String(err);
      this.emit('refused', { msid, host: hostId, code, message });
      throw err;
    }
  }

  /** The store part of {@link SecurityCenter.receiveReport}, under the center's store lock. */
  async #apply(info: { host: string; pcid: string; device: HostEntry['device'] }, msid: string, report: ReturnType<typeof parseConfigurationReport>): Promise<AnswerMessage> {
    this.#checkOpen();
    const byMsid = await this.config.hostByMsid(msid);
    if (byMsid !== undefined && byMsid.hostId !== info.host) {
      throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `agent ${msid} is enrolled as host ${byMsid.hostId}, not ${info.host}`);
    }
    const known = await this.config.getHost(info.host);
    if (known !== undefined && known.msid !== msid) {
      throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `host ${info.host} belongs to agent ${known.msid}; ${msid} may not report for it`);
    }
    if (known === undefined && this.#options.enrollment === 'closed') {
      throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `host ${info.host} is not enrolled at this center`);
    }
    const previous = await this.config.latest(info.host);
    const outcome = applyReport(previous, report, this.#options.limits ?? {});
    if (outcome.status === 'stale') return answer('stale', null, outcome.expectSeqAbove, `report ${report.seq} is not newer than ${outcome.expectSeqAbove}`);
    if (outcome.status === 'need-full') return answer('need-full', null, null, outcome.message);
    return this.#accept(known, previous, info, msid, outcome.report);
  }

  async #accept(known: HostEntry | undefined, previous: FullReport | undefined, info: { host: string; pcid: string; device: HostEntry['device'] }, msid: string, report: FullReport): Promise<AnswerMessage> {
    const now = this.#now();
    const first = known === undefined || known.lastSeen === 0;
    const diagnosis = this.engine.updateHost({ ...toInventory(report), hostId: info.host });
    let firewall = known?.firewall ?? null;
    if (first) firewall = this.#firewallFor(info.host);
    const host: HostEntry = { hostId: info.host, msid, pcid: info.pcid, device: info.device, firstSeen: known?.firstSeen || now, lastSeen: now, firewall };
    await this.config.putReport(info.host, report);
    await this.config.putHost(host);
    await this.#confirm(host, diagnosis, report);
    this.emit(first ? 'joined' : 'report', host, diagnosis);
    // Still joining while the host has not yet reported every file its policy asked for (the report right after the first).
    const wanted = this.#requestedFiles(info.host);
    const completes = previous !== undefined && wanted.some((w) => !previous.files.some((f) => f.path === w.path));
    const trigger: Trigger = first || completes ? 'join' : 'report';
    void this.#enqueue(() => this.#act(diagnosis.findings.map((f) => ({ finding: f, trigger }))));
    const sendRules = info.device === 'network-device' && firewall !== null;
    return { ...answer('accepted', report.seq, null, null), firewall: sendRules, files: this.#requestedFiles(info.host), body: sendRules ? Buffer.from(firewall!, 'utf8') : new Uint8Array(0) };
  }

  /** The files this host's policy needs reported: required files (hash), files with settings (content too). */
  #requestedFiles(hostId: string): RequestedFile[] {
    let rules;
    try {
      rules = resolveHostPolicy(this.#policy.policy ?? undefined, hostId);
    } catch {
      return [];
    }
    if (!rules) return [];
    const out = new Map<string, boolean>();
    for (const f of rules.files) out.set(f.path, out.get(f.path) ?? false);
    for (const s of rules.settings) out.set(s.path, true);
    return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, MAX_REQUESTED_FILES).map(([path, content]) => ({ path, content }));
  }

  #firewallFor(hostId: string): string | null {
    if (this.#policy.policy === null) return null;
    try {
      return firewallForHost(this.#policy.policy, hostId) ?? null;
    } catch (err) {
      this.emit('error', err as Error);
      return null;
    }
  }

  /** Confirm (or fail) actions of this host by its new report. */
  async #confirm(host: HostEntry, diagnosis: HostDiagnosis, report: FullReport): Promise<void> {
    const present = new Set(diagnosis.findings.map(findingKey));
    for (const listed of await this.config.actions(host.hostId)) {
      if (listed.state === 'confirmed') continue;
      await this.#changeNow(listed.id, (a) => {
        const gone = !present.has(a.findingKey);
        if (gone && (a.state === 'notified' || a.state === 'failed')) {
          // Fixed by a person (or otherwise): the finding may be acted on afresh if it ever comes back.
          return { state: 'confirmed', detail: `report ${report.seq} no longer shows it (after: ${a.state}${a.detail ? `, ${a.detail}` : ''})`.slice(0, 1000) };
        }
        if (a.mode !== 'automatic') return null;
        if (a.state === 'verified-ran') {
          if (gone) return { state: 'confirmed', detail: `report ${report.seq} no longer shows it` };
          if (a.ranEndedAt !== null && report.time >= a.ranEndedAt) return { state: 'failed', detail: `the countermeasure ran, but report ${report.seq} (made after the run) still shows the finding` };
        } else if ((a.state === 'dispatched' || a.state === 'planned') && gone && a.fixReportedAt === null) {
          return { fixReportedAt: this.#now() };
        }
        return null;
      });
    }
  }

  // ---- triggers 3 and 4 ----

  /**
   * Trigger 3: new or changed advisories (parsed with `parseOsv`) and their
   * countermeasures. They are stored, the engine's index gives every host
   * each affects at once, and the center acts on those hosts only.
   * Resolves once the resulting actions are dispatched and settled (or notified).
   */
  async importAdvisories(advisories: readonly Advisory[], countermeasures?: ReadonlyMap<string, readonly Countermeasure[]>): Promise<AdvisoryImportResult> {
    this.#checkOpen();
    checkOption(Array.isArray(advisories), 'advisories', 'must be a list of parsed advisories');
    if (countermeasures && countermeasures.size > 0) {
      await this.security.putCountermeasures(countermeasures);
      this.engine.setCountermeasureSet(countermeasures);
    }
    const stored = await this.security.putAdvisories(advisories);
    const changed = new Set([...stored.added, ...stored.updated]);
    if (countermeasures) for (const id of countermeasures.keys()) changed.add(id);
    const affected: { advisoryId: string; hosts: string[] }[] = [];
    const work: { finding: Finding; trigger: Trigger }[] = [];
    for (const a of advisories) {
      if (!changed.has(a.id)) continue;
      const impact = this.engine.addAdvisory(a);
      this.#known.set(a.id, a.modified);
      affected.push({ advisoryId: a.id, hosts: impact.hosts.map((h) => h.hostId) });
      for (const h of impact.hosts) for (const f of h.findings) work.push({ finding: f, trigger: 'advisory' });
    }
    const actions = await this.#enqueue(() => this.#act(work));
    return { stored, affected, actions };
  }

  /**
   * Trigger 3 for advisories another process stored in the security
   * database (`gatesock center import-advisories` while `center run` runs):
   * take every advisory that is new or changed since this center loaded it,
   * with the current countermeasures, and act on the hosts it affects
   * (findings that already have an action, made by that other process or
   * here, get none again). `gatesock center run` calls it periodically.
   */
  async syncAdvisories(): Promise<AdvisoryImportResult> {
    this.#checkOpen();
    this.engine.setCountermeasureSet(await this.security.countermeasures());
    const fresh: Advisory[] = [];
    for await (const a of this.security.advisories()) if (this.#known.get(a.id) !== a.modified) fresh.push(a);
    const affected: { advisoryId: string; hosts: string[] }[] = [];
    const work: { finding: Finding; trigger: Trigger }[] = [];
    for (const a of fresh) {
      const impact = this.engine.addAdvisory(a);
      this.#known.set(a.id, a.modified);
      affected.push({ advisoryId: a.id, hosts: impact.hosts.map((h) => h.hostId) });
      for (const h of impact.hosts) for (const f of h.findings) work.push({ finding: f, trigger: 'advisory' });
    }
    const actions = await this.#enqueue(() => this.#act(work));
    return { stored: { added: [], updated: fresh.map((a) => a.id), unchanged: [], stale: [] }, affected, actions };
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
  async importScan(xml: string | Uint8Array): Promise<ScanImportResult> {
    this.#checkOpen();
    const scan = parseNmapXml(xml);
    const hosts = await this.config.hosts();
    const reports = (await Promise.all(hosts.map((h) => this.config.latest(h.hostId)))).filter((r): r is FullReport => r !== undefined);
    const findings = confirmFindings(scan, reports);
    const work: { finding: Finding; trigger: Trigger }[] = [];
    const seen = new Set<string>();
    for (const s of findings) {
      if (s.status !== 'confirmed' || s.hostMsid === null || s.listener === null) continue;
      const host = await this.config.hostByMsid(s.hostMsid);
      if (!host) continue;
      for (const f of this.engine.diagnoseHost(host.hostId) ?? []) {
        if (f.kind !== 'service-not-allowed' || f.service.proto !== s.protocol || f.service.port !== s.port || f.service.address !== s.listener.address) continue;
        const k = `${host.hostId} ${findingKey(f)}`;
        if (seen.has(k)) continue;
        seen.add(k);
        work.push({ finding: f, trigger: 'scan' });
      }
    }
    const actions = await this.#enqueue(() => this.#act(work));
    return { findings, actions };
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
      for (const h of await this.config.hosts()) await this.config.putHost({ ...h, firewall: this.#firewallFor(h.hostId) });
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
   */
  async enrollHost(hostId: string, msid: string, pcid: string, device: HostEntry['device'] = 'server'): Promise<HostEntry> {
    this.#checkOpen();
    checkHostInfo({ host: hostId, pcid, device });
    checkOption(typeof msid === 'string' && /^MSID-[0-9A-F]{64}$/i.test(msid), 'msid', 'must be an MSID');
    return this.#exclusive(async () => {
      const other = await this.config.hostByMsid(msid);
      if (other && other.hostId !== hostId) throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `agent ${msid} is enrolled as host ${other.hostId}`);
      const entry: HostEntry = { hostId, msid, pcid, device, firstSeen: 0, lastSeen: 0, firewall: null };
      await this.config.putHost(entry);
      return entry;
    });
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

  // ---- acting ----

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

  #settingsFor(hostId: string): ActionSettings {
    return { ...this.#policy.defaults, ...(this.#policy.hosts[hostId] ?? {}) };
  }

  /**
   * Change an action as it is stored now (the caller holds the store lock):
   * `change` gets the stored record and returns what changes, or null for
   * nothing. The write is a compare-and-swap ({@link ConfigurationStore.replaceAction}),
   * so a change another center sharing the database made in between is not
   * lost: on a conflict the record is read again and `change` asked again.
   * A confirmed action is final (left as it is).
   */
  async #changeNow(id: string, change: (stored: ActionRecord) => Partial<ActionRecord> | null): Promise<void> {
    for (let attempt = 0; attempt < MAX_SWAPS; attempt++) {
      const stored = await this.config.getAction(id);
      if (stored === undefined || stored.state === 'confirmed') return;
      const patch = change(stored);
      if (patch === null) return;
      const next: ActionRecord = { ...stored, ...patch, updatedAt: this.#now() };
      if (await this.config.replaceAction(stored, next)) {
        this.emit('action', next);
        return;
      }
    }
    this.emit('error', new Error(`action ${id}: changed by another writer ${MAX_SWAPS} times in a row; this change was given up`));
  }

  /** Set fields of an action as it is stored now, under the store lock. */
  #update(a: ActionRecord, patch: Partial<ActionRecord>): Promise<void> {
    return this.#exclusive(() => this.#changeNow(a.id, () => patch));
  }

  /** Make and carry out the actions for these findings (one round). */
  async #act(work: readonly { finding: Finding; trigger: Trigger }[]): Promise<ActionRecord[]> {
    if (this.#closed || work.length === 0) return [];
    const made: ActionRecord[] = [];
    const planned: Planned[] = [];
    const manual: { action: ActionRecord; finding: Finding }[] = [];
    // Planning reads and writes the actions: under the store lock, so a report being applied does not interleave.
    await this.#exclusive(async () => {
      const taken = new Set<string>();
      for (const { finding: f, trigger } of work) {
        const host = await this.config.getHost(f.hostId);
        if (!host) continue;
        const key = findingKey(f);
        if (taken.has(`${f.hostId} ${key}`)) continue;
        taken.add(`${f.hostId} ${key}`);
        const now = this.#now();
        const base: ActionRecord = {
          id: `act-${randomBytes(8).toString('hex')}`,
          hostId: f.hostId,
          msid: host.msid,
          findingKey: key,
          advisoryId: f.kind === 'vulnerable' ? f.advisoryId : null,
          trigger,
          reason: f.reason,
          steps: f.countermeasure,
          mode: f.automatic ? 'automatic' : 'manual',
          state: 'planned',
          detail: null,
          dispatchId: null,
          bundle: null,
          ranEndedAt: null,
          fixReportedAt: null,
          createdAt: now,
          updatedAt: now,
        };
        let steps: ResolvedStep[] | undefined;
        let action = base;
        if (f.automatic) {
          try {
            steps = resolveSteps(f, f.countermeasure, this.#settingsFor(f.hostId));
          } catch (err) {
            // Cannot be done automatically after all: a person gets it.
            action = { ...base, mode: 'manual', detail: err instanceof Error ? err.message : String(err) };
          }
        }
        // One action per finding, also with other centers on the same database: only the claim that stores it acts.
        const open = await this.config.claimAction(action);
        if (open !== null) {
          // A person was not reached last time (the notifier failed): try again now, if this center wins the retry.
          if (await this.#claimRetry(open)) manual.push({ action: open, finding: f });
          continue;
        }
        this.emit('action', action);
        made.push(action);
        if (steps !== undefined && steps.length > 0) planned.push({ action, steps });
        else manual.push({ action, finding: f });
      }
    });
    await Promise.all([this.#notifyAll(manual), this.#dispatchAll(planned)]);
    return Promise.all(made.map(async (a) => (await this.config.getAction(a.id)) ?? a));
  }

  /**
   * Take a manual action whose notification failed for another attempt: a
   * compare-and-swap that marks it as being notified, so of several centers
   * seeing it at once only one sends it. An action planned for longer than
   * {@link NOTIFY_LEASE_MS} without a result counts as failed (the center
   * sending it stopped).
   */
  async #claimRetry(open: ActionRecord): Promise<boolean> {
    if (open.mode !== 'manual' || open.state !== 'planned') return false;
    const failed = open.detail?.startsWith(NOTIFY_FAILED) === true;
    const abandoned = this.#now() - open.updatedAt > NOTIFY_LEASE_MS;
    if (!failed && !abandoned) return false;
    return this.config.replaceAction(open, { ...open, detail: `${NOTIFYING}${open.detail ? ` (after: ${open.detail})` : ''}`.slice(0, 1000), updatedAt: this.#now() });
  }

  async #notifyAll(list: readonly { action: ActionRecord; finding: Finding }[]): Promise<void> {
    for (const { action, finding } of list) {
      const notifier = this.#options.notifier;
      if (!notifier) {
        await this.#update(action, { state: 'failed', detail: 'needs a person, but the center has no notifier' });
        continue;
      }
      try {
        await notifier.send(await this.#notification(action, finding));
        await this.#update(action, { state: 'notified', detail: `sent by ${notifier.kind}${action.detail ? `; ${action.detail}` : ''}` });
      } catch (err) {
        // Stays planned: the next trigger that finds it again tries again.
        await this.#update(action, { state: 'planned', detail: `${NOTIFY_FAILED} (tried again on the next report): ${err instanceof Error ? err.message : String(err)}` });
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  async #notification(action: ActionRecord, finding: Finding): Promise<SecurityNotification> {
    const instructions = action.steps.filter((s) => s.kind === 'manual').map((s) => (s as { instructions: string }).instructions);
    if (instructions.length === 0) instructions.push(`The automatic countermeasure cannot be applied: ${action.detail ?? 'no automatic step'}. Planned steps: ${JSON.stringify(action.steps)}`);
    const advisory = action.advisoryId ? await this.security.getAdvisory(action.advisoryId) : undefined;
    const subject = finding.kind === 'vulnerable' ? `${finding.advisoryId}: ${finding.package} ${finding.installed}` : finding.kind;
    return {
      id: `gs-${createHash('sha256').update(`${action.hostId}\n${action.findingKey}`).digest('hex').slice(0, 32)}`,
      hostId: action.hostId,
      title: `${subject} on ${action.hostId} needs a manual fix`.replace(/[\r\n]/g, ' ').slice(0, 200),
      instructions: instructions.join('\n\n'),
      details: [finding.reason.replace(/[\r\n]/g, ' ')],
      references: (advisory?.references ?? []).map((r) => r.url).filter((u) => /^https?:\/\//.test(u)).slice(0, 50),
      time: this.#now(),
    };
  }

  /** One bundle per distinct code; each dispatched only to its hosts. */
  async #dispatchAll(planned: readonly Planned[]): Promise<void> {
    if (planned.length === 0) return;
    const byHost = new Map<string, Planned[]>();
    for (const p of planned) byHost.set(p.action.hostId, [...(byHost.get(p.action.hostId) ?? []), p]);
    const timeoutMs = this.#options.countermeasureTimeoutMs ?? 600_000;
    const byCode = new Map<string, { code: string; hosts: { host: HostEntry; actions: ActionRecord[] }[] }>();
    for (const [hostId, list] of byHost) {
      const host = (await this.config.getHost(hostId))!;
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

  async #dispatchGroup(code: string, hosts: { host: HostEntry; actions: ActionRecord[] }[], timeoutMs: number): Promise<void> {
    const fail = async (detail: string) => {
      for (const h of hosts) for (const a of h.actions) await this.#update(a, { state: 'failed', detail });
    };
    let bundle;
    try {
      const name = `gs-countermeasure-${createHash('sha256').update(code).digest('hex').slice(0, 16)}`;
      bundle = await this.dispatcher.createBundle({ name, version: 1, code, timeoutMs: timeoutMs + 5_000, now: this.#now() });
    } catch (err) {
      await fail(`could not make the bundle: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const agents: AgentRef[] = hosts.map((h) => ({ msid: h.host.msid, pcid: h.host.pcid }));
    const byMsid = new Map(hosts.map((h) => [h.host.msid, h]));
    let run;
    try {
      run = this.dispatcher.dispatch({ waves: [1, 0.5], ...this.#options.dispatch, bundle: bundle.digest, agents });
    } catch (err) {
      await fail(`could not dispatch: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // Marked dispatched before any result is applied: both go through the store lock in this order.
    const marked = Promise.all(hosts.flatMap((h) => h.actions.map((a) => this.#update(a, { state: 'dispatched', dispatchId: run.dispatchId, bundle: bundle.digest }))));
    // One result at a time under the store lock (the run's events and its summary may both carry a target).
    const onResult = (r: TargetResult): Promise<void> =>
      this.#exclusive(async () => {
        const h = byMsid.get(r.msid);
        if (!h) return;
        const ended = r.state === 'verified' && r.outcome === 'ran' ? this.#ranEndedAt(r) : null;
        for (const a0 of h.actions) {
          await this.#changeNow(a0.id, (a) => {
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
      const stored = this.dispatcher.store.getTarget({ dispatchId: r.dispatchId, run: r.run, msid: r.msid });
      if (!stored?.report || !stored.certificate) return null;
      return decodeReport(stored.report, fromBase64url(stored.certificate, 'certificate', 16 * 1024)).fields.endedAt;
    } catch {
      return null;
    }
  }
}

function answer(status: AnswerMessage['status'], seq: number | null, expectSeqAbove: number | null, message: string | null): AnswerMessage {
  return { t: 'answer', status, seq, expectSeqAbove, code: null, message: message?.slice(0, 1024) ?? null, firewall: false, files: [], body: new Uint8Array(0) };
}
