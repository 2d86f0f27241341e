// Fuzzing the handshake (issue 2, "Bad input"): random and mutated handshake
// messages, identity payloads and record streams must only ever produce a
// typed gatesock error — never a crash, a hang or a wrong success.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GatesockError } from '../../src/errors/index.js';
import { nativeBackend, nobleBackend } from '../../src/session/crypto/index.js';
import { HandshakeState } from '../../src/session/noise/index.js';
import { decodeIdentityPayload, encodeIdentityPayload } from '../../src/session/secure/identity-payload.js';
import { RecordReader } from '../../src/session/secure/record-reader.js';
import { secureAccept } from '../../src/session/secure/channel.js';
import { memoryPair } from '../../src/transport/index.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';

const backend = nativeBackend() ?? nobleBackend;
const fixed = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const key = (seed: number) => ({ privateKey: fixed(32, seed), publicKey: backend.x25519.publicKey(fixed(32, seed)) });
const I_S = key(1);
const R_S = key(2);
const I_E = fixed(32, 3);
const R_E = fixed(32, 4);

const initiator = () => new HandshakeState({ pattern: 'XX', initiator: true, backend, staticKey: I_S, ephemeralPrivateKey: I_E });
const responder = () => new HandshakeState({ pattern: 'XX', initiator: false, backend, staticKey: R_S, ephemeralPrivateKey: R_E });

// One honest run, whose messages the mutations start from.
const honest = (() => {
  const i = initiator();
  const r = responder();
  const m1 = i.writeMessage();
  r.readMessage(m1);
  const m2 = r.writeMessage(new TextEncoder().encode('responder identity'));
  i.readMessage(m2);
  const m3 = i.writeMessage(new TextEncoder().encode('initiator identity'));
  return { m1, m2, m3 };
})();

/** A mutation: flip, set, insert or delete bytes, or truncate. */
const mutated = (base: Uint8Array) =>
  fc
    .array(
      fc.oneof(
        fc.record({ op: fc.constant('xor' as const), at: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ op: fc.constant('ins' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant('del' as const), at: fc.nat(), v: fc.constant(0) }),
        fc.record({ op: fc.constant('cut' as const), at: fc.nat(), v: fc.constant(0) }),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((ops) => {
      let b = Array.from(base);
      for (const { op, at, v } of ops) {
        const i = b.length === 0 ? 0 : at % b.length;
        if (op === 'xor' && b.length > 0) b[i] = b[i]! ^ v;
        else if (op === 'ins') b.splice(i, 0, v);
        else if (op === 'del') b.splice(i, 1);
        else if (op === 'cut') b = b.slice(0, i);
      }
      return Uint8Array.from(b);
    })
    .filter((b) => Buffer.compare(Buffer.from(b), Buffer.from(base)) !== 0);

function typedOrOk(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof GatesockError)) throw e;
  }
}

describe('handshake fuzz', () => {
  it('responder: random first messages give a payload or a typed error (20,000 cases)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (m) => {
        const r = responder();
        typedOrOk(() => {
          r.readMessage(m);
          r.writeMessage();
        });
      }),
      { numRuns: 20_000 },
    );
  });

  it('initiator: every mutated second message is refused with a typed error (20,000 cases)', () => {
    fc.assert(
      fc.property(mutated(honest.m2), (m2) => {
        const i = initiator();
        i.writeMessage();
        expect(() => i.readMessage(m2)).toThrow(GatesockError);
        expect(i.state).toBe('failed');
      }),
      { numRuns: 20_000 },
    );
  });

  it('responder: every mutated third message is refused with a typed error (10,000 cases)', () => {
    const atRead3 = () => {
      const r = responder();
      r.readMessage(honest.m1);
      r.writeMessage(new TextEncoder().encode('responder identity'));
      return r;
    };
    // The honest third message is accepted, so a refusal below is the mutation's doing.
    expect(new TextDecoder().decode(atRead3().readMessage(honest.m3))).toBe('initiator identity');
    fc.assert(
      fc.property(mutated(honest.m3), (m3) => {
        expect(() => atRead3().readMessage(m3)).toThrow(GatesockError);
      }),
      { numRuns: 10_000 },
    );
  });

  it('identity payloads: random and mutated input decode or fail typed; valid ones round-trip (30,000 cases)', () => {
    const valid = encodeIdentityPayload({ chain: [fixed(300, 5), fixed(40, 6)], signature: fixed(64, 7) });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated(valid)), (b) => {
        try {
          const p = decodeIdentityPayload(b);
          // Canonical: whatever decodes re-encodes to the same bytes.
          expect(Buffer.from(encodeIdentityPayload(p)).equals(Buffer.from(b))).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(GatesockError);
        }
      }),
      { numRuns: 30_000 },
    );
  });

  it('record reader: arbitrary chunkings of a record stream give the same records (20,000 cases)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }), (records, cuts) => {
        const stream = Buffer.concat(records.map((r) => Buffer.concat([Buffer.from([r.length >> 8, r.length & 0xff]), Buffer.from(r)])));
        const reader = new RecordReader();
        const out: Buffer[] = [];
        let off = 0;
        let k = 0;
        while (off < stream.length) {
          const n = cuts[k++ % cuts.length]!;
          reader.push(stream.subarray(off, off + n));
          off += n;
          for (let r = reader.next(); r; r = reader.next()) out.push(Buffer.from(r));
        }
        expect(out).toEqual(records.map((r) => Buffer.from(r)));
        expect(reader.pending).toBe(0);
      }),
      { numRuns: 20_000 },
    );
  });

  it('a responder fed random bytes over a stream fails typed, closes, and leaves another session alone (300 cases)', async () => {
    // A healthy session runs alongside the whole time.
    const [ha, hb] = memoryPair();
    const healthy = Promise.all([
      import('../../src/session/secure/channel.js').then((m) => m.secureConnect(ha, { identity: fakeIdentity('a'), verifyPeer: fakeVerifier() })),
      secureAccept(hb, { identity: fakeIdentity('b'), verifyPeer: fakeVerifier() }),
    ]);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(Uint8Array.from([0, 32, ...honest.m1]))), async (junk) => {
        const [x, y] = memoryPair();
        const result = secureAccept(y, { identity: fakeIdentity('victim'), verifyPeer: fakeVerifier(), handshakeTimeoutMs: 200 }).then(
          () => 'accepted',
          (e) => e,
        );
        x.resume();
        x.write(junk);
        x.end();
        const r = await result;
        expect(r).toBeInstanceOf(GatesockError);
        expect(y.closed).toBe(true);
      }),
      { numRuns: 300 },
    );
    const [c, s] = await healthy;
    const got = new Promise<number>((r) => s.once('data', (d) => r(d.length)));
    s.resume();
    c.write(new Uint8Array(1234));
    expect(await got).toBe(1234);
  });
});
