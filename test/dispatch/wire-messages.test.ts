/**
 * Channel messages and the DispatchChannel over an in-memory SockIo pair
 * (docs/dispatch.md, "Channel messages").
 */
import { describe, expect, it } from 'vitest';
import { DispatchError, GatesockError, SocketError } from '../../src/errors/index.js';
import { SockIo } from '../../src/socket/index.js';
import { memoryPair } from '../../src/transport/index.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { generateIdentityKey } from '../../src/session/index.js';
import {
  CHANNEL_AUTH_CONTEXT,
  DispatchChannel,
  MessageReader,
  decodeMessage,
  encodeMessage,
  newChannelChallenge,
  newDispatchId,
  sha256Digest,
  signChannelAuth,
  verifyChannelAuth,
  type ChannelMessage,
} from '../../src/delivery/dispatch/wire/index.js';
import { codeOf } from './wire-helpers.js';

const MSID = 'MSID-' + 'AB'.repeat(32);
const id = newDispatchId();
const digest = sha256Digest(new Uint8Array([1, 2, 3]));
const CHALLENGE = 'c0'.repeat(32);
const SIG = 'A'.repeat(85) + 'A'; // 64 bytes of base64url: 86 characters
const body = new Uint8Array(3000).map((_, i) => i & 0xff);

const samples: ChannelMessage[] = [
  { t: 'hello', agentMsid: MSID, certificate: 'MIIB', pending: [{ report: 'AAAA' }, { report: 'BBBB' }], challenge: CHALLENGE },
  { t: 'hello', agentMsid: MSID, certificate: 'MIIB', pending: [], challenge: CHALLENGE },
  { t: 'auth', signature: SIG },
  { t: 'run', binding: 'eyJ0', inline: false },
  { t: 'run', binding: 'eyJ0', inline: true, body },
  { t: 'fetch', digest },
  { t: 'bundle', digest, body: new Uint8Array([7]) },
  { t: 'rerun', binding: 'eyJ0' },
  { t: 'accepted', dispatchId: id, run: 0 },
  { t: 'report', report: 'AAAA', certificate: 'MIIB' },
  { t: 'ack', dispatchId: id, run: 4 },
  { t: 'cancel', dispatchId: id },
  { t: 'error', code: 'GS_ERR_DISPATCH_ROLLBACK', message: 'older than v3' },
  { t: 'error', code: 'GS_ERR_DISPATCH_EXPIRED', message: 'é', dispatchId: id, run: 1 },
];


/** A frame with the given header text and body. */
function frame(header: string, b: Uint8Array = new Uint8Array()): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(6 + h.length + b.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 2 + h.length + b.length);
  v.setUint16(4, h.length);
  out.set(h, 6);
  out.set(b, 6 + h.length);
  return out;
}

