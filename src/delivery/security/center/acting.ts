/**
 * One acting round (the step every trigger of seed 004 §4.2 ends in): each
 * finding gets one action, claimed in the configuration store so that, also
 * with several centers on one database, only the center whose claim stored
 * it acts ({@link ConfigurationStore.claimAction}). Automatic actions are
 * resolved for their host and dispatched (dispatching.ts); manual ones, and
 * automatic ones that cannot be resolved after all, go to a person
 * (notifications.ts). Every action keeps the finding's own explanation.
 */
import { randomBytes } from 'node:crypto';
import { findingKey } from '../diagnosis/index.js';
import type { ActionBook } from './actions.js';
import type { CenterContext, Work } from './context.js';
import { resolveSteps, type ResolvedStep } from './countermeasure.js';
import type { Dispatching, Planned } from './dispatching.js';
import type { ManualAction, Notifications } from './notifications.js';
import { settingsFor } from './policy-document.js';
import type { ActionRecord, ConfigurationStore } from './store.js';

/**
 * Plans and carries out acting rounds (one per center; the center runs
 * rounds one at a time).
 * @internal
 */
export class Acting {
  readonly #c: CenterContext;
  readonly #book: ActionBook;
  readonly #notifications: Notifications;
  readonly #dispatching: Dispatching;

  constructor(context: CenterContext, book: ActionBook, notifications: Notifications, dispatching: Dispatching) {
    this.#c = context;
    this.#book = book;
    this.#notifications = notifications;
    this.#dispatching = dispatching;
  }

  /** Make and carry out the actions for these findings (one round); resolves with the actions made, as stored at the end. */
  async act(work: readonly Work[]): Promise<ActionRecord[]> {
    const c = this.#c;
    if (c.closed() || work.length === 0) return [];
    const made: ActionRecord[] = [];
    const planned: Planned[] = [];
    const manual: ManualAction[] = [];
    // Planning reads and writes the actions: under the store lock, so a report being applied does not interleave.
    await c.exclusive(async () => {
      const taken = new Set<string>();
      for (const { finding: f, trigger } of work) {
        const host = await c.config.getHost(f.hostId);
        if (!host) continue;
        const key = findingKey(f);
        if (taken.has(`${f.hostId} ${key}`)) continue;
        taken.add(`${f.hostId} ${key}`);
        const now = c.now();
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
            steps = resolveSteps(f, f.countermeasure, settingsFor(c.policy(), f.hostId));
          } catch (err) {
            // Cannot be done automatically after all: a person gets it.
            action = { ...base, mode: 'manual', detail: err instanceof Error ? err.message : String(err) };
          }
        }
        // One action per finding, also with other centers on the same database: only the claim that stores it acts.
        const open = await c.config.claimAction(action);
        if (open !== null) {
          // A person was not reached last time (the notifier failed): try again now, if this center wins the retry.
          if (await this.#book.claimRetry(open)) manual.push({ action: open, finding: f });
          continue;
        }
        c.emit('action', action);
        made.push(action);
        if (steps !== undefined && steps.length > 0) planned.push({ action, steps });
        else manual.push({ action, finding: f });
      }
    });
    await Promise.all([this.#notifications.notifyAll(manual), this.#dispatching.dispatchAll(planned)]);
    return Promise.all(made.map(async (a) => (await c.config.getAction(a.id)) ?? a));
  }
}
