/**
 * Notifiers against real local receivers on 127.0.0.1: an SMTP server
 * (smtp-server) gets the mail with the entry's instructions; a node:http
 * server gets the webhook's signed JSON, with retries on 5xx, timeouts and
 * refused connections, none on 4xx or redirects. Every failure is
 * GS_ERR_SECURITY_NOTIFY_FAILED.
 */
import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, SecurityCenterError } from '../../src/errors/index.js';
import { SmtpNotifier, WebhookNotifier, renderNotificationText, type SecurityNotification } from '../../src/delivery/security/notify/index.js';

const NOTE: SecurityNotification = {
  id: 'finding-42',
  hostId: 'web-1',
  title: 'CVE-2024-6387: openssh-server 1:9.2p1-2 needs a manual fix',
  severity: 'high',
  instructions: 'Set LoginGraceTime 0 in /etc/ssh/sshd_config\nand restart sshd until the update is installed.',
  details: ['package openssh-server 1:9.2p1-2 (source openssh)', 'affected: < 1:9.2p1-2+deb12u3 (entry DSA-5724-1)'],
  references: ['https://security-tracker.debian.org/tracker/CVE-2024-6387'],
  time: Date.UTC(2026, 10, 24, 1, 0, 0),
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function failure(p: Promise<unknown>): Promise<SecurityCenterError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SecurityCenterError);
  expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_NOTIFY_FAILED');
  return err as SecurityCenterError;
}

interface Received { from: string; to: string[]; data: string }
async function smtpServer(): Promise<{ port: number; mails: Received[] }> {
  const mails: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, cb) {
      cb(address.address.startsWith('nobody@') ? Object.assign(new Error('no such mailbox'), { responseCode: 550 }) : null);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address, to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString('utf8') });
        cb(null);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, mails };
}

describe('SmtpNotifier', () => {
  it('delivers the instructions by e-mail to a local SMTP server', async () => {
    const { port, mails } = await smtpServer();
    const mail = new SmtpNotifier({ host: '127.0.0.1', port, from: 'center@example.org', to: ['ops@example.org', 'sec@example.org'], timeoutMs: 5000 });
    cleanups.push(() => mail.close());
    await mail.send(NOTE);
    expect(mails).toHaveLength(1);
    const m = mails[0]!;
    expect(m.from).toBe('center@example.org');
    expect(m.to).toEqual(['ops@example.org', 'sec@example.org']);
    const [rawHead, ...rest] = m.data.split('\r\n\r\n');
    const head = rawHead!.replace(/\r\n[ \t]+/g, ' ').replace(/\r\n/g, '\n'); // unfold (RFC 5322 §2.2.3)
    const body = rest.join('\r\n\r\n').replace(/\r\n/g, '\n');
    expect(head).toMatch(/^Subject: \[gatesock\] web-1: CVE-2024-6387: openssh-server 1:9.2p1-2 needs a manual fix$/m);
    expect(head).toMatch(/^X-Gatesock-Finding: finding-42$/m);
    expect(head).toMatch(/^Content-Transfer-Encoding: 7bit$/m);
    expect(body).toBe(renderNotificationText(NOTE));
    expect(body).toContain('Set LoginGraceTime 0 in /etc/ssh/sshd_config\nand restart sshd');
    expect(body).toContain('- https://security-tracker.debian.org/tracker/CVE-2024-6387');
  });

  it('fails when a recipient is refused, the server is down, or the subject would inject a header', async () => {
    const { port, mails } = await smtpServer();
    const partly = new SmtpNotifier({ host: '127.0.0.1', port, from: 'center@example.org', to: ['ops@example.org', 'nobody@example.org'] });
    cleanups.push(() => partly.close());
    expect((await failure(partly.send(NOTE))).message).toMatch(/nobody@example.org/);
    const none = new SmtpNotifier({ host: '127.0.0.1', port, from: 'center@example.org', to: ['nobody@example.org'] });
    cleanups.push(() => none.close());
    await failure(none.send(NOTE));
    const ok = new SmtpNotifier({ host: '127.0.0.1', port, from: 'center@example.org', to: ['ops@example.org'] });
    cleanups.push(() => ok.close());
    await failure(ok.send({ ...NOTE, title: 'x\r\nBcc: victim@example.org' }));
    await failure(ok.send({ ...NOTE, hostId: 'web-1\r\nBcc: victim@example.org' }));
    await failure(ok.send({ ...NOTE, references: ['javascript:alert(1)'] }));
    expect(mails.filter((m) => m.to.includes('victim@example.org'))).toEqual([]);
    // a closed port: connection refused
    const down = await smtpServer();
    await cleanups.pop()!(); // close that server now
    const idle = new SmtpNotifier({ host: '127.0.0.1', port: down.port, from: 'center@example.org', to: ['ops@example.org'], timeoutMs: 2000 });
    cleanups.push(() => idle.close());
    await failure(idle.send(NOTE));
    expect(() => new SmtpNotifier({ host: '127.0.0.1', from: 'not an address', to: ['ops@example.org'] })).toThrow(ConfigError);
    expect(() => new SmtpNotifier({ host: '127.0.0.1', from: 'a@example.org', to: [] })).toThrow(ConfigError);
  });
});

