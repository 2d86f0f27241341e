/**
 * The security center's configuration database (seed 004 §4.1, 機器構成
 * データベース) and the records it keeps beside it: each host's enrolment
 * (host ID ↔ MSID, the PCID its dispatch agent serves, its device kind), its
 * latest and previous full configuration reports, the countermeasure actions
 * with their state, and the policy database's document.
 *
 * Every method returns a promise, so a store may live on a server: one
 * {@link MemoryConfigurationStore} for tests, one SQLite file by default
 * ({@link SqliteConfigurationStore}), and a PostgreSQL database when
 * configured (`PostgresConfigurationStore`).
 */
import type { Countermeasure } from '../advisories/index.js';
import type { DeviceKind } from '../channel/index.js';
import type { Policy } from '../diagnosis/index.js';
import type { FullReport } from '../report/index.js';

/** One enrolled host. @public */
export interface HostEntry {
  /** Host ID (the policy database's key, the name the agent reports under). */
  readonly hostId: string;
  /** The agent's MSID (hash of its certificate): the only agent that may report for this host. */
  readonly msid: string;
  /** Where its dispatch agent serves (countermeasures are dispatched there). */
  readonly pcid: string;
  /** What kind of host it is (a server, or a network device that applies nftables rules). */
  readonly device: DeviceKind;
  /** First accepted report, ms since the epoch. */
  readonly firstSeen: number;
  /** Last accepted report, ms since the epoch (0 when enrolled and not seen yet). */
  readonly lastSeen: number;
  /** The nftables rule set generated from its policy when it joined (or the policy changed); null when its policy has none. */
  readonly firewall: string | null;
}

/**
 * Where an action is (seed 004 §4.4: act, then confirm by the next collection).
 *
 * ```text
 * automatic: planned ─▶ dispatched ─▶ verified-ran ─▶ confirmed
 *               └──────────┴──────────────┴────────▶ failed ─┐
 * manual:    planned ─▶ notified ─────────────────────────────┴─▶ confirmed (a report without the finding)
 *               ▲  └ notifier failed: stays planned, tried again on the next report
 * ```
 * @public
 */
export type ActionState =
  /** Made, not yet sent. */
  | 'planned'
  /** In a dispatch; waiting for the signed report of the run. */
  | 'dispatched'
  /** The dispatch center verified that the code ran there; waiting for a configuration report without the finding. */
  | 'verified-ran'
  /** A later configuration report no longer shows the finding. */
  | 'confirmed'
  /** Sent to a person (a manual countermeasure). */
  | 'notified'
  /** Did not work (`detail` says why). */
  | 'failed';

/** Every {@link ActionState}. @public */
export const ACTION_STATES: readonly ActionState[] = Object.freeze(['planned', 'dispatched', 'verified-ran', 'confirmed', 'notified', 'failed']);

/** States in which a finding already has its action: no second one is made. @public */
export const BLOCKING_ACTION_STATES: readonly ActionState[] = Object.freeze(['planned', 'dispatched', 'verified-ran', 'notified', 'failed']);

/**
 * True when `stored` keeps `candidate` from being claimed: an open action
 * of the same host and finding key ({@link ConfigurationStore.claimAction}).
 * @internal
 */
export function blocks(stored: ActionRecord, candidate: ActionRecord): boolean {
  return stored.hostId === candidate.hostId && stored.findingKey === candidate.findingKey && BLOCKING_ACTION_STATES.includes(stored.state);
}

/**
 * True when `next` may replace `expected` ({@link ConfigurationStore.replaceAction}):
 * the same action (ID, host, finding key), and a confirmed one stays confirmed.
 * @internal
 */
export function replaceable(expected: ActionRecord, next: ActionRecord): boolean {
  return next.id === expected.id && next.hostId === expected.hostId && next.findingKey === expected.findingKey && (expected.state !== 'confirmed' || next.state === 'confirmed');
}

/**
 * An accepted report and its host's new entry, to be stored together by
 * {@link ConfigurationStore.commitReport}, with what the caller read before
 * deciding to accept it.
 * @public
 */
