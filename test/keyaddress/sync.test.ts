/**
 * Key-address synchronisation (seed 002 §4.2): a client cursor and a server
 * window driven by injected clocks. Session ends, failed attempts within
 * and beyond the window, epoch boundaries with client clock skew, the
 * `change` events listeners rebind on, and option checking.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import {
  ConfigError,
  KeyAddressClient,
  KeyAddressError,
  KeyAddressServer,
  deriveMasterKey,
  epochOf,
  epochStart,
  keyAddressAt,
  keyAddressChannels,
  type KeyAddressChange,
  type KeyAddressServerOptions,
} from '../../src/keyaddress/index.js';

const master = deriveMasterKey({ passphrase: 'sync test', kdf: { N: 16, r: 1, p: 1 } });
const PREFIX = '2001:db8:1:2::/64';
const EPOCH = 60_000;
const SKEW = 10_000;
const WINDOW = 4;
const AHEAD = 8;
const T0 = 1_000; // the epoch the tests start in
const base: KeyAddressServerOptions = { prefix: PREFIX, epochMs: EPOCH, skewMs: SKEW, window: WINDOW, recognizeAhead: AHEAD };

/** A server and a client with their own clocks (ms), the client's offset by `skew`. */
function pair(startMs = epochStart(T0, EPOCH) + EPOCH / 2, skew = 0, extra: Partial<KeyAddressServerOptions> = {}) {
  const clock = { ms: startMs };
  const server = KeyAddressServer.fromMasterKey(master, { ...base, ...extra, now: () => clock.ms });
  const client = KeyAddressClient.fromMasterKey(master, { ...base, ...extra, now: () => clock.ms + skew });
  return { clock, server, client };
}

/** The epochs a server accepts at `ms` by the rule of docs/keyaddress.md, written out independently. */
function acceptedEpochs(ms: number): number[] {
  const tc = Math.floor(ms / EPOCH);
  const out = [tc];
  if (ms - tc * EPOCH < SKEW) out.push(tc - 1);
  if ((tc + 1) * EPOCH - ms <= SKEW) out.push(tc + 1);
  return out;
}

describe('session ends', () => {
  it('client and server walk the same sequence, one address per session', () => {
    const { server, client } = pair();
    for (let n = 0; n < 20; n++) {
      const p = client.next();
      expect([p.t, p.n]).toEqual([T0, n]);
      expect(p.address).toBe(keyAddressAt(master, PREFIX, T0, n).address);
      const r = server.admit(p.address);
      expect(r).toEqual({ ok: true, position: expect.objectContaining({ t: T0, n, address: p.address }) });
      expect(server.positions()).toEqual([{ t: T0, pos: n + 1 }]);
    }
  });

  it('an address is admitted once: again it is retired (or unknown once forgotten)', () => {
    const { server, client } = pair();
    const p = client.next();
    expect(server.admit(p.address).ok).toBe(true);
    expect(server.admit(p.address)).toEqual({ ok: false, reason: 'retired', t: T0, n: 0 });
    expect(server.admit(p.bytes)).toMatchObject({ ok: false, reason: 'retired' });
    const forgetful = pair(undefined, 0, { retiredMemory: 0 });
    const q = forgetful.client.next();
    expect(forgetful.server.admit(q.address).ok).toBe(true);
    expect(forgetful.server.admit(q.address)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('refuses strangers and bad input', () => {
    const { server } = pair();
    expect(server.admit('2001:db8:1:2::1')).toEqual({ ok: false, reason: 'unknown' });
    expect(server.admit('2001:db8:9:9::1')).toEqual({ ok: false, reason: 'unknown' });
    expect(server.admit('not an address')).toEqual({ ok: false, reason: 'unknown' });
    expect(server.admit('127.0.0.1')).toEqual({ ok: false, reason: 'unknown' });
    expect(() => server.admit(new Uint8Array(4))).toThrow(TypeError);
    expect(server.positions()).toEqual([{ t: T0, pos: 0 }]);
  });

  it('random sequences of sessions, lost attempts and time agree with the model', () => {
    type Step = { kind: 'session' } | { kind: 'lost' } | { kind: 'wait'; ms: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: 'session' as const }) },
      { weight: 4, arbitrary: fc.constant({ kind: 'lost' as const }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: EPOCH }).map((ms) => ({ kind: 'wait' as const, ms })) },
    );
    const seen = { accepted: 0, refused: 0, unknown: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: EPOCH - 1 }), fc.array(step, { minLength: 10, maxLength: 80, size: 'max' }), (offset, steps) => {
        const { clock, server, client } = pair(epochStart(T0, EPOCH) + offset);
        // Model: how far the client's cursor is ahead of the server's position in the client's epoch.
        let ahead = 0;
        let epoch = epochOf(clock.ms, EPOCH);
        for (const s of steps) {
          if (s.kind === 'wait') {
            clock.ms += s.ms;
            continue;
          }
          const p = client.next();
          if (p.t !== epoch) {
            epoch = p.t;
            ahead = 0; // both restart at n = 0 of the new epoch
          }
          expect(p.n).toBeGreaterThanOrEqual(ahead);
          if (s.kind === 'lost') {
            ahead++;
            continue;
          }
          const r = server.admit(p.address);
          if (ahead < WINDOW) {
            expect(r).toMatchObject({ ok: true, position: { t: p.t, n: p.n } });
            seen.accepted++;
            ahead = 0;
          } else if (ahead < WINDOW + AHEAD) {
            expect(r).toMatchObject({ ok: false, reason: 'outside-window', t: p.t, n: p.n });
            seen.refused++;
            ahead++;
          } else {
            expect(r).toEqual({ ok: false, reason: 'unknown' }); // beyond what the server recognises
            seen.unknown++;
            ahead++;
          }
        }
      }),
      { numRuns: 150 },
    );
    // Both branches of the model were exercised (lockouts need WINDOW lost attempts in a row).
    expect(seen.refused).toBeGreaterThan(20);
    expect(seen.unknown).toBeGreaterThan(5);
    expect(seen.accepted).toBeGreaterThan(1000);
  });
});