describe('message codec', () => {
  it('round-trips every type; the layout is as drawn', () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      expect(decodeMessage(bytes)).toEqual(m);
    }
    const ack = encodeMessage({ t: 'ack', dispatchId: id, run: 4 });
    const header = `{"t":"ack","dispatchId":"${id}","run":4}`;
    expect(ack).toEqual(frame(header));
    // Key order of the caller's object does not matter when encoding.
    expect(encodeMessage({ run: 4, dispatchId: id, t: 'ack' } as ChannelMessage)).toEqual(ack);
  });

  it('refuses bad headers and bodies', () => {
    const bad = [
      frame(`{"t":"ack","run":4,"dispatchId":"${id}"}`), // order
      frame(`{"t":"ack", "dispatchId":"${id}","run":4}`), // space
      frame(`{"t":"ack","dispatchId":"${id}","run":4,"x":1}`),
      frame(`{"t":"ack","dispatchId":"${id}","run":-1}`),
      frame(`{"t":"nope"}`),
      frame(`[]`),
      frame(`{"t":"ack","dispatchId":"${id}","run":4}`, new Uint8Array([1])), // body where none may be
      frame(`{"t":"bundle","digest":"${digest}"}`), // no body where one must be
      frame(`{"t":"run","binding":"eyJ0","inline":true}`),
      frame(`{"t":"run","binding":"eyJ0","inline":false}`, new Uint8Array([1])),
      frame(`{"t":"run","binding":"ey+0","inline":false}`),
      frame(`{"t":"hello","agentMsid":"${MSID.toLowerCase()}","certificate":"MIIB","pending":[],"challenge":"${CHALLENGE}"}`),
      frame(`{"t":"hello","agentMsid":"${MSID}","certificate":"MIIB","pending":[]}`), // no challenge
      frame(`{"t":"hello","agentMsid":"${MSID}","certificate":"MIIB","pending":[],"challenge":"${CHALLENGE.toUpperCase()}"}`),
      frame(`{"t":"hello","agentMsid":"${MSID}","certificate":"MIIB","pending":[],"challenge":"${CHALLENGE.slice(2)}"}`),
      frame(`{"t":"auth","signature":"${SIG.slice(1)}"}`), // 85 characters
      frame(`{"t":"auth","signature":"${SIG}A"}`),
      frame(`{"t":"auth","signature":"${SIG.slice(1)}="}`),
      frame(`{"t":"auth","signature":"${SIG}"}`, new Uint8Array([1])),
      frame(`{"t":"auth"}`),
      frame(`{"t":"error","code":"lower","message":"x"}`),
      frame(`{"t":"error","code":"X","message":"x","run":1,"dispatchId":"${id}"}`),
      frame('{"t":"cancel","dispatchId":"' + id + '"'),
      new Uint8Array([0, 0, 0, 1, 0]),
    ];
    for (const b of bad) expect(codeOf(() => decodeMessage(b)), new TextDecoder().decode(b.subarray(6))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => encodeMessage({ t: 'hello', agentMsid: MSID, certificate: 'x', pending: Array(65).fill({ report: 'AA' }), challenge: CHALLENGE }))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => encodeMessage({ t: 'ack', dispatchId: id, run: 1n } as unknown as ChannelMessage))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });

  it('the reader takes any chunking, caps len before buffering, and stays failed', () => {
    const all = new Uint8Array(samples.reduce((n, m) => n + encodeMessage(m).length, 0));
    let off = 0;
    for (const m of samples) {
      const b = encodeMessage(m);
      all.set(b, off);
      off += b.length;
    }
    for (const step of [1, 5, 4096, all.length]) {
      const r = new MessageReader();
      const got: ChannelMessage[] = [];
      for (let i = 0; i < all.length; i += step) got.push(...r.push(all.subarray(i, i + step)));
      expect(got).toEqual(samples);
      expect(r.buffered).toBe(0);
    }
    const small = new MessageReader({ maxBytes: 1000 });
    expect(codeOf(() => small.push(new Uint8Array([0, 0, 0x03, 0xe9])))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => small.push(encodeMessage(samples[7]!)))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(new MessageReader({ maxBytes: 1000 }).push(new Uint8Array([0, 0, 0x03, 0xe8]))).toEqual([]);
  });
});

function pair(options: { maxBacklog?: number } = {}): [DispatchChannel, DispatchChannel] {
  const [a, b] = memoryPair();
  return [new DispatchChannel(SockIo.fromStream(a), options), new DispatchChannel(SockIo.fromStream(b), options)];
}

describe('channel auth', () => {
  it('signs "gatesock-dispatch-channel-v1\\n" ‖ {"challenge","agentMsid"} with the center key; fresh challenges', () => {
    const key = generateIdentityKey();
    const challenge = newChannelChallenge();
    expect(challenge).toMatch(/^[0-9a-f]{64}$/);
    expect(newChannelChallenge()).not.toBe(challenge);
    const signature = signChannelAuth({ challenge, agentMsid: MSID }, key);
    const signed = new TextEncoder().encode(`${CHANNEL_AUTH_CONTEXT}{"challenge":"${challenge}","agentMsid":"${MSID}"}`);
    // Checked with an independent Ed25519 implementation over the bytes the layout says.
    expect(ed25519.verify(Buffer.from(signature, 'base64url'), signed, key.publicKey)).toBe(true);
    expect(verifyChannelAuth(signature, { challenge, agentMsid: MSID }, key.publicKey)).toBe(true);
    expect(decodeMessage(encodeMessage({ t: 'auth', signature }))).toEqual({ t: 'auth', signature });
    expect(verifyChannelAuth(signature, { challenge: newChannelChallenge(), agentMsid: MSID }, key.publicKey)).toBe(false);
    expect(verifyChannelAuth(signature, { challenge, agentMsid: MSID }, generateIdentityKey().publicKey)).toBe(false);
    expect(verifyChannelAuth('not base64url!', { challenge, agentMsid: MSID }, key.publicKey)).toBe(false);
    expect(codeOf(() => signChannelAuth({ challenge: 'AB'.repeat(32), agentMsid: MSID }, key))).toBe('GS_ERR_DISPATCH_MALFORMED');
    expect(codeOf(() => verifyChannelAuth(signature, { challenge, agentMsid: 'nope' }, key.publicKey))).toBe('GS_ERR_DISPATCH_MALFORMED');
  });
});

