/**
 * The two ends of the wire for one update, built from the codecs, the
 * manifest and the publisher key:
 *
 * - {@link prepareUpdate} (sender): reads the file once, computing its
 *   SHA-256, the hash of every source and pool repair symbol and the Merkle
 *   tree over the manifest pages; signs the announcement; then makes any
 *   packet on demand (a symbol, a manifest page, a signed round end or ack).
 *   {@link prepareUpdateAsync} does the same with the repair pool encoded on
 *   worker threads.
 * - {@link UpdateAuthenticator} (receiver): from a verified announcement,
 *   checks every data-session packet *before* it is decoded or written —
 *   file ID, position, sequence and length against the layout, a manifest
 *   page against the signed root, a symbol against its page's hash, a round
 *   end or ack against the publisher key — and throws a typed
 *   `DeliveryError` for anything else, which the engine counts and ignores.
 */
import { createHash } from 'node:crypto';
import { DeliveryError } from '../../../errors/index.js';
import {
  createParallelReedSolomon,
  createReedSolomon,
  createReedSolomon16,
  ObjectEncoder,
  type CoderFactory,
  type ErasureCoder,
  type ObjectBlockSource,
} from '../../../fec/index.js';
import { getCryptoBackend, type CryptoBackend, type CryptoOption, type IdentityKey } from '../../../session/index.js';
import { bytesEqual, fromHex, toHex } from './common.js';
import { type Announcement, type AnnouncementFields, encodeControl, sourceSymbolCount, type UpdateCode } from './control.js';
import {
  BLOCK_HASH_LEN,
  blockHash,
  blockSourceCount,
  choosePageSize,
  manifestPayloadLength,
  MerkleTree,
  outOfRange,
  pageHashCount,
  pageLeaf,
  pageOfEsi,
  symbolHash,
  symbolHashMatches,
  symbolPayloadLength,
  symbolSeq,
  updateLayout,
  verifyMerkleProof,
  type UpdateLayout,
} from './manifest.js';
import { ackPayloadLength, DEFAULT_MAX_REQUEST_PAYLOAD, encodePacket, SYMBOL_HASH_LEN, type AckPacket, type ManifestPacket, type RoundPacket, type SymbolPacket } from './packet.js';
import { ackSigningBytes, isVerified, roundSigningBytes, signAnnouncement, type VerifiedAnnouncement } from './publisher.js';

/**
 * Blocks a {@link PreparedUpdate} keeps at hand for making symbols: with the
 * defaults (192 + 64 symbols of 1,400 bytes) at most about 5.7 MB.
 * @public
 */
export const SYMBOL_CACHE_BLOCKS = 16;
/** Bytes of planned repair symbols a {@link PreparedUpdate} makes ahead of their turn at most. */
const REPAIR_PLAN_BYTES = 32 << 20;

/**
 * The coder factory of an update code: `rs8` → `createReedSolomon`,
 * `rs16` → `createReedSolomon16`.
 * @public
 */
export function coderFor(code: UpdateCode): CoderFactory {
  return code === 'rs16' ? createReedSolomon16 : (k, m) => createReedSolomon(k, m);
}

/**
 * Defaults of {@link PrepareUpdateOptions}: GF(2^8) blocks of 192 source and
 * 64 repair symbols of 1,400 bytes (a 1,412-byte datagram fits a 1,500-byte
 * IPv6 MTU), first sequence 1 as in the seed's example, valid for a day.
 * @public
 */
export const DEFAULT_UPDATE_OPTIONS = Object.freeze({
  code: 'rs8' as UpdateCode,
  sourceSymbols: 192,
  repairSymbols: 64,
  symbolSize: 1400,
  firstSeq: 1,
  validitySeconds: 86_400,
});

/**
 * What {@link prepareUpdate} needs besides the file.
 * @public
 */
export interface PrepareUpdateOptions extends CryptoOption {
  /** Update name (names.ts grammar): where receivers put the file, relative to their directory. */
  readonly name: string;
  /** The publisher key that signs. */
  readonly key: IdentityKey;
  /** File ID for the data session, 0 … 65,535. */
  readonly fileId: number;
  /** Version of this name, ≥ 1; must grow with every update of the name. */
  readonly version: number;
  /** Unix time (s) after which receivers refuse it; default now + `validitySeconds`. */
  readonly expires?: number;
  /** Validity when `expires` is not given, seconds (default 86,400). */
  readonly validitySeconds?: number;
  /** Erasure code (default `rs8`). */
  readonly code?: UpdateCode;
  /** Source symbols per block, k (default 192). */
  readonly sourceSymbols?: number;
  /** Repair pool per block, m (default 64). */
  readonly repairSymbols?: number;
  /** Bytes per symbol (default 1,400). */
  readonly symbolSize?: number;
  /** Symbol hashes per manifest page (default: {@link choosePageSize}). */
  readonly hashesPerPage?: number;
  /** First sequence number (default 1). */
  readonly firstSeq?: number;
}

