/**
 * Key addresses end to end on a real IPv6 path: two network namespaces this
 * test creates (client and server, joined by a veth pair; a random ULA /64
 * routed to the server: `local` on its `lo`, `via` its veth address in the
 * client), a KeyAddressListener over a real KeyAddressServer in the server
 * namespace, and clients that resolve `device.example` through the
 * key-address lookup in the client namespace. Server and clients are child
 * processes under `ip netns exec` (fixtures/ka-server.ts, ka-client.ts).
 *
 * Skipped, with the reason printed, where namespaces cannot be created
 * (not root, not Linux, or GATESOCK_NO_NETNS set); the namespaces are always
 * deleted in afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ip, namespacePair, namespacesAvailable, randomAddressIn, runInNamespace, type NamespacePair, type NsChild } from './fixtures/netns.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const available = await namespacesAvailable();
if (!available.ok) console.log(`netns.test.ts: skipping the network-namespace tests: ${available.why}`);

let pair: NamespacePair | undefined;
let dir = '';
const children: NsChild[] = [];

beforeAll(async () => {
  if (!available.ok) return;
  pair = await namespacePair();
  dir = mkdtempSync(join(tmpdir(), 'gs-ka-netns-'));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await pair?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function server(port: number, mode: 'admit' | 'bind', model: 'serial' | 'parallel', ns = pair!.server): NsChild {
  const c = runInNamespace(ns, join(fixtures, 'ka-server.ts'), [pair!.prefix, String(port), mode, model]);
  children.push(c);
  return c;
}

/** One ka-client.ts run to completion (or, with `hold`, until its first line). */
async function client(state: string, port: number, command: string, arg?: string): Promise<{ line: Record<string, unknown>; child: NsChild }> {
  const c = runInNamespace(pair!.client, join(fixtures, 'ka-client.ts'), [state, pair!.prefix, String(port), command, ...(arg ? [arg] : [])]);
  children.push(c);
  return { line: await c.next(), child: c };
}

/** Wait for the server's next event line of kind `event`, skipping others. */
async function event(s: NsChild, kind: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 20; i++) {
    const line = await s.next();
    if (line.event === kind) return line;
  }
  throw new Error(`no ${kind} event`);
}