describe('failed attempts', () => {
  it('within the window: accepted, and the skipped addresses are retired', () => {
    const { server, client } = pair();
    const lost = [client.next(), client.next(), client.next()]; // WINDOW − 1 attempts never reached the server
    const p = client.next();
    expect(server.admit(p.address)).toMatchObject({ ok: true, position: { n: 3 } });
    for (const q of lost) expect(server.admit(q.address)).toMatchObject({ ok: false, reason: 'retired', n: q.n });
    expect(server.admit(client.next().address).ok).toBe(true);
  });

  it('beyond the window: refused (and retired) until the next epoch, then accepted at n = 0', () => {
    const { clock, server, client } = pair();
    for (let i = 0; i < WINDOW; i++) client.next(); // WINDOW lost attempts
    for (let i = 0; i < 5; i++) {
      const p = client.next();
      expect(server.admit(p.address)).toMatchObject({ ok: false, reason: 'outside-window', n: WINDOW + i });
      expect(server.admit(p.address)).toMatchObject({ ok: false, reason: 'retired', n: WINDOW + i });
    }
    expect(server.positions()).toEqual([{ t: T0, pos: 0 }]);
    clock.ms = epochStart(T0 + 1, EPOCH) + 1;
    const p = client.next();
    expect([p.t, p.n]).toEqual([T0 + 1, 0]);
    expect(server.admit(p.address)).toMatchObject({ ok: true, position: { t: T0 + 1, n: 0 } });
  });

  it('an address retired out of order stays refused when the window slides over it', () => {
    const { server, client } = pair();
    const ps = Array.from({ length: WINDOW + 2 }, () => client.next());
    expect(server.admit(ps[WINDOW + 1]!.address)).toMatchObject({ reason: 'outside-window' });
    expect(server.admit(ps[2]!.address).ok).toBe(true); // window now 3 … 3 + WINDOW − 1 ∋ WINDOW + 1
    expect(server.acceptable().map((p) => p.n)).toEqual([3, 4, 6]);
    expect(server.admit(ps[WINDOW + 1]!.address)).toMatchObject({ ok: false, reason: 'retired' });
    expect(server.admit(ps[WINDOW]!.address)).toMatchObject({ ok: true, position: { n: WINDOW } });
  });

  it('a client never hands out the same address twice', () => {
    const { clock, client } = pair();
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 49) clock.ms += EPOCH;
      const { address } = client.next();
      expect(seen.has(address)).toBe(false);
      seen.add(address);
    }
  });
});