interface Hit { path: string; headers: http.IncomingHttpHeaders; body: string }
async function httpServer(answer: (hit: Hit, n: number, res: http.ServerResponse) => void): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      hits.push(hit);
      answer(hit, hits.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

describe('WebhookNotifier', () => {
  const SECRET = 'a-webhook-secret-of-enough-length';

  it('POSTs the notification as signed JSON', async () => {
    const { url, hits } = await httpServer((_h, _n, res) => res.writeHead(204).end());
    const hook = new WebhookNotifier({ url, secret: SECRET, headers: { Authorization: 'Bearer t0k3n' } });
    await hook.send(NOTE);
    expect(hits).toHaveLength(1);
    const h = hits[0]!;
    expect(h.headers['content-type']).toBe('application/json');
    expect(h.headers.authorization).toBe('Bearer t0k3n');
    const ts = h.headers['x-gatesock-timestamp'] as string;
    expect(h.headers['x-gatesock-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${h.body}`).digest('hex')}`);
    const json = JSON.parse(h.body);
    expect(json).toMatchObject({ format: 'gatesock-notification-v1', id: 'finding-42', hostId: 'web-1', severity: 'high', instructions: NOTE.instructions, references: NOTE.references });
    expect(json.text).toBe(renderNotificationText(NOTE));
  });

  it('retries 5xx and 429 with backoff, then succeeds', async () => {
    const { url, hits } = await httpServer((_h, n, res) => {
      if (n === 1) res.writeHead(503).end();
      else if (n === 2) res.writeHead(429, { 'retry-after': '0' }).end();
      else res.writeHead(200).end('ok');
    });
    await new WebhookNotifier({ url, retries: 3, backoffMs: 10 }).send(NOTE);
    expect(hits).toHaveLength(3);
  });

  it('gives up at once on 4xx and on redirects, which it does not follow', async () => {
    const bad = await httpServer((_h, _n, res) => res.writeHead(400).end('bad'));
    expect((await failure(new WebhookNotifier({ url: bad.url, retries: 3, backoffMs: 10 }).send(NOTE))).message).toMatch(/HTTP 400/);
    expect(bad.hits).toHaveLength(1);
    const moved = await httpServer((h, _n, res) => (h.path === '/hook' ? res.writeHead(302, { location: '/elsewhere' }).end() : res.writeHead(200).end()));
    await failure(new WebhookNotifier({ url: moved.url, retries: 3, backoffMs: 10 }).send(NOTE));
    expect(moved.hits.map((h) => h.path)).toEqual(['/hook']);
  });

  it('fails after bounded retries on timeouts, server errors and refused connections', async () => {
    const silent = await httpServer(() => undefined); // never answers
    const err = await failure(new WebhookNotifier({ url: silent.url, timeoutMs: 150, retries: 1, backoffMs: 10 }).send(NOTE));
    expect(err.message).toMatch(/2 attempt\(s\): no answer within 150 ms; no answer within 150 ms/);
    expect(silent.hits).toHaveLength(2);
    const broken = await httpServer((_h, _n, res) => res.writeHead(500).end());
    await failure(new WebhookNotifier({ url: broken.url, retries: 2, backoffMs: 5 }).send(NOTE));
    expect(broken.hits).toHaveLength(3);
    const gone = await httpServer(() => undefined);
    await cleanups.pop()!();
    expect((await failure(new WebhookNotifier({ url: gone.url, retries: 1, backoffMs: 5 }).send(NOTE))).message).toMatch(/ECONNREFUSED/);
  });

  it('checks its options and the notification before sending', async () => {
    for (const opts of [{ url: 'ftp://x/' }, { url: 'not a url' }, { url: 'http://x/', retries: 11 }, { url: 'http://x/', timeoutMs: 0 }, { url: 'http://x/', secret: 'short' }, { url: 'http://x/', headers: { 'X-A': 'a\r\nb: c' } }]) {
      expect(() => new WebhookNotifier(opts), JSON.stringify(opts)).toThrow(ConfigError);
    }
    const { url, hits } = await httpServer((_h, _n, res) => res.writeHead(200).end());
    await failure(new WebhookNotifier({ url }).send({ ...NOTE, title: '' }));
    await failure(new WebhookNotifier({ url }).send({ ...NOTE, time: -1 }));
    expect(hits).toHaveLength(0);
  });
});
