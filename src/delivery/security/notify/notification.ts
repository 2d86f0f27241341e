/**
 * What is reported to a person when a finding cannot be fixed automatically
 * (seed 004 §5: "when settings cannot solve a security problem, an e-mail
 * describing the countermeasure is sent to the user"), and the interface
 * every notifier implements.
 */
import { SecurityCenterError } from '../../../errors/index.js';

/** How urgent a finding is. @public */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** One notification: a finding on a host and the instructions for a person. @public */
export interface SecurityNotification {
  /** Stable ID of the finding (for de-duplication by the receiver): letters, digits and `._:-`, at most 128. */
  readonly id: string;
  /** The host (its ID or MSID): letters, digits and `._:-`, at most 128. */
  readonly hostId: string;
  /** One line, at most 200 characters (`CVE-2024-6387: openssh-server 1:9.2p1-2 needs a manual fix`). */
  readonly title: string;
  /** Severity, when the entry gives one. */
  readonly severity?: Severity;
  /** The entry's instructions for a person, as text (at most 64 KiB). */
  readonly instructions: string;
  /** Why: one line per fact (which package, which range, which entry). At most 100 lines. */
  readonly details?: readonly string[];
  /** http(s) references. At most 50. */
  readonly references?: readonly string[];
  /** When the finding was made, ms since the epoch. */
  readonly time: number;
}

/** Delivers notifications to a person. @public */
export interface Notifier {
  /** A short name for logs (`smtp`, `webhook`). */
  readonly kind: string;
  /**
   * Deliver one notification. Resolves once the receiving side accepted it;
   * rejects with `GS_ERR_SECURITY_NOTIFY_FAILED` when it could not be
   * delivered (the caller keeps the finding open and tries again later).
   */
  send(notification: SecurityNotification): Promise<void>;
  /** Release connections. */
  close(): Promise<void>;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

function bad(field: string, rule: string): never {
  throw new SecurityCenterError('GS_ERR_SECURITY_NOTIFY_FAILED', `notification ${field} ${rule}; not sent`);
}

/**
 * Check a notification before anything is sent: IDs of a safe character set
 * (they go into mail headers), a one-line title (no header injection through
 * the subject), bounded text, http(s) references. Throws
 * `GS_ERR_SECURITY_NOTIFY_FAILED` naming the field.
 */
export function checkNotification(n: SecurityNotification): void {
  if (typeof n !== 'object' || n === null) bad('', 'is not an object');
  if (typeof n.id !== 'string' || !ID.test(n.id)) bad('id', 'must be 1-128 letters, digits and ._:-');
  if (typeof n.hostId !== 'string' || !ID.test(n.hostId)) bad('hostId', 'must be 1-128 letters, digits and ._:-');
  if (typeof n.title !== 'string' || n.title.length === 0 || n.title.length > 200 || /[\r\n]/.test(n.title) || CONTROL.test(n.title)) bad('title', 'must be one line of 1-200 characters');
  if (n.severity !== undefined && !SEVERITIES.includes(n.severity)) bad('severity', `must be one of ${SEVERITIES.join(', ')}`);
  if (typeof n.instructions !== 'string' || n.instructions.length > 65_536 || CONTROL.test(n.instructions)) bad('instructions', 'must be text of at most 64 KiB');
  const details = n.details ?? [];
  if (!Array.isArray(details) || details.length > 100) bad('details', 'must be at most 100 lines');
  details.forEach((d, i) => {
    if (typeof d !== 'string' || d.length > 1000 || /[\r\n]/.test(d) || CONTROL.test(d)) bad(`details[${i}]`, 'must be one line of at most 1000 characters');
  });
  const refs = n.references ?? [];
  if (!Array.isArray(refs) || refs.length > 50) bad('references', 'must be at most 50 URLs');
  refs.forEach((r, i) => {
    let ok = false;
    try {
      const u = new URL(r);
      ok = (u.protocol === 'https:' || u.protocol === 'http:') && r.length <= 2048 && !/\s/.test(r);
    } catch {
      ok = false;
    }
    if (!ok) bad(`references[${i}]`, 'is not an http(s) URL');
  });
  if (!Number.isSafeInteger(n.time) || n.time < 0) bad('time', 'is not a time in ms');
}

/** The plain-text body both notifiers use (the mail's text; a field of the webhook's JSON). @public */
export function renderNotificationText(n: SecurityNotification): string {
  const lines = [
    `Host: ${n.hostId}`,
    `Finding: ${n.title}`,
    ...(n.severity !== undefined ? [`Severity: ${n.severity}`] : []),
    `Found at: ${new Date(n.time).toISOString()}`,
    `Finding ID: ${n.id}`,
    '',
    'What to do:',
    n.instructions.replace(/\r\n?/g, '\n').trimEnd(),
  ];
  if ((n.details ?? []).length > 0) lines.push('', 'Why:', ...(n.details ?? []).map((d) => `- ${d}`));
  if ((n.references ?? []).length > 0) lines.push('', 'References:', ...(n.references ?? []).map((r) => `- ${r}`));
  lines.push('', '-- ', 'gatesock security center: this finding could not be fixed automatically.');
  return `${lines.join('\n')}\n`;
}
