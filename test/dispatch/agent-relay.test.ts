/**
 * DispatchAgent.listen: the agent as a relay server on a loopback gateway
 * system (it opens no port); a center reaches it by PCID with
 * clientConnect, checks it is the agent's MSID end to end, and a dispatch
 * runs and verifies over that connection.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerIdentity } from '../../src/session/index.js';
import { clientConnect } from '../../src/socket/index.js';
import { DispatchAgent, InlineExecutor } from '../../src/delivery/dispatch/agent/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';
import { TestCenter, tempDir } from './fixtures/agent/harness.js';

const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

describe('DispatchAgent over the relay', () => {
  it('listens as a relay server and runs a dispatch reached by PCID', async () => {
    const system: TestSystem = await startSystem({ gateways: 1 });
    closers.push(() => system.close());
    const root = tempDir('agent-relay');
    closers.push(async () => fs.rmSync(root, { recursive: true, force: true }));
    const center = new TestCenter();
    const agent = await DispatchAgent.open({
      identity: createServerIdentity(),
      centerKey: center.key.publicKey,
      stateDir: path.join(root, 'state'),
      workDir: path.join(root, 'work'),
      executor: new InlineExecutor(),
      syncState: false,
    });
    closers.push(() => agent.close());
    const common = { controller: system.controller.address, roots: [system.pki.root] };
    const server = await agent.listen({ ...common, pcid: 'agent-1' });
    closers.push(() => server.close());
    expect(server.msid).toBe(agent.msid);

    const sock = await clientConnect('agent-1', { ...common, timeoutMs: 10_000 });
    expect(sock.info.peerMsid).toBe(agent.msid);
    const link = await center.attach(sock);
    expect(link.hello.agentMsid).toBe(agent.msid);
    const bundle = center.bundle({ name: 'relay-echo' });
    const binding = center.bind(agent.msid, bundle);
    expect((await link.run(binding, bundle, false)).t).toBe('accepted');
    const { report, check } = await link.report(binding);
    expect(check).toMatchObject({ ok: true });
    expect(report.fields.outcome).toBe('ran');
    expect(link.fetches).toBe(1);
    await link.channel.close();
  });
});
