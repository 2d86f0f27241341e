/**
 * The data session: one binary packet per UDP datagram, the seed's 12-byte
 * header (§3.3.3 2), figure 7) and a payload per type.
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-------+-------+---------------+-------------------------------+
 *   0 |version| type  |    length     |            file ID            |
 *     +-------+-------+---------------+-------------------------------+
 *   4 |                           sequence                            |
 *     +---------------------------------------------------------------+
 *   8 |          FEC information: sbn (16 bits) | esi (16 bits)       |
 *     +---------------------------------------------------------------+
 *  12 |              payload: datagram length − 4 · length            |
 *     +---------------------------------------------------------------+
 *
 * All fields are big-endian. `version` is {@link DATA_VERSION} (1).
 * `length` is the header length in 4-byte words: the seed's 8 bits cannot
 * hold a payload length, and the datagram already carries one, so the field
 * counts the header instead — 3 for the 12-byte base header, leaving room for
 * authenticated header extensions in a later version. Version 1 defines no
 * extension, so `length` must be 3.
 *
 * | type | name                | sequence                         | FEC info      | payload |
 * |------|---------------------|----------------------------------|---------------|---------|
 * | 0    | (reserved; the seed's "unused") | —                    | —             | refused |
 * | 1    | completion notice   | 0                                | 0             | requests u16, hostLen u8, host |
 * | 2    | retransmission req. | highest sequence received in order | 0           | see {@link RetransmissionRequest} |
 * | 3    | completion ack      | 0                                | 0             | count u16, count × (hostLen u8, host), signature (64) |
 * | 4    | data (source)       | firstSeq + sbn·k + esi           | sbn, esi < k  | the symbol (the file's last one unpadded) |
 * | 5    | repair              | firstSeq + sbn·k                 | sbn, esi ≥ k  | the symbol (symbolSize bytes) |
 * | 6    | block manifest page | 0                                | sbn, page     | 16-byte symbol hashes, then the Merkle proof |
 * | 7    | round end           | 0                                | 0             | round u16, grttMs u16, backoffMs u16, signature (64) |
 *
 * Types 1–3 keep the seed's numbers and meanings; 4–7 are new. A completion
 * ack names one or more receivers (distinct) under one signature, so the
 * sender may multicast one ack for a batch of notices. A field the
 * table fixes at 0 must be 0. Receivers send types 1 and 2 (2 to the group,
 * so others hear it and hold back their own); the sender sends the rest.
 *
 * This codec checks the layout alone: lengths, reserved fields, counts and
 * orderings. Whether a symbol's position, length and bytes fit the announced
 * file is the authenticator's job (update.ts), which knows the layout and the
 * manifest. Every failure is a `DeliveryError` `GS_ERR_DELIVERY_MALFORMED`.
 * Decoded payloads are views into the datagram, not copies.
 */
import { ascii, malformed } from './common.js';

/** Protocol version in the data header. @public */
export const DATA_VERSION = 1;
/** Bytes of the base data header. @public */
export const DATA_HEADER_LEN = 12;
/** The header's `length` field for version 1: the header in 4-byte words. @public */
export const DATA_HEADER_WORDS = 3;
/** Largest UDP payload over IPv4 (and what the transports accept). @public */
export const MAX_DATAGRAM_LEN = 65_507;
/** Bytes of a symbol hash in a manifest page (truncated SHA-256). @public */
export const SYMBOL_HASH_LEN = 16;
/** Bytes of an Ed25519 signature. @public */
export const SIGNATURE_LEN = 64;
/** Largest retransmission-request payload {@link splitRetransmissionRequest} makes by default. @public */
export const DEFAULT_MAX_REQUEST_PAYLOAD = 1200;

/** Byte offsets of the header fields. */
const OFF = { VER_TYPE: 0, LEN: 1, FILE_ID: 2, SEQ: 4, FEC: 8 } as const;

/**
 * The 4-bit type numbers. Pinned by a test: never renumber.
 * @public
 */
