/**
 * Notifiers (issue 8, "Acting"; seed 004 §5): what cannot be fixed
 * automatically is reported to a person with the entry's instructions, by
 * e-mail over SMTP or a webhook.
 *
 * @packageDocumentation
 */
export { checkNotification, renderNotificationText, type Notifier, type SecurityNotification, type Severity } from './notification.js';
export { SmtpNotifier, type SmtpNotifierOptions } from './smtp.js';
export { WebhookNotifier, type WebhookNotifierOptions } from './webhook.js';
