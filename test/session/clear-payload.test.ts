/**
 * Clear payload (pass-through) on the hop: split records of the secure
 * channel (header sealed, body as it is) and the multiplexed session's use
 * of them for connections that carry end-to-end ciphertext. What must hold:
 * the clear bytes arrive as sent and in order with the sealed ones; the
 * lengths and the header are authenticated; a reader that did not ask for
 * split records refuses them; a connection that did not enable clear
 * payload refuses it (its own reset, the session goes on) and delivers none
 * of it; other connections' bytes never appear on the wire.
 */
import { describe, expect, it } from 'vitest';
import { GatesockError } from '../../src/errors/index.js';
import { emitHeader, encodeFrame, FrameType, HEADER_LEN } from '../../src/session/frame.js';
import { MuxSession, type MuxConnection } from '../../src/session/mux/index.js';
import { secureAccept, secureConnect, type SecureChannel } from '../../src/session/secure/channel.js';
import { memoryPair, type ByteStream } from '../../src/transport/index.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';
import { nextConnection, pattern, readAll, sameBytes, waitFor, writeAll } from './mux-helpers.js';

type Backend = 'native' | 'noble';

/**
 * Two secure channels joined through a tap that records every byte from
 * the initiator to the responder (and may change a chunk on the way).
 */
async function tappedChannels(backends: [Backend, Backend] = ['native', 'native'], mutate?: (chunk: Uint8Array) => Uint8Array, parallelSeal = false) {
  const [a, tapA] = memoryPair();
  const [tapB, b] = memoryPair();
  const wire: Uint8Array[] = [];
  let handshakeDone = false;
  tapA.on('data', (c) => {
    const out = handshakeDone && mutate ? mutate(c.slice()) : c;
    wire.push(out.slice());
    tapB.write(out);
  });
  tapB.on('data', (c) => tapA.write(c));
  const close = (s: ByteStream, other: ByteStream) => {
    s.on('end', () => other.end());
    s.on('close', (e) => e && other.destroy(e));
  };
  close(tapA, tapB);
  close(tapB, tapA);
  tapA.resume();
  tapB.resume();
  const [client, server] = await Promise.all([
    secureConnect(a, { identity: fakeIdentity('client'), verifyPeer: fakeVerifier(), backend: backends[0], parallelSeal }),
    secureAccept(b, { identity: fakeIdentity('server'), verifyPeer: fakeVerifier(), backend: backends[1] }),
  ]);
  handshakeDone = true;
  wire.length = 0;
  return { client, server, wire: () => Buffer.concat(wire) };
}

const text = (s: string, times = 1) => new TextEncoder().encode(s.repeat(times));

function closed(s: ByteStream): Promise<GatesockError | undefined> {
  return new Promise((resolve) => (s.closed ? resolve(undefined) : s.once('close', resolve)));
}