export const PacketType = Object.freeze({
  /** Receiver → sender: it has the whole file (seed type 1). */
  NOTICE: 1,
  /** Receiver → group: what it still lacks (seed type 2). */
  REQUEST: 2,
  /** Sender → receiver: its completion notice was heard (seed type 3). */
  ACK: 3,
  /** Sender → group: a source symbol. */
  DATA: 4,
  /** Sender → group: a repair symbol. */
  REPAIR: 5,
  /** Sender → group: one page of a block's symbol hashes, with its Merkle proof. */
  MANIFEST: 6,
  /** Sender → group: a round is over; receivers may ask for what they lack. */
  ROUND: 7,
} as const);

/** A data-session packet type number. @public */
export type PacketTypeNumber = (typeof PacketType)[keyof typeof PacketType];

/** The 12-byte header, field by field. @public */
export interface DataHeader {
  /** 4 bits; 1. */
  readonly version: number;
  /** 4 bits; a {@link PacketType}. */
  readonly type: number;
  /** 8 bits; header length in 4-byte words (3). */
  readonly length: number;
  /** 16 bits. */
  readonly fileId: number;
  /** 32 bits. */
  readonly seq: number;
  /** 32 bits: `sbn << 16 | esi` (or `sbn << 16 | page` for a manifest page). */
  readonly fecInfo: number;
}

/** A source symbol (type 4). @public */
export interface DataPacket {
  /** Discriminator. */
  readonly kind: 'data';
  /** File ID. */
  readonly fileId: number;
  /** `firstSeq + sbn·k + esi`. */
  readonly seq: number;
  /** Source block number. */
  readonly sbn: number;
  /** Encoding symbol ID, below `k`. */
  readonly esi: number;
  /** The symbol bytes (a view into the datagram). */
  readonly payload: Uint8Array;
}

/** A repair symbol (type 5). @public */
export interface RepairPacket {
  /** Discriminator. */
  readonly kind: 'repair';
  /** File ID. */
  readonly fileId: number;
  /** `firstSeq + sbn·k`: the sequence of the block's first source symbol. */
  readonly seq: number;
  /** Source block number. */
  readonly sbn: number;
  /** Encoding symbol ID, ≥ k. */
  readonly esi: number;
  /** The symbol bytes (a view into the datagram). */
  readonly payload: Uint8Array;
}

/** A data or repair packet. @public */
export type SymbolPacket = DataPacket | RepairPacket;

/** One page of a block's manifest (type 6). @public */
export interface ManifestPacket {
  /** Discriminator. */
  readonly kind: 'manifest';
  /** File ID. */
  readonly fileId: number;
  /** Source block number. */
  readonly sbn: number;
  /** Page within the block, 0 … pagesPerBlock − 1. */
  readonly page: number;
  /** The page's 16-byte symbol hashes, then its Merkle proof, 16 bytes per node (a view). */
  readonly payload: Uint8Array;
}

/** A completion notice (type 1): the receiver has everything. @public */
export interface NoticePacket {
  /** Discriminator. */
  readonly kind: 'notice';
  /** File ID. */
  readonly fileId: number;
  /** The receiver's host name (as in its `RECV`). */
  readonly host: string;
  /** Retransmission requests it sent for this file (saturates at 65,535). */
  readonly requests: number;
}

/** A block that still lacks symbols, in a retransmission request. @public */
export interface BlockNeed {
  /** Source block number. */
  readonly sbn: number;
  /** Symbols still missing before the block decodes, 1 … 65,535. */
  readonly need: number;
}

/** A manifest page a receiver lacks. @public */
export interface PageRef {
  /** Source block number. */
  readonly sbn: number;
  /** Page within the block. */
  readonly page: number;
}

