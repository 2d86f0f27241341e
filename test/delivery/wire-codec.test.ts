/**
 * The updater's codecs byte for byte: pinned numbers, golden bytes, round
 * trips, every truncation and every field out of range refused with a typed
 * error, and the Merkle proofs.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/errors/index.js';
import { nativeBackend, nobleBackend } from '../../src/session/index.js';
import {
  DATA_HEADER_LEN,
  DATA_HEADER_WORDS,
  DATA_VERSION,
  MerkleTree,
  PacketType,
  announcementBody,
  decodeControl,
  decodeDatagram,
  decodePacket,
  emitDataHeader,
  encodeControl,
  encodePacket,
  isOkStatus,
  merkleProofLength,
  parseDataHeader,
  splitRetransmissionRequest,
  symbolHash,
  verifyMerkleProof,
  type Announcement,
  type Packet,
  type RetransmissionRequest,
} from '../../src/delivery/index.js';
import { codeOf, smallUpdate } from './fixtures/wire.js';

const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

describe('data header', () => {
  it('pins the layout and every type number', () => {
    expect(DATA_HEADER_LEN).toBe(12);
    expect(DATA_HEADER_WORDS).toBe(3);
    expect(DATA_VERSION).toBe(1);
    expect(PacketType).toEqual({ NOTICE: 1, REQUEST: 2, ACK: 3, DATA: 4, REPAIR: 5, MANIFEST: 6, ROUND: 7 });
  });

  it('golden bytes → fields, and fields → a dirty buffer', () => {
    const golden = Uint8Array.from([0x14, 0x03, 0x01, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x05, 0x00, 0x06]);
    expect(parseDataHeader(golden)).toEqual({ version: 1, type: 4, length: 3, fileId: 0x0102, seq: 0x0a0b0c0d, fecInfo: 0x00050006 });
    const out = new Uint8Array(12).fill(0xa5);
    emitDataHeader({ version: 1, type: 4, length: 3, fileId: 0x0102, seq: 0x0a0b0c0d, fecInfo: 0x00050006 }, out);
    expect(out).toEqual(golden);
  });

  it('refuses a short header, another version, another length, types 0 and 8–15', () => {
    const ok = Uint8Array.from([0x14, 0x03, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 9]);
    expect(() => decodePacket(ok)).not.toThrow();
    for (let n = 0; n < 12; n++) expect(codeOf(() => decodePacket(ok.subarray(0, n)))).toBe('GS_ERR_DELIVERY_MALFORMED');
    const bad = (i: number, v: number) => {
      const b = ok.slice();
      b[i] = v;
      return codeOf(() => decodePacket(b));
    };
    expect(bad(0, 0x24)).toBe('GS_ERR_DELIVERY_MALFORMED'); // version 2
    expect(bad(0, 0x04)).toBe('GS_ERR_DELIVERY_MALFORMED'); // version 0
    expect(bad(1, 4)).toBe('GS_ERR_DELIVERY_MALFORMED'); // header of 4 words
    expect(bad(0, 0x10)).toBe('GS_ERR_DELIVERY_MALFORMED'); // type 0 (the seed's "unused")
    for (let t = 8; t < 16; t++) expect(bad(0, 0x10 | t)).toBe('GS_ERR_DELIVERY_MALFORMED');
  });
});

const sig = Uint8Array.from({ length: 64 }, (_, i) => i);
const samples: Packet[] = [
  { kind: 'data', fileId: 3, seq: 17, sbn: 2, esi: 0, payload: ascii('abc') },
  { kind: 'repair', fileId: 3, seq: 17, sbn: 2, esi: 9, payload: new Uint8Array(64).fill(7) },
  { kind: 'manifest', fileId: 65535, sbn: 1, page: 2, payload: new Uint8Array(48).fill(1) },
  { kind: 'notice', fileId: 3, host: 'host.example.jp', requests: 4 },
  { kind: 'ack', fileId: 3, hosts: ['h1'], signature: sig },
  { kind: 'ack', fileId: 3, hosts: ['h1', 'host-2.example', '10.0.0.9'], signature: sig },
  { kind: 'round', fileId: 3, round: 2, grttMs: 40, backoffMs: 250, signature: sig },
  { kind: 'request', fileId: 3, highestInOrder: 4000, round: 1, needs: [{ sbn: 0, need: 2 }, { sbn: 5, need: 11 }], pages: [{ sbn: 5, page: 0 }, { sbn: 5, page: 2 }], lacking: { sbn: 9, esis: [1, 4, 7] } },
  { kind: 'request', fileId: 0, highestInOrder: null, round: 0, needs: [], pages: [], lacking: null },
];

describe('packets', () => {
  it('round-trip every kind canonically; every truncation and extension of a fixed-layout packet is refused', () => {
    for (const p of samples) {
      const bytes = encodePacket(p);
      const back = decodePacket(bytes);
      expect(back).toEqual(p);
      expect(encodePacket(back)).toEqual(bytes);
      expect(decodeDatagram(bytes)).toEqual(p);
      if (p.kind === 'data' || p.kind === 'repair') continue; // any non-empty payload fits the codec; the authenticator checks its length
      for (let n = 0; n < bytes.length; n++) {
        const cut = codeOf(() => decodePacket(bytes.subarray(0, n)));
        // A manifest cut at a 16-byte boundary is still a manifest page (the authenticator checks the length).
        if (p.kind === 'manifest' && n > 12 && (n - 12) % 16 === 0) expect(cut).toBeUndefined();
        else expect(cut, `${p.kind} cut to ${n}`).toBe('GS_ERR_DELIVERY_MALFORMED');
      }
      if (p.kind !== 'manifest') {
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        expect(codeOf(() => decodePacket(longer))).toBe('GS_ERR_DELIVERY_MALFORMED');
      }
    }
  });

  it('golden bytes of a retransmission request', () => {
    const bytes = encodePacket(samples[7]!);
    expect(Buffer.from(bytes).toString('hex')).toBe(
      '12' + '03' + '0003' + '00000fa0' + '00000000' + // header: v1 type 2, 3 words, file 3, seq 4000, FEC 0
        '0001' + '01' + // round 1, in-order mark present
        '0002' + '0000' + '0002' + '0005' + '000b' + // two needs
        '0002' + '0005' + '0000' + '0005' + '0002' + // two pages
        '0009' + '0003' + '0001' + '0004' + '0007', // lacking in block 9: esi 1, 4, 7
    );
  });

  it('refuses reserved fields that are not zero and unordered lists', () => {
    const notice = encodePacket(samples[3]!);
    const seqSet = notice.slice();
    seqSet[7] = 1;
    expect(codeOf(() => decodePacket(seqSet))).toBe('GS_ERR_DELIVERY_MALFORMED');
    const fecSet = notice.slice();
    fecSet[11] = 1;
    expect(codeOf(() => decodePacket(fecSet))).toBe('GS_ERR_DELIVERY_MALFORMED');
    const base = samples[7] as RetransmissionRequest;
    expect(codeOf(() => encodePacket({ ...base, needs: [{ sbn: 5, need: 1 }, { sbn: 5, need: 2 }] }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ ...base, needs: [{ sbn: 5, need: 0 }] }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ ...base, pages: [{ sbn: 5, page: 2 }, { sbn: 5, page: 0 }] }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ ...base, lacking: { sbn: 1, esis: [3, 3] } }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ ...base, lacking: { sbn: 1, esis: [] } }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    const noMark = encodePacket({ ...base, highestInOrder: null });
    const withSeq = noMark.slice();
    withSeq[7] = 9; // a sequence without the in-order flag
    expect(codeOf(() => decodePacket(withSeq))).toBe('GS_ERR_DELIVERY_MALFORMED');
    const flags = encodePacket(base).slice();
    flags[14] = 3;
    expect(codeOf(() => decodePacket(flags))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ kind: 'round', fileId: 1, round: 0, grttMs: 0, backoffMs: 0, signature: sig }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ kind: 'notice', fileId: 1, host: 'bad host', requests: 0 }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ kind: 'ack', fileId: 1, hosts: [], signature: sig }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ kind: 'ack', fileId: 1, hosts: ['a', 'a'], signature: sig }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodePacket({ kind: 'data', fileId: 70000, seq: 0, sbn: 0, esi: 0, payload: sig }))).toBe('GS_ERR_DELIVERY_MALFORMED');
  });

  it('splits a big request into packets within the limit that together say the same', () => {
    const needs = Array.from({ length: 700 }, (_, i) => ({ sbn: i, need: 1 + (i % 9) }));
    const pages = Array.from({ length: 300 }, (_, i) => ({ sbn: i >> 2, page: i & 3 }));
    const esis = Array.from({ length: 500 }, (_, i) => i * 2);
    const req: RetransmissionRequest = { kind: 'request', fileId: 3, highestInOrder: 77, round: 4, needs, pages, lacking: { sbn: 12, esis } };
    const parts = splitRetransmissionRequest(req, 1200);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) {
      const bytes = encodePacket(p);
      expect(bytes.length - DATA_HEADER_LEN).toBeLessThanOrEqual(1200);
      expect(decodePacket(bytes)).toEqual(p);
      expect(p.round).toBe(4);
      expect(p.highestInOrder).toBe(77);
    }
    expect(parts.flatMap((p) => p.needs)).toEqual(needs);
    expect(parts.flatMap((p) => p.pages)).toEqual(pages);
    expect(parts.flatMap((p) => p.lacking?.esis ?? [])).toEqual(esis);
    expect(parts.every((p) => p.lacking === null || p.lacking.sbn === 12)).toBe(true);
    expect(splitRetransmissionRequest({ ...req, needs: [], pages: [], lacking: null })).toHaveLength(1);
  });
});

describe('control lines', () => {
  const { prepared } = smallUpdate();
  const a = prepared.announcement;
  const line = text(encodeControl({ kind: 'udate', announcement: a }));

  it('UDATE: the seed 7 fields first, then the signed extensions, then the signature; canonical round trip', () => {
    const fields = line.split(' ');
    expect(fields).toHaveLength(17);
    expect(fields.slice(0, 7)).toEqual(['UDATE', 'app/update.bin', '1000', '3', '1', '16', a.digest]);
    expect(fields.slice(7, 16)).toEqual(['rs8', '8', '4', '64', '5', '5', String(a.expires), a.root, a.keyId]);
    expect(fields[16]).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(line.startsWith(announcementBody(a) + ' ')).toBe(true);
    const back = decodeControl(ascii(line));
    expect(back).toEqual({ kind: 'udate', announcement: { ...a } });
    expect(text(encodeControl(back))).toBe(line);
  });

  it("refuses the seed's own example (its digest is not SHA-256 hex and it has no signature)", () => {
    expect(codeOf(() => decodeControl(ascii('UDATE update.tar.gz 1234560 3 1 2412 F5SA7EG2$#AWQ543A42')))).toBe('GS_ERR_DELIVERY_MALFORMED');
  });

  it('refuses each field out of its grammar or range', () => {
    const f = line.split(' ');
    const withField = (i: number, v: string) => codeOf(() => decodeControl(ascii([...f.slice(0, i), v, ...f.slice(i + 1)].join(' '))));
    const cases: [number, string][] = [
      [2, '0'], [2, '01000'], [2, '-1'], [2, '1e3'], [2, '99999999999999999'],
      [3, '65536'], [4, '4294967296'], [5, '17'], [6, a.digest.toUpperCase()], [6, a.digest.slice(1)],
      [7, 'rs32'], [8, '0'], [8, '300'], [9, '0'], [10, '15'], [10, '65489'], [11, '0'], [11, '2049'],
      [12, '0'], [14, a.root + '0'], [15, 'XYZ'], [16, f[16]!.slice(1)], [16, f[16]!.slice(0, 85) + '+'],
    ];
    for (const [i, v] of cases) expect(withField(i, v), `field ${i} = ${v}`).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(withField(1, '../etc/passwd')).toBe('GS_ERR_DELIVERY_UNSAFE_NAME');
    expect(withField(1, '/abs')).toBe('GS_ERR_DELIVERY_UNSAFE_NAME');
    expect(withField(1, 'a\\b')).toBe('GS_ERR_DELIVERY_UNSAFE_NAME');
    expect(codeOf(() => decodeControl(ascii(line + ' extra')))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => decodeControl(ascii(line.replace(' ', '  '))))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => decodeControl(ascii(line + '\n')))).toBe('GS_ERR_DELIVERY_MALFORMED');
    // rs8 allows k + m ≤ 256; rs16 needs an even symbol size.
    const big: Announcement = { ...a, sourceSymbols: 200, repairSymbols: 57 };
    expect(codeOf(() => encodeControl({ kind: 'udate', announcement: big }))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => encodeControl({ kind: 'udate', announcement: { ...a, code: 'rs16', symbolSize: 63, size: 63 * 16 - 9, lastSeq: 16 } }))).toBe('GS_ERR_DELIVERY_MALFORMED');
  });

  it('RECV and FIN: round trips, the status keeps its spaces, bad hosts and statuses refused', () => {
    for (const m of [
      { kind: 'recv', name: 'app/update.bin', hostname: 'host.hogenet.jp' },
      { kind: 'fin', name: 'app/update.bin', status: 'ok applied in 2 s' },
      { kind: 'fin', name: 'x', status: 'failed: exit 3' },
    ] as const) {
      const bytes = encodeControl(m);
      expect(decodeControl(bytes)).toEqual(m);
      expect(decodeDatagram(bytes)).toEqual(m);
    }
    expect(text(encodeControl({ kind: 'recv', name: 'update.tar.gz', hostname: 'host.hogenet.jp' }))).toBe('RECV update.tar.gz host.hogenet.jp');
    expect(isOkStatus('ok')).toBe(true);
    expect(isOkStatus('ok applied')).toBe(true);
    expect(isOkStatus('okay')).toBe(false);
    for (const bad of ['RECV a', 'RECV a b c', 'RECV a b!', 'RECV a ' + 'h'.repeat(254), 'FIN a', 'FIN a  leading', 'FIN a ' + 'x'.repeat(401), 'NOPE a b', 'recv a b', '']) {
      expect(codeOf(() => decodeControl(ascii(bad))), bad).toBe('GS_ERR_DELIVERY_MALFORMED');
    }
    expect(codeOf(() => decodeControl(ascii('RECV ../x h')))).toBe('GS_ERR_DELIVERY_UNSAFE_NAME');
    expect(codeOf(() => decodeControl(Uint8Array.of(0x52, 0x45, 0x43, 0x56, 0x20, 0x61, 0x20, 0xff)))).toBe('GS_ERR_DELIVERY_MALFORMED');
    expect(codeOf(() => decodeControl(new Uint8Array(1025).fill(0x41)))).toBe('GS_ERR_DELIVERY_MALFORMED');
  });

  it('errors are DeliveryErrors', () => {
    expect(() => decodeControl(ascii('UDATE'))).toThrow(DeliveryError);
    expect(() => decodePacket(new Uint8Array(3))).toThrow(DeliveryError);
  });
});

describe('Merkle tree', () => {
  const leaf = (i: number) => Uint8Array.from({ length: 16 }, (_, j) => (i * 31 + j) & 0xff);

  it('every leaf of trees of 1…40 leaves proves, with the computed proof length; any change fails', () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leaf(i));
      const tree = new MerkleTree(nobleBackend, leaves);
      for (let i = 0; i < n; i++) {
        const proof = tree.proof(i);
        expect(proof.length).toBe(merkleProofLength(i, n) * 16);
        expect(verifyMerkleProof(nobleBackend, leaves[i]!, i, n, proof, tree.root)).toBe(true);
        if (n > 1) {
          expect(verifyMerkleProof(nobleBackend, leaves[(i + 1) % n]!, i, n, proof, tree.root)).toBe(false);
          expect(verifyMerkleProof(nobleBackend, leaves[i]!, (i + 1) % n, n, proof, tree.root)).toBe(false);
          const bent = proof.slice();
          bent[0]! ^= 1;
          expect(verifyMerkleProof(nobleBackend, leaves[i]!, i, n, bent, tree.root)).toBe(false);
          expect(verifyMerkleProof(nobleBackend, leaves[i]!, i, n, proof.subarray(16), tree.root)).toBe(false);
        }
      }
      expect(verifyMerkleProof(nobleBackend, leaves[0]!, n, n, new Uint8Array(0), tree.root)).toBe(false);
    }
  });

  it('a one-leaf tree is its leaf; a two-leaf root is H(0x01 ‖ l ‖ r) cut to 16 bytes', () => {
    expect(new MerkleTree(nobleBackend, [leaf(0)]).root).toEqual(leaf(0));
    const root = new MerkleTree(nobleBackend, [leaf(0), leaf(1)]).root;
    expect(root).toEqual(nobleBackend.sha256(Uint8Array.of(1), leaf(0), leaf(1)).subarray(0, 16));
  });
});

describe('symbol hash', () => {
  it('is the first 16 bytes of SHA-256 of the symbol with either backend (native takes a one-shot path), for views at any offset', () => {
    const native = nativeBackend();
    if (native === undefined) throw new Error('node:crypto is missing');
    const buf = Uint8Array.from({ length: 1500 }, (_, i) => (i * 7 + 3) & 0xff);
    for (const [from, to] of [[0, 1400], [12, 1412], [3, 4], [0, 0]] as const) {
      const symbol = buf.subarray(from, to);
      const want = nobleBackend.sha256(symbol).subarray(0, 16);
      expect(symbolHash(nobleBackend, symbol)).toEqual(want);
      const fast = symbolHash(native, symbol);
      expect(fast).toEqual(want);
      expect(fast.length).toBe(16);
    }
    // Each call gives its own bytes (no shared scratch buffer that a later call overwrites).
    const a = symbolHash(native, buf.subarray(0, 10));
    const copyOfA = a.slice();
    symbolHash(native, buf.subarray(10, 20));
    expect(a).toEqual(copyOfA);
  });
});
