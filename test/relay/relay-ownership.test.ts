/**
 * Ownership of a PCID, gateways coming and going, and draining — in one
 * process over loopback TCP with short timers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServerIdentity, type ByteStream } from '../../src/session/index.js';
import { ServerEndpoint, relayConnect, type Gateway, type ServerEndpointOptions } from '../../src/relay/index.js';
import { startFreezeProxy, type FreezeProxy } from '../helpers/freeze-proxy.js';
import { echo, until } from './streams.js';
import { startSystem, type TestSystem } from './system.js';

let system: TestSystem | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await system?.close();
  system = undefined;
});

async function serve(sys: TestSystem, extra: Partial<ServerEndpointOptions> = {}): Promise<ServerEndpoint> {
  const server = new ServerEndpoint({
    controller: sys.controller.address,
    roots: [sys.pki.root],
    identity: createServerIdentity(),
    backoff: { firstMs: 20, maxMs: 200 },
    ...extra,
  });
  closers.push(() => server.close());
  server.on('connection', echo);
  await server.online();
  return server;
}

/** One byte there and back through the relay to `pcid`. */
async function reach(sys: TestSystem, pcid: string): Promise<boolean> {
  const { stream } = await relayConnect(pcid, { controller: sys.controller.address, roots: [sys.pki.root] });
  return new Promise((resolve) => {
    stream.on('data', () => {
      resolve(true); // before destroy(), whose close event would resolve first
      stream.destroy();
    });
    stream.on('close', () => resolve(false));
    stream.resume();
    stream.write(new Uint8Array([42]));
  });
}

/** A gateway whose advertised address is a proxy that can cut its flows. */
async function gatewayBehindProxy(sys: TestSystem, extra: Parameters<TestSystem['addGateway']>[0] = {}): Promise<{ gateway: Gateway; proxy: FreezeProxy }> {
  let gateway: Gateway | undefined;
  const proxy = await startFreezeProxy(() => {
    const a = gateway!.address;
    return { host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) };
  });
  closers.push(() => proxy.close());
  gateway = await sys.addGateway({ ...extra, advertise: proxy.address });
  return { gateway, proxy };
}