// Child processes start slowly on a loaded machine (each loads TypeScript through esbuild).
describe.skipIf(!available.ok)('key addresses across two network namespaces', { timeout: 180_000 }, () => {
  it('admit mode, serial: current address reached; used and random addresses refused; reachable again after a client crash', async () => {
    const port = 7100;
    const s = server(port, 'admit', 'serial');
    expect(await s.next()).toMatchObject({ ready: true });
    const state = join(dir, 'client-admit.state');

    // 1. The client reaches the server at its current key address (resolved as device.example).
    const first = await client(state, port, 'connect');
    expect(first.line).toMatchObject({ result: 'admitted' });
    const a0 = first.line.address as string;
    expect(a0.startsWith(pair!.prefix.replace('::/64', ':'))).toBe(true);
    expect(first.line.greeting).toBe(`hello ${a0}`);
    expect(await event(s, 'admitted')).toMatchObject({ address: a0 });
    await event(s, 'closed');

    // 2. A second connection to the address already used is refused (reset after accept).
    expect((await client('-', port, 'probe', a0)).line).toEqual({ result: 'reset' });
    expect(await event(s, 'refused')).toMatchObject({ address: a0, reason: 'not-admitted', detail: 'retired' });

    // 3. A random address in the /64 is refused.
    const random = randomAddressIn(pair!.prefix);
    expect((await client('-', port, 'probe', random)).line).toEqual({ result: 'reset' });
    expect(await event(s, 'refused')).toMatchObject({ address: random, reason: 'not-admitted', detail: 'unknown' });

    // 4. A client holds a session, then crashes (SIGKILL) without closing it.
    const holder = await client(state, port, 'connect', 'hold');
    expect(holder.line).toMatchObject({ result: 'admitted' });
    const a1 = holder.line.address as string;
    expect(a1).not.toBe(a0);
    expect(await event(s, 'admitted')).toMatchObject({ address: a1 });
    // Serial: while that session is open, the next address is not listened on.
    const busy = await client(state, port, 'connect');
    expect(busy.line).toMatchObject({ result: 'reset' });
    expect(await event(s, 'refused')).toMatchObject({ reason: 'lane-busy' });
    holder.child.kill('SIGKILL');
    await holder.child.exited;
    // The kernel resets the dead client's connection; the server's lane is free again.
    await event(s, 'closed');

    // 5. The restarted client (state from its file; it has moved past the
    // address of the failed attempt, the server has not) reaches the server again.
    const again = await client(state, port, 'connect');
    expect(again.line).toMatchObject({ result: 'admitted' });
    expect(again.line.address).not.toBe(a1);
    expect(again.line.address).not.toBe(busy.line.address);
    s.kill();
    await s.exited;
  });

  it('bind mode, parallel: only the current address has a socket — used and random addresses get a kernel RST', async () => {
    await ip(['netns', 'exec', pair!.server, 'sysctl', '-q', '-w', 'net.ipv6.ip_nonlocal_bind=1']);
    try {
      const port = 7200;
      const s = server(port, 'bind', 'parallel');
      const ready = await s.next();
      expect(ready).toMatchObject({ ready: true });
      const state = join(dir, 'client-bind.state');
      const first = await client(state, port, 'connect');
      expect(first.line).toMatchObject({ result: 'admitted' });
      expect((ready.listening as string[])).toContain(first.line.address);
      // The used address's socket is closed: no handshake at all.
      for (let i = 0; ; i++) {
        const r = (await client('-', port, 'probe', first.line.address as string)).line.result;
        if (r === 'refused') break;
        expect(i).toBeLessThan(20); // bounded: the rebind is asynchronous
      }
      expect((await client('-', port, 'probe', randomAddressIn(pair!.prefix))).line).toEqual({ result: 'refused' });
      const second = await client(state, port, 'connect');
      expect(second.line).toMatchObject({ result: 'admitted' });
      s.kill();
      await s.exited;
    } finally {
      await ip(['netns', 'exec', pair!.server, 'sysctl', '-q', '-w', 'net.ipv6.ip_nonlocal_bind=0']);
    }
  });

  it('an unmodified program: getaddrinfo asks the DNS responder (resolv.conf of the namespace) and reaches the server', async () => {
    pair!.clientResolvConf('nameserver 127.0.0.53\noptions timeout:1 attempts:2\n');
    const port = 7500;
    const s = server(port, 'admit', 'parallel');
    expect(await s.next()).toMatchObject({ ready: true });
    const state = join(dir, 'client-dns.state');
    const run = runInNamespace(pair!.client, join(fixtures, 'ka-client.ts'), [state, pair!.prefix, String(port), 'connect-dns']);
    children.push(run);
    // glibc's getent: the AAAA answer is the client's first key address (one consumed).
    const getent = await run.next();
    expect(getent.getent).toMatch(new RegExp(`^${pair!.prefix.replace('::/64', ':')}`));
    expect(getent.answered).toBe(1);
    // Node's net.connect without a lookup option (getaddrinfo): the next address, admitted.
    const line = await run.next();
    expect(line).toMatchObject({ result: 'admitted' });
    expect(line.address).not.toBe(getent.getent);
    expect(line.greeting).toBe(`hello ${line.address as string}`);
    expect(await event(s, 'admitted')).toMatchObject({ address: line.address });
    s.kill();
    await s.exited;
  });

  it('host checks: without the local route, or bind mode without ip_nonlocal_bind, the listener names the command', async () => {
    // The client namespace routes the /64 away (via), not locally.
    const noRoute = server(7300, 'admit', 'serial', pair!.client);
    const line = await noRoute.next();
    expect(line).toMatchObject({ error: 'GS_ERR_KEYADDR_NO_ROUTE' });
    expect(line.message).toContain(`ip -6 route add local ${pair!.prefix} dev lo`);
    expect(await noRoute.exited).toBe(3);

    const noSysctl = server(7301, 'bind', 'serial');
    const l2 = await noSysctl.next();
    expect(l2).toMatchObject({ error: 'GS_ERR_KEYADDR_NOT_PERMITTED' });
    expect(l2.message).toContain('sysctl -w net.ipv6.ip_nonlocal_bind=1');
    expect(await noSysctl.exited).toBe(3);
  });
});
