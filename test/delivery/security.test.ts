/**
 * The updater's security rules: a forged, corrupted, replayed, stale,
 * rolled-back, foreign, out-of-range or duplicate announcement or packet is
 * refused with its own code before anything decodes it — and a whole file
 * still arrives intact, byte for byte, through loss, reordering and forgeries.
 */
import { describe, expect, it } from 'vitest';
import { nativeBackend, nobleBackend } from '../../src/session/index.js';
import { ObjectDecoder, encodeFecInfo } from '../../src/fec/index.js';
import {
  UpdateAuthenticator,
  blockSourceCount,
  coderFor,
  decodeControl,
  decodePacket,
  encodeControl,
  encodePacket,
  prepareUpdate,
  prepareUpdateAsync,
  publisherKeyId,
  signAnnouncement,
  verifyAnnouncement,
  type Announcement,
  type ManifestPacket,
  type RoundPacket,
  type AckPacket,
  type SymbolPacket,
  type UpdateLayout,
  type PreparedUpdate,
} from '../../src/delivery/index.js';
import { FAR_FUTURE, codeOf, fileBytes, publisher, smallUpdate, stranger } from './fixtures/wire.js';
import { createHash } from 'node:crypto';

const trust = { publisherKeys: [publisher.publicKey] };
const udateOf = (bytes: Uint8Array): Announcement => {
  const m = decodeControl(bytes);
  if (m.kind !== 'udate') throw new Error('not a UDATE');
  return m.announcement;
};
const asSymbol = (b: Uint8Array) => decodePacket(b) as SymbolPacket;
const asPage = (b: Uint8Array) => decodePacket(b) as ManifestPacket;

function receiverFor(prepared: PreparedUpdate): UpdateAuthenticator {
  return new UpdateAuthenticator(verifyAnnouncement(udateOf(prepared.announcementDatagram()), trust));
}

function allPages(prepared: PreparedUpdate, auth: UpdateAuthenticator): void {
  for (let sbn = 0; sbn < prepared.layout.blockCount; sbn++) {
    for (let page = 0; page < prepared.layout.pagesPerBlock; page++) expect(auth.addPage(asPage(prepared.manifestPacket(sbn, page)))).toBe('added');
  }
}