describe('epoch boundaries with clock skew', () => {
  const B = epochStart(T0 + 1, EPOCH); // the boundary between T0 and T0 + 1

  it('within ±(skewMs − 1 s): the first attempt around a boundary is accepted', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(SKEW - 1000), max: SKEW - 1000 }), fc.integer({ min: -2 * SKEW, max: 2 * SKEW }), (skew, at) => {
        const { server, client } = pair(B + at, skew);
        const p = client.next();
        expect(acceptedEpochs(B + at)).toContain(p.t);
        expect(server.admit(p.address)).toMatchObject({ ok: true, position: { t: p.t, n: 0 } });
      }),
      { numRuns: 300 },
    );
  });

  it('beyond the allowance: refused exactly when the client is in an epoch the server no longer or not yet accepts', () => {
    let refused = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: SKEW + 1000, max: EPOCH / 2 }).chain((m) => fc.constantFrom(m, -m)),
        fc.integer({ min: -2 * SKEW, max: 2 * SKEW }),
        (skew, at) => {
          const { server, client } = pair(B + at, skew);
          const p = client.next();
          const ok = acceptedEpochs(B + at).includes(p.t);
          const r = server.admit(p.address);
          expect(r.ok).toBe(ok);
          if (!ok) {
            refused++;
            expect(r).toEqual({ ok: false, reason: 'unknown' });
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(refused).toBeGreaterThan(20);
  });

  it('a client ahead of the boundary connects to the next epoch before the server rolls, the window carries over the boundary', () => {
    const { clock, server, client } = pair(B - SKEW - 1, 2000);
    // Server: still only T0 (plus nothing of T0 + 1 yet); the client is still in T0 too.
    expect(server.positions()).toEqual([{ t: T0, pos: 0 }]);
    expect(server.admit(client.next().address)).toMatchObject({ ok: true, position: { t: T0, n: 0 } });
    clock.ms = B - 1500; // client clock is past the boundary
    const p = client.next();
    expect([p.t, p.n]).toEqual([T0 + 1, 0]);
    expect(server.admit(p.address)).toMatchObject({ ok: true, position: { t: T0 + 1, n: 0 } });
    // A second (slow-clocked) client still in T0 connects during the grace period.
    const slow = KeyAddressClient.fromMasterKey(master, { ...base, now: () => clock.ms - 3000 });
    clock.ms = B + 500;
    expect(slow.next().t).toBe(T0);
    expect(server.admit(slow.next().address)).toMatchObject({ ok: true, position: { t: T0, n: 1 } });
    clock.ms = B + SKEW; // grace over: T0 is closed and its keys gone
    expect(server.positions().map((x) => x.t)).toEqual([T0, T0 + 1]); // not polled yet
    server.poll();
    expect(server.positions()).toEqual([{ t: T0 + 1, pos: 1 }]);
    expect(server.admit(slow.next().address)).toMatchObject({ ok: false });
  });

  it('a client whose clock went back stays in its epoch (the ratchet cannot go back)', () => {
    const { clock, client } = pair();
    clock.ms += EPOCH;
    expect(client.next().t).toBe(T0 + 1);
    clock.ms -= EPOCH;
    expect(client.next()).toMatchObject({ t: T0 + 1, n: 1 });
  });

  it('a server restarted from scratch near a boundary opens the previous epoch too', () => {
    const { server } = pair(B + SKEW - 1);
    expect(server.positions().map((p) => p.t)).toEqual([T0, T0 + 1]);
    const later = pair(B + SKEW);
    expect(later.server.positions().map((p) => p.t)).toEqual([T0 + 1]);
  });
});