/**
 * A signed update ready to send: the announcement, the layout, and every
 * packet on demand. Made by {@link prepareUpdate}.
 * @public
 */
export class PreparedUpdate {
  /** The signed announcement. */
  readonly announcement: Announcement;
  /** Its layout. */
  readonly layout: UpdateLayout;
  /** The object encoder (reads the file block by block on demand). */
  readonly encoder: ObjectEncoder;
  readonly #key: IdentityKey;
  readonly #hashes: Uint8Array;
  readonly #blockHashes: Uint8Array;
  readonly #tree: MerkleTree;
  readonly #udate: Uint8Array;
  readonly #readBlock: (sbn: number) => Uint8Array;
  #coder: ErasureCoder | undefined;
  /** The last blocks symbols were made of, most recent last: their source shards and the repair made so far. */
  readonly #blocks = new Map<number, { readonly shards: Uint8Array[]; readonly repair: Map<number, Uint8Array> }>();
  /** Repair ESIs the current pass will ask for, by block, not made yet ({@link PreparedUpdate.planRepair}). */
  #plan = new Map<number, Set<number>>();
  /** Planned repair symbols made ahead with another of their block, by `sbn·0x10000 + esi`; each handed out once. */
  readonly #made = new Map<number, Uint8Array>();
  #madeBytes = 0;

  /** @internal */
  constructor(
    announcement: Announcement,
    layout: UpdateLayout,
    encoder: ObjectEncoder,
    key: IdentityKey,
    hashes: Uint8Array,
    blockHashes: Uint8Array,
    tree: MerkleTree,
    readBlock: (sbn: number) => Uint8Array,
  ) {
    this.announcement = announcement;
    this.layout = layout;
    this.encoder = encoder;
    this.#key = key;
    this.#hashes = hashes;
    this.#blockHashes = blockHashes;
    this.#tree = tree;
    this.#readBlock = readBlock;
    this.#udate = encodeControl({ kind: 'udate', announcement });
  }

  /** The `UDATE` datagram (a fresh copy). */
  announcementDatagram(): Uint8Array {
    return this.#udate.slice();
  }

  /**
   * The data (`esi` below `k`) or repair (`esi` ≥ `k`) packet of symbol `(sbn, esi)`.
   * @throws DeliveryError `GS_ERR_DELIVERY_OUT_OF_RANGE` for a symbol the update does not have.
   */
  symbolPacket(sbn: number, esi: number): Uint8Array {
    const l = this.layout;
    checkSymbolPosition(l, sbn, esi);
    const payload = this.#symbol(sbn, esi).subarray(0, symbolPayloadLength(l, sbn, esi));
    return encodePacket({ kind: esi < l.sourceSymbols ? 'data' : 'repair', fileId: l.fileId, seq: symbolSeq(l, sbn, esi), sbn, esi, payload });
  }

