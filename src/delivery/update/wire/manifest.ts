/**
 * The manifest: how every data and repair packet is authenticated before it
 * reaches the decoder, cheaply and without a signature per packet.
 *
 * ## Symbol hashes and pages
 *
 * For every block the sender hashes every symbol it may ever send: the `k`
 * source symbols (zero-padded to `symbolSize`; a short last block's
 * never-sent symbols past the end of the file hash as zero symbols) and the
 * `m` repair symbols of the pool, ESI order 0 … k+m−1. A symbol's hash is the
 * first 16 bytes of its SHA-256. The `k + m` hashes of a block are cut into
 * `pagesPerBlock = ceil((k+m) / hashesPerPage)` pages; page `p` holds ESIs
 * `p·hashesPerPage …`, the last page of a block fewer.
 *
 * ## Block hashes
 *
 * Each block also has a block hash: the first 16 bytes of
 * `SHA-256(0x02 ‖ the block's bytes of the file)` (unpadded; the short last
 * block's real bytes only). Every page of a block carries it, so a receiver
 * that lost one page of a block but holds another can still use the lost
 * page's symbols: it decodes the block from them and the authenticated ones
 * and keeps the result only if the block hash matches
 * (`UpdateAuthenticator.recoverBlock`). Nothing unverified is ever kept: a
 * forged symbol makes the hash mismatch and the receiver asks for the page.
 * With 1,000 receivers at 5 % loss nearly every page is lost by someone; this
 * is what spares the sender from sending every page twice.
 *
 * ## The Merkle tree
 *
 * Leaf `sbn · pagesPerBlock + page` is `H(0x00 ‖ block hash ‖ page hashes)`;
 * an inner node is `H(0x01 ‖ left ‖ right)`, where `H` is SHA-256 cut to 16
 * bytes and the prefixes keep leaves, nodes and block hashes apart (as RFC
 * 9162 §2.1.1 does for leaves and nodes). Levels are built pairwise from the
 * left; a level's odd last node moves up unchanged. The root goes into the
 * signed `UDATE` line, so the announcement signature covers every hash.
 *
 * ## A manifest page packet (type 6)
 *
 *     payload = block hash (16) ‖ page hashes (count × 16) ‖ proof (depth × 16)
 *
 * where the proof is the sibling of each level from the leaf up (none for a
 * level where the node moves up unchanged); every length follows from the
 * announced layout, so the payload length is exact.
 *
 * ## Cost
 *
 * Bytes of manifest per byte of file, every page sent once:
 * `16 · (k + r) / (k · symbolSize)` for blocks whose first `r` repair hashes
 * are needed, plus `16 · (depth + 1)` per page. With the defaults (k = 192,
 * m = 64, symbolSize = 1,400, pages of 64 hashes) a block of 268,800 bytes
 * has 4 pages of about 1,100–1,300 bytes: 1.8 % of the file for 100 MB,
 * 1.9 % for 1 GB (docs/delivery.md, "Authentication cost"). A page is sent
 * again only for a receiver that lost every page of a block (about 0.05^4
 * of blocks per receiver at 5 % loss) or whose recovered block did not match.
 *
 * 16-byte hashes give 128-bit second-preimage resistance (the publisher is
 * trusted, so collisions do not matter): forging one symbol of a session costs
 * about 2^128 / (number of symbols) hash evaluations.
 */
import { DeliveryError } from '../../../errors/index.js';
import { FEC_INFO_MAX_BLOCKS } from '../../../fec/index.js';
import type { CryptoBackend } from '../../../session/index.js';
import { bytesEqual, malformed } from './common.js';
import { type AnnouncementFields, MAX_HASHES_PER_PAGE, sourceSymbolCount, type UpdateCode } from './control.js';
import { DATA_HEADER_LEN, MAX_DATAGRAM_LEN, SYMBOL_HASH_LEN } from './packet.js';

/** Bytes of a Merkle node (truncated SHA-256). @public */
export const MERKLE_NODE_LEN = 16;

