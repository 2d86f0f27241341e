/**
 * End to end with a controller and three gateways as separate processes
 * (the built package, over loopback TCP); servers and clients in this
 * process. Needs a fresh dist/ (`npm test` builds first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateVerifier, createServerIdentity, type ByteStream, type Certificate } from '../../src/session/index.js';
import { ServerEndpoint, addGateway, initPki, loadPki, relayConnect } from '../../src/relay/index.js';
import { dialLink } from '../../src/relay/link.js';
import { echo, roundTrip, sha256, until } from './streams.js';

/** Send random-ish data through, true when the echo's digest matches. */
const echoTrip = async (stream: ByteStream, data: Uint8Array): Promise<boolean> => sha256(await roundTrip(stream, data, 16384)) === sha256(data);

const T1 = 200;
const T2 = 1000;
const fixture = new URL('./fixtures/relay-node.mjs', import.meta.url).pathname;
let dir: string;
let root: Certificate;
let controller: Proc;
const gateways = new Map<string, Proc>();
const servers: ServerEndpoint[] = [];

interface Proc {
  readonly child: ChildProcess;
  readonly address: string;
  readonly msid: string;
  /** Lines it printed after the first, parsed. */
  readonly events: Array<{ event: string; msid: string; why: string; at: number }>;
}