describe('ownership of a PCID', () => {
  it('a server whose path was cut silently is reachable again within seconds of reconnecting: the new session evicts the stale one at the gateway', async () => {
    // The gateway's own keepalive is long: without eviction the stale session would hold the name for a minute.
    system = await startSystem({ gateways: 0 });
    const { gateway, proxy } = await gatewayBehindProxy(system, { link: { mux: { keepaliveMs: 60_000 } } });
    const server = await serve(system, { pcid: 'owned', link: { mux: { keepaliveMs: 150 } } });
    expect(await reach(system, 'owned')).toBe(true);

    proxy.freeze();
    const replaced = new Promise((resolve) => gateway.once('serverDetached', (_m, e) => resolve(e?.code)));
    // The server notices (keepalive 150 ms → dead after 300 ms), logs in again and attaches through a new flow.
    await new Promise((resolve) => server.once('offline', resolve));
    const t0 = Date.now();
    await until(() => server.isOnline);
    expect(await replaced).toBe('GS_ERR_SESSION_REPLACED');
    expect(await reach(system, 'owned')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('ownership across gateways', () => {
  it('a server that comes back on another gateway is moved in the session table and evicted from the old one', async () => {
    system = await startSystem({ gateways: 0 });
    const { gateway: first, proxy } = await gatewayBehindProxy(system, { link: { mux: { keepaliveMs: 60_000 } } });
    const server = await serve(system, { pcid: 'mover', link: { mux: { keepaliveMs: 150 } } });
    expect(system.controller.gatewayOf(server.msid)).toBe(first.msid);
    const second = await system.addGateway();
    proxy.freeze();
    const evicted = new Promise((resolve) => first.once('serverDetached', (_m, e) => resolve(e?.code)));
    await new Promise((resolve) => server.once('offline', resolve));
    await until(() => server.isOnline);
    // The stale session weighs on the first gateway, so the second one is picked.
    expect(server.gateway?.msid).toBe(second.msid);
    expect(await evicted).toBe('GS_ERR_SESSION_REPLACED');
    expect(system.controller.gatewayOf(server.msid)).toBe(second.msid);
    expect(await reach(system, 'mover')).toBe(true);
  });
});

describe('gateways joining, leaving and draining', () => {
  it('a gateway silent for longer than T2 leaves the balancing set; one added while running receives new servers', async () => {
    system = await startSystem({ gateways: 0 });
    let target = { host: '127.0.0.1', port: 0 };
    const proxy = await startFreezeProxy(() => target);
    closers.push(() => proxy.close());
    const ctl = system.controller.address;
    target = { host: '127.0.0.1', port: Number(ctl.slice(ctl.lastIndexOf(':') + 1)) };
    const quiet = await system.addGateway({ controller: proxy.address });
    expect(system.controller.gateways().map((g) => g.msid)).toEqual([quiet.msid]);
    const down = new Promise<string>((resolve) => system!.controller.once('gatewayDown', (_m, why) => resolve(why)));
    const t0 = Date.now();
    proxy.freeze();
    expect(await down).toMatch(/silent/);
    // T2 is 500 ms in these tests; the sweep runs every T1 (100 ms).
    expect(Date.now() - t0).toBeLessThan(500 + 400);
    expect(system.controller.gateways().some((g) => g.msid === quiet.msid && g.silentMs < 500)).toBe(false);

    const late = await system.addGateway();
    const servers = await Promise.all([1, 2, 3].map(() => serve(system!)));
    for (const s of servers) expect(s.gateway?.msid).toBe(late.msid);
  });

  it('kill a gateway: its servers come back on the others and stay reachable', async () => {
    system = await startSystem({ gateways: 2 });
    const servers = await Promise.all(Array.from({ length: 10 }, (_, i) => serve(system!, { pcid: `k${i}` })));
    const [a, b] = system.gateways;
    const onA = servers.filter((s) => s.gateway?.msid === a!.msid);
    expect(onA.length).toBeGreaterThan(0);
    await a!.close(); // abrupt for the servers: their sessions are destroyed
    await until(() => servers.every((s) => s.isOnline && s.gateway?.msid === b!.msid));
    for (const s of onA) expect(await reach(system, s.pcid!)).toBe(true);
  });

  it('drain: servers move to another gateway, the drained one closes, and no server is unreachable for long', async () => {
    system = await startSystem({ gateways: 2, gateway: { drainTimeoutMs: 5000 } });
    const servers = await Promise.all(Array.from({ length: 8 }, (_, i) => serve(system!, { pcid: `d${i}` })));
    const [a, b] = system.gateways;
    const moving = servers.filter((s) => s.gateway?.msid === a!.msid);
    expect(moving.length).toBeGreaterThan(0);
    await a!.drain();
    expect(a!.serverCount).toBe(0);
    for (const s of servers) expect(s.gateway?.msid).toBe(b!.msid);
    for (const s of moving) expect(await reach(system, s.pcid!)).toBe(true);
  });
});

describe('isolation', () => {
  it('a client that stops reading stalls only its own connection', async () => {
    system = await startSystem({ gateways: 1 });
    const volume = 8 << 20;
    const server = new ServerEndpoint({ controller: system.controller.address, roots: [system.pki.root], identity: createServerIdentity(), pcid: 'firehose' });
    closers.push(() => server.close());
    const sentBy = new Map<number, number>();
    server.on('connection', (stream, info) => {
      // Send `volume` bytes as fast as the connection takes them.
      let sent = 0;
      const chunk = new Uint8Array(64 * 1024);
      const pump = (): void => {
        while (sent < volume) {
          sent += chunk.length;
          sentBy.set(info.connectionId, sent);
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      stream.resume();
      pump();
    });
    await server.online();
    const opts = { controller: system.controller.address, roots: [system.pki.root] };
    const stalled = await relayConnect('firehose', opts);
    // The stalled client never resumes its stream: nothing is read.
    const reader = await relayConnect('firehose', opts);
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      reader.stream.on('data', (d) => (got += d.length));
      reader.stream.on('end', () => resolve());
      reader.stream.on('close', (e) => e && reject(e));
      reader.stream.resume();
    });
    expect(got).toBe(volume);
    // The stalled connection is still open, holding the server's writes back.
    expect(stalled.stream.closed).toBe(false);
    // Flow control held the server's writes to the stalled client at a few windows, far from the whole volume.
    expect(sentBy.get(stalled.info.connectionId)).toBeLessThan(volume / 2);
    expect(sentBy.get(reader.info.connectionId)).toBe(volume);
    stalled.stream.destroy();
  });
});