/**
 * A retransmission request (type 2). Payload layout:
 *
 *     round u16 | flags u8 (bit 0: highestInOrder present; others 0)
 *     | nNeeds u16 | nNeeds × (sbn u16, need u16)       sbn strictly increasing
 *     | nPages u16 | nPages × (sbn u16, page u16)       (sbn, page) strictly increasing
 *     | lackSbn u16 | nLack u16 | nLack × esi u16       esi strictly increasing; nLack 0 ⇒ lackSbn 0
 *
 * @public
 */
export interface RetransmissionRequest {
  /** Discriminator. */
  readonly kind: 'request';
  /** File ID. */
  readonly fileId: number;
  /** Highest sequence received in order (the seed's field), or `null` before the first. */
  readonly highestInOrder: number | null;
  /** The round this request answers. */
  readonly round: number;
  /** Blocks still lacking symbols and how many each needs (fresh repair serves them). */
  readonly needs: readonly BlockNeed[];
  /** Manifest pages the receiver lacks. */
  readonly pages: readonly PageRef[];
  /**
   * Source symbols lacking in one block, only where its repair pool is
   * used up (plain retransmission serves them); `null` for none.
   */
  readonly lacking: { readonly sbn: number; readonly esis: readonly number[] } | null;
}

/** A completion ack (type 3) for one or more receivers, signed by the publisher key. @public */
export interface AckPacket {
  /** Discriminator. */
  readonly kind: 'ack';
  /** File ID. */
  readonly fileId: number;
  /** The receivers acknowledged: 1 … 65,535 distinct host names. */
  readonly hosts: readonly string[];
  /** Ed25519 signature (64 bytes, a view): see `ackSigningBytes`. */
  readonly signature: Uint8Array;
}

/** A round end (type 7), signed by the publisher key. @public */
export interface RoundPacket {
  /** Discriminator. */
  readonly kind: 'round';
  /** File ID. */
  readonly fileId: number;
  /** The round that just ended, 1 … 65,535. */
  readonly round: number;
  /** Group round-trip time the sender measured, ms. */
  readonly grttMs: number;
  /** Longest back-off a receiver should draw before it asks, ms. */
  readonly backoffMs: number;
  /** Ed25519 signature (64 bytes, a view): see `roundSigningBytes`. */
  readonly signature: Uint8Array;
}

/** Any data-session packet. @public */
export type Packet = DataPacket | RepairPacket | ManifestPacket | NoticePacket | RetransmissionRequest | AckPacket | RoundPacket;

const HOST_RE = /^[A-Za-z0-9._:-]{1,253}$/;

/**
 * Read the 12-byte header. Checks the version, the `length` field and the
 * type number; not the per-type rules (see {@link decodePacket}).
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED`.
 * @public
 */
export function parseDataHeader(b: Uint8Array): DataHeader {
  if (!(b instanceof Uint8Array)) throw malformed('a packet must be bytes');
  if (b.length < DATA_HEADER_LEN) throw malformed(`packet of ${b.length} bytes is shorter than the ${DATA_HEADER_LEN}-byte header`);
  if (b.length > MAX_DATAGRAM_LEN) throw malformed(`packet of ${b.length} bytes is longer than a UDP datagram`);
  const version = b[OFF.VER_TYPE]! >> 4;
  const type = b[OFF.VER_TYPE]! & 0x0f;
  const length = b[OFF.LEN]!;
  if (version !== DATA_VERSION) throw malformed(`data header version ${version}, only ${DATA_VERSION} is known`);
  if (length !== DATA_HEADER_WORDS) throw malformed(`data header length ${length} words, version 1 has exactly ${DATA_HEADER_WORDS}`);
  if (type < PacketType.NOTICE || type > PacketType.ROUND) throw malformed(`unknown packet type ${type}`);
  // Big-endian fields read byte by byte: no DataView per datagram.
  const fileId = (b[OFF.FILE_ID]! << 8) | b[OFF.FILE_ID + 1]!;
  const seq = ((b[OFF.SEQ]! << 24) | (b[OFF.SEQ + 1]! << 16) | (b[OFF.SEQ + 2]! << 8) | b[OFF.SEQ + 3]!) >>> 0;
  const fecInfo = ((b[OFF.FEC]! << 24) | (b[OFF.FEC + 1]! << 16) | (b[OFF.FEC + 2]! << 8) | b[OFF.FEC + 3]!) >>> 0;
  return { version, type, length, fileId, seq, fecInfo };
}

