/**
 * The center's intake of configuration reports, in memory: for each host the
 * latest and the previous full state (the device configuration database of
 * seed 004 §3, without persistence), fed only through the strict check and
 * the sequence rules. A refused report changes nothing and is recorded with
 * its reason.
 */
import { SecurityCenterError } from '../../../errors/index.js';
import type { HostInventory } from '../diagnosis/inventory.js';
import { applyReport, diffReports, type ApplyOutcome } from './delta.js';
import { toInventory } from './inventory.js';
import type { DeltaReport, FullReport, ReportLimits } from './types.js';
import { parseConfigurationReport } from './validate.js';

/** What {@link ConfigurationLedger.receive} did with a report. @public */
export type IntakeResult =
  | {
      readonly status: 'accepted';
      /** The host's new full state. */
      readonly report: FullReport;
      /** The diagnosis engine's input for it. */
      readonly inventory: HostInventory;
      /** What changed since the state held before (null on the host's first report). */
      readonly changes: DeltaReport | null;
    }
  | Exclude<ApplyOutcome, { status: 'accepted' }>;

/** A report the ledger refused. @public */
export interface Refusal {
  /** When, ms since the epoch. */
  readonly time: number;
  /** The channel's authenticated host. */
  readonly authenticatedMsid: string;
  /** The error code. */
  readonly code: string;
  /** The reason. */
  readonly message: string;
}

/** Options of {@link ConfigurationLedger}. @public */
export interface LedgerOptions {
  /** Report limits (defaults: `DEFAULT_REPORT_LIMITS`). */
  readonly limits?: Partial<ReportLimits>;
  /** Refusals kept (the oldest are dropped). Default 1000. */
  readonly keepRefusals?: number;
  /** Clock. Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Latest and previous reports per host.
 *
 * @example
 * ```ts
 * const ledger = new ConfigurationLedger();
 * const r = ledger.receive(bytes, channel.peerMsid);      // throws SecurityCenterError on a bad report
 * if (r.status === 'accepted') engine.update(r.inventory);
 * else if (r.status === 'need-full') channel.send({ t: 'send-full' });
 * ```
 * @public
 */
export class ConfigurationLedger {
  readonly #latest = new Map<string, FullReport>();
  readonly #previous = new Map<string, FullReport>();
  readonly #refusals: Refusal[] = [];
  readonly #limits: Partial<ReportLimits>;
  readonly #keep: number;
  readonly #now: () => number;

  constructor(options: LedgerOptions = {}) {
    this.#limits = options.limits ?? {};
    this.#keep = options.keepRefusals ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Check and apply one report received on a channel authenticated as
   * `authenticatedMsid`. Throws the check's `SecurityCenterError` (and
   * records it) when the report is refused; then nothing changes.
   */
  receive(input: string | Uint8Array, authenticatedMsid: string): IntakeResult {
    let outcome: ApplyOutcome;
    try {
      const report = parseConfigurationReport(input, { authenticatedMsid, limits: this.#limits });
      outcome = applyReport(this.#latest.get(report.hostMsid), report, this.#limits);
    } catch (err) {
      if (err instanceof SecurityCenterError) {
        this.#refusals.push({ time: this.#now(), authenticatedMsid, code: err.code, message: err.message });
        if (this.#refusals.length > this.#keep) this.#refusals.splice(0, this.#refusals.length - this.#keep);
      }
      throw err;
    }
    if (outcome.status !== 'accepted') return outcome;
    const { report } = outcome;
    const before = this.#latest.get(report.hostMsid);
    if (before !== undefined) this.#previous.set(report.hostMsid, before);
    this.#latest.set(report.hostMsid, report);
    return { status: 'accepted', report, inventory: toInventory(report), changes: before === undefined ? null : diffReports(before, report) };
  }

  /** The host's latest full state. */
  latest(msid: string): FullReport | undefined {
    return this.#latest.get(msid);
  }

  /** The host's state before the latest. */
  previous(msid: string): FullReport | undefined {
    return this.#previous.get(msid);
  }

  /** Every host with a report, sorted. */
  hosts(): string[] {
    return [...this.#latest.keys()].sort();
  }

  /** Latest reports of every host. */
  reports(): FullReport[] {
    return this.hosts().map((h) => this.#latest.get(h)!);
  }

  /** Refused reports, oldest first. */
  refusals(): readonly Refusal[] {
    return [...this.#refusals];
  }

  /** Drop a host's reports (it left). */
  forget(msid: string): void {
    this.#latest.delete(msid);
    this.#previous.delete(msid);
  }
}