  /**
   * The manifest page packet `(sbn, page)`.
   * @throws DeliveryError `GS_ERR_DELIVERY_OUT_OF_RANGE` for a page the update does not have.
   */
  manifestPacket(sbn: number, page: number): Uint8Array {
    const l = this.layout;
    checkPagePosition(l, sbn, page);
    const start = (sbn * (l.sourceSymbols + l.repairSymbols) + page * l.hashesPerPage) * SYMBOL_HASH_LEN;
    const hashes = this.#hashes.subarray(start, start + pageHashCount(l, page) * SYMBOL_HASH_LEN);
    const proof = this.#tree.proof(sbn * l.pagesPerBlock + page);
    const payload = new Uint8Array(BLOCK_HASH_LEN + hashes.length + proof.length);
    payload.set(this.#blockHashes.subarray(sbn * BLOCK_HASH_LEN, (sbn + 1) * BLOCK_HASH_LEN));
    payload.set(hashes, BLOCK_HASH_LEN);
    payload.set(proof, BLOCK_HASH_LEN + hashes.length);
    return encodePacket({ kind: 'manifest', fileId: l.fileId, sbn, page, payload });
  }

  /**
   * Say which symbols the next {@link PreparedUpdate.symbolPacket} calls will
   * ask for (a sender's pass), replacing the previous plan. Nothing is made
   * here: when the first planned repair symbol of a block is asked for, that
   * block's planned repair symbols are made together in one block product
   * (one pass over the block, not one per symbol), and kept until asked for
   * (at most 32 MiB of them at a time; past that, one by
   * one as without a plan). The packets are the same with or without a plan.
   */
  planRepair(items: readonly { readonly sbn: number; readonly esi: number }[]): void {
    const k = this.layout.sourceSymbols;
    this.#plan = new Map();
    this.#made.clear();
    this.#madeBytes = 0;
    for (const { sbn, esi } of items) {
      if (esi < k) continue;
      let set = this.#plan.get(sbn);
      if (!set) this.#plan.set(sbn, (set = new Set()));
      set.add(esi);
    }
  }

  /**
   * Symbol `(sbn, esi)`, padded. The last {@link SYMBOL_CACHE_BLOCKS} blocks
   * are kept (source shards, and each repair symbol once made), so a round
   * that sends a block's symbols one by one reads the block once, not once
   * per symbol.
   */
  #symbol(sbn: number, esi: number): Uint8Array {
    const l = this.layout;
    let block = this.#blocks.get(sbn);
    if (block) {
      this.#blocks.delete(sbn);
    } else {
      const shards = blockShardsOf(this.#readBlock(sbn), l.sourceSymbols, l.symbolSize, new Uint8Array(l.symbolSize));
      block = { shards, repair: new Map() };
      if (this.#blocks.size >= SYMBOL_CACHE_BLOCKS) this.#blocks.delete(this.#blocks.keys().next().value!);
    }
    this.#blocks.set(sbn, block);
    if (esi < l.sourceSymbols) return block.shards[esi]!;
    let symbol = block.repair.get(esi);
    if (!symbol) {
      symbol = this.#repair(sbn, esi, block.shards);
      block.repair.set(esi, symbol);
    }
    return symbol;
  }

  /** Repair symbol `(sbn, esi)` of the block with source `shards`: made ahead, made now with the block's other planned ones, or made alone. */
  #repair(sbn: number, esi: number, shards: Uint8Array[]): Uint8Array {
    const l = this.layout;
    const key = sbn * 0x10000 + esi;
    const ready = this.#made.get(key);
    if (ready) {
      this.#made.delete(key);
      this.#madeBytes -= ready.length;
      return ready;
    }
    const coder = (this.#coder ??= coderFor(l.code)(l.sourceSymbols, l.repairSymbols));
    const plan = this.#plan.get(sbn);
    if (plan?.has(esi) && coder.encodeIndices) {
      plan.delete(esi);
      const room = Math.floor((REPAIR_PLAN_BYTES - this.#madeBytes) / l.symbolSize);
      const others = [...plan].slice(0, Math.max(0, room));
      for (const e of others) plan.delete(e);
      if (plan.size === 0) this.#plan.delete(sbn);
      const made = coder.encodeIndices(shards, [esi, ...others].map((e) => e - l.sourceSymbols));
      others.forEach((e, i) => {
        this.#made.set(sbn * 0x10000 + e, made[i + 1]!);
        this.#madeBytes += l.symbolSize;
      });
      return made[0]!;
    }
    return coder.encodeIndex(shards, esi - l.sourceSymbols);
  }

  /** The manifest page holding the hash of `esi` (same for every block). */
  pageOfEsi(esi: number): number {
    return pageOfEsi(this.layout, esi);
  }

  /** A signed round-end packet. */
  roundPacket(round: number, grttMs: number, backoffMs: number): Uint8Array {
    const signature = this.#key.sign(roundSigningBytes(this.announcement, round, grttMs, backoffMs));
    return encodePacket({ kind: 'round', fileId: this.layout.fileId, round, grttMs, backoffMs, signature });
  }

  /**
   * A signed completion ack for one receiver or a batch (distinct host
   * names; the packet must fit a datagram — {@link PreparedUpdate.ackPackets} splits).
   * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for a bad or repeated host name.
   */
  ackPacket(hosts: string | readonly string[]): Uint8Array {
    const list = typeof hosts === 'string' ? [hosts] : hosts;
    const signature = this.#key.sign(ackSigningBytes(this.announcement, list));
    return encodePacket({ kind: 'ack', fileId: this.layout.fileId, hosts: list, signature });
  }

  /**
   * Signed completion acks for `hosts`, as few as keep each payload within
   * `maxPayload` bytes (default 1,200): one signature per packet.
   */
  ackPackets(hosts: readonly string[], maxPayload: number = DEFAULT_MAX_REQUEST_PAYLOAD): Uint8Array[] {
    const out: Uint8Array[] = [];
    let batch: string[] = [];
    for (const h of hosts) {
      if (batch.length > 0 && ackPayloadLength([...batch, h]) > maxPayload) {
        out.push(this.ackPacket(batch));
        batch = [];
      }
      batch.push(h);
    }
    if (batch.length > 0) out.push(this.ackPacket(batch));
    return out;
  }
}

function checkSymbolPosition(l: UpdateLayout, sbn: number, esi: number): void {
  if (!Number.isInteger(sbn) || sbn < 0 || sbn >= l.blockCount) throw outOfRange(`block ${sbn} is outside the update (${l.blockCount} blocks)`);
  if (!Number.isInteger(esi) || esi < 0 || esi >= l.sourceSymbols + l.repairSymbols) {
    throw outOfRange(`symbol ${esi} of block ${sbn} is outside k + m = ${l.sourceSymbols + l.repairSymbols}`);
  }
  if (esi < l.sourceSymbols && esi >= blockSourceCount(l, sbn)) throw outOfRange(`symbol ${esi} of block ${sbn} is past the end of the file`);
}

function checkPagePosition(l: UpdateLayout, sbn: number, page: number): void {
  if (!Number.isInteger(sbn) || sbn < 0 || sbn >= l.blockCount) throw outOfRange(`block ${sbn} is outside the update (${l.blockCount} blocks)`);
  if (!Number.isInteger(page) || page < 0 || page >= l.pagesPerBlock) throw outOfRange(`manifest page ${page} is outside the ${l.pagesPerBlock} pages of a block`);
}

/**
 * Read `file` once and make a signed, ready-to-send update: its digest, the
 * hash of every source and pool repair symbol, the Merkle tree, the
 * announcement. Memory: the file is read one block at a time when given as
 * an `ObjectBlockSource`; the hashes take `16 · (k + m)` bytes per block.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` (or `…_UNSAFE_NAME`) for options outside the grammar.
 * @public
 */
export function prepareUpdate(file: Uint8Array | ObjectBlockSource, options: PrepareUpdateOptions): PreparedUpdate {
  const plan = new UpdatePlan(file, options);
  const coder = coderFor(plan.layout.code)(plan.layout.sourceSymbols, plan.layout.repairSymbols);
  for (let sbn = 0; sbn < plan.layout.blockCount; sbn++) {
    const { bytes, shards } = plan.block(sbn);
    plan.hashBlock(sbn, bytes, shards, coder.encode(shards));
  }
  return plan.finish();
}

/**
 * {@link prepareUpdate} with the repair pool encoded on worker threads
 * (`ParallelReedSolomon.encodeBlocks`, `threads` of them; default: the
 * machine's parallelism − 1), a batch of blocks at a time. Same result,
 * byte for byte. GF(2^16) updates (`rs16`) are encoded on the calling thread.
 * @public
 */
export async function prepareUpdateAsync(file: Uint8Array | ObjectBlockSource, options: PrepareUpdateOptions & { readonly threads?: number }): Promise<PreparedUpdate> {
  const plan = new UpdatePlan(file, options);
  const l = plan.layout;
  if (l.code !== 'rs8') return prepareUpdate(file, options);
  const rs = createParallelReedSolomon(l.sourceSymbols, l.repairSymbols, options.threads === undefined ? {} : { threads: options.threads });
  try {
    for (let first = 0; first < l.blockCount; first += PREPARE_BATCH_BLOCKS) {
      const batch = [];
      for (let sbn = first; sbn < Math.min(l.blockCount, first + PREPARE_BATCH_BLOCKS); sbn++) batch.push(plan.block(sbn));
      const parity = await rs.encodeBlocks(batch.map((b) => b.shards));
      batch.forEach((b, i) => plan.hashBlock(first + i, b.bytes, b.shards, parity[i]!));
    }
  } finally {
    await rs.close();
  }
  return plan.finish();
}

/** Blocks {@link prepareUpdateAsync} hands the workers at once. */
const PREPARE_BATCH_BLOCKS = 16;

/** The k padded source shards of a block's bytes (views where whole, zeros past the end). */
function blockShardsOf(bytes: Uint8Array, k: number, symbolSize: number, zero: Uint8Array): Uint8Array[] {
  const shards: Uint8Array[] = [];
  for (let i = 0; i < k; i++) {
    const start = i * symbolSize;
    if (start >= bytes.length) shards.push(zero);
    else if (start + symbolSize <= bytes.length) shards.push(bytes.subarray(start, start + symbolSize));
    else {
      const padded = new Uint8Array(symbolSize);
      padded.set(bytes.subarray(start));
      shards.push(padded);
    }
  }
  return shards;
}

/**
 * One update being prepared: its checked fields and layout, then, block by
 * block in order, the digest, the block hash and every symbol hash, then the
 * tree and the signature.
 */
class UpdatePlan {
  readonly layout: UpdateLayout;
  readonly #file: Uint8Array | ObjectBlockSource;
  readonly #options: PrepareUpdateOptions;
  readonly #crypto: CryptoBackend;
  readonly #base: Omit<AnnouncementFields, 'digest' | 'root' | 'keyId'>;
  readonly #hashes: Uint8Array;
  readonly #blockHashes: Uint8Array;
  readonly #zero: Uint8Array;
  readonly #zeroHash: Uint8Array;
  readonly #digest = createHash('sha256');
  #next = 0;

  constructor(file: Uint8Array | ObjectBlockSource, options: PrepareUpdateOptions) {
    this.#crypto = getCryptoBackend(options.crypto);
    this.#file = file;
    this.#options = options;
    const k = options.sourceSymbols ?? DEFAULT_UPDATE_OPTIONS.sourceSymbols;
    const m = options.repairSymbols ?? DEFAULT_UPDATE_OPTIONS.repairSymbols;
    const symbolSize = options.symbolSize ?? DEFAULT_UPDATE_OPTIONS.symbolSize;
    const firstSeq = options.firstSeq ?? DEFAULT_UPDATE_OPTIONS.firstSeq;
    if (file === null || typeof file !== 'object' || (!(file instanceof Uint8Array) && typeof file.readBlock !== 'function')) {
      throw new TypeError('file must be a Uint8Array or an ObjectBlockSource { length, readBlock }');
    }
    const size = file.length;
    if (!Number.isSafeInteger(size) || size < 1) throw new DeliveryError('GS_ERR_DELIVERY_MALFORMED', 'an update file must have at least one byte');
    this.#base = {
      name: options.name,
      size,
      fileId: options.fileId,
      firstSeq,
      lastSeq: firstSeq + sourceSymbolCount(size, symbolSize) - 1,
      code: options.code ?? DEFAULT_UPDATE_OPTIONS.code,
      sourceSymbols: k,
      repairSymbols: m,
      symbolSize,
      hashesPerPage: options.hashesPerPage ?? choosePageSize({ size, symbolSize, sourceSymbols: k, repairSymbols: m }),
      version: options.version,
      expires: options.expires ?? Math.floor(Date.now() / 1000) + (options.validitySeconds ?? DEFAULT_UPDATE_OPTIONS.validitySeconds),
    };
    // Check every field (and the name) before the long read: sign a draft with zero digest and root.
    signAnnouncement({ ...this.#base, digest: '0'.repeat(64), root: '0'.repeat(32) }, options.key);
    this.layout = updateLayout(this.#base);
    this.#hashes = new Uint8Array(this.layout.blockCount * (k + m) * SYMBOL_HASH_LEN);
    this.#blockHashes = new Uint8Array(this.layout.blockCount * BLOCK_HASH_LEN);
    this.#zero = new Uint8Array(symbolSize);
    this.#zeroHash = symbolHash(this.#crypto, this.#zero);
  }

  /** Block `sbn`'s bytes of the file (checked) and its k padded source shards. */
  block(sbn: number): { bytes: Uint8Array; shards: Uint8Array[] } {
    const bytes = this.readBlock(sbn);
    return { bytes, shards: blockShardsOf(bytes, this.layout.sourceSymbols, this.layout.symbolSize, this.#zero) };
  }

  readonly readBlock = (sbn: number): Uint8Array => {
    const l = this.layout;
    const blockBytes = l.sourceSymbols * l.symbolSize;
    const offset = sbn * blockBytes;
    const length = Math.min(blockBytes, l.size - offset);
    if (this.#file instanceof Uint8Array) return this.#file.subarray(offset, offset + length);
    const bytes = this.#file.readBlock(sbn, offset, length);
    if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new TypeError(`readBlock(${sbn}) must return ${length} bytes`);
    return bytes;
  };

  /** Hash block `sbn` (blocks must come in order): digest, block hash, source and repair symbol hashes. */
  hashBlock(sbn: number, bytes: Uint8Array, shards: readonly Uint8Array[], parity: readonly Uint8Array[]): void {
    if (sbn !== this.#next++) throw new Error(`internal: block ${sbn} hashed out of order`);
    const l = this.layout;
    const perBlock = l.sourceSymbols + l.repairSymbols;
    this.#digest.update(bytes);
    this.#blockHashes.set(blockHash(this.#crypto, bytes), sbn * BLOCK_HASH_LEN);
    const kb = blockSourceCount(l, sbn);
    // A short last block's never-sent source symbols are zero symbols.
    shards.forEach((shard, esi) => this.#hashes.set(esi < kb ? symbolHash(this.#crypto, shard) : this.#zeroHash, (sbn * perBlock + esi) * SYMBOL_HASH_LEN));
    parity.forEach((symbol, p) => this.#hashes.set(symbolHash(this.#crypto, symbol), (sbn * perBlock + l.sourceSymbols + p) * SYMBOL_HASH_LEN));
  }

  /** The tree over every page, the signed announcement, the prepared update. */
  finish(): PreparedUpdate {
    const l = this.layout;
    if (this.#next !== l.blockCount) throw new Error('internal: not every block was hashed');
    const perBlock = l.sourceSymbols + l.repairSymbols;
    const leaves: Uint8Array[] = [];
    for (let sbn = 0; sbn < l.blockCount; sbn++) {
      const bh = this.#blockHashes.subarray(sbn * BLOCK_HASH_LEN, (sbn + 1) * BLOCK_HASH_LEN);
      for (let page = 0; page < l.pagesPerBlock; page++) {
        const start = (sbn * perBlock + page * l.hashesPerPage) * SYMBOL_HASH_LEN;
        leaves.push(pageLeaf(this.#crypto, bh, this.#hashes.subarray(start, start + pageHashCount(l, page) * SYMBOL_HASH_LEN)));
      }
    }
    const tree = new MerkleTree(this.#crypto, leaves);
    const announcement = signAnnouncement({ ...this.#base, digest: this.#digest.digest('hex'), root: toHex(tree.root) }, this.#options.key);
    const encoder = new ObjectEncoder(this.#file, { symbolSize: l.symbolSize, sourceSymbols: l.sourceSymbols, repairSymbols: l.repairSymbols, coder: coderFor(l.code) });
    return new PreparedUpdate(announcement, l, encoder, this.#options.key, this.#hashes, this.#blockHashes, tree, this.readBlock);
  }
}

/**
 * What {@link UpdateAuthenticator.checkSymbol} found.
 * @public
 */
export type SymbolCheck =
  /** The symbol is authentic; `symbol` is it padded to `symbolSize`, ready for the decoder. */
  | { readonly status: 'ok'; readonly sbn: number; readonly esi: number; readonly symbol: Uint8Array }
  /** Its manifest page has not arrived: hold the packet (bounded) and check it again later, or drop it. */
  | { readonly status: 'no-manifest'; readonly sbn: number; readonly esi: number; readonly page: number };

/**
 * A receiver's gate for one update's data session: every packet passes here
 * before anything decodes or writes it.
 *
 * Failures are `DeliveryError`s the caller counts and ignores:
 * `GS_ERR_DELIVERY_FOREIGN_FILE` (another file ID),
 * `GS_ERR_DELIVERY_OUT_OF_RANGE` (a position, sequence or length outside
 * the announced file), `GS_ERR_DELIVERY_BAD_SIGNATURE` (a page whose proof
 * does not reach the signed root, a symbol whose hash is not its page's, a
 * round end or ack not signed by the publisher).
 * @public
 */
export class UpdateAuthenticator {
  /** The verified announcement. */
  readonly announcement: VerifiedAnnouncement;
  /** Its layout. */
  readonly layout: UpdateLayout;
  readonly #crypto: CryptoBackend;
  readonly #root: Uint8Array;
  /** Page hashes by block, until the block is forgotten. */
  readonly #pages = new Map<number, (Uint8Array | undefined)[]>();
  /** Block hashes, from the first authentic page of each block, until the block is forgotten. */
  readonly #blockHashes = new Map<number, Uint8Array>();
  #coder: ErasureCoder | undefined;
  /** Blocks already decoded and forgotten. */
  readonly #done = new Set<number>();

  /**
   * @param announcement - from `verifyAnnouncement`; anything else is refused
   * @throws TypeError for an announcement that did not come from `verifyAnnouncement`.
   */
  constructor(announcement: VerifiedAnnouncement, options: CryptoOption = {}) {
    if (!isVerified(announcement)) throw new TypeError('UpdateAuthenticator needs an announcement returned by verifyAnnouncement()');
    this.announcement = announcement;
    this.layout = updateLayout(announcement);
    this.#crypto = getCryptoBackend(options.crypto);
    this.#root = fromHex(announcement.root);
  }

  /** File ID, position, kind, sequence and length of a symbol packet against the layout. */
  #checkPlacement(packet: SymbolPacket): void {
    const l = this.layout;
    const { sbn, esi } = packet;
    this.#checkFile(packet.fileId);
    checkSymbolPosition(l, sbn, esi);
    if ((packet.kind === 'data') !== esi < l.sourceSymbols) {
      throw outOfRange(`a ${packet.kind} packet with esi ${esi} (source symbols are esi < k = ${l.sourceSymbols})`);
    }
    const seq = symbolSeq(l, sbn, esi);
    if (packet.seq !== seq) throw outOfRange(`symbol (${sbn}, ${esi}) carries sequence ${packet.seq}, the layout gives ${seq}`);
    const length = symbolPayloadLength(l, sbn, esi);
    if (packet.payload.length !== length) throw outOfRange(`symbol (${sbn}, ${esi}) has ${packet.payload.length} bytes, the layout gives ${length}`);
  }

  #checkFile(fileId: number): void {
    if (fileId !== this.layout.fileId) throw new DeliveryError('GS_ERR_DELIVERY_FOREIGN_FILE', `packet for file ${fileId}, receiving file ${this.layout.fileId}`);
  }

  /**
   * Check a manifest page against the signed root and keep its hashes.
   * Returns `duplicate` for a page already held (or of a forgotten block).
   * @throws DeliveryError `…_FOREIGN_FILE`, `…_OUT_OF_RANGE`, `…_BAD_SIGNATURE`.
   */
  addPage(packet: ManifestPacket): 'added' | 'duplicate' {
    const l = this.layout;
    this.#checkFile(packet.fileId);
    checkPagePosition(l, packet.sbn, packet.page);
    const expected = manifestPayloadLength(l, packet.sbn, packet.page);
    if (packet.payload.length !== expected) {
      throw outOfRange(`manifest page (${packet.sbn}, ${packet.page}) has ${packet.payload.length} bytes, the layout gives ${expected}`);
    }
    if (this.#done.has(packet.sbn) || this.#pages.get(packet.sbn)?.[packet.page] !== undefined) return 'duplicate';
    const hashLen = pageHashCount(l, packet.page) * SYMBOL_HASH_LEN;
    const bh = packet.payload.subarray(0, BLOCK_HASH_LEN);
    const hashes = packet.payload.subarray(BLOCK_HASH_LEN, BLOCK_HASH_LEN + hashLen);
    const proof = packet.payload.subarray(BLOCK_HASH_LEN + hashLen);
    const index = packet.sbn * l.pagesPerBlock + packet.page;
    if (!verifyMerkleProof(this.#crypto, pageLeaf(this.#crypto, bh, hashes), index, l.pageCount, proof, this.#root)) {
      throw new DeliveryError('GS_ERR_DELIVERY_BAD_SIGNATURE', `manifest page (${packet.sbn}, ${packet.page}) does not lead to the signed root`);
    }
    let pages = this.#pages.get(packet.sbn);
    if (!pages) {
      pages = new Array<Uint8Array | undefined>(l.pagesPerBlock).fill(undefined);
      this.#pages.set(packet.sbn, pages);
    }
    pages[packet.page] = hashes.slice();
    if (!this.#blockHashes.has(packet.sbn)) this.#blockHashes.set(packet.sbn, bh.slice());
    return 'added';
  }

  /** True when some authentic page of block `sbn` arrived, so {@link UpdateAuthenticator.recoverBlock} can check it. */
  hasBlockHash(sbn: number): boolean {
    return this.#blockHashes.has(sbn);
  }

  /**
   * Recover a block from symbols whose pages are missing: decode it from
   * `symbols` (any mix of authenticated ones and held packets, at least as
   * many as the block's source symbols; payloads as on the wire) and keep the
   * result only if it matches the block hash an authentic page of the block
   * carried. Returns the block's source symbols, each padded to
   * `symbolSize`, ready for the decoder as authentic ones; `undefined` when
   * the block hash is not known yet, there are too few symbols, or the result
   * does not match (a forged or damaged held symbol: drop the held ones and
   * ask for the missing pages).
   * @throws DeliveryError `…_FOREIGN_FILE`, `…_OUT_OF_RANGE` for a packet that does not fit the layout.
   */
  recoverBlock(sbn: number, symbols: Iterable<SymbolPacket>): Uint8Array[] | undefined {
    const l = this.layout;
    const expected = this.#blockHashes.get(sbn);
    if (!expected) return undefined;
    const k = l.sourceSymbols;
    const kb = blockSourceCount(l, sbn);
    const shards: (Uint8Array | null)[] = new Array<Uint8Array | null>(k + l.repairSymbols).fill(null);
    let present = 0;
    for (const p of symbols) {
      if (p.sbn !== sbn) throw outOfRange(`recoverBlock(${sbn}) was given a symbol of block ${p.sbn}`);
      this.#checkPlacement(p);
      if (shards[p.esi] === null) present++;
      shards[p.esi] = this.#padded(p.payload);
    }
    if (present < kb) return undefined;
    const zero = new Uint8Array(l.symbolSize);
    for (let esi = kb; esi < k; esi++) shards[esi] = zero;
    this.#coder ??= coderFor(l.code)(k, l.repairSymbols);
    this.#coder.reconstruct(shards, { dataOnly: true });
    const source = shards.slice(0, kb) as Uint8Array[];
    const bytes = l.size - sbn * k * l.symbolSize;
    const parts = source.map((s, i) => s.subarray(0, Math.min(l.symbolSize, bytes - i * l.symbolSize)));
    return bytesEqual(blockHash(this.#crypto, ...parts), expected) ? source : undefined;
  }

  #padded(payload: Uint8Array): Uint8Array {
    if (payload.length === this.layout.symbolSize) return payload;
    const symbol = new Uint8Array(this.layout.symbolSize);
    symbol.set(payload);
    return symbol;
  }

  /** True when page `(sbn, page)` is held, or its block was forgotten as done. */
  hasPage(sbn: number, page: number): boolean {
    return this.#done.has(sbn) || this.#pages.get(sbn)?.[page] !== undefined;
  }

  /** Pages of block `sbn` not yet held, among those covering `esis` (default: all pages). */
  missingPages(sbn: number, esis?: Iterable<number>): number[] {
    if (this.#done.has(sbn)) return [];
    const pages = this.#pages.get(sbn);
    const wanted = esis ? new Set([...esis].map((e) => pageOfEsi(this.layout, e))) : null;
    const out: number[] = [];
    for (let p = 0; p < this.layout.pagesPerBlock; p++) if (pages?.[p] === undefined && (!wanted || wanted.has(p))) out.push(p);
    return out;
  }

  /**
   * Check a data or repair packet: file ID, position, sequence, payload
   * length, then (once its page is here) its hash.
   * @throws DeliveryError `…_FOREIGN_FILE`, `…_OUT_OF_RANGE`, `…_BAD_SIGNATURE`.
   */
  checkSymbol(packet: SymbolPacket): SymbolCheck {
    const l = this.layout;
    const { sbn, esi } = packet;
    this.#checkPlacement(packet);
    const page = pageOfEsi(l, esi);
    const hashes = this.#pages.get(sbn)?.[page];
    if (!hashes) return { status: 'no-manifest', sbn, esi, page };
    const symbol = this.#padded(packet.payload);
    const at = (esi - page * l.hashesPerPage) * SYMBOL_HASH_LEN;
    if (!symbolHashMatches(this.#crypto, symbol, hashes, at)) {
      throw new DeliveryError('GS_ERR_DELIVERY_BAD_SIGNATURE', `symbol (${sbn}, ${esi}) does not match its manifest hash`);
    }
    return { status: 'ok', sbn, esi, symbol };
  }

  /**
   * Check a round end's signature.
   * @throws DeliveryError `…_FOREIGN_FILE`, `…_BAD_SIGNATURE`.
   */
  verifyRound(packet: RoundPacket): void {
    this.#checkFile(packet.fileId);
    const message = roundSigningBytes(this.announcement, packet.round, packet.grttMs, packet.backoffMs);
    if (!this.#crypto.ed25519.verify(packet.signature, message, this.announcement.publisherKey)) {
      throw new DeliveryError('GS_ERR_DELIVERY_BAD_SIGNATURE', `round end ${packet.round} is not signed by the publisher`);
    }
  }

  /**
   * Check a completion ack: it names this receiver (`host`) and is signed by the publisher.
   * @throws DeliveryError `…_FOREIGN_FILE`, `…_OUT_OF_RANGE` (not for this host), `…_BAD_SIGNATURE`.
   */
  verifyAck(packet: AckPacket, host: string): void {
    this.#checkFile(packet.fileId);
    if (!packet.hosts.includes(host)) throw outOfRange(`completion ack for ${packet.hosts.slice(0, 3).join(', ')}${packet.hosts.length > 3 ? ', …' : ''}, not for ${host}`);
    if (!this.#crypto.ed25519.verify(packet.signature, ackSigningBytes(this.announcement, packet.hosts), this.announcement.publisherKey)) {
      throw new DeliveryError('GS_ERR_DELIVERY_BAD_SIGNATURE', 'completion ack is not signed by the publisher');
    }
  }

  /** Drop block `sbn`'s page hashes once it is decoded; later pages and symbols of it count as duplicates. */
  forgetBlock(sbn: number): void {
    this.#pages.delete(sbn);
    this.#blockHashes.delete(sbn);
    this.#done.add(sbn);
  }

  /** True once {@link UpdateAuthenticator.forgetBlock} was called for `sbn`. */
  isForgotten(sbn: number): boolean {
    return this.#done.has(sbn);
  }
}