describe('announcements', () => {
  const { prepared } = smallUpdate();
  const bytes = prepared.announcementDatagram();

  it('a genuine announcement verifies, with the pinned key attached', () => {
    const v = verifyAnnouncement(udateOf(bytes), trust);
    expect(v.publisherKey).toEqual(publisher.publicKey);
    expect(v.keyId).toBe(publisherKeyId(publisher.publicKey));
  });

  it('forged: signed by a key nobody pins → UNKNOWN_PUBLISHER; by a stranger claiming the pinned key id → BAD_SIGNATURE', () => {
    const { signature: _s, keyId: _k, ...fields } = prepared.announcement;
    const byStranger = signAnnouncement(fields, stranger);
    expect(codeOf(() => verifyAnnouncement(byStranger, trust))).toBe('GS_ERR_DELIVERY_UNKNOWN_PUBLISHER');
    const claimed = { ...byStranger, keyId: prepared.announcement.keyId };
    expect(codeOf(() => verifyAnnouncement(claimed, trust))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
  });

  it('corrupted: any one field changed in transit → BAD_SIGNATURE (or MALFORMED where the change breaks the grammar)', () => {
    const line = Buffer.from(bytes).toString('latin1');
    const f = line.split(' ');
    const changed: string[][] = [
      [...f.slice(0, 1), 'app/other.bin', ...f.slice(2)],
      [...f.slice(0, 3), '4', ...f.slice(4)],
      [...f.slice(0, 6), f[6]!.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), ...f.slice(7)],
      [...f.slice(0, 12), '6', ...f.slice(13)],
      [...f.slice(0, 13), String(FAR_FUTURE + 1), ...f.slice(14)],
      [...f.slice(0, 14), f[14]!.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), ...f.slice(15)],
    ];
    for (const c of changed) {
      const a = udateOf(Buffer.from(c.join(' '), 'latin1'));
      expect(codeOf(() => verifyAnnouncement(a, trust))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    }
    // Flip each character of the signature in turn.
    for (let i = 0; i < 86; i += 7) {
      const s = f[16]!;
      const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const code = codeOf(() => verifyAnnouncement(udateOf(Buffer.from([...f.slice(0, 16), flipped].join(' '), 'latin1')), trust));
      expect(['GS_ERR_DELIVERY_BAD_SIGNATURE', 'GS_ERR_DELIVERY_MALFORMED']).toContain(code);
    }
  });

  it('replayed or rolled back: a version not above the last taken → STALE; a newer one is fresh', () => {
    const a = udateOf(bytes);
    expect(codeOf(() => verifyAnnouncement(a, { ...trust, lastVersion: 5 }))).toBe('GS_ERR_DELIVERY_STALE');
    expect(codeOf(() => verifyAnnouncement(a, { ...trust, lastVersion: 9 }))).toBe('GS_ERR_DELIVERY_STALE');
    expect(codeOf(() => verifyAnnouncement(a, { ...trust, lastVersion: 4 }))).toBeUndefined();
  });

  it('stale: past its expiry → STALE', () => {
    const a = udateOf(bytes);
    expect(codeOf(() => verifyAnnouncement(a, { ...trust, now: FAR_FUTURE * 1000 + 1 }))).toBe('GS_ERR_DELIVERY_STALE');
    expect(codeOf(() => verifyAnnouncement(a, { ...trust, now: FAR_FUTURE * 1000 }))).toBeUndefined();
  });

  it('the authenticator takes only verified announcements', () => {
    expect(() => new UpdateAuthenticator(udateOf(bytes) as never)).toThrow(TypeError);
  });

  it('noble and native backends agree on keys, signatures and verification', () => {
    const native = nativeBackend();
    if (!native) return;
    const seed = publisher.exportSeed();
    const msg = new Uint8Array([1, 2, 3]);
    expect(native.ed25519.sign(msg, seed)).toEqual(nobleBackend.ed25519.sign(msg, seed));
    const a = udateOf(bytes);
    expect(verifyAnnouncement(a, { ...trust, crypto: 'noble' }).root).toBe(verifyAnnouncement(a, { ...trust, crypto: 'native' }).root);
  });
});

