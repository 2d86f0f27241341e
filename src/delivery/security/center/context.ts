/**
 * What the security center's parts share: its public option, event and
 * result types, and the context each part works in (the stores, the engine,
 * the dispatch center, the clock, the policy in force, the store lock and
 * the center's events).
 */
import type { EventEmitter } from 'eventemitter3';
import type { IdentityKey } from '../../../session/index.js';
import type { AgentConnector, DispatchCenter, DispatchOptions, DispatchStore } from '../../dispatch/index.js';
import type { DiagnosisEngine, Finding, HostDiagnosis } from '../diagnosis/index.js';
import type { Notifier } from '../notify/index.js';
import type { ReportLimits } from '../report/index.js';
import type { ScanFinding } from '../scan/index.js';
import type { PutAdvisoriesResult, SecurityStore } from '../secdb/index.js';
import type { ActionRecord, ConfigurationStore, HostEntry, PolicyDocument, Trigger } from './store.js';

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

/** One finding to act on, and what found it. @internal */
export interface Work {
  readonly finding: Finding;
  readonly trigger: Trigger;
}

/**
 * The center as its parts see it (one per {@link SecurityCenter}).
 * @internal
 */
export interface CenterContext {
  /** The configuration database. */
  readonly config: ConfigurationStore;
  /** The security information database. */
  readonly security: SecurityStore;
  /** The dispatch center that carries countermeasures. */
  readonly dispatcher: DispatchCenter;
  /** The diagnosis engine. */
  readonly engine: DiagnosisEngine;
  /**
   * Per host, `lastSeen` of the host entry whose latest report the engine
   * holds: a stored entry with another `lastSeen` took a report at another
   * center sharing the database (see `OutsideTriggers`).
   */
  readonly engineSeen: Map<string, number>;
  /** The options the center was opened with. */
  readonly options: SecurityCenterOptions;
  /** The clock, ms since the epoch. */
  readonly now: () => number;
  /** The policy document in force. */
  policy(): PolicyDocument;
  /** True once the center is closing. */
  closed(): boolean;
  /** Throw `ConfigError` `GS_ERR_INVALID_OPTION` once the center is closing. */
  checkOpen(): void;
  /** Emit one of the center's events. */
  readonly emit: EventEmitter<SecurityCenterEvents>['emit'];
  /**
   * Run `fn` alone among the center's store read-modify-writes (a report
   * being applied, action state changes, policy changes), so that they do
   * not interleave now that the stores are asynchronous. Never nested.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Queue an acting round for these findings (rounds run one at a time); resolves with the actions it made. */
  act(work: readonly Work[]): Promise<ActionRecord[]>;
}
