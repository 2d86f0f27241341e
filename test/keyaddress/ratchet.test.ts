/**
 * The ratchet's forward security and its stored state: a state exported
 * after some sessions (a device captured later) cannot produce an address
 * used before the capture and holds none of the past keys, while it still
 * produces exactly the future addresses both ends agree on; states restore
 * faithfully, canonically, and refuse damage or mismatched options.
 */
import { describe, expect, it } from 'vitest';
import {
  KeyAddressClient,
  KeyAddressError,
  KeyAddressServer,
  deriveMasterKey,
  epochKey,
  epochStart,
  keyAddressAt,
  openChain,
  parsePrefix,
  positionAt,
  stepChain,
  type KeyAddressServerOptions,
} from '../../src/keyaddress/index.js';

const master = deriveMasterKey({ passphrase: 'ratchet test', kdf: { N: 16, r: 1, p: 1 } });
const PREFIX = '2001:db8:aa:1::/64';
const EPOCH = 60_000;
const T0 = 500;
const base: KeyAddressServerOptions = { prefix: PREFIX, epochMs: EPOCH, skewMs: 5_000, window: 4 };

/** Every 32-byte window of `haystack`, as hex, to look for keys inside a state. */
function slices32(haystack: Uint8Array): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 32 <= haystack.length; i++) out.add(Buffer.from(haystack.subarray(i, i + 32)).toString('hex'));
  return out;
}

/** The chain keys C(t, 0 … count − 1) and E_t, from the master key. */
function pastKeys(t: number, count: number): string[] {
  const prefix = parsePrefix(PREFIX).bytes;
  const e = epochKey(master, t);
  const keys = [Buffer.from(e).toString('hex')];
  let c = openChain(e);
  for (let n = 0; n < count; n++) {
    keys.push(Buffer.from(c).toString('hex'));
    c = stepChain(c, positionAt(c, prefix, t, n).bytes);
  }
  return keys;
}