const LEAF_TAG = Uint8Array.of(0x00);
const NODE_TAG = Uint8Array.of(0x01);
const BLOCK_TAG = Uint8Array.of(0x02);
/** Bytes of a block hash. @public */
export const BLOCK_HASH_LEN = 16;

/**
 * Everything about an update's shape that follows from its announcement.
 * @public
 */
export interface UpdateLayout {
  /** File ID. */
  readonly fileId: number;
  /** File size in bytes. */
  readonly size: number;
  /** Erasure code. */
  readonly code: UpdateCode;
  /** Bytes per symbol. */
  readonly symbolSize: number;
  /** Source symbols per block (`k`). */
  readonly sourceSymbols: number;
  /** Repair pool per block (`m`). */
  readonly repairSymbols: number;
  /** Blocks: `ceil(sourceSymbolCount / k)`. */
  readonly blockCount: number;
  /** Source symbols of the whole file: `ceil(size / symbolSize)`. */
  readonly sourceSymbolCount: number;
  /** Sequence of the first source symbol. */
  readonly firstSeq: number;
  /** Sequence of the last source symbol. */
  readonly lastSeq: number;
  /** Symbol hashes per manifest page. */
  readonly hashesPerPage: number;
  /** Manifest pages per block: `ceil((k + m) / hashesPerPage)`. */
  readonly pagesPerBlock: number;
  /** Leaves of the Merkle tree: `blockCount · pagesPerBlock`. */
  readonly pageCount: number;
}

/**
 * The layout of an announcement's fields (already checked by the codec;
 * rechecked here for callers that build fields by hand).
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for inconsistent fields.
 * @public
 */
export function updateLayout(f: Omit<AnnouncementFields, 'digest' | 'root' | 'keyId' | 'version' | 'expires' | 'name'>): UpdateLayout {
  const symbols = sourceSymbolCount(f.size, f.symbolSize);
  const blockCount = Math.ceil(symbols / f.sourceSymbols);
  if (!(blockCount >= 1 && blockCount <= FEC_INFO_MAX_BLOCKS)) throw malformed(`an update has 1…${FEC_INFO_MAX_BLOCKS} blocks, this one ${blockCount}`);
  if (!(f.hashesPerPage >= 1 && f.hashesPerPage <= MAX_HASHES_PER_PAGE)) throw malformed(`hashesPerPage must be in 1…${MAX_HASHES_PER_PAGE}`);
  const pagesPerBlock = Math.ceil((f.sourceSymbols + f.repairSymbols) / f.hashesPerPage);
  if (pagesPerBlock > 0xffff + 1) throw malformed('more than 65536 manifest pages per block');
  return Object.freeze({
    fileId: f.fileId,
    size: f.size,
    code: f.code,
    symbolSize: f.symbolSize,
    sourceSymbols: f.sourceSymbols,
    repairSymbols: f.repairSymbols,
    blockCount,
    sourceSymbolCount: symbols,
    firstSeq: f.firstSeq,
    lastSeq: f.lastSeq,
    hashesPerPage: f.hashesPerPage,
    pagesPerBlock,
    pageCount: blockCount * pagesPerBlock,
  });
}

/** Source symbols block `sbn` really has (k, fewer in a short last block). @public */
export function blockSourceCount(layout: UpdateLayout, sbn: number): number {
  return Math.min(layout.sourceSymbols, layout.sourceSymbolCount - sbn * layout.sourceSymbols);
}

/**
 * The header sequence number of symbol `(sbn, esi)`: `firstSeq + sbn·k + esi`
 * for a source symbol, `firstSeq + sbn·k` (the block's first) for a repair symbol.
 * @public
 */
export function symbolSeq(layout: UpdateLayout, sbn: number, esi: number): number {
  const base = layout.firstSeq + sbn * layout.sourceSymbols;
  return esi < layout.sourceSymbols ? base + esi : base;
}

/**
 * Payload bytes of symbol `(sbn, esi)` on the wire: `symbolSize`, except the
 * file's last source symbol, sent without its padding.
 * @public
 */
