/**
 * HTTP CONNECT client: proxy answers (407, 403, 502, 1xx, malformed,
 * oversized, silent, early close), tunnel bytes that share a packet with the
 * answer, an answer dribbled one byte per packet, and option checks.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/index.js';
import { MAX_RESPONSE_HEAD_BYTES, parseResponseHead } from '../../src/transport/http-connect.js';
import { httpConnect, tcpListen, type ByteStream, type ByteStreamListener, type HttpConnectOptions } from '../../src/transport/index.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { until } from './conformance.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const GREETING = 'HELLO-FROM-TARGET\n';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A target that greets each connection at once, then echoes. */
async function greetingTarget(): Promise<ByteStreamListener> {
  const listener = await tcpListen({ host: '127.0.0.1' }, (s) => {
    s.write(bytes(GREETING));
    s.on('data', (c) => s.write(c));
    s.on('end', () => s.end());
    s.resume();
  });
  cleanups.push(() => listener.close());
  return listener;
}

async function proxy(options: Parameters<typeof startConnectProxy>[0]): Promise<ConnectProxy> {
  const p = await startConnectProxy(options);
  cleanups.push(() => p.close());
  return p;
}

/** A raw server that answers every connection with `reply` (after reading the request) and keeps it open. */
async function scriptedProxy(reply: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => reply(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

function options(proxyPort: number, targetPort: number, extra: Partial<HttpConnectOptions> = {}): HttpConnectOptions {
  return { proxy: { host: '127.0.0.1', port: proxyPort }, target: { host: '127.0.0.1', port: targetPort }, ...extra };
}

/** Read from `stream` (resumed) until `text` has arrived; return all of it. */
async function readUntil(stream: ByteStream, text: string): Promise<string> {
  let got = '';
  stream.on('data', (c) => (got += Buffer.from(c).toString('utf8')));
  stream.resume();
  await until(() => got.includes(text), JSON.stringify(text));
  return got;
}

describe('httpConnect through a proxy', () => {
  it('tunnels, sends Basic credentials, and describes itself', async () => {
    const target = await greetingTarget();
    const auth = { username: 'alice', password: 'pä:ss' };
    const p = await proxy({ auth });
    const stream = await httpConnect({ ...options(p.port, target.port), proxy: { host: '127.0.0.1', port: p.port, auth }, headers: { 'User-Agent': 'gatesock-test' } });
    expect(await readUntil(stream, GREETING)).toBe(GREETING);
    expect(p.requests[0]).toMatch(new RegExp(`^CONNECT 127\\.0\\.0\\.1:${target.port} HTTP/1\\.1\\r\\n`));
    expect(p.requests[0]).toContain(`Host: 127.0.0.1:${target.port}`);
    expect(p.requests[0]).toContain('User-Agent: gatesock-test');
    expect(stream.info).toMatchObject({ kind: 'http-connect', remote: `127.0.0.1:${target.port} via 127.0.0.1:${p.port}` });
    stream.destroy();
  });

  it('loses nothing when the 200 answer and tunnel bytes share one packet', async () => {
    const target = await greetingTarget();
    const p = await proxy({ coalesce: true });
    const stream = await httpConnect(options(p.port, target.port));
    // Let the coalesced packet land before anyone listens: the stream is paused.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const got = readUntil(stream, `${GREETING}echo me`);
    stream.write(bytes('echo me'));
    expect(await got).toBe(`${GREETING}echo me`);
    stream.destroy();
  });

  it('parses an answer dribbled one byte per packet', async () => {
    const target = await greetingTarget();
    const p = await proxy({ dribble: true });
    const stream = await httpConnect(options(p.port, target.port));
    expect(await readUntil(stream, GREETING)).toBe(GREETING);
    stream.destroy();
  });

  it('407 → GS_ERR_PROXY_AUTH (no credentials, and wrong ones)', async () => {
    const p = await proxy({ auth: { username: 'alice', password: 'right' } });
    await expect(httpConnect(options(p.port, 9))).rejects.toMatchObject({ code: 'GS_ERR_PROXY_AUTH', message: expect.stringContaining('requires authentication') });
    const wrong = { host: '127.0.0.1', port: p.port, auth: { username: 'alice', password: 'wrong' } };
    await expect(httpConnect({ ...options(p.port, 9), proxy: wrong })).rejects.toMatchObject({
      code: 'GS_ERR_PROXY_AUTH',
      message: expect.stringMatching(/rejected the credentials.*407.*Basic realm/),
    });
  });

  for (const status of [403, 502]) {
    it(`${status} → GS_ERR_PROXY_REFUSED with the status`, async () => {
      const p = await proxy({ status });
      await expect(httpConnect(options(p.port, 9))).rejects.toMatchObject({ code: 'GS_ERR_PROXY_REFUSED', message: expect.stringContaining(String(status)) });
    });
  }

  it('a target the proxy cannot reach → GS_ERR_PROXY_REFUSED (502)', async () => {
    const p = await proxy({});
    const closed = await tcpListen({ host: '127.0.0.1' }, () => {});
    await closed.close();
    await expect(httpConnect(options(p.port, closed.port))).rejects.toMatchObject({ code: 'GS_ERR_PROXY_REFUSED', message: expect.stringContaining('502') });
  });

  it('skips interim 1xx answers', async () => {
    const port = await scriptedProxy((s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\ntunnel'));
    const stream = await httpConnect(options(port, 9));
    expect(await readUntil(stream, 'tunnel')).toBe('tunnel');
    stream.destroy();
  });

  it('accepts bare-LF line ends', async () => {
    const port = await scriptedProxy((s) => s.write('HTTP/1.0 200 Connection established\nX-A: b\n\nhi'));
    const stream = await httpConnect(options(port, 9));
    expect(await readUntil(stream, 'hi')).toBe('hi');
    stream.destroy();
  });

  it('a malformed status line → GS_ERR_PROXY_REFUSED', async () => {
    const port = await scriptedProxy((s) => s.write('SSH-2.0-OpenSSH\r\n\r\n'));
    await expect(httpConnect(options(port, 9))).rejects.toMatchObject({ code: 'GS_ERR_PROXY_REFUSED', message: expect.stringContaining('malformed') });
  });

  it(`an answer head over ${MAX_RESPONSE_HEAD_BYTES} bytes → GS_ERR_PROXY_REFUSED, without waiting for its end`, async () => {
    const port = await scriptedProxy((s) => s.write(`HTTP/1.1 200 OK\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(500)}`));
    await expect(httpConnect(options(port, 9))).rejects.toMatchObject({ code: 'GS_ERR_PROXY_REFUSED', message: expect.stringContaining('exceeds') });
  });

  it('a silent proxy → GS_ERR_CONNECT_FAILED after timeoutMs', async () => {
    const port = await scriptedProxy(() => {});
    const started = Date.now();
    await expect(httpConnect(options(port, 9, { timeoutMs: 100 }))).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining('100 ms') });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a proxy that hangs up before answering → GS_ERR_CONNECT_FAILED', async () => {
    const port = await scriptedProxy((s) => s.end('HTTP/1.1 200'));
    await expect(httpConnect(options(port, 9))).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining('before answering') });
  });

  it('an unreachable proxy → GS_ERR_CONNECT_FAILED naming the proxy', async () => {
    const closed = await tcpListen({ host: '127.0.0.1' }, () => {});
    await closed.close();
    await expect(httpConnect(options(closed.port, 9))).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining(`127.0.0.1:${closed.port}`) });
  });

  it('rejects options that could break the request, by name', async () => {
    const base = options(3128, 443);
    await expect(httpConnect({ ...base, proxy: { ...base.proxy, auth: { username: 'a:b', password: 'x' } } })).rejects.toThrow(/proxy\.auth\.username/);
    await expect(httpConnect({ ...base, headers: { 'X-Evil': 'a\r\nHost: b' } })).rejects.toThrow(ConfigError);
    await expect(httpConnect({ ...base, headers: { 'Bad Name': 'x' } })).rejects.toThrow(ConfigError);
    await expect(httpConnect({ ...base, target: { host: 'a b', port: 443 } })).rejects.toThrow(/target\.host/);
    await expect(httpConnect({ ...base, target: { host: 'example.org', port: 70000 } })).rejects.toThrow(/target\.port/);
  });
});

