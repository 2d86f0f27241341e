/**
 * Findings that need a person (seed 004 §4.4): a manual action goes to the
 * center's {@link Notifier} with the entry's instructions and the finding's
 * own explanation, and becomes `notified`. Without a notifier it fails;
 * when the notifier fails it stays `planned` (detail `notification failed…`)
 * and the next trigger that still finds it tries again.
 */
import { createHash } from 'node:crypto';
import type { Finding } from '../diagnosis/index.js';
import type { Notifier, SecurityNotification } from '../notify/index.js';
import { NOTIFY_FAILED, type ActionBook } from './actions.js';
import type { CenterContext } from './context.js';
import type { ActionRecord } from './store.js';

/** A manual action and the finding it is for. @internal */
export interface ManualAction {
  readonly action: ActionRecord;
  readonly finding: Finding;
}

/**
 * Sends manual actions to the notifier (one per center).
 * @internal
 */
export class Notifications {
  readonly #c: CenterContext;
  readonly #book: ActionBook;

  constructor(context: CenterContext, book: ActionBook) {
    this.#c = context;
    this.#book = book;
  }

  /** Notify each action in turn and record how it went. */
  async notifyAll(list: readonly ManualAction[]): Promise<void> {
    for (const { action, finding } of list) {
      const notifier = this.#c.options.notifier;
      if (!notifier) {
        await this.#book.update(action, { state: 'failed', detail: 'needs a person, but the center has no notifier' });
        continue;
      }
      try {
        await notifier.send(await this.#notification(action, finding));
        await this.#book.update(action, { state: 'notified', detail: `sent by ${notifier.kind}${action.detail ? `; ${action.detail}` : ''}` });
      } catch (err) {
        // Stays planned: the next trigger that finds it again tries again.
        await this.#book.update(action, { state: 'planned', detail: `${NOTIFY_FAILED} (tried again on the next report): ${err instanceof Error ? err.message : String(err)}` });
        this.#c.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  async #notification(action: ActionRecord, finding: Finding): Promise<SecurityNotification> {
    const instructions = action.steps.filter((s) => s.kind === 'manual').map((s) => (s as { instructions: string }).instructions);
    if (instructions.length === 0) instructions.push(`The automatic countermeasure cannot be applied: ${action.detail ?? 'no automatic step'}. Planned steps: ${JSON.stringify(action.steps)}`);
    const advisory = action.advisoryId ? await this.#c.security.getAdvisory(action.advisoryId) : undefined;
    const subject = finding.kind === 'vulnerable' ? `${finding.advisoryId}: ${finding.package} ${finding.installed}` : finding.kind;
    return {
      // The same finding on the same host always has the same ID, so a receiver can fold repeats.
      id: `gs-${createHash('sha256').update(`${action.hostId}\n${action.findingKey}`).digest('hex').slice(0, 32)}`,
      hostId: action.hostId,
      title: `${subject} on ${action.hostId} needs a manual fix`.replace(/[\r\n]/g, ' ').slice(0, 200),
      instructions: instructions.join('\n\n'),
      details: [finding.reason.replace(/[\r\n]/g, ' ')],
      references: (advisory?.references ?? []).map((r) => r.url).filter((u) => /^https?:\/\//.test(u)).slice(0, 50),
      time: this.#c.now(),
    };
  }
}
