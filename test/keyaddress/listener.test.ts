/**
 * Key-address listeners: admission, the serial and parallel models, N-way
 * multiplexing and the `bind` mode, in this process without privilege.
 *
 * The trick: all of 127.0.0.0/8 is local on Linux, and a socket bound to
 * `::` (not v6-only) sees an IPv4 connection's destination as
 * `::ffff:127.0.0.X` — so addresses `::ffff:127.0.0.2`, `…3`, … behave like
 * key addresses of a locally routed prefix (`::/64` holds them all). The
 * windows here are plain sequences over those addresses; the real
 * generator, the real /64 route and a second host are in netns.test.ts.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyAddressError } from '../../src/errors/index.js';
import { checkKeyAddressHost, hasLocalRoute, listenError, localRouteCommand, NONLOCAL_BIND_COMMAND } from '../../src/keyaddress/host.js';
import { KeyAddressListener, type AdmissionWindow, type KeyAddressListenerOptions } from '../../src/keyaddress/listener.js';
import { probe, type SequenceWindow, sequenceWindow } from './fixtures/probe.js';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

/** A free port, found by listening on 0 and closing. */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '::', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** 127.0.0.X as the listener sees it. */
const v4 = (x: number) => `::ffff:127.0.0.${x}`;

async function start(windows: AdmissionWindow[], extra: Partial<KeyAddressListenerOptions> = {}) {
  const sessions: Socket[] = [];
  const listener = await KeyAddressListener.listen(
    { prefix: '::/64', port: await freePort(), windows, checkHost: false, ...extra },
    (socket, info) => {
      sessions.push(socket);
      socket.write(`hello ${info.lane} ${info.address}\n`);
    },
  );
  open.push(listener);
  open.push({ close: () => sessions.forEach((s) => s.destroy()) });
  return { listener, sessions };
}

