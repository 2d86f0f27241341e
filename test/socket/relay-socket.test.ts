/**
 * The socket API over a real (in-process, loopback) gateway system:
 * serverStart / clientConnect with SockIo calls, login info and rename, and
 * TCP port forwarding of a real HTTP server.
 */
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerIdentity } from '../../src/session/index.js';
import { clientConnect, forwardTcp, serveTcp, serverStart, type SockServer, type TcpForwarder } from '../../src/socket/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';

let system: TestSystem | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await system?.close();
  system = undefined;
});

describe('socket API through the relay', () => {
  it('serverStart + clientConnect: blocking-style send/recv both ways, end of stream, login info', async () => {
    system = await startSystem({ gateways: 2 });
    const common = { controller: system.controller.address, roots: [system.pki.root] };
    const server: SockServer = await serverStart({ ...common, identity: createServerIdentity(), pcid: 'echo-box' }, async (sock) => {
      // The seed's style: recv until end of stream, send everything back.
      for (;;) {
        const data = await sock.recv(4096);
        if (data.length === 0) break;
        for (let off = 0; off < data.length; ) off += await sock.send(data.subarray(off));
      }
      await sock.disconnect();
    });
    closers.push(() => server.close());
    expect(server.pcid).toBe('echo-box');
    expect(server.isOnline).toBe(true);
    expect((await server.getLoginInfo()).msid).toBe(server.msid);

    const sock = await clientConnect('echo-box', { ...common, timeoutMs: 10_000 });
    expect(sock.info.peerMsid).toBe(server.msid);
    const payload = randomBytes(300_000);
    const received: Buffer[] = [];
    let got = 0;
    const reader = (async () => {
      while (got < payload.length) {
        const d = await sock.recv(65536);
        if (d.length === 0) break;
        received.push(Buffer.from(d));
        got += d.length;
      }
    })();
    for (let off = 0; off < payload.length; ) off += await sock.send(payload.subarray(off));
    await reader;
    expect(Buffer.concat(received).equals(payload)).toBe(true);
    await sock.disconnect();
  });

  it('serveTcp + forwardTcp: an HTTP server fetched through the tunnel', async () => {
    system = await startSystem({ gateways: 1 });
    const common = { controller: system.controller.address, roots: [system.pki.root] };
    const body = randomBytes(200_000).toString('hex');
    const http: Server = createServer((req, res) => res.end(`${req.url}:${body}`));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => http.close(r)));
    const port = (http.address() as { port: number }).port;

    const served = await serveTcp({ host: '127.0.0.1', port }, { ...common, identity: createServerIdentity(), pcid: 'web' });
    closers.push(() => served.close());
    const forwarder: TcpForwarder = await forwardTcp({ ...common, pcid: 'web', port: 0 });
    closers.push(() => forwarder.close());

    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const res = await fetch(`http://${forwarder.address}/item-${i}`);
        return res.text();
      }),
    );
    results.forEach((text, i) => expect(text).toBe(`/item-${i}:${body}`));
  });

  it('forwardTcp to a target that refuses: the local connection closes, the tunnel stays up', async () => {
    system = await startSystem({ gateways: 1 });
    const common = { controller: system.controller.address, roots: [system.pki.root] };
    // A port nothing listens on.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const served = await serveTcp({ host: '127.0.0.1', port: deadPort }, { ...common, identity: createServerIdentity(), pcid: 'dead' });
    closers.push(() => served.close());
    const failures: Error[] = [];
    served.events.on('failed', (e) => failures.push(e));
    const forwarder = await forwardTcp({ ...common, pcid: 'dead', port: 0 });
    closers.push(() => forwarder.close());
    await expect(fetch(`http://${forwarder.address}/`)).rejects.toThrow();
    expect(failures.length).toBe(1);
    expect(served.isOnline).toBe(true);
  });
});
