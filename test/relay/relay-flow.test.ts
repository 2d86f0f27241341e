/**
 * The relay's main flows, in one process over loopback TCP: a server logs
 * in and attaches, a client finds it by PCID and exchanges bytes both ways
 * through the gateway, with and without the end-to-end layer.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerIdentity, type ByteStream } from '../../src/session/index.js';
import { GATEWAY_RELAY_CHANNEL, ServerEndpoint, relayConnect, relayLookup, type RelayConnectionInfo } from '../../src/relay/index.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { echo, roundTrip, sha256, until } from './streams.js';
import { startSystem, type TestSystem } from './system.js';

let system: TestSystem | undefined;
const endpoints: ServerEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  await system?.close();
  system = undefined;
});

async function startEchoServer(sys: TestSystem, extra: Partial<ConstructorParameters<typeof ServerEndpoint>[0]> = {}): Promise<ServerEndpoint> {
  const server = new ServerEndpoint({ controller: sys.controller.address, roots: [sys.pki.root], identity: createServerIdentity(), ...extra });
  endpoints.push(server);
  server.on('connection', (stream) => echo(stream));
  await server.online();
  return server;
}

describe('relay flow', () => {
  it('a client reaches a server by PCID and data comes back intact, end to end encrypted', async () => {
    system = await startSystem({ gateways: 2 });
    const server = await startEchoServer(system);
    expect(server.pcid).toMatch(/^\S{1,31}$/);
    expect(system.gateways.some((g) => g.serverCount === 1)).toBe(true);
    const seen: Uint8Array[] = [];
    const spy = (m: unknown): void => void seen.push((m as { chunk: Uint8Array }).chunk);
    subscribe(GATEWAY_RELAY_CHANNEL, spy);
    try {
      const { stream, info } = await relayConnect(server.pcid!, { controller: system.controller.address, roots: [system.pki.root] });
      expect(info.peerMsid).toBe(server.msid);
      expect(info.endToEnd).toBe(true);
      const marker = Buffer.from('PLAINTEXT-MARKER-'.repeat(64));
      const data = Buffer.concat([marker, randomBytes(1 << 20)]);
      const back = await roundTrip(stream, data);
      expect(sha256(back)).toBe(sha256(data));
      const relayed = Buffer.concat(seen);
      expect(relayed.length).toBeGreaterThan(2 * data.length);
      expect(relayed.includes(Buffer.from('PLAINTEXT-MARKER-'))).toBe(false);
    } finally {
      unsubscribe(GATEWAY_RELAY_CHANNEL, spy);
    }
  });

  it('without the end-to-end layer the gateway relays plaintext (and a server that requires it refuses)', async () => {
    system = await startSystem({ gateways: 1 });
    const plainServer = await startEchoServer(system, { endToEnd: false });
    const strict = await startEchoServer(system);
    const seen: Uint8Array[] = [];
    const spy = (m: unknown): void => void seen.push((m as { chunk: Uint8Array }).chunk);
    subscribe(GATEWAY_RELAY_CHANNEL, spy);
    try {
      const opts = { controller: system.controller.address, roots: [system.pki.root], endToEnd: false };
      const { stream } = await relayConnect(plainServer.pcid!, opts);
      const back = await roundTrip(stream, Buffer.from('hello plain relay'));
      expect(Buffer.from(back).toString()).toBe('hello plain relay');
      expect(Buffer.concat(seen).includes(Buffer.from('hello plain relay'))).toBe(true);

      const refused = new Promise<RelayConnectionInfo>((resolve) => strict.once('connectionError', (_e, info) => resolve(info)));
      const { stream: s2 } = await relayConnect(strict.pcid!, opts);
      const closed = new Promise((resolve) => s2.on('close', resolve));
      s2.resume();
      expect((await refused).endToEnd).toBe(false);
      await closed;
    } finally {
      unsubscribe(GATEWAY_RELAY_CHANNEL, spy);
    }
  });

  it('unknown PCID and offline server give their codes; rename and login info work', async () => {
    system = await startSystem({ gateways: 1 });
    const opts = { controller: system.controller.address, roots: [system.pki.root] };
    await expect(relayConnect('no-such-server', opts)).rejects.toMatchObject({ code: 'GS_ERR_UNKNOWN_PCID' });
    const a = await startEchoServer(system);
    const b = await startEchoServer(system);
    await expect(relayLookup('no-such-server', opts)).rejects.toMatchObject({ code: 'GS_ERR_UNKNOWN_PCID' });
    expect(await relayLookup(a.pcid!, opts)).toEqual({ msid: a.msid, gateway: { msid: system.gateways[0]!.msid, address: system.gateways[0]!.address } });
    const info = await a.renameMachine('alpha');
    expect(info).toMatchObject({ msid: a.msid, pcid: 'alpha' });
    expect((await a.getLoginInfo()).pcid).toBe('alpha');
    await expect(b.renameMachine('alpha')).rejects.toMatchObject({ code: 'GS_ERR_PCID_TAKEN' });
    await expect(b.renameMachine('has space')).rejects.toMatchObject({ code: 'GS_ERR_PCID_INVALID' });
    await a.close();
    // The gateway reports the session gone; then the controller knows the server is offline.
    await until(() => system!.controller.gatewayOf(a.msid) === undefined);
    await expect(relayConnect('alpha', opts)).rejects.toMatchObject({ code: 'GS_ERR_SERVER_OFFLINE' });
  });
});
