/**
 * Key addresses over the relay: a server registered under secret PCIDs from
 * the key-address sequence (ka-core's KeyAddressServer / KeyAddressClient,
 * cheap KDF), an in-process controller and gateway on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KeyAddressClient, KeyAddressServer } from '../../src/keyaddress/index.js';
import { KeyAddressRelayClient, KeyAddressRelayServer, RELAY_PCID_SLOT, secretPcid } from '../../src/keyaddress/relay.js';
import { relayLookup } from '../../src/relay/index.js';
import { createServerIdentity } from '../../src/session/index.js';
import type { SockIo } from '../../src/socket/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';

const SECRET = { passphrase: 'relay test passphrase', kdf: { N: 16, r: 1, p: 1 } };
const HOUR = 3_600_000;
/** A fixed clock in the middle of an epoch (1 h epochs), so no test meets a boundary by chance. */
const MID_EPOCH = 490_000 * HOUR + HOUR / 2;
const OPTIONS = { prefix: '2001:db8:1:2::/64', slots: [RELAY_PCID_SLOT], now: () => MID_EPOCH };

let system: TestSystem | undefined;
const closers: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await system?.close();
  system = undefined;
});

/** Echo each chunk, prefixed, until the client ends. */
async function echo(sock: SockIo): Promise<void> {
  for (;;) {
    const data = await sock.recv(4096);
    if (data.length === 0) break;
    await sock.send(new TextEncoder().encode(`echo ${new TextDecoder().decode(data)}`));
  }
  await sock.disconnect();
}

async function roundTrip(sock: SockIo, text: string): Promise<string> {
  await sock.send(new TextEncoder().encode(text));
  return new TextDecoder().decode(await sock.recv(4096));
}

async function setUp(model: 'serial' | 'parallel' = 'parallel', now = () => MID_EPOCH) {
  system = await startSystem();
  const common = { controller: system.controller.address, roots: [system.pki.root] };
  const options = { ...OPTIONS, now };
  const window = KeyAddressServer.fromPassphraseSync(SECRET, options);
  const server = await KeyAddressRelayServer.start({ ...common, identity: createServerIdentity(), window, model, now }, echo);
  closers.push(() => server.close());
  const client = (lookahead?: number) =>
    new KeyAddressRelayClient({ ...common, cursor: KeyAddressClient.fromPassphraseSync(SECRET, options), timeoutMs: 10_000, ...(lookahead === undefined ? {} : { lookahead }) });
  const known = (pcid: string) => relayLookup(pcid, common).then(() => true, (e: { code?: string }) => (e.code === 'GS_ERR_UNKNOWN_PCID' ? false : Promise.reject(e)));
  return { common, window, server, client, known };
}

describe('secretPcid', () => {
  it('is ka- and 24 base32 symbols of the first 120 bits (RFC 4648 alphabet, lower case)', () => {
    expect(secretPcid(new Uint8Array(32))).toBe(`ka-${'a'.repeat(24)}`);
    expect(secretPcid(new Uint8Array(15).fill(0xff))).toBe(`ka-${'7'.repeat(24)}`);
    // "foobar" is MZXW6YTBOI in RFC 4648 §10; pad to 15 bytes with zeros.
    const foobar = new Uint8Array(15);
    foobar.set(new TextEncoder().encode('foobar'));
    expect(secretPcid(foobar).slice(3, 13)).toBe('mzxw6ytboi');
    expect(secretPcid(foobar)).toHaveLength(27);
    expect(() => secretPcid(new Uint8Array(14))).toThrow(/15 bytes/);
  });
});

