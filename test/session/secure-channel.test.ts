import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { memoryPair, type ByteStream } from '../../src/transport/index.js';
import { secureAccept, secureConnect, type SecureChannel, type SecureChannelOptions } from '../../src/session/secure/channel.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';

function opts(name: string, extra: Partial<SecureChannelOptions> = {}): SecureChannelOptions {
  return { identity: fakeIdentity(name), verifyPeer: fakeVerifier(), ...extra };
}

async function pair(a: Partial<SecureChannelOptions> = {}, b: Partial<SecureChannelOptions> = {}) {
  const [x, y] = memoryPair();
  const [client, server] = await Promise.all([secureConnect(x, opts('client', a)), secureAccept(y, opts('server', b))]);
  return { client, server, raw: [x, y] as const };
}

function collect(s: ByteStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c) => parts.push(Buffer.from(c)));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('close', (e) => (e ? reject(e) : resolve(Buffer.concat(parts))));
    s.resume();
  });
}

async function pushAll(s: ByteStream, data: Uint8Array, chunk: number) {
  for (let off = 0; off < data.length; off += chunk) {
    if (!s.write(data.subarray(off, off + chunk))) await new Promise<void>((r) => s.once('drain', () => r()));
  }
  s.end();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('secure channel', () => {
  it('authenticates both ends and agrees on the handshake hash', async () => {
    const { client, server } = await pair();
    expect(client.peer.publicKey).toEqual(fakeIdentity('server').publicKey);
    expect(server.peer.publicKey).toEqual(fakeIdentity('client').publicKey);
    expect(Buffer.from(client.handshakeHash).equals(Buffer.from(server.handshakeHash))).toBe(true);
    expect(client.info.kind).toBe('secure');
  });

  it.each([
    ['native', 'native'],
    ['noble', 'native'],
    ['native', 'noble'],
  ] as const)('carries 3 MiB both ways intact (%s ↔ %s)', async (ba, bb) => {
    const { client, server } = await pair({ backend: ba }, { backend: bb });
    const up = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff);
    const down = new Uint8Array(3 << 20).map((_, i) => (i * 13 + 1) & 0xff);
    const [gotUp, gotDown] = await Promise.all([collect(server), collect(client), pushAll(client, up, 50_000), pushAll(server, down, 70_001)]);
    expect(sha(gotUp)).toBe(sha(up));
    expect(sha(gotDown)).toBe(sha(down));
  });

  it('coalesces small writes in one tick into one record', async () => {
    const { client, server, raw } = await pair();
    let rawChunks = 0;
    raw[1].on('data', () => rawChunks++);
    const got = collect(server);
    for (let i = 0; i < 100; i++) client.write(Uint8Array.of(i));
    client.end();
    const data = await got;
    expect(Array.from(data)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(rawChunks).toBeLessThanOrEqual(2);
  });

  it('keeps no reference to a written chunk: the writer may reuse its buffer at once', async () => {
    const { client, server } = await pair();
    const got = collect(server);
    const buf = new Uint8Array(1000);
    const expected: number[] = [];
    for (let i = 0; i < 50; i++) {
      buf.fill(i);
      client.write(buf); // small: staged for a microtask, so it must be copied
      expected.push(...buf);
    }
    buf.fill(0xee);
    client.end();
    expect(Buffer.from(await got).equals(Buffer.from(expected))).toBe(true);
  });

  it('rekeys in step on both ends (and really changes keys)', async () => {
    const { client, server } = await pair({ rekeyInterval: 3 }, { rekeyInterval: 3 });
    const data = new Uint8Array(400_000).map((_, i) => i & 0xff);
    const [got] = await Promise.all([collect(server), pushAll(client, data, 1000)]);
    expect(sha(got)).toBe(sha(data));
    const bad = await pair({ rekeyInterval: 3 }, { rekeyInterval: 4 });
    const err = collect(bad.server).then(
      () => undefined,
      (e) => e,
    );
    await pushAll(bad.client, data, 65519).catch(() => undefined);
    expect((await err)?.code).toBe('GS_ERR_DECRYPT_FAILED');
  });

  it('closes with GS_ERR_DECRYPT_FAILED on a tampered record', async () => {
    const [x, y] = memoryPair();
    // A man in the middle that flips one bit in the first post-handshake record.
    const [mx, my] = memoryPair();
    // client(x) ⇄ y [man in the middle] mx ⇄ my(server)
    let chunks = 0;
    y.on('data', (c) => {
      if (++chunks === 3) c[c.length - 1]! ^= 1; // msg1, msg3, then the first data record
      mx.write(c);
    });
    mx.on('data', (c) => y.write(c));
    y.resume();
    mx.resume();
    const [client, server] = await Promise.all([secureConnect(x, opts('c')), secureAccept(my, opts('s'))]);
    const closed = new Promise((r) => server.on('close', r));
    server.resume();
    client.write(new TextEncoder().encode('hello'));
    const e = (await closed) as { code: string };
    expect(e.code).toBe('GS_ERR_DECRYPT_FAILED');
    client.destroy();
  });

  it('refuses a peer the verifier rejects, on both ends', async () => {
    const [x, y] = memoryPair();
    const results = await Promise.allSettled([
      secureConnect(x, opts('c', { verifyPeer: fakeVerifier({ refuse: true }) })),
      secureAccept(y, opts('s')),
    ]);
    expect(results[0].status).toBe('rejected');
    expect((results[0] as PromiseRejectedResult).reason.code).toBe('GS_ERR_CERT_UNTRUSTED');
    expect((results[1] as PromiseRejectedResult).reason.code).toBe('GS_ERR_HANDSHAKE_FAILED');
    expect(x.closed && y.closed).toBe(true);
  });

  it('refuses an identity whose signature does not cover its Noise static key', async () => {
    const [x, y] = memoryPair();
    const liar = { ...fakeIdentity('liar'), sign: () => fakeIdentity('liar').sign(new Uint8Array(8)) };
    const results = await Promise.allSettled([secureConnect(x, opts('c')), secureAccept(y, { identity: liar, verifyPeer: fakeVerifier() })]);
    expect((results[0] as PromiseRejectedResult).reason.code).toBe('GS_ERR_PEER_REJECTED');
  });

  it('drops a handshake that does not complete within the timeout', async () => {
    const [x] = memoryPair();
    const t0 = Date.now();
    await expect(secureConnect(x, opts('c', { handshakeTimeoutMs: 150 }))).rejects.toMatchObject({ code: 'GS_ERR_HANDSHAKE_TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(x.closed).toBe(true);
  });

  it('keeps data and the end the initiator sends right behind its last handshake message, while the responder still verifies it', async () => {
    const [x, y] = memoryPair();
    // A slow (async) verifier on the responder: the initiator's records and its end arrive meanwhile.
    const slow: SecureChannelOptions['verifyPeer'] = async (chain) => {
      await new Promise((r) => setTimeout(r, 30));
      return fakeVerifier()(chain);
    };
    const accepting = secureAccept(y, opts('server', { verifyPeer: slow }));
    const client = await secureConnect(x, opts('client'));
    client.write(new TextEncoder().encode('right behind the handshake'));
    client.end();
    client.resume();
    const server = await accepting;
    expect((await collect(server)).toString()).toBe('right behind the handshake');
  });

  it('treats a stream that ends mid-record as an error, not a clean end', async () => {
    const [x, y] = memoryPair();
    const [mx, my] = memoryPair();
    let chunks = 0;
    y.on('data', (c) => {
      chunks++;
      if (chunks === 3) {
        mx.write(c.subarray(0, 5));
        mx.end();
      } else if (chunks < 3) mx.write(c);
    });
    mx.on('data', (c) => y.write(c));
    y.resume();
    mx.resume();
    const [client, server] = await Promise.all([secureConnect(x, opts('c')), secureAccept(my, opts('s'))]);
    const got = collect(server).then(
      () => 'clean',
      (e) => e.code,
    );
    client.write(new Uint8Array(100));
    expect(await got).toBe('GS_ERR_TRANSPORT_CLOSED');
  });

  it('validates options by name', async () => {
    const [x] = memoryPair();
    await expect(secureConnect(x, opts('c', { handshakeTimeoutMs: 0 }))).rejects.toThrow(/handshakeTimeoutMs must be > 0/);
    await expect(secureConnect(x, opts('c', { rekeyInterval: 0.5 }))).rejects.toThrow(/rekeyInterval/);
  });

  it('starts paused and loses nothing written before resume', async () => {
    const { client, server } = await pair();
    client.write(new TextEncoder().encode('early'));
    client.end();
    await new Promise((r) => setTimeout(r, 20));
    expect(new TextDecoder().decode(await collect(server))).toBe('early');
  });
});
export type { SecureChannel };