export function symbolPayloadLength(layout: UpdateLayout, sbn: number, esi: number): number {
  if (esi < layout.sourceSymbols && sbn * layout.sourceSymbols + esi === layout.sourceSymbolCount - 1) {
    return layout.size - (layout.sourceSymbolCount - 1) * layout.symbolSize;
  }
  return layout.symbolSize;
}

/** The manifest page of a block that holds the hash of `esi`. @public */
export function pageOfEsi(layout: UpdateLayout, esi: number): number {
  return Math.floor(esi / layout.hashesPerPage);
}

/** Hashes on page `page` of every block. @public */
export function pageHashCount(layout: UpdateLayout, page: number): number {
  const total = layout.sourceSymbols + layout.repairSymbols;
  return Math.min(layout.hashesPerPage, total - page * layout.hashesPerPage);
}

/** Proof nodes for leaf `index` of a tree of `count` leaves. @public */
export function merkleProofLength(index: number, count: number): number {
  let n = 0;
  for (let i = index, c = count; c > 1; i >>>= 1, c = Math.ceil(c / 2)) {
    if (i % 2 === 1 || i + 1 < c) n++;
  }
  return n;
}

/** Payload bytes of the manifest page packet `(sbn, page)`. @public */
export function manifestPayloadLength(layout: UpdateLayout, sbn: number, page: number): number {
  return BLOCK_HASH_LEN + (pageHashCount(layout, page) + merkleProofLength(sbn * layout.pagesPerBlock + page, layout.pageCount)) * SYMBOL_HASH_LEN;
}

/**
 * The `hashesPerPage` a sender should announce: pages as even as possible
 * (`ceil((k+m)/P)` for the fewest pages `P`), each page packet's payload at
 * most `maxPayload` bytes (default `symbolSize`, so manifest datagrams are no
 * larger than data datagrams) where that is possible at all.
 * @public
 */
export function choosePageSize(options: { size: number; symbolSize: number; sourceSymbols: number; repairSymbols: number; maxPayload?: number }): number {
  const { size, symbolSize, sourceSymbols: k, repairSymbols: m } = options;
  const maxPayload = Math.min(options.maxPayload ?? symbolSize, MAX_DATAGRAM_LEN - DATA_HEADER_LEN);
  const blocks = Math.max(1, Math.ceil(Math.ceil(size / symbolSize) / k));
  const total = k + m;
  for (let pages = Math.ceil(total / MAX_HASHES_PER_PAGE); pages <= total; pages++) {
    const perPage = Math.ceil(total / pages);
    const depth = Math.ceil(Math.log2(Math.max(1, blocks * pages)));
    if (BLOCK_HASH_LEN + (perPage + depth) * SYMBOL_HASH_LEN <= maxPayload) return perPage;
    if (perPage === 1) return 1;
  }
  return 1;
}

/** `H(tag ‖ parts…)` cut to 16 bytes. */
function h16(crypto: CryptoBackend, tag: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return crypto.sha256(tag, ...parts).subarray(0, MERKLE_NODE_LEN);
}

/** The 16-byte hash of one symbol (already padded to `symbolSize`). @public */
export function symbolHash(crypto: CryptoBackend, symbol: Uint8Array): Uint8Array {
  return crypto.sha256(symbol).subarray(0, SYMBOL_HASH_LEN);
}

/**
 * True when {@link symbolHash} of `symbol` equals the `SYMBOL_HASH_LEN`
 * bytes of `hashes` at `at`: the same check as comparing the two, without a
 * view of either (a receiver runs it once per datagram). Constant time in
 * the hash bytes.
 * @internal
 */
export function symbolHashMatches(crypto: CryptoBackend, symbol: Uint8Array, hashes: Uint8Array, at: number): boolean {
  if (at < 0 || at + SYMBOL_HASH_LEN > hashes.length) return false;
  if (crypto.sha256PrefixEquals) return crypto.sha256PrefixEquals(symbol, hashes, at, SYMBOL_HASH_LEN);
  const digest = crypto.sha256(symbol);
  let diff = 0;
  for (let i = 0; i < SYMBOL_HASH_LEN; i++) diff |= digest[i]! ^ hashes[at + i]!;
  return diff === 0;
}