describe('KeyAddressListener, mode admit', () => {
  it('parallel: admits the current address once, moves on at once, resets used and random addresses', async () => {
    const w = sequenceWindow([2, 3, 4].map(v4));
    const { listener, sessions } = await start([w]);
    const refused: string[] = [];
    listener.on('refused', (r) => refused.push(`${r.reason} ${r.detail} ${r.address}`));

    const first = await probe('127.0.0.2', listener.port);
    expect(first.result).toBe('admitted');
    expect(first.greeting).toBe(`hello 0 ${'::ffff:7f00:2'}`);
    // The used address is retired at once …
    expect((await probe('127.0.0.2', listener.port)).result).toBe('reset');
    // … and, the first session still open, the next one is listened on (parallel).
    expect(sessions.length).toBe(1);
    expect(sessions[0]!.destroyed).toBe(false);
    expect((await probe('127.0.0.3', listener.port)).result).toBe('admitted');
    // An address the window does not hold.
    expect((await probe('127.0.0.99', listener.port)).result).toBe('reset');
    expect(refused).toEqual(['not-admitted retired ::ffff:7f00:2', 'not-admitted unknown ::ffff:7f00:63']);
    expect(listener.stats).toMatchObject({ accepted: 2, refused: 2 });
    first.socket.destroy();
  });

  it('with no refused listener: still resets, still retires, still counts', async () => {
    const w = sequenceWindow([2, 3].map(v4));
    const { listener } = await start([w]);
    expect(listener.listenerCount('refused')).toBe(0);
    const first = await probe('127.0.0.2', listener.port);
    expect(first.result).toBe('admitted');
    expect((await probe('127.0.0.2', listener.port)).result).toBe('reset');
    expect((await probe('127.0.0.99', listener.port)).result).toBe('reset');
    expect((await probe('127.0.0.3', listener.port)).result).toBe('admitted');
    expect(listener.stats).toMatchObject({ accepted: 2, refused: 2 });
    first.socket.destroy();
  });

  it('serial: while a session is open nothing is listened on; after it ends, the next address is', async () => {
    const w = sequenceWindow([2, 3, 4].map(v4));
    const { listener, sessions } = await start([w], { model: 'serial' });
    const reasons: string[] = [];
    listener.on('refused', (r) => reasons.push(r.reason));

    const first = await probe('127.0.0.2', listener.port);
    expect(first.result).toBe('admitted');
    expect(listener.listeningAddresses()).toEqual([]);
    // The next address is valid in the window but its lane is busy.
    expect((await probe('127.0.0.3', listener.port)).result).toBe('reset');
    expect(reasons).toEqual(['lane-busy']);
    // End the session (the server side closes): the lane listens again.
    const closed = new Promise((r) => sessions[0]!.once('close', r));
    sessions[0]!.destroy();
    await closed;
    expect(listener.listeningAddresses()).toEqual(['::ffff:7f00:3']);
    expect((await probe('127.0.0.3', listener.port)).result).toBe('admitted');
    first.socket.destroy();
  });

  it('serial, multiplexed 2 ways: two lanes hold two sessions; a third client finds nothing', async () => {
    const a = sequenceWindow([2, 3].map(v4));
    const b = sequenceWindow([12, 13].map(v4));
    const { listener } = await start([a, b], { model: 'serial' });
    const p1 = await probe('127.0.0.2', listener.port);
    const p2 = await probe('127.0.0.12', listener.port);
    expect([p1.result, p2.result]).toEqual(['admitted', 'admitted']);
    expect(p1.greeting).toMatch(/^hello 0 /);
    expect(p2.greeting).toMatch(/^hello 1 /);
    expect(listener.stats.sessions).toBe(2);
    expect((await probe('127.0.0.3', listener.port)).result).toBe('reset');
    expect((await probe('127.0.0.13', listener.port)).result).toBe('reset');
    p1.socket.destroy();
    p2.socket.destroy();
  });

  it('a window that refuses admission (e.g. a lost race) gets the connection reset', async () => {
    const w: SequenceWindow = sequenceWindow([v4(2)]);
    const refusing: AdmissionWindow = { acceptable: () => w.acceptable(), admit: () => ({ ok: false, reason: 'outside-window' }) };
    const { listener } = await start([refusing]);
    const reasons: string[] = [];
    listener.on('refused', (r) => reasons.push(`${r.reason} ${r.detail}`));
    expect((await probe('127.0.0.2', listener.port)).result).toBe('reset');
    expect(reasons).toEqual(['not-admitted outside-window']);
  });

  it('a window that throws refuses that connection and reports the error; the listener keeps serving', async () => {
    const w = sequenceWindow([v4(2)]);
    let calls = 0;
    const flaky: AdmissionWindow = {
      acceptable: () => w.acceptable(),
      admit: (a) => {
        if (calls++ === 0) throw new Error('window wiped');
        return w.admit(a);
      },
    };
    const { listener } = await start([flaky]);
    const errors: unknown[] = [];
    listener.on('error', (e) => errors.push(e));
    expect((await probe('127.0.0.2', listener.port)).result).toBe('reset');
    expect(errors).toHaveLength(1);
    const ok = await probe('127.0.0.2', listener.port);
    expect(ok.result).toBe('admitted');
    ok.socket.destroy();
  });

  it('checks its options by name', async () => {
    const w = sequenceWindow([v4(2)]);
    await expect(KeyAddressListener.listen({ prefix: '::/64', port: 0, windows: [w], checkHost: false })).rejects.toThrow(/port/);
    await expect(KeyAddressListener.listen({ prefix: '::/64', port: 9, windows: [], checkHost: false })).rejects.toThrow(/windows/);
    await expect(KeyAddressListener.listen({ prefix: '::/64', port: 9, windows: [{} as AdmissionWindow], checkHost: false })).rejects.toThrow(/acceptable\(\) and admit\(\)/);
    await expect(KeyAddressListener.listen({ prefix: '::/64', port: 9, windows: [w], backlog: 0, checkHost: false })).rejects.toThrow(/backlog/);
    await expect(KeyAddressListener.listen({ prefix: '2001:db8::/48', port: 9, windows: [w], checkHost: false })).rejects.toMatchObject({
      code: 'GS_ERR_KEYADDR_INVALID_PREFIX',
    });
  });
});

describe('KeyAddressListener.close', () => {
  it('stops listening at once and leaves admitted sessions open (does not wait for them)', async () => {
    const w = sequenceWindow([2, 3].map(v4));
    const { listener, sessions } = await start([w]);
    const session = await probe('127.0.0.2', listener.port);
    expect(session.result).toBe('admitted');
    const closed = await Promise.race([listener.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('waiting'), 2_000))]);
    expect(closed).toBe('closed');
    expect((await probe('127.0.0.3', listener.port)).result).toBe('refused');
    // The session still carries data after close().
    const got = new Promise<string>((resolve) => session.socket.once('data', (d) => resolve(d.toString())));
    sessions[0]!.write('still here');
    expect(await got).toBe('still here');
    session.socket.destroy();
  });
});