describe('parseResponseHead', () => {
  const enc = (s: string): Uint8Array => Buffer.from(s, 'latin1');

  it('waits for the blank line, then reports status, headers and length', () => {
    expect(parseResponseHead(enc('HTTP/1.1 200 OK\r\nVia: x\r\n'))).toBeUndefined();
    const buf = enc('HTTP/1.1 200 OK\r\nVia: 1.1 squid\r\n\r\nTUNNEL');
    const head = parseResponseHead(buf);
    expect(head).toEqual({ status: 200, reason: 'OK', headers: [['via', '1.1 squid']], length: 35 });
    expect(Buffer.from(buf.subarray(head!.length)).toString()).toBe('TUNNEL');
  });

  it('accepts a status line without a reason', () => {
    expect(parseResponseHead(enc('HTTP/1.1 204\r\n\r\n'))).toMatchObject({ status: 204, reason: '' });
  });

  it('refuses what is not an HTTP/1.x status line', () => {
    for (const line of ['HTTP/2 200 OK', 'HTTP/1.1 99 Low', 'HTTP/1.1 600 High', 'http/1.1 200 OK', 'HTTP/1.1 2000 OK']) {
      expect(() => parseResponseHead(enc(`${line}\r\n\r\n`)), line).toThrow(/malformed/);
    }
  });

  it(`caps the head at ${MAX_RESPONSE_HEAD_BYTES} bytes, complete or not`, () => {
    const pad = 'X: '.padEnd(MAX_RESPONSE_HEAD_BYTES, 'a');
    expect(() => parseResponseHead(enc(`HTTP/1.1 200 OK\r\n${pad}`))).toThrow(/exceeds/);
    expect(() => parseResponseHead(enc(`HTTP/1.1 200 OK\r\n${pad}\r\n\r\n`))).toThrow(/exceeds/);
  });
});