describe('change events and the acceptable set', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('acceptable() lists each accepted epoch\'s window; admit moves it and says so', () => {
    const { server, client } = pair();
    const changes: KeyAddressChange[] = [];
    server.on('change', (c) => changes.push(c));
    const before = server.acceptable();
    expect(before.map((p) => [p.t, p.n])).toEqual([0, 1, 2, 3].map((n) => [T0, n]));
    expect(before.map((p) => p.address)).toEqual([0, 1, 2, 3].map((n) => keyAddressAt(master, PREFIX, T0, n).address));
    client.next();
    expect(server.admit(client.next().address).ok).toBe(true);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.cause).toBe('admit');
    expect(changes[0]!.removed.map((p) => p.n)).toEqual([0, 1]);
    expect(changes[0]!.added.map((p) => p.n)).toEqual([4, 5]);
    expect(server.acceptable().map((p) => p.n)).toEqual([2, 3, 4, 5]);
    server.admit('2001:db8:1:2::1');
    expect(changes).toHaveLength(1); // a refused stranger changes nothing
  });

  it('the clock opens and closes epochs with `clock` changes at nextDeadline()', () => {
    const B = epochStart(T0 + 1, EPOCH);
    const { clock, server } = pair(B - SKEW - 5000);
    const changes: KeyAddressChange[] = [];
    server.on('change', (c) => changes.push(c));
    expect(server.nextDeadline()).toBe(B - SKEW);
    clock.ms = B - SKEW - 1;
    server.poll();
    expect(changes).toEqual([]);
    clock.ms = B - SKEW;
    server.poll();
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ cause: 'clock', removed: [] });
    expect(changes[0]!.added.map((p) => [p.t, p.n])).toEqual([0, 1, 2, 3].map((n) => [T0 + 1, n]));
    expect(server.nextDeadline()).toBe(B);
    clock.ms = B;
    server.poll(); // T0 is now the previous epoch, still accepted: no change
    expect(changes).toHaveLength(1);
    expect(server.nextDeadline()).toBe(B + SKEW);
    clock.ms = B + SKEW;
    server.poll();
    expect(changes).toHaveLength(2);
    expect(changes[1]!.removed.map((p) => p.t)).toEqual([T0, T0, T0, T0]);
    expect(server.nextDeadline()).toBe(B + EPOCH - SKEW);
  });

  it('watch() polls on a timer at each deadline and stops', () => {
    vi.useFakeTimers({ now: epochStart(T0 + 1, EPOCH) - SKEW - 5000 });
    const server = KeyAddressServer.fromMasterKey(master, { ...base, now: () => Date.now() });
    const causes: string[] = [];
    server.on('change', (c) => causes.push(`${c.cause}:+${c.added.length}-${c.removed.length}`));
    const stop = server.watch();
    vi.advanceTimersByTime(5000);
    expect(causes).toEqual(['clock:+4-0']);
    vi.advanceTimersByTime(SKEW + SKEW);
    expect(causes).toEqual(['clock:+4-0', 'clock:+0-4']);
    stop();
    vi.advanceTimersByTime(3 * EPOCH);
    expect(causes).toHaveLength(2);
  });

  it('diagnostics channels report positions and decisions, never addresses', () => {
    const got: string[] = [];
    const on = (name: string) => (m: unknown) => got.push(`${name} ${JSON.stringify(m)}`);
    const handlers = { next: on('next'), admit: on('admit'), epoch: on('epoch') };
    for (const [k, h] of Object.entries(handlers)) subscribe(keyAddressChannels[k as keyof typeof handlers].name, h);
    try {
      const B = epochStart(T0 + 1, EPOCH);
      const { clock, server, client } = pair(B - SKEW - 1);
      server.admit(client.next().address);
      server.admit('2001:db8:1:2::1');
      clock.ms = B + SKEW;
      server.poll();
      expect(got).toEqual([
        `epoch {"t":${T0},"event":"open"}`,
        `next {"t":${T0},"n":0}`,
        `admit {"ok":true,"t":${T0},"n":0}`,
        'admit {"ok":false,"reason":"unknown"}',
        `epoch {"t":${T0},"event":"close"}`,
        `epoch {"t":${T0 + 1},"event":"open"}`,
      ]);
    } finally {
      for (const [k, h] of Object.entries(handlers)) unsubscribe(keyAddressChannels[k as keyof typeof handlers].name, h);
    }
  });

  it('slots ride along on both ends', () => {
    const { server, client } = pair(undefined, 0, { slots: ['relay-pcid'] });
    const p = client.next();
    const mine = server.acceptable().find((q) => q.address === p.address)!;
    expect(Buffer.from(mine.slots['relay-pcid']!).equals(Buffer.from(p.slots['relay-pcid']!))).toBe(true);
    expect(p.slots['relay-pcid']).toHaveLength(32);
  });
});

describe('options', () => {
  it.each([
    [{ window: 0 }, /window/],
    [{ window: 1.5 }, /window/],
    [{ skewMs: EPOCH / 2 + 1 }, /skewMs/],
    [{ epochMs: 999 }, /epochMs/],
    [{ recognizeAhead: -1 }, /recognizeAhead/],
    [{ retiredMemory: 1e9 }, /retiredMemory/],
    [{ slots: [''] }, /slots/],
  ])('refuses %j by name', (bad, why) => {
    expect(() => KeyAddressServer.fromMasterKey(master, { ...base, ...bad } as KeyAddressServerOptions)).toThrow(ConfigError);
    expect(() => KeyAddressServer.fromMasterKey(master, { ...base, ...bad } as KeyAddressServerOptions)).toThrow(why);
  });

  it('a bad prefix is GS_ERR_KEYADDR_INVALID_PREFIX, before any slow KDF', async () => {
    const slow = { passphrase: 'x' }; // default scrypt: would take a while
    await expect(KeyAddressServer.fromPassphrase(slow, { prefix: '2001:db8::/48' })).rejects.toMatchObject({ code: 'GS_ERR_KEYADDR_INVALID_PREFIX' });
    expect(() => KeyAddressClient.fromPassphraseSync(slow, { prefix: '2001:db8::1/64' })).toThrow(KeyAddressError);
  });

  it('the default skew follows a short epoch', () => {
    const s = KeyAddressServer.fromMasterKey(master, { prefix: PREFIX, epochMs: 1000, now: () => 5_500 });
    expect(s.skewMs).toBe(500);
    expect(s.window).toBe(8);
  });

  it('fromPassphrase with the default scrypt builds both ends that agree', async () => {
    const clock = () => epochStart(T0, EPOCH) + 1;
    const [server, client] = await Promise.all([
      KeyAddressServer.fromPassphrase({ passphrase: 'pass' }, { ...base, now: clock }),
      Promise.resolve(KeyAddressClient.fromPassphraseSync({ passphrase: 'pass' }, { ...base, now: clock })),
    ]);
    expect(server.admit(client.next().address).ok).toBe(true);
  });
});