describe('DispatchChannel', () => {
  it('carries every message, in order, to listeners', async () => {
    const [x, y] = pair();
    const got: ChannelMessage[] = [];
    const done = new Promise<void>((resolve) => y.on('message', (m) => got.push(m) === samples.length && resolve()));
    await Promise.all(samples.map((m) => x.send(m)));
    await done;
    expect(got).toEqual(samples);
    await x.close();
    await y.close();
  });

  it('next() takes matching messages (from the backlog too); others go to listeners', async () => {
    const [x, y] = pair();
    await x.send({ t: 'cancel', dispatchId: id }); // nobody listens yet: backlog
    await x.send({ t: 'accepted', dispatchId: id, run: 0 });
    expect(await y.next((m) => m.t === 'accepted', 2000)).toEqual({ t: 'accepted', dispatchId: id, run: 0 });
    expect(await y.next(undefined, 2000)).toEqual({ t: 'cancel', dispatchId: id });
    const seen: ChannelMessage[] = [];
    y.on('message', (m) => seen.push(m));
    const ack = y.next((m) => m.t === 'ack', 2000);
    await x.send({ t: 'fetch', digest });
    await x.send({ t: 'ack', dispatchId: id, run: 0 });
    expect((await ack).t).toBe('ack');
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([{ t: 'fetch', digest }]);
    await x.close();
    await y.close();
  });

  it('next() times out with DISPATCH_TIMEOUT and the channel stays usable', async () => {
    const [x, y] = pair();
    await expect(y.next(undefined, 30)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_TIMEOUT' });
    await x.send({ t: 'cancel', dispatchId: id });
    expect((await y.next(undefined, 2000)).t).toBe('cancel');
    await x.close();
    await y.close();
  });

  it('a clean close ends the peer: close event without error, waiters rejected', async () => {
    const [x, y] = pair();
    const closed = new Promise<GatesockError | undefined>((r) => y.on('close', r));
    const waiting = y.next(undefined, 5000);
    await x.close();
    expect(await closed).toBeUndefined();
    await expect(waiting).rejects.toBeInstanceOf(SocketError);
    expect(y.closed).toBe(true);
    await expect(y.send({ t: 'cancel', dispatchId: id })).rejects.toMatchObject({ code: 'GS_ERR_NOT_CONNECTED' });
  });

  it('garbage from the peer closes only that channel, with MALFORMED', async () => {
    const [a, b] = memoryPair();
    const raw = SockIo.fromStream(a);
    const y = new DispatchChannel(SockIo.fromStream(b));
    const closed = new Promise<GatesockError | undefined>((r) => y.on('close', r));
    await raw.send(new Uint8Array([0, 0, 0, 8, 0, 2, 0x7b, 0x7d, 0, 0, 0, 0]));
    const err = await closed;
    expect(err).toBeInstanceOf(DispatchError);
    expect(err?.code).toBe('GS_ERR_DISPATCH_MALFORMED');
    await expect(y.next(undefined, 1000)).rejects.toBe(err);
    await raw.disconnect();
  });

  it('backlog full: reading pauses, nothing is lost', async () => {
    const [x, y] = pair({ maxBacklog: 2 });
    const sent: ChannelMessage[] = [];
    for (let run = 0; run < 50; run++) sent.push({ t: 'ack', dispatchId: id, run });
    const sending = Promise.all(sent.map((m) => x.send(m)));
    const got: ChannelMessage[] = [];
    for (let i = 0; i < sent.length; i++) got.push(await y.next(undefined, 2000));
    await sending;
    expect(got).toEqual(sent);
    await x.close();
    await y.close();
  });

  it('a large body crosses intact, with concurrent small messages not interleaved', async () => {
    const [x, y] = pair();
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    await Promise.all([x.send({ t: 'bundle', digest, body: big }), x.send({ t: 'cancel', dispatchId: id })]);
    const m = await y.next(undefined, 5000);
    expect(m.t).toBe('bundle');
    expect(m.t === 'bundle' && Buffer.compare(m.body, big)).toBe(0);
    expect((await y.next(undefined, 5000)).t).toBe('cancel');
    await x.close();
    await y.close();
  });
});