describe('secure channel: split records', () => {
  it.each([
    ['native', 'native'],
    ['noble', 'native'],
    ['native', 'noble'],
  ] as const)('carry the header sealed and the clear bytes as they are, in order with sealed records (%s → %s)', async (ba, bb) => {
    const { client, server, wire } = await tappedChannels([ba, bb]);
    const events: string[] = [];
    const splits: { header: Uint8Array; clear: Uint8Array }[] = [];
    const data: Uint8Array[] = [];
    server.onSplitRecord = (header, clear) => {
      events.push('split');
      splits.push({ header: header.slice(), clear: Buffer.concat(clear) });
    };
    server.on('data', (d) => {
      events.push('data');
      data.push(d.slice());
    });
    server.resume();
    const before = text('SEALED-BEFORE-', 10);
    const header = text('HEADER-SECRET');
    const clear = pattern(65_535, 7);
    const after = text('SEALED-AFTER-', 7000); // more than one record
    const chunk = Buffer.concat([before, header, clear, after]);
    client.writeWithClear(chunk, [{ offset: before.length, sealed: header.length, clear: clear.length }]);
    await waitFor(() => Buffer.concat(data).length === before.length + after.length, 5000, 'all data');
    expect(events[0]).toBe('data');
    expect(events[1]).toBe('split');
    expect(events.slice(2).every((e) => e === 'data')).toBe(true);
    expect(Buffer.concat(data).equals(Buffer.concat([before, after]))).toBe(true);
    expect(splits).toHaveLength(1);
    expect(Buffer.from(splits[0]!.header).toString()).toBe('HEADER-SECRET');
    expect(sameBytes(splits[0]!.clear, clear)).toBe(true);
    const onWire = wire();
    // The clear part crosses as it is; nothing sealed does.
    expect(onWire.includes(Buffer.from(clear))).toBe(true);
    expect(onWire.includes(Buffer.from('HEADER-SECRET'))).toBe(false);
    expect(onWire.includes(Buffer.from('SEALED-'))).toBe(false);
    // Sealed record, then the split record's prefix: marker 0x0000, S = 16 + 13, C = 65535.
    const at = 2 + before.length + 16;
    expect([...onWire.subarray(at, at + 6)]).toEqual([0, 0, 0, 29, 0xff, 0xff]);
    client.destroy();
  });

  it('a reader that takes no split records refuses one: the channel fails with GS_ERR_FRAME_MALFORMED and delivers nothing of it', async () => {
    const { client, server } = await tappedChannels();
    const got: Uint8Array[] = [];
    server.on('data', (d) => got.push(d));
    server.resume();
    const ended = closed(server);
    client.writeWithClear(Buffer.concat([text('HDR'), text('INJECTED-PLAINTEXT')]), [{ offset: 0, sealed: 3, clear: 18 }]);
    const error = await ended;
    expect(error).toBeInstanceOf(GatesockError);
    expect(error?.code).toBe('GS_ERR_FRAME_MALFORMED');
    expect(got).toHaveLength(0);
  });

  it('the lengths are authenticated: a changed clear length fails the channel (GS_ERR_DECRYPT_FAILED)', async () => {
    let tampered = false;
    const { client, server } = await tappedChannels(['native', 'native'], (c) => {
      if (tampered || c[0] !== 0 || c[1] !== 0) return c;
      tampered = true;
      // C one less, and one clear byte fewer, so the framing still parses.
      const clearLen = ((c[4]! << 8) | c[5]!) - 1;
      c[4] = clearLen >> 8;
      c[5] = clearLen & 0xff;
      return c.subarray(0, c.length - 1);
    });
    const splits: Uint8Array[] = [];
    server.onSplitRecord = (_h, clear) => splits.push(Buffer.concat(clear));
    server.resume();
    const ended = closed(server);
    client.writeWithClear(Buffer.concat([text('HDR'), pattern(1000, 3)]), [{ offset: 0, sealed: 3, clear: 1000 }]);
    const error = await ended;
    expect(tampered).toBe(true);
    expect(error?.code).toBe('GS_ERR_DECRYPT_FAILED');
    expect(splits).toHaveLength(0);
  });

  it('the clear part is not authenticated by the hop (the end-to-end layer must be): a flipped clear byte arrives flipped', async () => {
    const { client, server } = await tappedChannels(['native', 'native'], (c) => {
      if (c[0] === 0 && c[1] === 0) c[c.length - 1]! ^= 0x01;
      return c;
    });
    const splits: Uint8Array[] = [];
    server.onSplitRecord = (_h, clear) => splits.push(Buffer.concat(clear));
    server.resume();
    const clear = pattern(100, 9);
    client.writeWithClear(Buffer.concat([text('HDR'), clear]), [{ offset: 0, sealed: 3, clear: 100 }]);
    await waitFor(() => splits.length === 1, 5000, 'split record');
    expect(splits[0]![99]).toBe(clear[99]! ^ 0x01);
    expect(server.closed).toBe(false);
    client.destroy();
  });

  it('takes the clear bytes from separate pieces (`data`) as from the chunk: the same record on the wire', async () => {
    const { client, server, wire } = await tappedChannels();
    const splits: Uint8Array[] = [];
    const data: Uint8Array[] = [];
    server.onSplitRecord = (_h, clear) => splits.push(Buffer.concat(clear));
    server.on('data', (d) => data.push(d.slice()));
    server.resume();
    const clear = pattern(3000, 4);
    client.writeWithClear(Buffer.concat([text('HDR'), text('AFTER')]), [{ offset: 0, sealed: 3, clear: 3000, data: [clear.subarray(0, 1000), clear.subarray(1000)] }]);
    await waitFor(() => splits.length === 1 && data.length === 1, 5000, 'split record and data');
    expect(sameBytes(splits[0]!, clear)).toBe(true);
    expect(Buffer.from(data[0]!).toString()).toBe('AFTER');
    const onWire = wire();
    expect([...onWire.subarray(0, 6)]).toEqual([0, 0, 0, 19, 3000 >> 8, 3000 & 0xff]);
    expect(onWire.subarray(6 + 19, 6 + 19 + 3000).equals(Buffer.from(clear))).toBe(true);
    client.destroy();
  });

  it('refuses spans outside the chunk, out of order or too long', async () => {
    const { client } = await tappedChannels();
    const chunk = new Uint8Array(100);
    expect(() => client.writeWithClear(chunk, [{ offset: 90, sealed: 5, clear: 10 }])).toThrow(RangeError);
    expect(() => client.writeWithClear(chunk, [{ offset: 0, sealed: 65, clear: 10 }])).toThrow(RangeError);
    expect(() => client.writeWithClear(chunk, [{ offset: 50, sealed: 5, clear: 5 }, { offset: 10, sealed: 5, clear: 5 }])).toThrow(RangeError);
    expect(() => client.writeWithClear(chunk, [{ offset: 0, sealed: 5, clear: 0 }])).toThrow(RangeError);
    expect(() => client.writeWithClear(chunk, [{ offset: 0, sealed: 5, clear: 10, data: [new Uint8Array(4), new Uint8Array(5)] }])).toThrow(RangeError);
    client.destroy();
  });
});