describe('a captured state', () => {
  it('cannot produce an address used before capture, yet produces the future ones both ends agree on', () => {
    const clock = { ms: epochStart(T0, EPOCH) + 1000 };
    const now = () => clock.ms;
    const server = KeyAddressServer.fromMasterKey(master, { ...base, now });
    const client = KeyAddressClient.fromMasterKey(master, { ...base, now });
    // History before capture: two epochs of sessions, some attempts lost.
    const used: string[] = [];
    for (let i = 0; i < 30; i++) {
      if (i === 15) clock.ms += EPOCH;
      const p = client.next();
      used.push(p.address);
      if (i % 4 !== 3) expect(server.admit(p.address).ok).toBe(true);
    }
    const capturedClient = client.exportState();
    const capturedServer = server.exportState();

    // The state bytes hold no past key: not the master key, no E_t of a used
    // epoch, no chain key of a passed position.
    const inClient = slices32(capturedClient);
    const inServer = slices32(capturedServer);
    const past = [Buffer.from(master).toString('hex'), ...pastKeys(T0, 15), ...pastKeys(T0 + 1, 15)];
    for (const k of past) {
      expect(inClient.has(k)).toBe(false);
      expect(inServer.has(k)).toBe(false);
    }

    // What the captured states produce, over the rest of this epoch and many later ones.
    const produced = new Set<string>();
    const c2 = KeyAddressClient.fromState(capturedClient, { ...base, now });
    const s2 = KeyAddressServer.fromState(capturedServer, { ...base, now });
    for (const p of s2.acceptable()) produced.add(p.address);
    for (const a of used) expect(s2.admit(a).ok).toBe(false);
    const future: string[] = [];
    for (let e = 0; e < 5; e++) {
      for (let i = 0; i < 10; i++) {
        const p = c2.next();
        produced.add(p.address);
        future.push(p.address);
        // … and they are the addresses of the shared sequence, which a fresh
        // server (restored from its own captured state) accepts.
        expect(p.address).toBe(keyAddressAt(master, PREFIX, p.t, p.n).address);
        expect(s2.admit(p.address)).toMatchObject({ ok: true, position: { t: p.t, n: p.n } });
      }
      clock.ms += EPOCH;
    }
    for (const a of used) expect(produced.has(a)).toBe(false);
    expect(new Set(future).size).toBe(50);
  });

  it('a restored client continues exactly where the original would have', () => {
    const clock = { ms: epochStart(T0, EPOCH) };
    const a = KeyAddressClient.fromMasterKey(master, { ...base, now: () => clock.ms });
    for (let i = 0; i < 7; i++) a.next();
    const b = KeyAddressClient.fromState(a.exportState(), { ...base, now: () => clock.ms });
    expect(b.position).toEqual({ t: T0, n: 7 });
    for (let i = 0; i < 5; i++) expect(b.next().address).toBe(a.next().address);
    clock.ms += 3 * EPOCH;
    expect(b.next()).toMatchObject({ t: T0 + 3, n: 0, address: a.next().address });
  });

  it('a restored server keeps its position and the addresses it retired out of order', () => {
    const clock = { ms: epochStart(T0, EPOCH) + 30_000 };
    const now = () => clock.ms;
    const server = KeyAddressServer.fromMasterKey(master, { ...base, now });
    const client = KeyAddressClient.fromMasterKey(master, { ...base, now });
    const ps = Array.from({ length: 8 }, () => client.next());
    expect(server.admit(ps[1]!.address).ok).toBe(true);
    expect(server.admit(ps[6]!.address)).toMatchObject({ reason: 'outside-window' });
    const state = server.exportState();
    const restored = KeyAddressServer.fromState(state, { ...base, now });
    expect(restored.positions()).toEqual([{ t: T0, pos: 2 }]);
    expect(restored.acceptable().map((p) => p.n)).toEqual([2, 3, 4, 5]);
    expect(restored.admit(ps[5]!.address).ok).toBe(true);
    expect(restored.acceptable().map((p) => p.n)).toEqual([7, 8, 9]); // 6 stays retired
    expect(restored.admit(ps[6]!.address)).toMatchObject({ ok: false, reason: 'retired' });
    // Canonical: a state re-exported unchanged is the same bytes.
    expect(Buffer.from(KeyAddressServer.fromState(state, { ...base, now }).exportState()).equals(Buffer.from(state))).toBe(true);
  });

  it('a server restored after a long downtime catches up with the clock', () => {
    const clock = { ms: epochStart(T0, EPOCH) + 30_000 };
    const now = () => clock.ms;
    const state = KeyAddressServer.fromMasterKey(master, { ...base, now }).exportState();
    clock.ms += 100 * EPOCH;
    const s = KeyAddressServer.fromState(state, { ...base, now });
    expect(s.positions()).toEqual([{ t: T0 + 100, pos: 0 }]);
    const c = KeyAddressClient.fromMasterKey(master, { ...base, now });
    expect(s.admit(c.next().address).ok).toBe(true);
  });
});

describe('buffers the caller owns', () => {
  it('a Buffer master key or state is read, never wiped or kept', () => {
    const now = () => epochStart(T0, EPOCH) + 30_000;
    const m = Buffer.from(master);
    const c = KeyAddressClient.fromMasterKey(m, { ...base, now });
    expect(m.equals(Buffer.from(master))).toBe(true);
    c.next();
    const state = Buffer.from(c.exportState());
    const copy = Buffer.from(state);
    const d = KeyAddressClient.fromState(state, { ...base, now });
    for (let i = 0; i < 3; i++) d.next();
    d.wipe();
    expect(state.equals(copy)).toBe(true);
    const s = KeyAddressServer.fromState(Buffer.from(KeyAddressServer.fromMasterKey(m, { ...base, now }).exportState()), { ...base, now });
    expect(s.admit(keyAddressAt(master, PREFIX, T0, 0).address).ok).toBe(true);
    expect(m.equals(Buffer.from(master))).toBe(true);
  });
});

