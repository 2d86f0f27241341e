/**
 * Fuzzing every decoder of the updater's wire and the receiver's
 * authenticator: random bytes and mutated valid datagrams. Never a crash,
 * never anything but a DeliveryError; whatever decodes re-encodes to the
 * same bytes; and whatever the authenticator accepts is the genuine symbol.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeliveryError } from '../../src/errors/index.js';
import {
  UpdateAuthenticator,
  blockSourceCount,
  decodeControl,
  decodeDatagram,
  decodePacket,
  encodeControl,
  encodePacket,
  formatPublicKey,
  parsePublicKey,
  publicKeyToPem,
  splitRetransmissionRequest,
  verifyAnnouncement,
  type RetransmissionRequest,
  type Announcement,
  type WireMessage,
} from '../../src/delivery/index.js';
import { publisher, smallUpdate } from './fixtures/wire.js';

const RUNS = 10_000;

/** Decode with `fn`; a DeliveryError gives undefined, any other throw fails the property. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DeliveryError) return undefined;
    throw err;
  }
}

function reencode(m: WireMessage): Uint8Array {
  return m.kind === 'udate' || m.kind === 'recv' || m.kind === 'fin' ? encodeControl(m) : encodePacket(m);
}

const { prepared, file } = smallUpdate();
const l = prepared.layout;
const trust = { publisherKeys: [publisher.publicKey] };
const udate = prepared.announcementDatagram();
const verified = verifyAnnouncement((decodeControl(udate) as { announcement: Announcement }).announcement, trust);

/** Every datagram the sender of the fixture can send, plus receiver packets. */
const valid: Uint8Array[] = [udate, encodeControl({ kind: 'recv', name: 'app/update.bin', hostname: 'h1.example' }), encodeControl({ kind: 'fin', name: 'app/update.bin', status: 'ok applied' })];
for (let sbn = 0; sbn < l.blockCount; sbn++) {
  for (let page = 0; page < l.pagesPerBlock; page++) valid.push(prepared.manifestPacket(sbn, page));
  for (let esi = 0; esi < l.sourceSymbols + l.repairSymbols; esi++) {
    if (esi < l.sourceSymbols && esi >= blockSourceCount(l, sbn)) continue;
    valid.push(prepared.symbolPacket(sbn, esi));
  }
}
valid.push(prepared.roundPacket(1, 20, 300), prepared.ackPacket('h1.example'));
valid.push(encodePacket({ kind: 'notice', fileId: 3, host: 'h1.example', requests: 2 }));
valid.push(encodePacket({ kind: 'request', fileId: 3, highestInOrder: 9, round: 1, needs: [{ sbn: 0, need: 2 }], pages: [{ sbn: 1, page: 2 }], lacking: { sbn: 1, esis: [3, 5] } }));

/** A valid datagram with byte changes, a cut, or bytes added. */
const mutated = fc
  .tuple(
    fc.constantFrom(...valid),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 0, maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.uint8Array({ maxLength: 20 }),
  )
  .map(([bytes, flips, cut, tail]) => {
    let out = bytes.slice();
    for (const [at, x] of flips) out[at % out.length]! ^= x;
    if (cut !== undefined) out = out.subarray(0, cut % (out.length + 1));
    if (tail.length > 0 && cut === undefined) {
      const longer = new Uint8Array(out.length + tail.length);
      longer.set(out);
      longer.set(tail, out.length);
      out = longer;
    }
    return out;
  });

/** Bytes that look like control lines: random tokens from the grammar's alphabet. */
const lineish = fc
  .array(fc.oneof(fc.constantFrom('UDATE', 'RECV', 'FIN', 'rs8', 'rs16', '0', '1', '65535', 'a/b', '..', 'ok'), fc.string({ maxLength: 12 })), { maxLength: 18 })
  .map((t) => new Uint8Array(Buffer.from(t.join(' '), 'latin1')));