describe('KeyAddressListener, mode bind', () => {
  it('listens only on acceptable addresses: others get a kernel RST at SYN; rebinds as the window moves', async () => {
    const w = sequenceWindow([2, 3, 4].map(v4));
    const { listener } = await start([w], { mode: 'bind', model: 'serial' });
    expect([...listener.listeningAddresses()]).toEqual(['::ffff:7f00:2']);
    // No socket at .3 yet: refused by the kernel, no handshake at all.
    expect((await probe('127.0.0.3', listener.port)).result).toBe('refused');
    const first = await probe('127.0.0.2', listener.port);
    expect(first.result).toBe('admitted');
    // Serial: the lane is busy, its addresses are closed.
    await waitFor(() => probe('127.0.0.3', listener.port).then((p) => p.result === 'refused'));
    expect((await probe('127.0.0.2', listener.port)).result).toBe('refused');
    first.socket.end();
    // The server side sees the end, closes; the lane listens on the next address.
    await waitFor(async () => listener.listeningAddresses().includes('::ffff:7f00:3'));
    await waitFor(() => probe('127.0.0.3', listener.port).then((p) => p.result === 'admitted'));
  });

  it('parallel: one reconcile per window change (acceptable() read once), none when a session ends', async () => {
    const w = sequenceWindow([2, 3, 4].map(v4));
    let reads = 0;
    const counted: AdmissionWindow = {
      acceptable: () => {
        reads++;
        return w.acceptable();
      },
      admit: (a) => w.admit(a),
      on: (e, l) => w.on!(e, l),
      off: (e, l) => w.off!(e, l),
    };
    const { listener } = await start([counted], { mode: 'bind', model: 'parallel' });
    const listening: string[][] = [];
    listener.on('listening', (a) => listening.push([...a]));
    reads = 0;
    const first = await probe('127.0.0.2', listener.port);
    expect(first.result).toBe('admitted');
    // Parallel: the next address is bound while the first session is still open.
    await waitFor(async () => listening.length >= 1);
    expect(listener.stats.sessions).toBe(1);
    first.socket.end();
    await waitFor(async () => listener.stats.sessions === 0);
    await new Promise((r) => setTimeout(r, 30));
    // The used address closed and the next one opened, in one reconcile.
    expect(listening).toEqual([['::ffff:7f00:3']]);
    expect(reads).toBe(1);
    expect((await probe('127.0.0.2', listener.port)).result).toBe('refused');
    const second = await probe('127.0.0.3', listener.port);
    expect(second.result).toBe('admitted');
    await waitFor(async () => listening.length >= 2);
    expect(listening[1]).toEqual(['::ffff:7f00:4']);
    expect(reads).toBe(2);
    second.socket.destroy();
  });
});

/** Poll `check` every 20 ms for up to 10 s. */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error('condition not met within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('host checks', () => {
  const routes = [
    '00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo',
    'fd000001000200030000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 80000001       lo',
    'fd000009000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001     eth0',
  ].join('\n');

  it('finds a local route covering the /64 in /proc/net/ipv6_route text, and only a local one', () => {
    expect(hasLocalRoute('fd00:1:2:3::/64', routes)).toBe(true);
    expect(hasLocalRoute('fd00:1:2:4::/64', routes)).toBe(false);
    // Routed, but not as `local` (a plain route out of eth0).
    expect(hasLocalRoute('fd00:9::/64', routes)).toBe(false);
    // A shorter local route covers every /64 inside it.
    const wide = 'fd000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 80000001 lo';
    expect(hasLocalRoute('fd12:3456::/64', wide)).toBe(true);
  });

  it('without the route, says so with the command that fixes it', () => {
    // Documentation prefix: never routed on a test machine.
    const error = (() => {
      try {
        checkKeyAddressHost('2001:db8:77:1::/64');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(KeyAddressError);
    expect(error).toMatchObject({ code: 'GS_ERR_KEYADDR_NO_ROUTE' });
    expect((error as Error).message).toContain('ip -6 route add local 2001:db8:77:1::/64 dev lo');
    expect(localRouteCommand('2001:DB8:0077:0001::/64', 'veth0')).toBe('ip -6 route add local 2001:db8:77:1::/64 dev veth0');
  });

  it('maps EACCES and EADDRNOTAVAIL from listen() to NOT_PERMITTED with the fix', () => {
    const denied = listenError(Object.assign(new Error('listen EACCES'), { code: 'EACCES' }), 'fd00::/64', 80, '::');
    expect(denied).toMatchObject({ code: 'GS_ERR_KEYADDR_NOT_PERMITTED' });
    expect((denied as Error).message).toMatch(/CAP_NET_BIND_SERVICE/);
    const notLocal = listenError(Object.assign(new Error('bind'), { code: 'EADDRNOTAVAIL' }), 'fd00::/64', 7000, 'fd00::5');
    expect((notLocal as Error).message).toContain(NONLOCAL_BIND_COMMAND);
    const other = new Error('x');
    expect(listenError(other, 'fd00::/64', 1, '::')).toBe(other);
  });

  it('an unbound listener on an unrouted prefix refuses to start (checkHost on)', async () => {
    const w = sequenceWindow(['2001:db8:77:1::5']);
    await expect(KeyAddressListener.listen({ prefix: '2001:db8:77:1::/64', port: await freePort(), windows: [w] })).rejects.toMatchObject({
      code: 'GS_ERR_KEYADDR_NO_ROUTE',
    });
  });
});