describe('KeyAddressRelayServer / KeyAddressRelayClient', () => {
  it('parallel: the client reaches the server by the secret PCID; the used PCID is dead at once; the next session uses the next one', async () => {
    const { server, client, known, window } = await setUp();
    const first = server.pcid!;
    expect(first).toMatch(/^ka-[a-z2-7]{24}$/);
    expect(first).toBe(secretPcid(window.acceptable()[0]!.slots[RELAY_PCID_SLOT]!));
    const c = client();
    const sock = await c.connect();
    expect(await roundTrip(sock, 'one')).toBe('echo one');
    await server.settled();
    // Moved on while the first session still runs (parallel).
    const second = server.pcid!;
    expect(second).not.toBe(first);
    expect(await known(first)).toBe(false);
    expect(await known(second)).toBe(true);
    const sock2 = await c.connect();
    expect(await roundTrip(sock2, 'two')).toBe('echo two');
    expect(server.stats).toMatchObject({ accepted: 2, refused: 0 });
    await sock.disconnect();
    await sock2.disconnect();
  });

  it('a client behind the server (another holder used positions) catches up within its lookahead; with none it fails typed', async () => {
    const { server, client } = await setUp();
    const other = client();
    for (let i = 0; i < 3; i++) {
      const s = await other.connect();
      await s.disconnect();
      await server.settled();
    }
    await expect(client(0).connect()).rejects.toMatchObject({ code: 'GS_ERR_UNKNOWN_PCID' });
    const late = await client(4).connect();
    expect(await roundTrip(late, 'caught up')).toBe('echo caught up');
    await late.disconnect();
  });

  it('serial: during a session the server answers to no secret PCID; after it ends, to the next one', async () => {
    const { server, client, known, window } = await setUp('serial');
    const c = client();
    const sock = await c.connect();
    // The client's connect resolves when its side is up; the server sees it a moment later.
    await waitFor(async () => server.stats.sessions === 1);
    await server.settled();
    const next = secretPcid(window.acceptable()[0]!.slots[RELAY_PCID_SLOT]!);
    expect(server.pcid).not.toBe(next);
    expect(await known(next)).toBe(false);
    // The client's next attempt misses (its lookahead of 0: one try).
    await expect(new KeyAddressRelayClient({ ...setUpCommon(), cursor: cursorAt(1), lookahead: 0, timeoutMs: 10_000 }).connect()).rejects.toMatchObject({ code: 'GS_ERR_UNKNOWN_PCID' });
    await sock.disconnect();
    await waitFor(async () => server.stats.sessions === 0 && (await known(next)));
    const again = await client(3).connect();
    expect(await roundTrip(again, 'after')).toBe('echo after');
    await again.disconnect();
  });

  it('serial: sessions that end at once (before the hiding rename lands) still bring the server back', async () => {
    const { server, client } = await setUp('serial');
    const c = client(2);
    for (let i = 0; i < 3; i++) {
      const sock = await c.connect();
      await sock.disconnect(); // at once: the server may still be hiding
      await waitFor(async () => server.stats.sessions === 0);
      await server.settled(); // every queued rename done: listening on the next PCID
    }
    expect(server.stats.accepted).toBe(3);
  });

  it('just after an epoch boundary (the window accepts both epochs) the server registers in the new one, where clients are', async () => {
    const { server, client, window } = await setUp('parallel', () => 490_001 * HOUR + 10_000);
    expect(new Set(window.acceptable().map((p) => p.t))).toEqual(new Set([490_000, 490_001]));
    const sock = await client(0).connect();
    expect(await roundTrip(sock, 'new epoch')).toBe('echo new epoch');
    await sock.disconnect();
    expect(server.stats.accepted).toBe(1);
  });

  it('at the boundary itself it moves into the new epoch, though the window does not change then', async () => {
    let now = 490_001 * HOUR - 1000; // 1 s before the boundary: the window already accepts both epochs
    const { server, client, known, window } = await setUp('parallel', () => now);
    const before = server.pcid!;
    expect(before).toBe(secretPcid(window.acceptable().find((p) => p.t === 490_000)!.slots[RELAY_PCID_SLOT]!));
    now = 490_001 * HOUR + 1000;
    // The boundary timer fires on the real clock ~1 s after start; wait for the rename (bounded).
    await waitFor(async () => server.pcid !== before);
    await server.settled();
    expect(await known(before)).toBe(false);
    const sock = await client(0).connect();
    expect(await roundTrip(sock, 'moved')).toBe('echo moved');
    await sock.disconnect();
  });

  it('server offline: the client keeps the PCID it found (no position consumed) and reaches the server when it is back', async () => {
    system = await startSystem();
    const common = { controller: system.controller.address, roots: [system.pki.root] };
    const identity = createServerIdentity();
    const first = await KeyAddressRelayServer.start({ ...common, identity, window: KeyAddressServer.fromPassphraseSync(SECRET, OPTIONS), now: OPTIONS.now }, echo);
    const pcid = first.pcid!;
    await first.close();
    const cursor = KeyAddressClient.fromPassphraseSync(SECRET, OPTIONS);
    const c = new KeyAddressRelayClient({ ...common, cursor, lookahead: 0, timeoutMs: 10_000 });
    await expect(c.connect()).rejects.toMatchObject({ code: 'GS_ERR_SERVER_OFFLINE' });
    expect(cursor.position.n).toBe(1);
    await expect(c.connect()).rejects.toMatchObject({ code: 'GS_ERR_SERVER_OFFLINE' });
    expect(cursor.position.n).toBe(1); // the kept PCID was tried, nothing consumed
    // The server comes back (same identity, a window restored to where it was: position 0).
    const again = await KeyAddressRelayServer.start({ ...common, identity, window: KeyAddressServer.fromPassphraseSync(SECRET, OPTIONS), now: OPTIONS.now }, echo);
    closers.push(() => again.close());
    expect(again.pcid).toBe(pcid);
    const sock = await c.connect();
    expect(await roundTrip(sock, 'back')).toBe('echo back');
    await sock.disconnect();
  });

  it('a window without the slot is a clear configuration error', async () => {
    system = await startSystem();
    const window = KeyAddressServer.fromPassphraseSync(SECRET, { prefix: OPTIONS.prefix, now: OPTIONS.now });
    await expect(
      KeyAddressRelayServer.start({ controller: system.controller.address, roots: [system.pki.root], identity: createServerIdentity(), window }, echo),
    ).rejects.toThrow(/slots: \['relay-pcid'\]/);
  });
});

function setUpCommon() {
  return { controller: system!.controller.address, roots: [system!.pki.root] };
}

/** A fresh client cursor moved to position n of the current epoch. */
function cursorAt(n: number) {
  const c = KeyAddressClient.fromPassphraseSync(SECRET, OPTIONS); // the same fixed clock as setUp's default
  for (let i = 0; i < n; i++) c.next();
  return c;
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