/**
 * Write the 12-byte header into `out` (exactly {@link DATA_HEADER_LEN} bytes, or more: only the first 12 are written).
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for a field outside its width.
 * @public
 */
export function emitDataHeader(h: DataHeader, out: Uint8Array): void {
  checkU(h.version, 'version', 0xf);
  checkU(h.type, 'type', 0xf);
  checkU(h.length, 'length', 0xff);
  checkU(h.fileId, 'fileId', 0xffff);
  checkU(h.seq, 'seq', 0xffffffff);
  checkU(h.fecInfo, 'fecInfo', 0xffffffff);
  if (out.length < DATA_HEADER_LEN) throw malformed('header buffer shorter than 12 bytes');
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint8(OFF.VER_TYPE, (h.version << 4) | h.type);
  v.setUint8(OFF.LEN, h.length);
  v.setUint16(OFF.FILE_ID, h.fileId);
  v.setUint32(OFF.SEQ, h.seq);
  v.setUint32(OFF.FEC, h.fecInfo);
}

function checkU(value: unknown, field: string, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw malformed(`${field} must be an integer in 0…${max}, got ${String(value)}`);
  }
}

/** Header fields and payload of a packet, before the header is written. */
function frame(type: number, fileId: number, seq: number, fecInfo: number, payload: Uint8Array): Uint8Array {
  const total = DATA_HEADER_LEN + payload.length;
  if (total > MAX_DATAGRAM_LEN) throw malformed(`packet of ${total} bytes is longer than a UDP datagram`);
  const out = new Uint8Array(total);
  emitDataHeader({ version: DATA_VERSION, type, length: DATA_HEADER_WORDS, fileId, seq, fecInfo }, out);
  out.set(payload, DATA_HEADER_LEN);
  return out;
}

/** A small big-endian writer over a fixed buffer. */
class Writer {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }
  u8(v: number): void {
    this.#view.setUint8(this.#at, v);
    this.#at += 1;
  }
  u16(v: number): void {
    this.#view.setUint16(this.#at, v);
    this.#at += 2;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.#at);
    this.#at += b.length;
  }
}

/** A big-endian reader that throws `GS_ERR_DELIVERY_MALFORMED` past the end. */
class Reader {
  readonly #b: Uint8Array;
  readonly #view: DataView;
  #at = 0;
  constructor(b: Uint8Array, readonly what: string) {
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  #need(n: number): void {
    if (this.#at + n > this.#b.length) throw malformed(`${this.what} payload is truncated`);
  }
  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.#at++);
  }
  u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.#at);
    this.#at += 2;
    return v;
  }
  raw(n: number): Uint8Array {
    this.#need(n);
    const v = this.#b.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }
  end(): void {
    if (this.#at !== this.#b.length) throw malformed(`${this.what} payload has ${this.#b.length - this.#at} trailing bytes`);
  }
}

function checkHost(host: unknown): asserts host is string {
  if (typeof host !== 'string' || !HOST_RE.test(host)) throw malformed('host must be 1…253 of A-Z a-z 0-9 . _ - :');
}

function readHost(r: Reader): string {
  const len = r.u8();
  const host = Buffer.from(r.raw(len)).toString('latin1');
  checkHost(host);
  return host;
}

/** Payload bytes of a completion ack naming `hosts`. @public */
export function ackPayloadLength(hosts: readonly string[]): number {
  return 2 + hosts.reduce((n, h) => n + 1 + h.length, 0) + SIGNATURE_LEN;
}

function checkAckHosts(hosts: unknown): asserts hosts is readonly string[] {
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > 0xffff) throw malformed('a completion ack names 1…65535 hosts');
  for (const h of hosts) checkHost(h);
  if (new Set(hosts).size !== hosts.length) throw malformed('a completion ack names each host once');
}

