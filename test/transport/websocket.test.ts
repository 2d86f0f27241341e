/**
 * WebSocket specifics beyond the conformance suite: text messages are a
 * protocol error, large writes are split into bounded messages, listening
 * can ride an existing HTTP server on a path, and failures are typed.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ConfigError } from '../../src/errors/index.js';
import { WS_MAX_SEND_MESSAGE_BYTES, wsConnect, wsListen, type ByteStream, type ByteStreamListener } from '../../src/transport/index.js';
import { next, until } from './conformance.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(options: Parameters<typeof wsListen>[0] = {}): Promise<{ listener: ByteStreamListener; accepted: ByteStream[] }> {
  const accepted: ByteStream[] = [];
  const listener = await wsListen(options, (s) => accepted.push(s));
  cleanups.push(async () => {
    for (const s of accepted) s.destroy();
    await listener.close();
  });
  return { listener, accepted };
}

/** A plain `ws` client, to play a peer gatesock would not be. */
async function rawClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  cleanups.push(async () => ws.terminate());
  return ws;
}

describe('WebSocket transport', () => {
  it('a text message closes the stream with a clear error, and the peer sees 1003', async () => {
    const { listener, accepted } = await listen();
    const ws = await rawClient(`ws://127.0.0.1:${listener.port}/`);
    const peerClose = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await until(() => accepted.length === 1, 'accept');
    const server = accepted[0]!;
    server.resume();
    const closed = next<[Error | undefined]>(server, 'close');
    ws.send('hello', { binary: false });
    const [err] = await closed;
    expect(err).toMatchObject({ code: 'GS_ERR_TRANSPORT_CLOSED', message: expect.stringContaining('text message') });
    expect(await peerClose).toBe(1003);
  });

  it('splits a large write into messages of at most WS_MAX_SEND_MESSAGE_BYTES', async () => {
    // A raw ws server as the peer, so message boundaries are visible.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => new Promise((resolve) => wss.close(() => resolve())));
    await new Promise((resolve) => wss.once('listening', resolve));
    const received: number[] = [];
    wss.on('connection', (peer) => peer.on('message', (data: Buffer) => received.push(data.length)));
    const client = await wsConnect(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`);
    cleanups.push(async () => client.destroy());
    client.write(new Uint8Array(WS_MAX_SEND_MESSAGE_BYTES * 2 + 5));
    await until(() => received.reduce((s, n) => s + n, 0) === WS_MAX_SEND_MESSAGE_BYTES * 2 + 5, 'all bytes');
    expect(received).toEqual([WS_MAX_SEND_MESSAGE_BYTES, WS_MAX_SEND_MESSAGE_BYTES, 5]);
  });

  it('rides an existing HTTP server on a path, leaving its other requests alone', async () => {
    const server = http.createServer((_req, res) => res.end('plain http'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    const accepted: ByteStream[] = [];
    const listener = await wsListen({ server, path: '/gatesock' }, (s) => accepted.push(s));
    expect(listener.port).toBe(port);

    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('plain http');
    const client = await wsConnect(`ws://127.0.0.1:${port}/gatesock`);
    await until(() => accepted.length === 1, 'accept');
    const data = next<[Uint8Array]>(accepted[0]!, 'data');
    accepted[0]!.resume();
    client.write(Uint8Array.of(7, 8, 9));
    expect([...(await data)[0]]).toEqual([7, 8, 9]);
    await expect(wsConnect(`ws://127.0.0.1:${port}/elsewhere`)).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining('404') });

    await listener.close();
    // Detached: the server still serves HTTP, and the open stream still works.
    expect(server.listening).toBe(true);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('plain http');
    const more = next<[Uint8Array]>(accepted[0]!, 'data');
    client.write(Uint8Array.of(1));
    expect([...(await more)[0]]).toEqual([1]);
    client.destroy();
  });

  it('its own HTTP server answers plain requests with 426', async () => {
    const { listener } = await listen({ host: '::1' });
    expect(listener.address).toBe(`[::1]:${listener.port}`);
    const res = await fetch(`http://[::1]:${listener.port}/`);
    expect(res.status).toBe(426);
  });

  it('connect failures are GS_ERR_CONNECT_FAILED naming the URL', async () => {
    const { listener } = await listen();
    await listener.close();
    const url = `ws://127.0.0.1:${listener.port}/`;
    await expect(wsConnect(url)).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining(url) });
    await expect(wsConnect(url, { signal: AbortSignal.abort() })).rejects.toMatchObject({ message: expect.stringContaining('aborted') });
  });

  it('rejects bad options by name', async () => {
    await expect(wsConnect('http://example.org/')).rejects.toThrow(/url/);
    await expect(wsConnect('ws://127.0.0.1:1/', { highWaterMark: 0 })).rejects.toThrow(ConfigError);
    await expect(wsListen({ path: 'nope' }, () => {})).rejects.toThrow(/path/);
    await expect(wsListen({ server: http.createServer(), port: 1 }, () => {})).rejects.toThrow(/server/);
    await expect(wsListen({ server: http.createServer() }, () => {})).rejects.toThrow(/listening/);
  });
});
