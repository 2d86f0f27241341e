/**
 * E-mail over SMTP (nodemailer). One message per notification, to every
 * configured recipient; it counts as sent only when the server accepted it
 * for all of them.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { checkOption } from '../../../errors/check.js';
import { SecurityCenterError } from '../../../errors/index.js';
import { checkNotification, renderNotificationText, type Notifier, type SecurityNotification } from './notification.js';

/** Options of {@link SmtpNotifier}. @public */
export interface SmtpNotifierOptions {
  /** SMTP server host name or address. */
  readonly host: string;
  /** Port. Default 587 (465 when `secure`). */
  readonly port?: number;
  /** Implicit TLS from the first byte (port 465). Default false: plain, upgraded by STARTTLS when offered. */
  readonly secure?: boolean;
  /** Refuse to send unless the server upgrades with STARTTLS. Default false. */
  readonly requireTLS?: boolean;
  /** Login, when the server wants one. */
  readonly auth?: { readonly user: string; readonly pass: string };
  /** Sender address. */
  readonly from: string;
  /** Recipients (at least one). */
  readonly to: readonly string[];
  /** Put before each subject. Default `[gatesock]`. */
  readonly subjectPrefix?: string;
  /** Connection, greeting and socket timeout in ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** TLS options passed to the connection (a private CA, say). */
  readonly tls?: { readonly ca?: string | Buffer; readonly rejectUnauthorized?: boolean; readonly servername?: string };
}

const ADDRESS = /^[^\s@<>",;:()[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}$/;

/**
 * Sends each notification as a plain-text e-mail.
 *
 * @example
 * ```ts
 * const mail = new SmtpNotifier({ host: 'smtp.example.org', from: 'center@example.org', to: ['ops@example.org'], requireTLS: true });
 * await mail.send({ id: 'f-1', hostId: 'web-1', title: 'CVE-2024-6387 needs a manual fix', instructions: 'Upgrade openssh-server.', time: Date.now() });
 * ```
 * @public
 */
export class SmtpNotifier implements Notifier {
  /** `smtp`. */
  readonly kind = 'smtp';
  readonly #transport: Transporter<SMTPTransport.SentMessageInfo>;
  readonly #from: string;
  readonly #to: string[];
  readonly #prefix: string;

  constructor(options: SmtpNotifierOptions) {
    checkOption(typeof options.host === 'string' && /^[A-Za-z0-9.:-]{1,253}$/.test(options.host), 'host', 'must be a host name or address');
    const port = options.port ?? (options.secure === true ? 465 : 587);
    checkOption(Number.isInteger(port) && port >= 1 && port <= 65535, 'port', 'must be an integer in 1..65535');
    checkOption(typeof options.from === 'string' && ADDRESS.test(options.from), 'from', 'must be one e-mail address');
    checkOption(Array.isArray(options.to) && options.to.length > 0 && options.to.length <= 100 && options.to.every((a) => typeof a === 'string' && ADDRESS.test(a)), 'to', 'must be 1-100 e-mail addresses');
    const prefix = options.subjectPrefix ?? '[gatesock]';
    checkOption(typeof prefix === 'string' && prefix.length <= 40 && !/[\r\n]/.test(prefix), 'subjectPrefix', 'must be one line of at most 40 characters');
    const timeoutMs = options.timeoutMs ?? 10_000;
    checkOption(Number.isInteger(timeoutMs) && timeoutMs > 0, 'timeoutMs', 'must be > 0');
    this.#from = options.from;
    this.#to = [...options.to];
    this.#prefix = prefix;
    this.#transport = nodemailer.createTransport({
      host: options.host,
      port,
      secure: options.secure ?? false,
      requireTLS: options.requireTLS ?? false,
      ...(options.auth !== undefined ? { auth: { user: options.auth.user, pass: options.auth.pass } } : {}),
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      ...(options.tls !== undefined ? { tls: { ...options.tls } } : {}),
    });
  }

  /** Send one notification as an e-mail. `GS_ERR_SECURITY_NOTIFY_FAILED` when the server did not take it for every recipient. */
  async send(notification: SecurityNotification): Promise<void> {
    checkNotification(notification);
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await this.#transport.sendMail({
        from: this.#from,
        to: this.#to,
        subject: `${this.#prefix === '' ? '' : `${this.#prefix} `}${notification.hostId}: ${notification.title}`,
        text: renderNotificationText(notification),
        // Both values are checked to a safe character set (checkNotification).
        headers: { 'X-Gatesock-Host': notification.hostId, 'X-Gatesock-Finding': notification.id },
      });
    } catch (err) {
      throw new SecurityCenterError('GS_ERR_SECURITY_NOTIFY_FAILED', `e-mail for ${notification.id} not sent: ${(err as Error).message}`, { cause: err });
    }
    const rejected = (info.rejected as Array<string | { address: string }>).map((r) => (typeof r === 'string' ? r : r.address));
    if (rejected.length > 0) {
      throw new SecurityCenterError('GS_ERR_SECURITY_NOTIFY_FAILED', `e-mail for ${notification.id} refused for ${rejected.join(', ')}`);
    }
  }

  /** Close pooled connections. */
  async close(): Promise<void> {
    this.#transport.close();
  }
}