describe('state damage and mismatch', () => {
  const now = () => epochStart(T0, EPOCH) + 30_000;
  const clientState = KeyAddressClient.fromMasterKey(master, { ...base, now }).exportState();
  const server = KeyAddressServer.fromMasterKey(master, { ...base, now });
  server.admit(keyAddressAt(master, PREFIX, T0, 6).address); // one out-of-order retirement in the state
  const serverState = server.exportState();
  const code = { code: 'GS_ERR_KEYADDR_STATE' };

  it('every flipped byte and every truncation is GS_ERR_KEYADDR_STATE', () => {
    for (const [state, restore] of [
      [clientState, (b: Uint8Array) => KeyAddressClient.fromState(b, { ...base, now })],
      [serverState, (b: Uint8Array) => KeyAddressServer.fromState(b, { ...base, now })],
    ] as const) {
      for (let i = 0; i < state.length; i++) {
        const bad = state.slice();
        bad[i]! ^= 1 << i % 8;
        expect(() => restore(bad)).toThrow(expect.objectContaining(code));
      }
      for (let len = 0; len < state.length; len++) expect(() => restore(state.slice(0, len))).toThrow(expect.objectContaining(code));
      expect(() => restore(new Uint8Array([...state, 0]))).toThrow(expect.objectContaining(code));
    }
  });

  it('a state is refused under other options or by the other role', () => {
    expect(() => KeyAddressClient.fromState(clientState, { ...base, now, prefix: '2001:db8:aa:2::/64' })).toThrow(/another prefix/);
    expect(() => KeyAddressClient.fromState(clientState, { ...base, now, epochMs: EPOCH * 2 })).toThrow(KeyAddressError);
    expect(() => KeyAddressClient.fromState(clientState, { ...base, now, originMs: 1 })).toThrow(expect.objectContaining(code));
    expect(() => KeyAddressServer.fromState(clientState, { ...base, now })).toThrow(/client state, a server state expected/);
    expect(() => KeyAddressClient.fromState(serverState, { ...base, now })).toThrow(/server state, a client state expected/);
    expect(() => KeyAddressClient.fromState('nope' as unknown as Uint8Array, { ...base, now })).toThrow(expect.objectContaining(code));
    // Local options (window, skew) may change across a restart.
    expect(KeyAddressServer.fromState(serverState, { ...base, now, window: 2, skewMs: 0 }).acceptable()).toHaveLength(2);
  });

  it('a state with a well-formed check but a wrong frontier shape is refused', async () => {
    const { encodeState, decodeState } = await import('../../src/keyaddress/state.js');
    const s = decodeState(clientState, 'client', serverFingerprint());
    const nodes = s.frontier.nodes();
    const forged = encodeState('client', serverFingerprint(), s.frontier.from + 1, nodes, s.epochs);
    expect(() => KeyAddressClient.fromState(forged, { ...base, now })).toThrow(/frontier/);
    const pastEpoch = encodeState('client', serverFingerprint(), s.frontier.from, nodes, [{ ...s.epochs[0]!, t: s.frontier.from }]);
    expect(() => KeyAddressClient.fromState(pastEpoch, { ...base, now })).toThrow(/not before/);
  });

  /** The options fingerprint of `base`, read from a state (bytes 6..14). */
  function serverFingerprint(): Uint8Array {
    return clientState.slice(6, 14);
  }
});

describe('wipe', () => {
  it('zeroes the ratchet; nothing is produced afterwards', () => {
    const now = () => epochStart(T0, EPOCH);
    const c = KeyAddressClient.fromMasterKey(master, { ...base, now });
    c.wipe();
    expect(() => c.next()).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_STATE' }));
    expect(() => c.exportState()).toThrow(KeyAddressError);
    const s = KeyAddressServer.fromMasterKey(master, { ...base, now });
    s.wipe();
    expect(() => s.admit('2001:db8:aa:1::1')).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_STATE' }));
    expect(() => s.exportState()).toThrow(KeyAddressError);
  });
});
