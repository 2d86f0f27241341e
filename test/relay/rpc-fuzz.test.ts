/**
 * Junk in the control channel: random and mutated request bodies sent to a
 * controller and a gateway never crash them, always get a typed refusal (or
 * are ignored), and leave every other session working.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateVerifier, createServerIdentity } from '../../src/session/index.js';
import { ServerEndpoint, relayConnect } from '../../src/relay/index.js';
import { dialLink, type Link } from '../../src/relay/link.js';
import { decodeRpcMessage, encodeRpcMessage } from '../../src/relay/rpc.js';
import { startSystem, type TestSystem } from './system.js';

let system: TestSystem;
let server: ServerEndpoint;
beforeAll(async () => {
  system = await startSystem({ gateways: 1 });
  server = new ServerEndpoint({ controller: system.controller.address, roots: [system.pki.root], identity: createServerIdentity(), pcid: 'steady' });
  server.on('connection', (s) => {
    s.on('data', (d) => s.write(d));
    s.resume();
  });
  await server.online();
});
afterAll(async () => {
  await server.close();
  await system.close();
});

const METHODS = ['login', 'lookup', 'loginInfo', 'rename', 'register', 'sessions', 'attach', 'connect', 'keepalive', 'evict', 'nope'];
const jsonish = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64url')));
const params = fc.dictionary(fc.constantFrom('pcid', 'msid', 'token', 'ticket', 'address', 'capacity', 'servers', 'added', 'removed', 'avoid', 'endToEnd', 'x'), fc.oneof(jsonish, fc.array(jsonish, { maxLength: 5 })), { maxKeys: 4 });
const body = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(fc.integer({ min: 0, max: 6 }), fc.nat(), fc.constantFrom(...METHODS), params).map(([kind, id, m, p]) => encodeRpcMessage(kind, id, { m, p })),
  fc.tuple(fc.nat(), fc.anything({ maxDepth: 2 })).map(([id, v]) => encodeRpcMessage(1, id, v)),
);

/** Send each body; collect replies; the link must survive or be closed cleanly by the peer. */
async function pelt(link: Link, bodies: Uint8Array[]): Promise<void> {
  link.session.on('control', (b) => {
    const msg = decodeRpcMessage(b);
    expect(msg).toBeDefined();
    if (msg!.kind === 3) expect(String(msg!.value.code)).toMatch(/^GS_ERR_[A-Z_]+$/);
  });
  for (const b of bodies) {
    if (link.session.closed) break;
    link.session.sendControl(b);
  }
  await new Promise((r) => setTimeout(r, 50));
}

describe('control-channel junk', () => {
  it('the controller and the gateway refuse junk with codes and keep serving everyone else', async () => {
    const bodies = fc.sample(body, 3000);
    const verifyCtl = certificateVerifier({ roots: [system.pki.root], role: 'controller' });
    const verifyGw = certificateVerifier({ roots: [system.pki.root], role: 'gateway' });
    const atController = await dialLink(system.controller.address, createServerIdentity(), verifyCtl);
    await pelt(atController, bodies);
    const atGateway = await dialLink(system.gateways[0]!.address, createServerIdentity(), verifyGw);
    await pelt(atGateway, bodies);
    atController.session.destroy();
    atGateway.session.destroy();
    // Everyone else is fine.
    expect(server.isOnline).toBe(true);
    const { stream } = await relayConnect('steady', { controller: system.controller.address, roots: [system.pki.root] });
    const echoed = await new Promise<string>((resolve) => {
      stream.on('data', (d) => resolve(Buffer.from(d).toString()));
      stream.resume();
      stream.write(Buffer.from('still here'));
    });
    expect(echoed).toBe('still here');
    stream.destroy();
  }, 60_000);
});