describe('decoder fuzz (never a crash, always typed, canonical when it decodes)', () => {
  it(`decodeControl: random bytes and token soup (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), lineish), (bytes) => {
        const m = attempt(() => decodeControl(bytes));
        if (m) expect(encodeControl(m)).toEqual(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it(`decodePacket: random bytes with a plausible first byte (${RUNS} cases)`, () => {
    const plausible = fc.tuple(fc.integer({ min: 0, max: 15 }), fc.constantFrom(3, 3, 3, 0, 4), fc.uint8Array({ minLength: 0, maxLength: 200 })).map(([type, len, rest]) => {
      const b = new Uint8Array(2 + rest.length);
      b[0] = 0x10 | type;
      b[1] = len;
      b.set(rest, 2);
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), plausible), (bytes) => {
        const p = attempt(() => decodePacket(bytes));
        if (p) expect(encodePacket(p)).toEqual(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it(`decodeDatagram: mutated valid datagrams of every kind (${RUNS * 2} cases)`, () => {
    fc.assert(
      fc.property(mutated, (bytes) => {
        const m = attempt(() => decodeDatagram(bytes));
        if (m) expect(reencode(m)).toEqual(bytes);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('authenticator fuzz', () => {
  it(`mutated datagrams through a receiver: typed refusals only, and what passes is genuine (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.array(mutated, { minLength: 1, maxLength: 8 }), (datagrams) => {
        const auth = new UpdateAuthenticator(verified);
        for (const page of valid.filter((b) => b[0] === 0x16)) auth.addPage(decodePacket(page) as never);
        for (const bytes of datagrams) {
          attempt(() => {
            const m = decodeDatagram(bytes);
            switch (m.kind) {
              case 'udate':
                verifyAnnouncement(m.announcement, trust);
                // Only the genuine line verifies.
                expect(bytes).toEqual(udate);
                return;
              case 'data':
              case 'repair': {
                const r = auth.checkSymbol(m);
                if (r.status !== 'ok') throw new Error('every page is held');
                const genuine = prepared.encoder.symbol(r.sbn * 0x10000 + r.esi);
                expect(Buffer.from(r.symbol).equals(Buffer.from(genuine))).toBe(true);
                if (r.esi < l.sourceSymbols) {
                  const at = (r.sbn * l.sourceSymbols + r.esi) * l.symbolSize;
                  expect(Buffer.from(r.symbol.subarray(0, Math.min(l.symbolSize, file.length - at))).equals(Buffer.from(file.subarray(at, at + l.symbolSize)))).toBe(true);
                }
                return;
              }
              case 'manifest':
                expect(auth.addPage(m)).toBe('duplicate');
                return;
              case 'round':
                auth.verifyRound(m);
                expect(bytes).toEqual(prepared.roundPacket(1, 20, 300));
                return;
              case 'ack':
                auth.verifyAck(m, 'h1.example');
                expect(bytes).toEqual(prepared.ackPacket('h1.example'));
                return;
              default:
                return;
            }
          });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`a fresh receiver given mutated manifest pages keeps only genuine ones (${RUNS} cases)`, () => {
    const pages = valid.filter((b) => b[0] === 0x16);
    fc.assert(
      fc.property(fc.constantFrom(...pages), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, x) => {
        const bad = bytes.slice();
        bad[at % bad.length]! ^= x;
        const auth = new UpdateAuthenticator(verified);
        const added = attempt(() => auth.addPage(decodePacket(bad) as never));
        if (added === 'added') {
          // Only a change that leaves the page's meaning intact could pass, and none does:
          // the header's version/type/file/page/sequence and every payload byte are checked.
          throw new Error(`mutated page accepted (byte ${at % bad.length} ^ ${x})`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('other decoders', () => {
  it(`parsePublicKey: random text and mutated keys give a 32-byte key or a typed error; a key reads back the same (${RUNS} cases)`, () => {
    const text = publisher.publicKey;
    const forms = [formatPublicKey(text), publicKeyToPem(text)];
    const mutatedKey = fc.tuple(fc.constantFrom(...forms), fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([f, at, c]) => f.slice(0, at % f.length) + c + f.slice((at % f.length) + 1));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 120 }), mutatedKey, fc.constantFrom(...forms)), (t) => {
        const k = attempt(() => parsePublicKey(t));
        if (k) {
          expect(k.length).toBe(32);
          expect(parsePublicKey(formatPublicKey(k))).toEqual(k);
        }
      }),
      { numRuns: RUNS },
    );
    for (const f of forms) expect(parsePublicKey(f)).toEqual(text);
  });

  it(`splitRetransmissionRequest: any valid request splits into decodable parts within the limit that say the same (2 000 cases)`, () => {
    const sortedUnique = (max: number, n: number) => fc.uniqueArray(fc.integer({ min: 0, max }), { maxLength: n }).map((a) => a.sort((x, y) => x - y));
    const request = fc
      .record({
        needs: sortedUnique(0xffff, 400),
        pages: sortedUnique(0xffffffff, 300),
        esis: sortedUnique(0xffff, 600),
        lackSbn: fc.integer({ min: 0, max: 0xffff }),
        round: fc.integer({ min: 0, max: 0xffff }),
        inOrder: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: null }),
        max: fc.integer({ min: 16, max: 1400 }),
      })
      .map(({ needs, pages, esis, lackSbn, round, inOrder, max }) => ({
        max,
        req: {
          kind: 'request',
          fileId: 3,
          highestInOrder: inOrder,
          round,
          needs: needs.map((sbn) => ({ sbn, need: 1 + (sbn % 50) })),
          pages: pages.map((k) => ({ sbn: Math.floor(k / 0x10000), page: k % 0x10000 })),
          lacking: esis.length > 0 ? { sbn: lackSbn, esis } : null,
        } as RetransmissionRequest,
      }));
    fc.assert(
      fc.property(request, ({ req, max }) => {
        const parts = splitRetransmissionRequest(req, max);
        for (const p of parts) {
          const bytes = encodePacket(p);
          if (bytes.length - 12 > max) throw new Error(`part of ${bytes.length - 12} bytes > ${max}`);
          expect(decodePacket(bytes)).toEqual(p);
        }
        expect(parts.flatMap((p) => p.needs)).toEqual(req.needs);
        expect(parts.flatMap((p) => p.pages)).toEqual(req.pages);
        expect(parts.flatMap((p) => p.lacking?.esis ?? [])).toEqual(req.lacking?.esis ?? []);
      }),
      { numRuns: 2000 },
    );
  });
});