function checkSignature(sig: unknown): asserts sig is Uint8Array {
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LEN) throw malformed(`signature must be ${SIGNATURE_LEN} bytes`);
}

/** Bytes of the request payload (checked). */
function requestPayloadLength(r: RetransmissionRequest): number {
  return 3 + 2 + 4 * r.needs.length + 2 + 4 * r.pages.length + 4 + 2 * (r.lacking?.esis.length ?? 0);
}

function checkRequest(r: RetransmissionRequest): void {
  checkU(r.round, 'round', 0xffff);
  if (r.highestInOrder !== null) checkU(r.highestInOrder, 'highestInOrder', 0xffffffff);
  if (!Array.isArray(r.needs) || r.needs.length > 0xffff) throw malformed('needs must be an array of at most 65535 entries');
  if (!Array.isArray(r.pages) || r.pages.length > 0xffff) throw malformed('pages must be an array of at most 65535 entries');
  let prev = -1;
  for (const n of r.needs) {
    checkU(n?.sbn, 'needs[].sbn', 0xffff);
    checkU(n.need, 'needs[].need', 0xffff);
    if (n.need === 0) throw malformed('needs[].need must be ≥ 1');
    if (n.sbn <= prev) throw malformed('needs must be in strictly increasing sbn order');
    prev = n.sbn;
  }
  prev = -1;
  for (const p of r.pages) {
    checkU(p?.sbn, 'pages[].sbn', 0xffff);
    checkU(p.page, 'pages[].page', 0xffff);
    const key = p.sbn * 0x10000 + p.page;
    if (key <= prev) throw malformed('pages must be in strictly increasing (sbn, page) order');
    prev = key;
  }
  if (r.lacking !== null) {
    checkU(r.lacking?.sbn, 'lacking.sbn', 0xffff);
    const esis = r.lacking.esis;
    if (!Array.isArray(esis) || esis.length === 0 || esis.length > 0xffff) throw malformed('lacking.esis must be a non-empty array (use lacking: null for none)');
    prev = -1;
    for (const e of esis) {
      checkU(e, 'lacking.esis[]', 0xffff);
      if (e <= prev) throw malformed('lacking.esis must be strictly increasing');
      prev = e;
    }
  }
}

/**
 * Encode one data-session packet.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for a field outside the layout.
 * @public
 */