export interface ReportCommit {
  /** The host's entry as read before deciding (its binding to an MSID); undefined when the host was not stored. */
  readonly expectedHost: HostEntry | undefined;
  /** The sequence number of the host's latest report as read; null when it had none. */
  readonly expectedSeq: number | null;
  /** The new entry (the report's host; `msid` is the agent that sent it). */
  readonly host: HostEntry;
  /** The accepted full report: the host's new latest one (the old latest becomes the previous one). */
  readonly report: FullReport;
}

/**
 * True when `expected`, if any, is an entry of `next`'s host
 * ({@link ConfigurationStore.replaceHost}, {@link ConfigurationStore.commitReport}).
 * @internal
 */
export function sameHost(expected: HostEntry | undefined, next: HostEntry): boolean {
  return expected === undefined || expected.hostId === next.hostId;
}

/** What started an action: the four triggers of seed 004 §4.2. @public */
export type Trigger = 'join' | 'report' | 'advisory' | 'scan';

/** One countermeasure for one finding on one host. @public */
export interface ActionRecord {
  /** The action ID. */
  readonly id: string;
  /** The host it is for. */
  readonly hostId: string;
  /** The host's agent MSID when the action was made. */
  readonly msid: string;
  /** The finding's key (`findingKey`): how the next report is checked. */
  readonly findingKey: string;
  /** The advisory, for vulnerability findings. */
  readonly advisoryId: string | null;
  /** What made it: a host joining, a report, an advisory import or a scan import. */
  readonly trigger: Trigger;
  /** The finding's own explanation. */
  readonly reason: string;
  /** The steps as planned (from the entry, the engine or the policy). */
  readonly steps: readonly Countermeasure[];
  /** `automatic` (dispatched) or `manual` (notified). */
  readonly mode: 'automatic' | 'manual';
  /** Where the action is in its life. */
  readonly state: ActionState;
  /** Why it failed, or the last note; null when none. */
  readonly detail: string | null;
  /** The dispatch that runs it; null when not dispatched (yet). */
  readonly dispatchId: string | null;
  /** Digest of the bundle dispatched; null when none. */
  readonly bundle: string | null;
  /** End of the verified run on the agent's clock (`endedAt` of its signed report); null before. */
  readonly ranEndedAt: number | null;
  /** A report without the finding arrived before the run was verified (ms, center clock); null when not. */
  readonly fixReportedAt: number | null;
  /** When it was made, ms since the epoch. */
  readonly createdAt: number;
  /** When it last changed, ms since the epoch. */
  readonly updatedAt: number;
}

/** How the center acts on one host (kept with the policy). @public */
export interface ActionSettings {
  /**
   * The upgrade command: argv with `{package}` and `{version}` replaced.
   * Default `['apt-get', 'install', '-y', '--only-upgrade', '{package}={version}']`.
   */
  readonly upgradeCommand?: readonly string[];
  /** Prefix for `config` steps' paths (default `/`), e.g. a chroot. */
  readonly configRoot?: string;
}

/** The policy database's document: the diagnosis policy and per-host action settings. @public */
export interface PolicyDocument {
  /** The security policy (roles, allowed services, required files and settings); null for none. */
  readonly policy: Policy | null;
  /** Settings for every host, overridden per host by `hosts`. */
  readonly defaults: ActionSettings;
  /** Per-host settings by host ID, over `defaults`. */
  readonly hosts: Readonly<Record<string, ActionSettings>>;
}

/**
 * The configuration database and the center's records. Every method returns
 * a promise (a store may be on a database server).
 * @public
 */