function start(args: string[]): Promise<Proc> {
  const child = spawn(process.execPath, [fixture, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const events: Proc['events'] = [];
    let ready = false;
    lines.on('line', (line) => {
      if (ready) return void events.push(JSON.parse(line));
      ready = true;
      resolve({ child, events, ...JSON.parse(line) });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}

const common = () => ({ controller: controller.address, roots: [root], backoff: { firstMs: 50, maxMs: 1000 } });

async function serve(pcid?: string): Promise<ServerEndpoint> {
  const s = new ServerEndpoint({ ...common(), identity: createServerIdentity(), pcid });
  servers.push(s);
  s.on('connection', echo);
  await s.online();
  return s;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatesock-relay-'));
  await initPki({ directory: dir, gateways: 4, validDays: 2 });
  root = (await loadPki(dir)).root;
  controller = await start(['controller', dir, String(T1), String(T2)]);
  for (const name of ['gateway-1', 'gateway-2', 'gateway-3']) gateways.set(name, await start(['gateway', dir, name, controller.address]));
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const p of [...gateways.values(), controller]) p?.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('relay across processes', () => {
  it('1,000 concurrent connections to one server carry random data that arrives intact', async () => {
    await serve('busy');
    const opts = common();
    const conns: ByteStream[] = [];
    // Open them all (100 at a time), keep every one open, then use them all at once.
    for (let i = 0; i < 1000; i += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => relayConnect('busy', opts)));
      conns.push(...batch.map((c) => c.stream));
    }
    expect(conns.length).toBe(1000);
    const results = await Promise.all(conns.map((s) => echoTrip(s, randomBytes(4096 + Math.floor(Math.random() * 8192)))));
    expect(results.every(Boolean)).toBe(true);
  }, 120_000);

  it('bad tickets are refused at the gateway with their codes; unknown and offline PCIDs; rename conflicts', async () => {
    const s = await serve('ticket-target');
    const opts = common();
    await expect(relayConnect('never-registered', opts)).rejects.toMatchObject({ code: 'GS_ERR_UNKNOWN_PCID' });
    await expect(s.renameMachine('busy')).rejects.toMatchObject({ code: 'GS_ERR_PCID_TAKEN' });

    // Get a real ticket the way relayConnect does, then misuse it.
    const client = createServerIdentity();
    const ctlVerify = certificateVerifier({ roots: [root], role: 'controller' });
    const ctl = await dialLink(controller.address, client, ctlVerify);
    const lookup = (await ctl.rpc.request('lookup', { pcid: 'ticket-target' })) as { msid: string; ticket: string; gateway: { msid: string; address: string } };
    void ctl.session.close();
    const at = (address: string, who = client) => dialLink(address, who, certificateVerifier({ roots: [root], role: 'gateway' }));
    const other = [...gateways.values()].find((g) => g.address !== lookup.gateway.address)!;
    const wrongGateway = await at(other.address);
    await expect(wrongGateway.rpc.request('connect', { msid: lookup.msid, ticket: lookup.ticket })).rejects.toMatchObject({ code: 'GS_ERR_TOKEN_WRONG_GATEWAY' });
    const thief = await at(lookup.gateway.address, createServerIdentity());
    await expect(thief.rpc.request('connect', { msid: lookup.msid, ticket: lookup.ticket })).rejects.toMatchObject({ code: 'GS_ERR_TOKEN_WRONG_MSID' });
    const forged = Buffer.from(lookup.ticket, 'base64url');
    forged[20]! ^= 1;
    const forger = await at(lookup.gateway.address);
    await expect(forger.rpc.request('connect', { msid: lookup.msid, ticket: forged.toString('base64url') })).rejects.toMatchObject({ code: 'GS_ERR_TOKEN_FORGED' });
    const good = await at(lookup.gateway.address);
    await expect(good.rpc.request('connect', { msid: lookup.msid, ticket: lookup.ticket })).resolves.toMatchObject({ connectionId: expect.any(Number) });
    const replay = await at(lookup.gateway.address);
    await expect(replay.rpc.request('connect', { msid: lookup.msid, ticket: lookup.ticket })).rejects.toMatchObject({ code: 'GS_ERR_TOKEN_REPLAYED' });
    // A server presenting a redirect token that is not its own.
    const serverCtl = await dialLink(controller.address, createServerIdentity(), ctlVerify);
    const login = (await serverCtl.rpc.request('login', {})) as { token: string; gateway: { address: string } };
    void serverCtl.session.close();
    const impostor = await at(login.gateway.address, createServerIdentity());
    await expect(impostor.rpc.request('attach', { token: login.token })).rejects.toMatchObject({ code: 'GS_ERR_TOKEN_WRONG_MSID' });
    for (const l of [wrongGateway, thief, forger, good, replay, impostor]) l.session.destroy();

    await s.close();
    // Offline once the gateway has told the controller (deltas are batched over a few ms).
    await new Promise((r) => setTimeout(r, 200));
    await expect(relayConnect('ticket-target', opts)).rejects.toMatchObject({ code: 'GS_ERR_SERVER_OFFLINE' });
  }, 60_000);

  it('kill -9 a gateway: its servers are back within 10 s, new connections succeed, and the controller drops it within T2', async () => {
    const fleet = await Promise.all(Array.from({ length: 30 }, (_, i) => serve(`fleet-${i}`)));
    const byGateway = new Map<string, ServerEndpoint[]>();
    for (const s of fleet) byGateway.set(s.gateway!.msid, [...(byGateway.get(s.gateway!.msid) ?? []), s]);
    const [victimName, victim] = [...gateways.entries()].find(([, g]) => (byGateway.get(g.msid)?.length ?? 0) > 0)!;
    const orphans = byGateway.get(victim.msid)!;
    const t0 = Date.now();
    victim.child.kill('SIGKILL');
    gateways.delete(victimName);
    const elapsed = await until(() => orphans.every((s) => s.isOnline && s.gateway!.msid !== victim.msid), 10_000);
    expect(elapsed).toBeLessThan(10_000);
    for (const s of orphans) {
      const { stream } = await relayConnect(s.pcid!, common());
      expect(await echoTrip(stream, randomBytes(1000))).toBe(true);
    }
    // The controller took it out of its set within T2 of the kill (a kill closes the control link, so at once).
    const down = controller.events.find((e) => e.event === 'gatewayDown' && e.msid === victim.msid);
    expect(down).toBeDefined();
    expect(down!.at - t0).toBeLessThan(T2);
    // New servers go only to the live gateways.
    const fresh = await Promise.all(Array.from({ length: 6 }, () => serve()));
    for (const s of fresh) expect(s.gateway!.msid).not.toBe(victim.msid);
  }, 60_000);

  it('a gateway added while running receives new servers', async () => {
    await addGateway(dir, 'gateway-late');
    const late = await start(['gateway', dir, 'gateway-late', controller.address]);
    gateways.set('gateway-late', late);
    // It is empty, so least-sessions sends the next servers there.
    const fresh = await Promise.all(Array.from({ length: 3 }, () => serve()));
    expect(fresh.some((s) => s.gateway!.msid === late.msid)).toBe(true);
  }, 30_000);
});

describe('rolling restart', () => {
  it('SIGTERM drains each gateway in turn and it is restarted: no server goes offline, every one stays reachable', async () => {
    const fleet = await Promise.all(Array.from({ length: 12 }, (_, i) => serve(`roll-${i}`)));
    let offline = 0;
    for (const s of fleet) s.on('offline', () => offline++);
    for (const [name, proc] of [...gateways.entries()]) {
      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
      proc.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      gateways.set(name, await start(['gateway', dir, name, controller.address]));
      // Every server is on a live gateway again before the next one goes.
      await until(() => fleet.every((s) => s.isOnline && s.gateway!.msid !== proc.msid), 10_000);
    }
    expect(offline).toBe(0);
    for (const s of fleet) {
      const { stream } = await relayConnect(s.pcid!, common());
      expect(await echoTrip(stream, randomBytes(512))).toBe(true);
    }
  }, 90_000);
});