export function encodePacket(p: Packet): Uint8Array {
  switch (p.kind) {
    case 'data':
    case 'repair': {
      checkU(p.sbn, 'sbn', 0xffff);
      checkU(p.esi, 'esi', 0xffff);
      if (!(p.payload instanceof Uint8Array) || p.payload.length === 0) throw malformed('a symbol payload must be non-empty bytes');
      return frame(p.kind === 'data' ? PacketType.DATA : PacketType.REPAIR, p.fileId, p.seq, p.sbn * 0x10000 + p.esi, p.payload);
    }
    case 'manifest': {
      checkU(p.sbn, 'sbn', 0xffff);
      checkU(p.page, 'page', 0xffff);
      checkManifestPayload(p.payload);
      return frame(PacketType.MANIFEST, p.fileId, 0, p.sbn * 0x10000 + p.page, p.payload);
    }
    case 'notice': {
      checkHost(p.host);
      checkU(p.requests, 'requests', 0xffff);
      const w = new Writer(3 + p.host.length);
      w.u16(p.requests);
      w.u8(p.host.length);
      w.raw(ascii(p.host));
      return frame(PacketType.NOTICE, p.fileId, 0, 0, w.bytes);
    }
    case 'request': {
      checkRequest(p);
      const w = new Writer(requestPayloadLength(p));
      w.u16(p.round);
      w.u8(p.highestInOrder === null ? 0 : 1);
      w.u16(p.needs.length);
      for (const n of p.needs) {
        w.u16(n.sbn);
        w.u16(n.need);
      }
      w.u16(p.pages.length);
      for (const g of p.pages) {
        w.u16(g.sbn);
        w.u16(g.page);
      }
      w.u16(p.lacking?.sbn ?? 0);
      w.u16(p.lacking?.esis.length ?? 0);
      for (const e of p.lacking?.esis ?? []) w.u16(e);
      return frame(PacketType.REQUEST, p.fileId, p.highestInOrder ?? 0, 0, w.bytes);
    }
    case 'ack': {
      checkAckHosts(p.hosts);
      checkSignature(p.signature);
      const w = new Writer(ackPayloadLength(p.hosts));
      w.u16(p.hosts.length);
      for (const h of p.hosts) {
        w.u8(h.length);
        w.raw(ascii(h));
      }
      w.raw(p.signature);
      return frame(PacketType.ACK, p.fileId, 0, 0, w.bytes);
    }
    case 'round': {
      checkU(p.round, 'round', 0xffff);
      if (p.round === 0) throw malformed('round must be ≥ 1');
      checkU(p.grttMs, 'grttMs', 0xffff);
      checkU(p.backoffMs, 'backoffMs', 0xffff);
      checkSignature(p.signature);
      const w = new Writer(6 + SIGNATURE_LEN);
      w.u16(p.round);
      w.u16(p.grttMs);
      w.u16(p.backoffMs);
      w.raw(p.signature);
      return frame(PacketType.ROUND, p.fileId, 0, 0, w.bytes);
    }
    default:
      throw malformed(`unknown packet kind ${JSON.stringify((p as { kind?: unknown }).kind)}`);
  }
}

function checkManifestPayload(payload: unknown): asserts payload is Uint8Array {
  if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length % SYMBOL_HASH_LEN !== 0) {
    throw malformed(`a manifest page payload must be a non-empty multiple of ${SYMBOL_HASH_LEN} bytes`);
  }
}

/** A control packet's header carries no sequence and no FEC information. */
function zeroSeqFec(h: DataHeader, what: string): void {
  if (h.seq !== 0) throw malformed(`${what}: sequence must be 0`);
  if (h.fecInfo !== 0) throw malformed(`${what}: FEC information must be 0`);
}

/**
 * Decode one data-session packet. Canonical: `encodePacket(decodePacket(b))`
 * equals `b` byte for byte, or this throws.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED`.
 * @public
 */
