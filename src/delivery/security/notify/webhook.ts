/**
 * A webhook: each notification is POSTed as JSON to one URL. A 2xx answer is
 * success. Network errors, timeouts, 408, 429 and 5xx are retried with
 * exponential backoff (bounded count and delay); other answers (4xx, and 3xx:
 * redirects are not followed, so a notification never goes to a host the
 * operator did not configure) fail at once.
 *
 * ```text
 * POST <url>
 * Content-Type: application/json
 * X-Gatesock-Timestamp: 1764000000000                      ms, the send time
 * X-Gatesock-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>   when a secret is set
 *
 * { "format": "gatesock-notification-v1", "id", "hostId", "title", "severity",
 *   "instructions", "details", "references", "time", "text" }
 * ```
 */
import { createHmac } from 'node:crypto';
import { checkOption } from '../../../errors/check.js';
import { SecurityCenterError } from '../../../errors/index.js';
import { checkNotification, renderNotificationText, type Notifier, type SecurityNotification } from './notification.js';

/** Options of {@link WebhookNotifier}. @public */
export interface WebhookNotifierOptions {
  /** The endpoint, `https:` (or `http:`, for a receiver on the same host or network). */
  readonly url: string;
  /** Time allowed for one attempt, ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Attempts after the first. Default 3; at most 10. */
  readonly retries?: number;
  /** First backoff, ms; doubled per retry. Default 250. */
  readonly backoffMs?: number;
  /** Largest backoff, ms (also the cap on a server's Retry-After). Default 10 000. */
  readonly maxBackoffMs?: number;
  /** Key for the `X-Gatesock-Signature` HMAC, so the receiver can tell the center sent it. */
  readonly secret?: string | Uint8Array;
  /** Extra headers (an `Authorization` token, say). */
  readonly headers?: Readonly<Record<string, string>>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retry-After (seconds or an HTTP date) in ms, or undefined. */
function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  if (/^[0-9]{1,6}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/**
 * POSTs each notification as JSON, with retries.
 *
 * @example
 * ```ts
 * const hook = new WebhookNotifier({ url: 'https://chat.example.org/hooks/security', secret: process.env.HOOK_SECRET });
 * await hook.send(notification);
 * ```
 * @public
 */
export class WebhookNotifier implements Notifier {
  /** `webhook`. */
  readonly kind = 'webhook';
  readonly #url: URL;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #secret: Uint8Array | undefined;
  readonly #headers: Record<string, string>;

  constructor(options: WebhookNotifierOptions) {
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    checkOption(url !== undefined && (url.protocol === 'https:' || url.protocol === 'http:'), 'url', 'must be an http(s) URL');
    this.#url = url;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#retries = options.retries ?? 3;
    this.#backoffMs = options.backoffMs ?? 250;
    this.#maxBackoffMs = options.maxBackoffMs ?? 10_000;
    checkOption(Number.isInteger(this.#timeoutMs) && this.#timeoutMs > 0, 'timeoutMs', 'must be an integer > 0');
    checkOption(Number.isInteger(this.#retries) && this.#retries >= 0 && this.#retries <= 10, 'retries', 'must be an integer in 0..10');
    checkOption(Number.isInteger(this.#backoffMs) && this.#backoffMs >= 0, 'backoffMs', 'must be an integer ≥ 0');
    checkOption(Number.isInteger(this.#maxBackoffMs) && this.#maxBackoffMs >= this.#backoffMs, 'maxBackoffMs', 'must be an integer ≥ backoffMs');
    this.#secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
    checkOption(this.#secret === undefined || this.#secret.length >= 16, 'secret', 'must be at least 16 bytes');
    const headers = { ...options.headers };
    for (const [k, v] of Object.entries(headers)) {
      checkOption(/^[A-Za-z0-9-]{1,64}$/.test(k) && typeof v === 'string' && !/[\r\n]/.test(v), 'headers', `must be header names and one-line values (${JSON.stringify(k)})`);
    }
    this.#headers = headers;
  }

  /** One attempt: 'ok', or why it failed and whether to try again. */
  async #attempt(body: string): Promise<{ ok: true } | { ok: false; retry: boolean; why: string; waitMs?: number }> {
    const timestamp = String(Date.now());
    const headers: Record<string, string> = { ...this.#headers, 'content-type': 'application/json', 'x-gatesock-timestamp': timestamp };
    if (this.#secret !== undefined) {
      headers['x-gatesock-signature'] = `sha256=${createHmac('sha256', this.#secret).update(`${timestamp}.${body}`).digest('hex')}`;
    }
    let res: Response;
    try {
      res = await fetch(this.#url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.#timeoutMs} ms` : `${e.message}${e.cause?.code !== undefined ? ` (${e.cause.code})` : ''}`;
      return { ok: false, retry: true, why };
    }
    // The body is not needed; drain it so the connection can be reused.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true };
    const retry = res.status === 408 || res.status === 429 || res.status >= 500;
    const waitMs = retryAfterMs(res.headers.get('retry-after'), Date.now());
    return { ok: false, retry, why: `HTTP ${res.status}`, ...(waitMs !== undefined ? { waitMs } : {}) };
  }

  /**
   * POST one notification. `GS_ERR_SECURITY_NOTIFY_FAILED` naming the last
   * failure when no attempt got a 2xx answer.
   */
  async send(notification: SecurityNotification): Promise<void> {
    checkNotification(notification);
    const body = JSON.stringify({
      format: 'gatesock-notification-v1',
      id: notification.id,
      hostId: notification.hostId,
      title: notification.title,
      severity: notification.severity ?? null,
      instructions: notification.instructions,
      details: notification.details ?? [],
      references: notification.references ?? [],
      time: notification.time,
      text: renderNotificationText(notification),
    });
    const failures: string[] = [];
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      const r = await this.#attempt(body);
      if (r.ok) return;
      failures.push(r.why);
      if (!r.retry || attempt === this.#retries) break;
      const backoff = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** attempt);
      await sleep(Math.min(this.#maxBackoffMs, Math.max(backoff, r.waitMs ?? 0)));
    }
    throw new SecurityCenterError(
      'GS_ERR_SECURITY_NOTIFY_FAILED',
      `webhook ${this.#url.origin} did not take ${notification.id} after ${failures.length} attempt(s): ${failures.join('; ')}`,
    );
  }

  /** Nothing to release (fetch pools its own connections). */
  async close(): Promise<void> {}
}
