/**
 * Changing the center's action records (seed 004 §4.4: act, then confirm by
 * the next collection), safely when several centers share one database:
 *
 * - every change is a compare-and-swap on the record as stored now
 *   ({@link ConfigurationStore.replaceAction}), worked out again when another
 *   writer changed it first, so no change is lost; a confirmed action is final;
 * - a manual action whose notification failed is taken for another attempt by
 *   a compare-and-swap too, so of several centers seeing it at once one sends it;
 * - a host's new report confirms (or fails) its actions.
 */
import type { HostDiagnosis } from '../diagnosis/index.js';
import { findingKey } from '../diagnosis/index.js';
import type { FullReport } from '../report/index.js';
import type { CenterContext } from './context.js';
import type { ActionRecord, ConfigurationStore, HostEntry } from './store.js';

/** Compare-and-swap attempts on one action before a change is given up (each lost one means another center changed it). */
const MAX_SWAPS = 16;
/** `detail` of a manual action whose notification failed starts so: the next trigger tries again. @internal */
export const NOTIFY_FAILED = 'notification failed';
/** `detail` of a manual action while a center sends it again. */
const NOTIFYING = 'being notified again';
/** A manual action planned this long (ms) without a result is taken as abandoned by the center that was sending it. */
const NOTIFY_LEASE_MS = 10 * 60_000;

/**
 * The action records' writes after a claim made them (one per center).
 * @internal
 */
export class ActionBook {
  readonly #c: CenterContext;

  constructor(context: CenterContext) {
    this.#c = context;
  }

  /**
   * Change an action as it is stored now (the caller holds the store lock):
   * `change` gets the stored record and returns what changes, or null for
   * nothing. The write is a compare-and-swap ({@link ConfigurationStore.replaceAction}),
   * so a change another center sharing the database made in between is not
   * lost: on a conflict the record is read again and `change` asked again.
   * A confirmed action is final (left as it is). `asRead`: the record as the
   * caller just read it, tried first instead of reading it again (the swap
   * still checks it).
   */
  async changeNow(id: string, change: (stored: ActionRecord) => Partial<ActionRecord> | null, asRead?: ActionRecord): Promise<void> {
    const c = this.#c;
    for (let attempt = 0; attempt < MAX_SWAPS; attempt++) {
      const stored = attempt === 0 && asRead !== undefined ? asRead : await c.config.getAction(id);
      if (stored === undefined || stored.state === 'confirmed') return;
      const patch = change(stored);
      if (patch === null) return;
      const next: ActionRecord = { ...stored, ...patch, updatedAt: c.now() };
      if (await c.config.replaceAction(stored, next)) {
        c.emit('action', next);
        return;
      }
    }
    c.emit('error', new Error(`action ${id}: changed by another writer ${MAX_SWAPS} times in a row; this change was given up`));
  }

  /** Set fields of an action as it is stored now, under the store lock. */
  update(a: ActionRecord, patch: Partial<ActionRecord>): Promise<void> {
    return this.#c.exclusive(() => this.changeNow(a.id, () => patch));
  }

  /**
   * Take a manual action whose notification failed for another attempt: a
   * compare-and-swap that marks it as being notified, so of several centers
   * seeing it at once only one sends it. An action planned for longer than
   * {@link NOTIFY_LEASE_MS} without a result counts as failed (the center
   * sending it stopped). True when this center is to send it.
   */
  async claimRetry(open: ActionRecord): Promise<boolean> {
    if (open.mode !== 'manual' || open.state !== 'planned') return false;
    const failed = open.detail?.startsWith(NOTIFY_FAILED) === true;
    const abandoned = this.#c.now() - open.updatedAt > NOTIFY_LEASE_MS;
    if (!failed && !abandoned) return false;
    return this.#c.config.replaceAction(open, { ...open, detail: `${NOTIFYING}${open.detail ? ` (after: ${open.detail})` : ''}`.slice(0, 1000), updatedAt: this.#c.now() });
  }

  /** Confirm (or fail) actions of this host by its new report (the caller holds the store lock). */
  async confirm(host: HostEntry, diagnosis: HostDiagnosis, report: FullReport): Promise<void> {
    const present = new Set(diagnosis.findings.map(findingKey));
    for (const listed of await this.#c.config.actions(host.hostId)) {
      if (listed.state === 'confirmed') continue;
      await this.changeNow(listed.id, (a) => {
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
          return { fixReportedAt: this.#c.now() };
        }
        return null;
      }, listed);
    }
  }
}