export interface ConfigurationStore {
  /** The host with this host ID, or undefined. */
  getHost(hostId: string): Promise<HostEntry | undefined>;
  /** The host whose agent has this MSID, or undefined. */
  hostByMsid(msid: string): Promise<HostEntry | undefined>;
  /**
   * Add or replace a host, unchecked: for restoring or importing records.
   * The center writes hosts only through {@link ConfigurationStore.replaceHost}
   * and, with a report, {@link ConfigurationStore.commitReport}.
   */
  putHost(entry: HostEntry): Promise<void>;
  /**
   * Compare and swap a host's entry: store `next` only if the stored entry
   * of `next.hostId` is still exactly `expected` (undefined: the host is
   * still not stored) and no other host is bound to `next.msid`, as one
   * atomic step, also against other processes sharing the store. Resolves
   * false, changing nothing, otherwise (another writer changed the entry,
   * or the MSID is another host's): the caller reads again and decides again.
   * Enrolments and policy changes write hosts this way.
   */
  replaceHost(expected: HostEntry | undefined, next: HostEntry): Promise<boolean>;
  /** Every host, by host ID. */
  hosts(): Promise<HostEntry[]>;
  /** The host's latest full report. */
  latest(hostId: string): Promise<FullReport | undefined>;
  /** The report before the latest. */
  previous(hostId: string): Promise<FullReport | undefined>;
  /**
   * Store a new latest report (the old latest becomes the previous one),
   * unchecked: for restoring or importing records. The center stores
   * reports only through {@link ConfigurationStore.commitReport}.
   */
  putReport(hostId: string, report: FullReport): Promise<void>;
  /**
   * Store an accepted report and its host's new entry as one atomic step,
   * also against other processes sharing the store (two security centers on
   * one database), only if nothing the caller decided on has changed since it
   * read it: the host's stored entry is still exactly `expectedHost` (or the
   * host is still not stored), the sequence number of its latest report is
   * still `expectedSeq` (or it still has none), and no other host is bound to
   * `host.msid`. The report becomes the latest (the old latest the previous
   * one) and `host` replaces the entry. Resolves false, changing nothing,
   * otherwise: another writer bound the host or stored one of its reports
   * first, and the caller reads again and decides again (the report may now
   * be stale, or the agent may now speak for a host bound to another MSID).
   */
  commitReport(commit: ReportCommit): Promise<boolean>;
  /**
   * Add or replace an action (by its ID), unchecked: for restoring or
   * importing records. The center itself writes actions only through
   * {@link ConfigurationStore.claimAction} and {@link ConfigurationStore.replaceAction}.
   */
  putAction(action: ActionRecord): Promise<void>;
  /**
   * Store a new action unless its host already has an open action (any
   * state but `confirmed`: `BLOCKING_ACTION_STATES`) for the same finding key — as one atomic
   * step, also against other processes sharing the store (two security
   * centers on one database). Resolves with null when `action` was stored,
   * or with that open action (nothing is stored). Only the caller that got
   * null acts on the finding.
   */
  claimAction(action: ActionRecord): Promise<ActionRecord | null>;
  /**
   * Compare and swap: replace the stored action `expected` (as read) by
   * `next` (same ID, host and finding key) only if the stored record is still
   * exactly `expected`, atomically. Resolves false, changing nothing, when
   * another writer changed it first, when it is not stored, or when `next`
   * would reopen a confirmed action (confirmed is final: reopening could
   * give a finding a second open action).
   */
  replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean>;
  /** The action with this ID, or undefined. */
  getAction(id: string): Promise<ActionRecord | undefined>;
  /** Actions, oldest first; of one host when `hostId` is given. */
  actions(hostId?: string): Promise<ActionRecord[]>;
  /** The policy document, or undefined when none was set. */
  getPolicy(): Promise<PolicyDocument | undefined>;
  /** Replace the policy document. */
  setPolicy(doc: PolicyDocument): Promise<void>;
  /** Release the store; no call may follow. */
  close(): Promise<void>;
}

/** A {@link ConfigurationStore} in memory (tests, examples). @public */
export class MemoryConfigurationStore implements ConfigurationStore {
  readonly #hosts = new Map<string, HostEntry>();
  readonly #latest = new Map<string, FullReport>();
  readonly #previous = new Map<string, FullReport>();
  readonly #actions = new Map<string, ActionRecord>();
  #policy: PolicyDocument | undefined;

  /** {@inheritDoc ConfigurationStore.getHost} */
  async getHost(hostId: string): Promise<HostEntry | undefined> {
    return this.#hosts.get(hostId);
  }