describe('data-session packets', () => {
  const { prepared } = smallUpdate();
  const layout: UpdateLayout = prepared.layout;

  it('layout of the fixture: 2 blocks of 8 (the second short: 16 symbols, last one short), 3 pages per block', () => {
    expect(layout).toMatchObject({ blockCount: 2, sourceSymbolCount: 16, pagesPerBlock: 3, pageCount: 6, firstSeq: 1, lastSeq: 16 });
    expect(blockSourceCount(layout, 1)).toBe(8);
    expect(asSymbol(prepared.symbolPacket(1, 7)).payload.length).toBe(1000 - 15 * 64);
  });

  it('a symbol is held back until its page arrives, then checked against it', () => {
    const auth = receiverFor(prepared);
    const p = asSymbol(prepared.symbolPacket(0, 6)); // page 1 (esi 5…9)
    expect(auth.checkSymbol(p)).toMatchObject({ status: 'no-manifest', sbn: 0, esi: 6, page: 1 });
    expect(auth.missingPages(0, [6])).toEqual([1]);
    expect(auth.addPage(asPage(prepared.manifestPacket(0, 1)))).toBe('added');
    const r = auth.checkSymbol(p);
    expect(r.status).toBe('ok');
    expect(auth.missingPages(0)).toEqual([0, 2]);
  });

  it('corrupted or forged symbol → BAD_SIGNATURE; the last short symbol is checked padded', () => {
    const auth = receiverFor(prepared);
    allPages(prepared, auth);
    for (const [sbn, esi] of [[0, 0], [0, 9], [1, 7], [1, 11]] as const) {
      const bytes = prepared.symbolPacket(sbn, esi);
      expect(auth.checkSymbol(asSymbol(bytes)).status).toBe('ok');
      for (const at of [12, bytes.length - 1]) {
        const bad = bytes.slice();
        bad[at]! ^= 0x40;
        expect(codeOf(() => auth.checkSymbol(asSymbol(bad)))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
      }
    }
    // The same position from another file (same parameters, other bytes).
    const other = smallUpdate({ seed: 99 }).prepared;
    expect(codeOf(() => auth.checkSymbol(asSymbol(other.symbolPacket(0, 0))))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
  });

  it('manifest page: corrupted hash or proof, or a page of another update → BAD_SIGNATURE; a repeat → duplicate; wrong length → OUT_OF_RANGE', () => {
    const auth = receiverFor(prepared);
    const bytes = prepared.manifestPacket(1, 2);
    for (const at of [12, bytes.length - 1]) {
      const bad = bytes.slice();
      bad[at]! ^= 1;
      expect(codeOf(() => auth.addPage(asPage(bad)))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    }
    const other = smallUpdate({ seed: 99 }).prepared;
    expect(codeOf(() => auth.addPage(asPage(other.manifestPacket(1, 2))))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    // A genuine page moved to another position fails too.
    // (Pages (0, 0) and (0, 1) have the same hash count and proof length.)
    const moved = decodePacket(prepared.manifestPacket(0, 0)) as ManifestPacket;
    expect(codeOf(() => auth.addPage({ ...moved, page: 1 }))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    expect(auth.addPage(asPage(bytes))).toBe('added');
    expect(auth.addPage(asPage(bytes))).toBe('duplicate');
    const short = asPage(bytes);
    expect(codeOf(() => auth.addPage({ ...short, payload: short.payload.subarray(16) }))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    auth.forgetBlock(1);
    expect(auth.addPage(asPage(prepared.manifestPacket(1, 0)))).toBe('duplicate');
  });

  it('foreign file ID → FOREIGN_FILE, for every kind', () => {
    const auth = receiverFor(prepared);
    allPages(prepared, auth);
    const other = smallUpdate({ fileId: 4 }).prepared;
    expect(codeOf(() => auth.checkSymbol(asSymbol(other.symbolPacket(0, 0))))).toBe('GS_ERR_DELIVERY_FOREIGN_FILE');
    expect(codeOf(() => auth.addPage(asPage(other.manifestPacket(0, 0))))).toBe('GS_ERR_DELIVERY_FOREIGN_FILE');
    expect(codeOf(() => auth.verifyRound(decodePacket(other.roundPacket(1, 1, 1)) as RoundPacket))).toBe('GS_ERR_DELIVERY_FOREIGN_FILE');
    expect(codeOf(() => auth.verifyAck(decodePacket(other.ackPacket('h')) as AckPacket, 'h'))).toBe('GS_ERR_DELIVERY_FOREIGN_FILE');
  });

  it('out of range: block, esi, page, kind, sequence or length that the layout does not give → OUT_OF_RANGE', () => {
    const auth = receiverFor(prepared);
    allPages(prepared, auth);
    const good = asSymbol(prepared.symbolPacket(0, 3));
    const variants: SymbolPacket[] = [
      { ...good, sbn: 2, seq: 1 + 16 + 3 },
      { ...good, esi: 12 },
      { ...good, kind: 'repair' },
      { ...good, seq: good.seq + 1 },
      { ...good, payload: good.payload.subarray(1) },
      { ...asSymbol(prepared.symbolPacket(0, 8)), kind: 'data' },
    ];
    for (const v of variants) expect(codeOf(() => auth.checkSymbol(decodePacket(encodePacket(v)) as SymbolPacket))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    const page = asPage(prepared.manifestPacket(0, 0));
    expect(codeOf(() => auth.addPage({ ...page, page: 3 }))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    expect(codeOf(() => auth.addPage({ ...page, sbn: 2 }))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    expect(codeOf(() => prepared.symbolPacket(0, 12))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
  });

  it('a block whose page was lost is recovered from held symbols only if the block hash matches', () => {
    const auth = receiverFor(prepared);
    // Page 1 of block 0 (esi 5…9) is lost; pages 0 and 2 arrive.
    auth.addPage(asPage(prepared.manifestPacket(0, 0)));
    expect(auth.hasBlockHash(0)).toBe(true);
    expect(auth.hasBlockHash(1)).toBe(false);
    auth.addPage(asPage(prepared.manifestPacket(0, 2)));
    const all = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((esi) => asSymbol(prepared.symbolPacket(0, esi)));
    const held = all.filter((p) => auth.checkSymbol(p).status === 'no-manifest');
    expect(held.map((p) => p.esi)).toEqual([5, 6, 7, 8, 9]);
    // Source 0, 2, 4 lost too: 8 of the 12 symbols are left, 4 of them unverified.
    const left = all.filter((p) => ![0, 2, 4].includes(p.esi) && p.esi !== 10);
    const source = auth.recoverBlock(0, left);
    expect(source).toHaveLength(8);
    for (let esi = 0; esi < 8; esi++) expect(source![esi]).toEqual(prepared.encoder.symbol(esi));
    // Too few symbols, or one forged held symbol: nothing comes back.
    expect(auth.recoverBlock(0, left.slice(1))).toBeUndefined();
    const forged = left.map((p) => (p.esi === 6 ? { ...p, payload: p.payload.map((b) => b ^ 1) } : p));
    expect(auth.recoverBlock(0, forged)).toBeUndefined();
    // Block 1 has no page yet: no block hash to check against.
    expect(auth.recoverBlock(1, [8, 9, 10, 11, 0, 1, 2, 3].map((esi) => asSymbol(prepared.symbolPacket(1, esi))))).toBeUndefined();
    // The short last block recovers too, once any page of it is here.
    auth.addPage(asPage(prepared.manifestPacket(1, 2)));
    const last = auth.recoverBlock(1, [8, 9, 10, 11, 0, 1, 2, 3].map((esi) => asSymbol(prepared.symbolPacket(1, esi))));
    expect(last?.[7]).toEqual(prepared.encoder.symbol(0x10007));
    expect(codeOf(() => auth.recoverBlock(1, [asSymbol(prepared.symbolPacket(0, 1))]))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
  });

  it('round end and ack: genuine ones verify; forged, altered, replayed for another host → refused', () => {
    const auth = receiverFor(prepared);
    const round = decodePacket(prepared.roundPacket(2, 30, 200)) as RoundPacket;
    expect(() => auth.verifyRound(round)).not.toThrow();
    expect(codeOf(() => auth.verifyRound({ ...round, round: 3 }))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    expect(codeOf(() => auth.verifyRound({ ...round, backoffMs: 1 }))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    // A round end of an earlier announcement of the same file does not verify under the new one.
    const older = smallUpdate({ version: 4 }).prepared;
    expect(codeOf(() => auth.verifyRound(decodePacket(older.roundPacket(2, 30, 200)) as RoundPacket))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    const ack = decodePacket(prepared.ackPacket('h1')) as AckPacket;
    expect(() => auth.verifyAck(ack, 'h1')).not.toThrow();
    expect(codeOf(() => auth.verifyAck(ack, 'h2'))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    expect(codeOf(() => auth.verifyAck({ ...ack, hosts: ['h2'] }, 'h2'))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    expect(codeOf(() => auth.verifyAck({ ...ack, hosts: ['h1', 'h2'] }, 'h2'))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
    expect(codeOf(() => auth.verifyAck({ ...ack, signature: stranger.sign(new Uint8Array(1)) }, 'h1'))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
  });
});

describe('the sender makes each symbol from a few blocks kept at hand', () => {
  it('in any order, past the cache, every symbol equals the encoder own, source and repair, file read from a block source', () => {
    const file = fileBytes(40 * 2 * 64 - 10, 3);
    const reads: number[] = [];
    const source = { length: file.length, readBlock: (sbn: number, offset: number, n: number) => (reads.push(sbn), file.slice(offset, offset + n)) };
    const prepared = prepareUpdate(source, { name: 'x', key: publisher, fileId: 1, version: 1, expires: FAR_FUTURE, symbolSize: 64, sourceSymbols: 2, repairSymbols: 3 });
    expect(prepared.layout.blockCount).toBe(40);
    const order: [number, number][] = [];
    for (let sbn = 0; sbn < 40; sbn++) for (let esi = 0; esi < 5; esi++) order.push([sbn, esi]);
    let x = 99;
    for (let i = order.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) >>> 0;
      const j = x % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const [sbn, esi] of [...order, ...order]) {
      const p = asSymbol(prepared.symbolPacket(sbn, esi));
      const genuine = prepared.encoder.symbol(sbn * 0x10000 + esi);
      expect(Buffer.from(genuine.subarray(0, p.payload.length)).equals(Buffer.from(p.payload))).toBe(true);
    }
    // Block by block, each block is read at most once: it stays among the last 16 while its symbols are made.
    reads.length = 0;
    for (let sbn = 0; sbn < 40; sbn++) for (let esi = 0; esi < 5; esi++) prepared.symbolPacket(sbn, esi);
    expect(new Set(reads).size).toBe(reads.length);
    expect(reads.length).toBeGreaterThanOrEqual(24);
  });
});

describe('prepareUpdateAsync', () => {
  it('encodes the pool on worker threads and gives the same update, byte for byte', async () => {
    const file = fileBytes(300_000, 11);
    const options = { name: 'same.bin', key: publisher, fileId: 2, version: 3, expires: FAR_FUTURE, symbolSize: 256, sourceSymbols: 40, repairSymbols: 10 };
    const sync = prepareUpdate(file, options);
    const parallel = await prepareUpdateAsync(file, { ...options, threads: 1 });
    expect(parallel.announcementDatagram()).toEqual(sync.announcementDatagram());
    expect(parallel.layout.blockCount).toBeGreaterThan(16);
    for (const [sbn, x] of [[0, 0], [5, 45], [29, 3], [29, 49]] as const) {
      expect(parallel.symbolPacket(sbn, x)).toEqual(sync.symbolPacket(sbn, x));
      expect(parallel.manifestPacket(sbn, 1)).toEqual(sync.manifestPacket(sbn, 1));
    }
  });
});

describe('batched completion acks', () => {
  it('one signature names many hosts; each named host verifies it, others do not; batches fit the limit', () => {
    const { prepared } = smallUpdate();
    const auth = receiverFor(prepared);
    const hosts = Array.from({ length: 250 }, (_, i) => `receiver-${i}.example.net`);
    const packets = prepared.ackPackets(hosts, 1200);
    expect(packets.length).toBeGreaterThan(1);
    const seen: string[] = [];
    for (const bytes of packets) {
      expect(bytes.length - 12).toBeLessThanOrEqual(1200);
      const ack = decodePacket(bytes) as AckPacket;
      seen.push(...ack.hosts);
      for (const h of ack.hosts) expect(() => auth.verifyAck(ack, h)).not.toThrow();
      expect(codeOf(() => auth.verifyAck(ack, 'someone-else'))).toBe('GS_ERR_DELIVERY_OUT_OF_RANGE');
    }
    expect(seen).toEqual(hosts);
    const one = decodePacket(prepared.ackPacket(['a', 'b'])) as AckPacket;
    expect(codeOf(() => auth.verifyAck({ ...one, hosts: ['b', 'a'] }, 'a'))).toBe('GS_ERR_DELIVERY_BAD_SIGNATURE');
  });
});

describe('a whole file through the authenticator and the decoder', () => {
  it('arrives intact through loss, reordering, duplicates and injected forgeries; nothing forged reaches the decoder', () => {
    const file = fileBytes(50_000, 7);
    const prepared = prepareUpdate(file, { name: 'big.bin', key: publisher, fileId: 9, version: 1, expires: FAR_FUTURE, symbolSize: 256, sourceSymbols: 32, repairSymbols: 16 });
    const l = prepared.layout;
    const auth = receiverFor(prepared);
    const decoder = new ObjectDecoder(l.size, { symbolSize: l.symbolSize, sourceSymbols: l.sourceSymbols, repairSymbols: l.repairSymbols, coder: coderFor(l.code) });
    // Every packet the sender could send, in a shuffled order, 20 % dropped, some sent twice, forgeries mixed in.
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const wire: Uint8Array[] = [];
    for (let sbn = 0; sbn < l.blockCount; sbn++) {
      for (let page = 0; page < l.pagesPerBlock; page++) wire.push(prepared.manifestPacket(sbn, page), prepared.manifestPacket(sbn, page));
      for (let esi = 0; esi < l.sourceSymbols + l.repairSymbols; esi++) {
        if (esi < l.sourceSymbols && esi >= blockSourceCount(l, sbn)) continue;
        const real = prepared.symbolPacket(sbn, esi);
        if (rand() < 0.8) wire.push(real);
        if (rand() < 0.1) wire.push(real);
        const forged = real.slice();
        forged[12 + Math.floor(rand() * (forged.length - 12))]! ^= 1 + Math.floor(rand() * 255);
        wire.push(forged);
      }
    }
    for (let i = wire.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [wire[i], wire[j]] = [wire[j]!, wire[i]!];
    }
    const counts: Record<string, number> = {};
    const held: SymbolPacket[] = [];
    const feed = (p: SymbolPacket): void => {
      const r = auth.checkSymbol(p);
      if (r.status === 'no-manifest') return void held.push(p);
      const res = decoder.add(encodeFecInfo(r.sbn, r.esi), r.symbol);
      if (!res.accepted) counts.duplicate = (counts.duplicate ?? 0) + 1;
      if (res.blockComplete && !auth.isForgotten(r.sbn)) auth.forgetBlock(r.sbn);
    };
    for (const bytes of wire) {
      try {
        const p = decodePacket(bytes);
        if (p.kind === 'manifest') {
          if (auth.addPage(p) === 'duplicate') counts.duplicate = (counts.duplicate ?? 0) + 1;
          for (const h of held.splice(0)) {
            try {
              feed(h);
            } catch (err) {
              counts[(err as { code: string }).code] = (counts[(err as { code: string }).code] ?? 0) + 1;
            }
          }
        } else feed(p as SymbolPacket);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code?.startsWith('GS_ERR_DELIVERY_')) throw err;
        counts[code] = (counts[code] ?? 0) + 1;
      }
    }
    expect(decoder.complete).toBe(true);
    const out = decoder.object();
    expect(createHash('sha256').update(out).digest('hex')).toBe(prepared.announcement.digest);
    expect(Buffer.from(out).equals(Buffer.from(file))).toBe(true);
    expect(counts['GS_ERR_DELIVERY_BAD_SIGNATURE'] ?? 0).toBeGreaterThan(100);
    expect(counts.duplicate ?? 0).toBeGreaterThan(0);
  });
});

it('encodeControl of a verified announcement gives back the sender datagram', () => {
  const { prepared } = smallUpdate();
  const v = verifyAnnouncement(udateOf(prepared.announcementDatagram()), trust);
  expect(encodeControl({ kind: 'udate', announcement: v })).toEqual(prepared.announcementDatagram());
});
