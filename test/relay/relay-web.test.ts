/**
 * Getting out through web infrastructure: a gateway and a controller that
 * also listen for WebSocket upgrades, servers and clients that reach them
 * by `ws://` URL, and a client whose only way out is an HTTP CONNECT proxy.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerIdentity } from '../../src/session/index.js';
import { ServerEndpoint, relayConnect } from '../../src/relay/index.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { echo, roundTrip, sha256 } from './streams.js';
import { startSystem, type TestSystem } from './system.js';

let system: TestSystem | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await system?.close();
  system = undefined;
});

describe('relay through web infrastructure', () => {
  it('server and client reach a gateway advertised by its ws:// URL, and the controller by its own', async () => {
    system = await startSystem({ gateways: 0, controller: { websocket: {} } });
    const gateway = await system.addGateway({ websocket: { path: '/relay' }, advertiseWebSocket: true });
    expect(gateway.websocketUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/relay$/);
    expect(gateway.advertisedAddress).toBe(gateway.websocketUrl);
    const controllerUrl = system.controller.websocketUrl!;
    expect(controllerUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/gatesock$/);

    const server = new ServerEndpoint({ controller: controllerUrl, roots: [system.pki.root], identity: createServerIdentity() });
    closers.push(() => server.close());
    server.on('connection', echo);
    await server.online();
    expect(server.gateway?.address).toBe(gateway.websocketUrl);

    const { stream } = await relayConnect(server.pcid!, { controller: controllerUrl, roots: [system.pki.root] });
    const data = randomBytes(300_000);
    expect(sha256(await roundTrip(stream, data))).toBe(sha256(data));
  });

  it('a client whose only way out is an HTTP CONNECT proxy (with Basic auth) gets through', async () => {
    system = await startSystem({ gateways: 1 });
    const server = new ServerEndpoint({ controller: system.controller.address, roots: [system.pki.root], identity: createServerIdentity() });
    closers.push(() => server.close());
    server.on('connection', echo);
    await server.online();
    const auth = { username: 'alice', password: 's3cret' };
    const proxy: ConnectProxy = await startConnectProxy({ auth });
    closers.push(() => proxy.close());
    const { stream } = await relayConnect(server.pcid!, {
      controller: system.controller.address,
      roots: [system.pki.root],
      link: { proxy: { host: '127.0.0.1', port: proxy.port, auth } },
    });
    const data = randomBytes(100_000);
    expect(sha256(await roundTrip(stream, data))).toBe(sha256(data));
    // Both hops went through the proxy: the lookup at the controller and the session to the gateway.
    expect(proxy.requests.map((r) => r.split(' ')[1])).toEqual([system.controller.address, system.gateways[0]!.address]);
    // Wrong credentials are refused by the proxy, with the transport's code.
    await expect(
      relayConnect(server.pcid!, { controller: system.controller.address, roots: [system.pki.root], link: { proxy: { host: '127.0.0.1', port: proxy.port } } }),
    ).rejects.toMatchObject({ code: 'GS_ERR_PROXY_AUTH' });
  });
});