export function decodePacket(b: Uint8Array): Packet {
  const h = parseDataHeader(b);
  const payload = b.subarray(DATA_HEADER_LEN);
  const sbn = h.fecInfo >>> 16;
  const low = h.fecInfo & 0xffff;
  switch (h.type) {
    case PacketType.DATA:
    case PacketType.REPAIR:
      if (payload.length === 0) throw malformed('a symbol packet has no payload');
      return { kind: h.type === PacketType.DATA ? 'data' : 'repair', fileId: h.fileId, seq: h.seq, sbn, esi: low, payload };
    case PacketType.MANIFEST:
      if (h.seq !== 0) throw malformed('manifest page: sequence must be 0');
      checkManifestPayload(payload);
      return { kind: 'manifest', fileId: h.fileId, sbn, page: low, payload };
    case PacketType.NOTICE: {
      zeroSeqFec(h, 'completion notice');
      const r = new Reader(payload, 'completion notice');
      const requests = r.u16();
      const host = readHost(r);
      r.end();
      return { kind: 'notice', fileId: h.fileId, host, requests };
    }
    case PacketType.REQUEST: {
      if (h.fecInfo !== 0) throw malformed('retransmission request: FEC information must be 0');
      const r = new Reader(payload, 'retransmission request');
      const round = r.u16();
      const flags = r.u8();
      if (flags > 1) throw malformed('retransmission request: unknown flags');
      if (flags === 0 && h.seq !== 0) throw malformed('retransmission request: sequence must be 0 without an in-order mark');
      const needs: BlockNeed[] = [];
      for (let i = r.u16(); i > 0; i--) needs.push({ sbn: r.u16(), need: r.u16() });
      const pages: PageRef[] = [];
      for (let i = r.u16(); i > 0; i--) pages.push({ sbn: r.u16(), page: r.u16() });
      const lackSbn = r.u16();
      const nLack = r.u16();
      const esis: number[] = [];
      for (let i = 0; i < nLack; i++) esis.push(r.u16());
      r.end();
      if (nLack === 0 && lackSbn !== 0) throw malformed('retransmission request: lackSbn must be 0 when nothing lacks');
      const req: RetransmissionRequest = {
        kind: 'request',
        fileId: h.fileId,
        highestInOrder: flags === 1 ? h.seq : null,
        round,
        needs,
        pages,
        lacking: nLack === 0 ? null : { sbn: lackSbn, esis },
      };
      checkRequest(req);
      return req;
    }
    case PacketType.ACK: {
      zeroSeqFec(h, 'completion ack');
      const r = new Reader(payload, 'completion ack');
      const hosts: string[] = [];
      for (let i = r.u16(); i > 0; i--) hosts.push(readHost(r));
      const signature = r.raw(SIGNATURE_LEN);
      r.end();
      checkAckHosts(hosts);
      return { kind: 'ack', fileId: h.fileId, hosts, signature };
    }
    case PacketType.ROUND: {
      zeroSeqFec(h, 'round end');
      const r = new Reader(payload, 'round end');
      const round = r.u16();
      const grttMs = r.u16();
      const backoffMs = r.u16();
      const signature = r.raw(SIGNATURE_LEN);
      r.end();
      if (round === 0) throw malformed('round end: round must be ≥ 1');
      return { kind: 'round', fileId: h.fileId, round, grttMs, backoffMs, signature };
    }
    default:
      throw malformed(`unknown packet type ${h.type}`);
  }
}

/**
 * Split a retransmission request into as few packets as keep each payload
 * within `maxPayload` bytes (default {@link DEFAULT_MAX_REQUEST_PAYLOAD}):
 * needs first, then pages, then the lacking ESIs (which may themselves be
 * split across packets, each naming the same block). Each part carries the
 * same file ID, round and in-order mark. An empty request gives one packet.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for a request outside the layout or `maxPayload` below 16.
 * @public
 */
export function splitRetransmissionRequest(request: RetransmissionRequest, maxPayload: number = DEFAULT_MAX_REQUEST_PAYLOAD): RetransmissionRequest[] {
  checkRequest(request);
  if (!Number.isInteger(maxPayload) || maxPayload < 16 || maxPayload > MAX_DATAGRAM_LEN - DATA_HEADER_LEN) {
    throw malformed(`maxPayload must be an integer in 16…${MAX_DATAGRAM_LEN - DATA_HEADER_LEN}`);
  }
  const fixed = 3 + 2 + 2 + 4; // round, flags, nNeeds, nPages, lackSbn + nLack
  const out: RetransmissionRequest[] = [];
  let needs: BlockNeed[] = [];
  let pages: PageRef[] = [];
  let esis: number[] = [];
  let used = fixed;
  const flush = (): void => {
    out.push({ ...request, needs, pages, lacking: esis.length > 0 ? { sbn: request.lacking!.sbn, esis } : null });
    needs = [];
    pages = [];
    esis = [];
    used = fixed;
  };
  for (const n of request.needs) {
    if (used + 4 > maxPayload) flush();
    needs.push(n);
    used += 4;
  }
  for (const p of request.pages) {
    if (used + 4 > maxPayload) flush();
    pages.push(p);
    used += 4;
  }
  for (const e of request.lacking?.esis ?? []) {
    if (used + 2 > maxPayload) flush();
    esis.push(e);
    used += 2;
  }
  if (out.length === 0 || needs.length + pages.length + esis.length > 0) flush();
  return out;
}