/** Two multiplexed sessions over tapped secure channels. */
async function tappedSessions(backends: [Backend, Backend] = ['native', 'native'], parallelSeal = false) {
  const t = await tappedChannels(backends, undefined, parallelSeal);
  const a = new MuxSession(t.client, { role: 'initiator' });
  const b = new MuxSession(t.server, { role: 'responder' });
  return { ...t, a, b };
}

async function openPair(a: MuxSession, b: MuxSession): Promise<[MuxConnection, MuxConnection]> {
  const incoming = nextConnection(b);
  const near = a.open();
  const far = await incoming;
  return [near, far];
}

describe('multiplexed session: clear payload', () => {
  it('a connection with clear payload crosses as it is and intact from where it started; bytes before, and another connection, stay sealed', async () => {
    const { a, b, wire } = await tappedSessions();
    const [clearNear, clearFar] = await openPair(a, b);
    clearNear.enableClearPayload();
    clearFar.enableClearPayload();
    const [sealedNear, sealedFar] = await openPair(a, b);
    // Before the switch (an endpoint's end-to-end handshake): sealed.
    const before = text('BEFORE-THE-SWITCH-', 5000);
    clearNear.write(before);
    clearNear.startClearPayload();
    // Stand-ins for end-to-end ciphertext: random-looking bytes; the sealed connection carries a marker.
    const up = pattern(3 << 20, 11);
    const marker = text('SEALED-CONNECTION-PLAINTEXT-', 40_000);
    const [gotClear, gotSealed] = await Promise.all([readAll(clearFar), readAll(sealedFar), writeAll(clearNear, up, 100_000), writeAll(sealedNear, marker, 70_000)]);
    expect(sameBytes(gotClear, Buffer.concat([before, up]))).toBe(true);
    expect(sameBytes(gotSealed, marker)).toBe(true);
    expect(clearFar.clearReceivedFrom).toBe(before.length);
    expect(sealedFar.clearReceivedFrom).toBe(Infinity);
    const onWire = wire();
    expect(onWire.includes(Buffer.from(up.subarray(1 << 20, (1 << 20) + 4096)))).toBe(true);
    expect(onWire.includes(Buffer.from(up.subarray(0, 64)))).toBe(true);
    expect(onWire.includes(Buffer.from('BEFORE-THE-SWITCH'))).toBe(false);
    expect(onWire.includes(Buffer.from('SEALED-CONNECTION'))).toBe(false);
    a.destroy();
  });

  it('interleaves with records sealed on worker threads (noble, parallelSeal) in nonce order', async () => {
    const { a, b, wire } = await tappedSessions(['noble', 'native'], true);
    const [clearNear, clearFar] = await openPair(a, b);
    clearNear.enableClearPayload();
    clearFar.enableClearPayload();
    clearNear.startClearPayload();
    const [sealedNear, sealedFar] = await openPair(a, b);
    const up = pattern(2 << 20, 21);
    const marker = text('SEALED-ON-WORKERS-', 120_000);
    const [gotClear, gotSealed] = await Promise.all([readAll(clearFar), readAll(sealedFar), writeAll(clearNear, up, 256 * 1024), writeAll(sealedNear, marker, 256 * 1024)]);
    expect(sameBytes(gotClear, up)).toBe(true);
    expect(sameBytes(gotSealed, marker)).toBe(true);
    expect(wire().includes(Buffer.from('SEALED-ON-WORKERS'))).toBe(false);
    a.destroy();
  });

  it('without enableClearPayload, startClearPayload does nothing: every byte stays sealed', async () => {
    const { a, b, wire } = await tappedSessions();
    const [near, far] = await openPair(a, b);
    near.startClearPayload();
    const data = text('NOT-AGREED-', 20_000);
    const [got] = await Promise.all([readAll(far), writeAll(near, data)]);
    expect(sameBytes(got, data)).toBe(true);
    expect(wire().includes(Buffer.from('NOT-AGREED-'))).toBe(false);
    a.destroy();
  });

  it('sealed DATA after clear payload started resets the connection (the peer switches once)', async () => {
    const { client, a, b } = await tappedSessions();
    const [near, far] = await openPair(a, b);
    far.enableClearPayload();
    const got: Uint8Array[] = [];
    far.on('data', (d) => got.push(d.slice()));
    far.resume();
    const farClosed = closed(far);
    const frame = new Uint8Array(HEADER_LEN + 5);
    emitHeader(frame, 0, FrameType.DATA, 0, near.id, 5);
    frame.set(text('CLEAR'), HEADER_LEN);
    (client as SecureChannel).writeWithClear(frame, [{ offset: 0, sealed: HEADER_LEN, clear: 5 }]);
    client.write(encodeFrame({ kind: 'DATA', connId: near.id, payload: text('SEALD') }));
    const error = await farClosed;
    expect(error?.code).toBe('GS_ERR_PROTOCOL');
    expect(Buffer.concat(got).toString()).toBe('CLEAR');
    a.destroy();
  });

  it('clear payload on a connection that did not enable it resets that connection only (GS_ERR_PROTOCOL), delivers none of it, and the session goes on', async () => {
    const { a, b } = await tappedSessions();
    const [near, far] = await openPair(a, b);
    near.enableClearPayload(); // only the sender: the receiver never agreed
    near.startClearPayload();
    const got: Uint8Array[] = [];
    far.on('data', (d) => got.push(d));
    far.resume();
    const farClosed = closed(far);
    const nearClosed = closed(near);
    near.write(text('INJECTED-PLAINTEXT'));
    const error = await farClosed;
    expect(error?.code).toBe('GS_ERR_PROTOCOL');
    expect(error?.message).toMatch(/outside the hop encryption/);
    expect(got).toHaveLength(0);
    expect((await nearClosed)?.code).toBe('GS_ERR_PROTOCOL'); // the RESET it got back
    // The session carries on.
    const [other, otherFar] = await openPair(a, b);
    const data = pattern(200_000, 5);
    const [back] = await Promise.all([readAll(otherFar), writeAll(other, data)]);
    expect(sameBytes(back, data)).toBe(true);
    a.destroy();
  });

  it('a split record that is not one DATA header fails the session (GS_ERR_FRAME_MALFORMED)', async () => {
    const { client, b } = await tappedSessions();
    const failed = new Promise<GatesockError | undefined>((resolve) => b.once('close', resolve));
    const body = new Uint8Array(HEADER_LEN + 4);
    emitHeader(body, 0, FrameType.WINDOW_UPDATE, 0, 1, 4);
    body.set([0, 0, 1, 0], HEADER_LEN);
    (client as SecureChannel).writeWithClear(body, [{ offset: 0, sealed: HEADER_LEN, clear: 4 }]);
    expect((await failed)?.code).toBe('GS_ERR_FRAME_MALFORMED');
  });
});