/** The Merkle leaf of one page: its block's hash and its symbol hashes. @public */
export function pageLeaf(crypto: CryptoBackend, blockHash: Uint8Array, hashes: Uint8Array): Uint8Array {
  return h16(crypto, LEAF_TAG, blockHash, hashes);
}

/** The 16-byte hash of a block's bytes of the file (unpadded), given in parts. @public */
export function blockHash(crypto: CryptoBackend, ...parts: Uint8Array[]): Uint8Array {
  return h16(crypto, BLOCK_TAG, ...parts);
}

/**
 * A Merkle tree over page leaves, kept whole so any page's proof is a
 * lookup. Sender side.
 * @public
 */
export class MerkleTree {
  /** `levels[0]` are the leaves; the last level holds the root. */
  readonly #levels: Uint8Array[][];

  /** Build the tree over `leaves` (16 bytes each, at least one). */
  constructor(crypto: CryptoBackend, leaves: readonly Uint8Array[]) {
    if (leaves.length === 0) throw malformed('a Merkle tree needs at least one leaf');
    const levels: Uint8Array[][] = [leaves.slice()];
    while (levels[levels.length - 1]!.length > 1) {
      const below = levels[levels.length - 1]!;
      const up: Uint8Array[] = [];
      for (let i = 0; i < below.length; i += 2) up.push(i + 1 < below.length ? h16(crypto, NODE_TAG, below[i]!, below[i + 1]!) : below[i]!);
      levels.push(up);
    }
    this.#levels = levels;
  }

  /** The 16-byte root. */
  get root(): Uint8Array {
    return this.#levels[this.#levels.length - 1]![0]!;
  }

  /** Number of leaves. */
  get size(): number {
    return this.#levels[0]!.length;
  }

  /** The proof of leaf `index`: the siblings from the leaf up, concatenated. */
  proof(index: number): Uint8Array {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw malformed(`leaf ${index} is outside the tree of ${this.size}`);
    const nodes: Uint8Array[] = [];
    let i = index;
    for (let level = 0; level < this.#levels.length - 1; level++, i >>>= 1) {
      const row = this.#levels[level]!;
      if (i % 2 === 1) nodes.push(row[i - 1]!);
      else if (i + 1 < row.length) nodes.push(row[i + 1]!);
    }
    const out = new Uint8Array(nodes.length * MERKLE_NODE_LEN);
    nodes.forEach((n, j) => out.set(n, j * MERKLE_NODE_LEN));
    return out;
  }
}

/**
 * True when `proof` leads from `leaf` at `index` of a `count`-leaf tree to
 * `root`. Never throws for bad input; a proof of the wrong length is false.
 * @public
 */
export function verifyMerkleProof(crypto: CryptoBackend, leaf: Uint8Array, index: number, count: number, proof: Uint8Array, root: Uint8Array): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) return false;
  if (proof.length !== merkleProofLength(index, count) * MERKLE_NODE_LEN) return false;
  let node = leaf;
  let at = 0;
  for (let i = index, c = count; c > 1; i >>>= 1, c = Math.ceil(c / 2)) {
    if (i % 2 === 1) {
      node = h16(crypto, NODE_TAG, proof.subarray(at, at + MERKLE_NODE_LEN), node);
      at += MERKLE_NODE_LEN;
    } else if (i + 1 < c) {
      node = h16(crypto, NODE_TAG, node, proof.subarray(at, at + MERKLE_NODE_LEN));
      at += MERKLE_NODE_LEN;
    }
  }
  return bytesEqual(node, root);
}

/** A `GS_ERR_DELIVERY_OUT_OF_RANGE` error. @internal */
export function outOfRange(what: string): DeliveryError {
  return new DeliveryError('GS_ERR_DELIVERY_OUT_OF_RANGE', what);
}