  /** {@inheritDoc ConfigurationStore.hostByMsid} */
  async hostByMsid(msid: string): Promise<HostEntry | undefined> {
    for (const h of this.#hosts.values()) if (h.msid === msid) return h;
    return undefined;
  }

  /** {@inheritDoc ConfigurationStore.putHost} */
  async putHost(entry: HostEntry): Promise<void> {
    this.#hosts.set(entry.hostId, entry);
  }

  /** {@inheritDoc ConfigurationStore.replaceHost} */
  async replaceHost(expected: HostEntry | undefined, next: HostEntry): Promise<boolean> {
    if (!this.#hostAsRead(expected, next)) return false;
    this.#hosts.set(next.hostId, next);
    return true;
  }

  /** True when `next.hostId`'s entry is still `expected` and `next.msid` is no other host's. */
  #hostAsRead(expected: HostEntry | undefined, next: HostEntry): boolean {
    if (!sameHost(expected, next) || JSON.stringify(this.#hosts.get(next.hostId)) !== JSON.stringify(expected)) return false;
    for (const h of this.#hosts.values()) if (h.msid === next.msid && h.hostId !== next.hostId) return false;
    return true;
  }

  /** {@inheritDoc ConfigurationStore.hosts} */
  async hosts(): Promise<HostEntry[]> {
    return [...this.#hosts.values()].sort((a, b) => (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0));
  }

  /** {@inheritDoc ConfigurationStore.latest} */
  async latest(hostId: string): Promise<FullReport | undefined> {
    return this.#latest.get(hostId);
  }

  /** {@inheritDoc ConfigurationStore.previous} */
  async previous(hostId: string): Promise<FullReport | undefined> {
    return this.#previous.get(hostId);
  }

  /** {@inheritDoc ConfigurationStore.putReport} */
  async putReport(hostId: string, report: FullReport): Promise<void> {
    const old = this.#latest.get(hostId);
    if (old !== undefined) this.#previous.set(hostId, old);
    this.#latest.set(hostId, report);
  }

  /** {@inheritDoc ConfigurationStore.commitReport} */
  async commitReport(commit: ReportCommit): Promise<boolean> {
    // No await between the checks and the writes: atomic on one event loop.
    const { host, report } = commit;
    if (!this.#hostAsRead(commit.expectedHost, host)) return false;
    if ((this.#latest.get(host.hostId)?.seq ?? null) !== commit.expectedSeq) return false;
    const old = this.#latest.get(host.hostId);
    if (old !== undefined) this.#previous.set(host.hostId, old);
    this.#latest.set(host.hostId, report);
    this.#hosts.set(host.hostId, host);
    return true;
  }

  /** {@inheritDoc ConfigurationStore.putAction} */
  async putAction(action: ActionRecord): Promise<void> {
    this.#actions.set(action.id, action);
  }

  /** {@inheritDoc ConfigurationStore.claimAction} */
  async claimAction(action: ActionRecord): Promise<ActionRecord | null> {
    // No await between the check and the write: atomic on one event loop.
    for (const a of this.#actions.values()) if (blocks(a, action)) return a;
    this.#actions.set(action.id, action);
    return null;
  }

  /** {@inheritDoc ConfigurationStore.replaceAction} */
  async replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean> {
    const stored = this.#actions.get(expected.id);
    if (stored === undefined || !replaceable(expected, next) || JSON.stringify(stored) !== JSON.stringify(expected)) return false;
    this.#actions.set(next.id, next);
    return true;
  }

  /** {@inheritDoc ConfigurationStore.getAction} */
  async getAction(id: string): Promise<ActionRecord | undefined> {
    return this.#actions.get(id);
  }

  /** {@inheritDoc ConfigurationStore.actions} */
  async actions(hostId?: string): Promise<ActionRecord[]> {
    return [...this.#actions.values()].filter((a) => hostId === undefined || a.hostId === hostId);
  }

  /** {@inheritDoc ConfigurationStore.getPolicy} */
  async getPolicy(): Promise<PolicyDocument | undefined> {
    return this.#policy;
  }

  /** {@inheritDoc ConfigurationStore.setPolicy} */
  async setPolicy(doc: PolicyDocument): Promise<void> {
    this.#policy = doc;
  }

  /** {@inheritDoc ConfigurationStore.close} */
  async close(): Promise<void> {}
}
