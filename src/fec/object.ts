/**
 * The object layer: an object (a file, an update) cut into source blocks of
 * `k` symbols, each block erasure-coded with any {@link ErasureCoder}, and
 * rebuilt from whichever symbols arrive, in any order.
 *
 * ## Blocks and symbols
 *
 * With symbol size `T` bytes and `k` source symbols per block, block `sbn`
 * holds object bytes `[sbn·k·T, min(length, (sbn+1)·k·T))`; there are
 * `ceil(length / (k·T))` blocks (none for an empty object). Source symbol
 * `esi` of a block is its bytes `[esi·T, (esi+1)·T)`, the last one padded with
 * zeros to `T`. Only the last block can be short: its symbols past the
 * object's end are zero, known to both sides, and **never sent**, so it needs
 * only as many symbols as it really has (`blockSourceSymbols`). Repair symbols
 * `esi = k … k+m−1` are parity shard `esi − k` of the block's code. Every block
 * uses the same `(k, m)` coder. The true length travels outside this layer
 * (the multicast `UDATE` line carries the size) and is given to the decoder.
 *
 * ## FEC-info field (32 bits, as carried in the multicast data header)
 *
 *     bits 31…16   sbn   source block number, 0 … 65,535
 *     bits 15…0    esi   encoding symbol ID,  0 … 65,535
 *                        (0…k−1 source, k…k+m−1 repair)
 *
 * i.e. `fecInfo = sbn << 16 | esi` as an unsigned 32-bit integer, written
 * big-endian like every other header field. This is the layout of RFC 5510
 * §5.1 (Reed–Solomon FEC Payload ID) for m = 16: a 16-bit ESI covers a whole
 * GF(2^16) block of 65,536 symbols, and the GF(2^8) codec uses ESIs below 256
 * within the same layout. An object therefore spans at most 65,536 blocks
 * (with 1,400-byte symbols and k = 64, about 5.8 GB).
 *
 * ## Authenticity
 *
 * FEC proves nothing about authenticity. The decoder turns whatever symbols
 * it is given into bytes; one forged or damaged symbol silently gives a wrong
 * object, and a duplicate that differs from the first copy is simply ignored.
 * Authenticate each symbol before `add` (the multicast layer will) and check
 * the object's digest before using it.
 *
 * @packageDocumentation
 */
import { FecError } from '../errors/index.js';
import type { ErasureCoder } from './coder.js';

/**
 * Most source blocks an object can have: 2^16, the reach of the 16-bit `sbn`.
 * @public
 */
export const FEC_INFO_MAX_BLOCKS = 65_536;

/**
 * Most encoding symbols a block can have (`k + m`): 2^16, the reach of the 16-bit `esi`.
 * @public
 */
export const FEC_INFO_MAX_SYMBOLS = 65_536;

/**
 * The two numbers a 32-bit FEC-info field carries.
 * @public
 */
export interface FecInfo {
  /** Source block number, 0 … 65,535. */
  readonly sbn: number;
  /** Encoding symbol ID within the block: 0 … k−1 source, k … k+m−1 repair. */
  readonly esi: number;
}

function checkU16(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `${name} must be an integer in 0…65535, got ${value}`);
  }
}

/**
 * Pack `sbn` and `esi` into the 32-bit FEC-info value `sbn << 16 | esi`
 * (unsigned).
 * @throws FecError `GS_ERR_FEC_BAD_INDEX` unless both are integers in 0…65,535.
 * @public
 */
export function encodeFecInfo(sbn: number, esi: number): number {
  checkU16(sbn, 'sbn');
  checkU16(esi, 'esi');
  return sbn * 0x10000 + esi;
}

/**
 * Split a 32-bit FEC-info value into `sbn` (high 16 bits) and `esi` (low 16 bits).
 * @throws FecError `GS_ERR_FEC_BAD_INDEX` unless `fecInfo` is an integer in 0…2^32−1.
 * @public
 */
export function decodeFecInfo(fecInfo: number): FecInfo {
  if (!Number.isInteger(fecInfo) || fecInfo < 0 || fecInfo > 0xffffffff) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `fecInfo must be an unsigned 32-bit integer, got ${fecInfo}`);
  }
  return { sbn: Math.floor(fecInfo / 0x10000), esi: fecInfo % 0x10000 };
}

/**
 * Makes the coder of a block: `(k, m) → ErasureCoder`, e.g.
 * `createReedSolomon` (GF(2^8), k + m ≤ 256) or `createReedSolomon16`
 * (GF(2^16), even symbol sizes).
 * @public
 */
export type CoderFactory = (dataShards: number, parityShards: number) => ErasureCoder;

/**
 * How an object is cut and coded; sender and receivers must agree on all of it.
 * @public
 */
export interface ObjectCodeOptions {
  /** Bytes per symbol (`T`), ≥ 1; even for the GF(2^16) coder. Typically the packet payload size. */
  readonly symbolSize: number;
  /** Source symbols per block (`k`), ≥ 1. */
  readonly sourceSymbols: number;
  /** Repair symbols a block can have (`m`), ≥ 1, with `k + m ≤ 65,536` and within the coder's own limit. */
  readonly repairSymbols: number;
  /** Makes the block coder; called once, with `(k, m)`. */
  readonly coder: CoderFactory;
}

/**
 * The block structure of one object.
 * @public
 */
export interface ObjectLayout {
  /** True object length in bytes. */
  readonly length: number;
  /** Bytes per symbol. */
  readonly symbolSize: number;
  /** Source symbols per block (`k`). */
  readonly sourceSymbols: number;
  /** Repair symbols per block (`m`). */
  readonly repairSymbols: number;
  /** Number of source blocks: `ceil(length / (k · symbolSize))`. */
  readonly blockCount: number;
}

/**
 * The layout of an object of `length` bytes under `options`.
 * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for a bad length, symbol size,
 * k or m, or an object that needs more than 65,536 blocks.
 * @public
 */
export function objectLayout(length: number, options: Omit<ObjectCodeOptions, 'coder'>): ObjectLayout {
  const { symbolSize, sourceSymbols: k, repairSymbols: m } = options;
  const bad = (what: string): never => {
    throw new FecError('GS_ERR_FEC_INVALID_PARAMS', what);
  };
  if (!Number.isSafeInteger(symbolSize) || symbolSize < 1) bad(`symbolSize must be an integer ≥ 1, got ${symbolSize}`);
  if (!Number.isInteger(k) || k < 1) bad(`sourceSymbols (k) must be an integer ≥ 1, got ${k}`);
  if (!Number.isInteger(m) || m < 1) bad(`repairSymbols (m) must be an integer ≥ 1, got ${m}`);
  if (k + m > FEC_INFO_MAX_SYMBOLS) bad(`k + m must be ≤ ${FEC_INFO_MAX_SYMBOLS} (16-bit esi), got ${k} + ${m}`);
  if (!Number.isSafeInteger(length) || length < 0) bad(`object length must be an integer ≥ 0, got ${length}`);
  const blockCount = Math.ceil(length / (k * symbolSize));
  if (blockCount > FEC_INFO_MAX_BLOCKS) {
    bad(`an object of ${length} bytes needs ${blockCount} blocks of ${k} × ${symbolSize} bytes; the 16-bit sbn numbers at most ${FEC_INFO_MAX_BLOCKS}`);
  }
  return { length, symbolSize, sourceSymbols: k, repairSymbols: m, blockCount };
}

/**
 * How many source symbols block `sbn` really has: `k`, except in a short last
 * block, whose symbols past the object's end are implicit zeros, never sent.
 * @throws FecError `GS_ERR_FEC_BAD_INDEX` when the object has no block `sbn`.
 * @public
 */
export function blockSourceSymbols(layout: ObjectLayout, sbn: number): number {
  if (!Number.isInteger(sbn) || sbn < 0 || sbn >= layout.blockCount) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `sbn ${sbn} is outside the object (${layout.blockCount} blocks)`);
  }
  return Math.ceil(blockLength(layout, sbn) / layout.symbolSize);
}

/** Bytes of the object in block `sbn` (a valid block). */
function blockLength(layout: ObjectLayout, sbn: number): number {
  const blockBytes = layout.sourceSymbols * layout.symbolSize;
  return Math.min(blockBytes, layout.length - sbn * blockBytes);
}

/** `fecInfo` for an error message (built only when thrown: checks run once per datagram at a receiver). */
function fecWhere(fecInfo: number): string {
  return `fecInfo 0x${fecInfo.toString(16).padStart(8, '0')} (sbn ${Math.floor(fecInfo / 0x10000)}, esi ${fecInfo % 0x10000})`;
}

/** Check `fecInfo` names a symbol this object sends; return its parts. */
function checkFecInfo(layout: ObjectLayout, fecInfo: number): FecInfo {
  const info = decodeFecInfo(fecInfo);
  const { sbn, esi } = info;
  if (sbn >= layout.blockCount) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `${fecWhere(fecInfo)} is outside the object: it has ${layout.blockCount} blocks`);
  }
  const k = layout.sourceSymbols;
  const kb = blockSourceSymbols(layout, sbn);
  if (esi >= k + layout.repairSymbols) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `${fecWhere(fecInfo)} is outside the block: esi must be < k + m = ${k + layout.repairSymbols}`);
  }
  if (esi >= kb && esi < k) {
    throw new FecError('GS_ERR_FEC_BAD_INDEX', `${fecWhere(fecInfo)} is outside the object: block ${sbn} has ${kb} source symbols; the rest are implicit zeros, never sent`);
  }
  return info;
}

/** Make the block coder and check it once, with zero symbols, before any real data. */
function makeCoder(layout: ObjectLayout, factory: CoderFactory): { coder: ErasureCoder; zero: Uint8Array } {
  if (typeof factory !== 'function') throw new FecError('GS_ERR_FEC_INVALID_PARAMS', 'coder must be a function (k, m) => ErasureCoder');
  const coder = factory(layout.sourceSymbols, layout.repairSymbols);
  if (coder.dataShards !== layout.sourceSymbols || coder.parityShards !== layout.repairSymbols) {
    throw new FecError(
      'GS_ERR_FEC_INVALID_PARAMS',
      `coder is (${coder.dataShards}, ${coder.parityShards}), the object layout needs (${layout.sourceSymbols}, ${layout.repairSymbols})`,
    );
  }
  const zero = new Uint8Array(layout.symbolSize);
  // Refuses a symbol size the coder cannot take (an odd size for GF(2^16)) now, not after data arrived.
  coder.encodeIndex(new Array<Uint8Array>(layout.sourceSymbols).fill(zero), 0);
  return { coder, zero };
}

/**
 * One encoding symbol as it goes into a packet.
 * @public
 */
export interface EncodedSymbol {
  /** The 32-bit FEC-info value, `sbn << 16 | esi`. */
  readonly fecInfo: number;
  /** Source block number. */
  readonly sbn: number;
  /** Encoding symbol ID (≥ k for repair symbols). */
  readonly esi: number;
  /** `symbolSize` bytes. May be a view into the object: do not modify. */
  readonly symbol: Uint8Array;
}

/**
 * Options of {@link ObjectEncoder.symbols} and {@link ObjectEncoder.fromChunks}.
 * @public
 */
export interface SymbolsOptions {
  /**
   * Repair symbols to send per block, 0 … m (default m). Fewer now leaves
   * the rest for {@link ObjectEncoder.symbol} on demand.
   */
  readonly repair?: number;
}

function repairCount(layout: ObjectLayout, options?: SymbolsOptions): number {
  const r = options?.repair ?? layout.repairSymbols;
  if (!Number.isInteger(r) || r < 0 || r > layout.repairSymbols) {
    throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `repair must be an integer in 0…${layout.repairSymbols}, got ${r}`);
  }
  return r;
}

/** The k data shards of a block whose object bytes are `bytes`: views, a padded last symbol, shared zeros. */
function blockShards(layout: ObjectLayout, bytes: Uint8Array, zero: Uint8Array): Uint8Array[] {
  const t = layout.symbolSize;
  const shards: Uint8Array[] = [];
  for (let esi = 0; esi < layout.sourceSymbols; esi++) {
    const start = esi * t;
    if (start >= bytes.length) shards.push(zero);
    else if (start + t <= bytes.length) shards.push(bytes.subarray(start, start + t));
    else {
      const padded = new Uint8Array(t);
      padded.set(bytes.subarray(start));
      shards.push(padded);
    }
  }
  return shards;
}

/** The symbols of one block: its real source symbols, then `repair` repair symbols. */
function* blockSymbols(
  layout: ObjectLayout,
  coder: ErasureCoder,
  zero: Uint8Array,
  sbn: number,
  bytes: Uint8Array,
  repair: number,
): Generator<EncodedSymbol> {
  const k = layout.sourceSymbols;
  const shards = blockShards(layout, bytes, zero);
  const kb = Math.ceil(bytes.length / layout.symbolSize);
  for (let esi = 0; esi < kb; esi++) yield { fecInfo: encodeFecInfo(sbn, esi), sbn, esi, symbol: shards[esi]! };
  const parity = repair === layout.repairSymbols ? coder.encode(shards) : undefined;
  for (let p = 0; p < repair; p++) {
    const esi = k + p;
    yield { fecInfo: encodeFecInfo(sbn, esi), sbn, esi, symbol: parity?.[p] ?? coder.encodeIndex(shards, p) };
  }
}

/**
 * An object the encoder reads one block at a time instead of holding it
 * whole: its length, and a reader for the bytes of one block (a file read
 * with `fs.readSync` at `offset`, a database blob range, …).
 * @public
 */
export interface ObjectBlockSource {
  /** True object length in bytes. */
  readonly length: number;
  /**
   * The object bytes `[offset, offset + length)`, which are exactly block
   * `sbn` (`offset = sbn · k · symbolSize`; `length` is `k · symbolSize`,
   * less for a short last block). Must return a `Uint8Array` of exactly
   * `length` bytes. Called once per block by
   * {@link ObjectEncoder.symbols} and once per call of
   * {@link ObjectEncoder.symbol}; the encoder keeps no block after the
   * call that read it, and yields views into what this returns (so return
   * a fresh array, or do not reuse it while its symbols are in use).
   */
  readBlock(sbn: number, offset: number, length: number): Uint8Array;
}

/**
 * Cuts an object into blocks and yields its source and repair symbols; also
 * makes any one symbol on demand (fresh repair for a block receivers still
 * miss). The object is either a `Uint8Array` in memory or an
 * {@link ObjectBlockSource}, read one block at a time, so that an object too
 * large for memory needs only one block of it there (`k · symbolSize`
 * bytes), both for {@link ObjectEncoder.symbols} and for repair on demand
 * with {@link ObjectEncoder.symbol}. For input that arrives as a stream of
 * unknown length, see {@link ObjectEncoder.fromChunks}.
 *
 * FEC proves nothing about authenticity: sign or MAC what you send.
 *
 * @example
 * ```ts
 * const enc = new ObjectEncoder(file, { symbolSize: 1400, sourceSymbols: 64, repairSymbols: 8, coder: createReedSolomon });
 * for (const { fecInfo, symbol } of enc.symbols()) send(fecInfo, symbol);
 * ```
 * @example A file on disk, never read whole:
 * ```ts
 * const fd = fs.openSync(path, 'r');
 * const enc = new ObjectEncoder(
 *   { length: fs.fstatSync(fd).size, readBlock: (_sbn, offset, n) => { const b = new Uint8Array(n); fs.readSync(fd, b, 0, n, offset); return b; } },
 *   options,
 * );
 * onRepairRequest((fecInfo) => send(fecInfo, enc.symbol(fecInfo)));   // reads just that block
 * ```
 * @public
 */
export class ObjectEncoder {
  /** The object's block structure. */
  readonly layout: ObjectLayout;
  readonly #read: (sbn: number, offset: number, length: number) => Uint8Array;
  readonly #coder: ErasureCoder;
  readonly #zero: Uint8Array;

  /**
   * @param object - the whole object (read only, never copied: do not change
   * it while encoding), or an {@link ObjectBlockSource} read block by block
   * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for bad options or an object
   * needing more than 65,536 blocks; the coder's own errors for a symbol size it refuses.
   */
  constructor(object: Uint8Array | ObjectBlockSource, options: ObjectCodeOptions) {
    if (object instanceof Uint8Array) {
      this.layout = objectLayout(object.length, options);
      this.#read = (_sbn, offset, length) => object.subarray(offset, offset + length);
    } else {
      if (object === null || typeof object !== 'object' || typeof object.readBlock !== 'function') {
        throw new TypeError('object must be a Uint8Array or an ObjectBlockSource { length, readBlock }');
      }
      this.layout = objectLayout(object.length, options);
      this.#read = (sbn, offset, length) => object.readBlock(sbn, offset, length);
    }
    ({ coder: this.#coder, zero: this.#zero } = makeCoder(this.layout, options.coder));
  }

  /**
   * Every block's real source symbols, then its first `repair` (default m)
   * repair symbols, block by block.
   * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for `repair` outside 0…m.
   */
  *symbols(options?: SymbolsOptions): Generator<EncodedSymbol> {
    const repair = repairCount(this.layout, options);
    for (let sbn = 0; sbn < this.layout.blockCount; sbn++) {
      yield* blockSymbols(this.layout, this.#coder, this.#zero, sbn, this.#blockBytes(sbn), repair);
    }
  }

  /**
   * The one symbol `fecInfo` names, source or repair, computed alone.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` when `fecInfo` is outside the object.
   */
  symbol(fecInfo: number): Uint8Array {
    const { sbn, esi } = checkFecInfo(this.layout, fecInfo);
    const shards = blockShards(this.layout, this.#blockBytes(sbn), this.#zero);
    const k = this.layout.sourceSymbols;
    return esi < k ? shards[esi]! : this.#coder.encodeIndex(shards, esi - k);
  }

  /** Block `sbn`'s object bytes, from the array or the block source (checked). */
  #blockBytes(sbn: number): Uint8Array {
    const offset = sbn * this.layout.sourceSymbols * this.layout.symbolSize;
    const length = blockLength(this.layout, sbn);
    const bytes = this.#read(sbn, offset, length);
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`readBlock(${sbn}) must return a Uint8Array`);
    if (bytes.length !== length) {
      throw new FecError('GS_ERR_FEC_SHARD_SIZE', `readBlock(${sbn}, ${offset}, ${length}) returned ${bytes.length} bytes, block ${sbn} has ${length}`);
    }
    return bytes;
  }

  /**
   * Encode an object that arrives as chunks (of any sizes), holding one block
   * at a time: yields each block's symbols as soon as its bytes are in, and
   * the short last block when the input ends. The decoder must be told the
   * total length, which is only known at the end here.
   * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for bad options, or once the
   * input passes 65,536 blocks.
   */
  static async *fromChunks(
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: ObjectCodeOptions,
    symbolsOptions?: SymbolsOptions,
  ): AsyncGenerator<EncodedSymbol> {
    const blockBytes = options.sourceSymbols * options.symbolSize;
    // The layout of a one-block object: the parameters every block shares.
    const layout = objectLayout(Math.min(blockBytes, Number.MAX_SAFE_INTEGER), options);
    const { coder, zero } = makeCoder(layout, options.coder);
    const repair = repairCount(layout, symbolsOptions);
    let block = new Uint8Array(blockBytes);
    let fill = 0;
    let sbn = 0;
    const emit = (bytes: Uint8Array): Generator<EncodedSymbol> => {
      if (sbn >= FEC_INFO_MAX_BLOCKS) {
        throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `the input passes ${FEC_INFO_MAX_BLOCKS} blocks of ${blockBytes} bytes, the most the 16-bit sbn numbers`);
      }
      return blockSymbols(layout, coder, zero, sbn++, bytes, repair);
    };
    for await (const chunk of chunks) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('chunks must be Uint8Arrays');
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(blockBytes - fill, chunk.length - off);
        block.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === blockBytes) {
          yield* emit(block);
          block = new Uint8Array(blockBytes); // yielded symbols are views of the old one
          fill = 0;
        }
      }
    }
    if (fill > 0) yield* emit(block.subarray(0, fill));
  }
}

/**
 * What {@link ObjectDecoder.add} did with a symbol.
 * @public
 */
export interface AddResult {
  /** Source block number of the symbol. */
  readonly sbn: number;
  /** Its encoding symbol ID. */
  readonly esi: number;
  /** False for a duplicate, or a symbol of a block already complete: ignored. */
  readonly accepted: boolean;
  /** True once block `sbn` is decoded. */
  readonly blockComplete: boolean;
  /** True once every block is decoded. */
  readonly complete: boolean;
}

/**
 * Options of {@link ObjectDecoder.add}.
 * @public
 */
export interface AddOptions {
  /**
   * Copy the symbol (default true), so the caller may reuse its buffer.
   * `false` keeps the given array itself until the block is decoded: for a
   * caller that owns it and never changes it (a received datagram's bytes),
   * which saves an allocation and a copy per symbol.
   */
  readonly copy?: boolean;
}

/** A block still collecting symbols: k + m slots, and how many real ones are in. */
interface PendingBlock {
  readonly shards: (Uint8Array | null)[];
  received: number;
}

/**
 * Options of {@link ObjectDecoder}: the object's code, and what to do with
 * decoded blocks.
 * @public
 */
export interface ObjectDecoderOptions extends ObjectCodeOptions {
  /**
   * Receives each block the moment it is decoded, and the decoder keeps
   * nothing of it: only one bit saying it is complete (so late symbols of
   * the block are still ignored). `bytes` is the block's object bytes (the
   * last block without its padding), a new array the callback owns; write it
   * at offset `sbn · k · symbolSize`. With it, the decoder holds only the
   * symbols of blocks still incomplete, never decoded blocks, so an object
   * larger than memory can be received; {@link ObjectDecoder.block} and
   * {@link ObjectDecoder.object} then throw.
   *
   * Called synchronously from inside {@link ObjectDecoder.add}, exactly once
   * per block. If it throws, `add` throws that error, and the block still
   * counts as complete (its bytes are gone).
   *
   * Default: none; decoded blocks are kept until {@link ObjectDecoder.object}.
   */
  readonly onBlock?: (sbn: number, bytes: Uint8Array) => void;
  /**
   * With `onBlock`: hand every block's bytes in one array the decoder
   * reuses (a view of it, the block's length), valid only until `onBlock`
   * returns — copy what you keep. Saves allocating (and collecting) a
   * block-sized array per block, which a receiver that writes each block
   * out synchronously never needs. Default false: a new array per block.
   */
  readonly reuseBlockBytes?: boolean;
}

/**
 * Rebuilds an object from symbols arriving in any order, with losses and
 * duplicates: each block is decoded as soon as it has as many distinct
 * symbols as it has real source symbols, and its symbols are then dropped.
 * Decoded blocks are kept for {@link ObjectDecoder.object}, or, with the
 * `onBlock` option, handed to the caller at once and not kept.
 *
 * FEC proves nothing about authenticity: authenticate every symbol before
 * {@link ObjectDecoder.add} and check the digest of what comes out.
 *
 * @example
 * ```ts
 * const dec = new ObjectDecoder(size, { symbolSize: 1400, sourceSymbols: 64, repairSymbols: 8, coder: createReedSolomon });
 * onPacket((fecInfo, payload) => { if (dec.add(fecInfo, payload).complete) done(dec.object()); });
 * ```
 * @example A large object written to disk block by block, never held whole:
 * ```ts
 * const blockBytes = 64 * 1400;
 * const dec = new ObjectDecoder(size, { ...options, onBlock: (sbn, bytes) => fs.writeSync(fd, bytes, 0, bytes.length, sbn * blockBytes) });
 * onPacket((fecInfo, payload) => { if (dec.add(fecInfo, payload).complete) done(); });
 * ```
 * @public
 */
export class ObjectDecoder {
  /** The object's block structure. */
  readonly layout: ObjectLayout;
  readonly #coder: ErasureCoder;
  readonly #zero: Uint8Array;
  readonly #pending = new Map<number, PendingBlock>();
  /** One bit per block: decoded. */
  readonly #doneBits: Uint8Array;
  /** Decoded block bytes, by sbn; null when they go to `onBlock` instead. */
  readonly #kept: (Uint8Array | undefined)[] | null;
  readonly #onBlock: ((sbn: number, bytes: Uint8Array) => void) | undefined;
  /** The one array blocks are handed to `onBlock` in, with `reuseBlockBytes`. */
  #reused: Uint8Array | undefined;
  /** True while `onBlock` holds the reused array (a block finished from inside it gets a new one). */
  #lent = false;
  #completeBlocks = 0;

  /**
   * @param length - the object's true length in bytes (from the announcement)
   * @throws FecError `GS_ERR_FEC_INVALID_PARAMS` for bad options or a length
   * needing more than 65,536 blocks; the coder's own errors for a symbol size
   * it refuses. `TypeError` for an `onBlock` that is not a function.
   */
  constructor(length: number, options: ObjectDecoderOptions) {
    this.layout = objectLayout(length, options);
    const onBlock = options.onBlock;
    if (onBlock !== undefined && typeof onBlock !== 'function') throw new TypeError('onBlock must be a function (sbn, bytes) => void');
    ({ coder: this.#coder, zero: this.#zero } = makeCoder(this.layout, options.coder));
    this.#doneBits = new Uint8Array(Math.ceil(this.layout.blockCount / 8));
    this.#onBlock = onBlock;
    this.#kept = onBlock ? null : new Array<Uint8Array | undefined>(this.layout.blockCount);
    if (options.reuseBlockBytes !== undefined && typeof options.reuseBlockBytes !== 'boolean') throw new TypeError('reuseBlockBytes must be a boolean');
    if (options.reuseBlockBytes && onBlock) {
      this.#reused = new Uint8Array(Math.min(this.layout.sourceSymbols * this.layout.symbolSize, this.layout.length));
    }
  }

  /** True once every block is decoded (at once for an empty object). */
  get complete(): boolean {
    return this.#completeBlocks === this.layout.blockCount;
  }

  /** Number of blocks decoded so far. */
  get completeBlocks(): number {
    return this.#completeBlocks;
  }

  /**
   * Decoded blocks whose bytes this decoder holds: {@link ObjectDecoder.completeBlocks}
   * without `onBlock`, always 0 with it.
   */
  get retainedBlocks(): number {
    return this.#kept ? this.#completeBlocks : 0;
  }

  /**
   * Blocks that have some symbols but are not decoded yet: each holds copies
   * of the symbols received for it (fewer than its source symbol count).
   */
  get pendingBlocks(): number {
    return this.#pending.size;
  }

  /**
   * Take one symbol. It is copied, so the caller may reuse its buffer,
   * unless `options.copy` is false (then it is kept as given, and must not
   * change until its block is decoded).
   * Duplicates and symbols of finished blocks are ignored (`accepted: false`).
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` when `fecInfo` is outside the
   * object, `GS_ERR_FEC_SHARD_SIZE` when `symbol` is not `symbolSize` bytes.
   */
  add(fecInfo: number, symbol: Uint8Array, options?: AddOptions): AddResult {
    const { sbn, esi } = checkFecInfo(this.layout, fecInfo);
    if (!(symbol instanceof Uint8Array)) throw new TypeError('symbol must be a Uint8Array');
    if (symbol.length !== this.layout.symbolSize) {
      throw new FecError('GS_ERR_FEC_SHARD_SIZE', `symbol (sbn ${sbn}, esi ${esi}) has ${symbol.length} bytes, the object's symbols ${this.layout.symbolSize}`);
    }
    if (this.#isDone(sbn)) return this.#result(sbn, esi, false);
    let block = this.#pending.get(sbn);
    if (!block) {
      block = { shards: new Array<Uint8Array | null>(this.#coder.totalShards).fill(null), received: 0 };
      this.#pending.set(sbn, block);
    }
    if (block.shards[esi] !== null) return this.#result(sbn, esi, false);
    block.shards[esi] = options?.copy === false ? symbol : symbol.slice();
    block.received++;
    if (block.received >= blockSourceSymbols(this.layout, sbn)) this.#decode(sbn, block);
    return this.#result(sbn, esi, true);
  }

  /** What {@link ObjectDecoder.add} returns (no closure per call: it runs once per datagram). */
  #result(sbn: number, esi: number, accepted: boolean): AddResult {
    return { sbn, esi, accepted, blockComplete: this.#isDone(sbn), complete: this.complete };
  }

  /**
   * Take a whole block the caller already has as object bytes — decoded by
   * other means and verified (for example against a block hash) — instead of
   * its symbols, so the block is not decoded a second time. `data` is
   * block `sbn`'s object bytes, exactly as {@link ObjectDecoder.block} would
   * give them (the last block without its padding); it is copied. Symbols
   * of the block held so far are dropped, and the block is complete: kept
   * for {@link ObjectDecoder.object}, or handed to `onBlock` (a new array
   * the callback owns) and not kept, exactly like a block decoded from
   * symbols; if `onBlock` throws, so does this, and the block still counts
   * as complete. A block already complete is ignored, like a late duplicate.
   *
   * Nothing here checks that `data` is right: verify it before.
   * @returns true when the block was taken, false when it was already complete.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` for a block outside the object,
   * `GS_ERR_FEC_SHARD_SIZE` when `data` is not the block's length. `TypeError`
   * when `data` is not a `Uint8Array`.
   */
  setBlock(sbn: number, data: Uint8Array): boolean {
    blockSourceSymbols(this.layout, sbn);
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const length = blockLength(this.layout, sbn);
    if (data.length !== length) {
      throw new FecError('GS_ERR_FEC_SHARD_SIZE', `block ${sbn} has ${length} bytes, setBlock was given ${data.length}`);
    }
    if (this.#isDone(sbn)) return false;
    this.#finish(sbn, this.#blockArray(length, data));
    return true;
  }

  /** True once block `sbn` is decoded. @throws FecError `GS_ERR_FEC_BAD_INDEX` for a block outside the object. */
  isBlockComplete(sbn: number): boolean {
    blockSourceSymbols(this.layout, sbn);
    return this.#isDone(sbn);
  }

  /**
   * How many more distinct symbols block `sbn` needs (0 when decoded): what
   * a receiver asks the sender to repair.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` for a block outside the object.
   */
  needed(sbn: number): number {
    const kb = blockSourceSymbols(this.layout, sbn);
    if (this.#isDone(sbn)) return 0;
    return kb - (this.#pending.get(sbn)?.received ?? 0);
  }

  /** Numbers of the blocks not yet decoded, ascending. */
  missingBlocks(): number[] {
    const out: number[] = [];
    for (let sbn = 0; sbn < this.layout.blockCount; sbn++) if (!this.#isDone(sbn)) out.push(sbn);
    return out;
  }

  /**
   * The object bytes of decoded block `sbn` (the last block without its
   * padding). A view: do not modify.
   * @throws FecError `GS_ERR_FEC_BAD_INDEX` for a block outside the object,
   * `GS_ERR_FEC_TOO_FEW_SHARDS` when it is not decoded yet,
   * `GS_ERR_FEC_INVALID_PARAMS` with `onBlock` (blocks went there, none is kept).
   */
  block(sbn: number): Uint8Array {
    const need = this.needed(sbn);
    if (need > 0) {
      throw new FecError('GS_ERR_FEC_TOO_FEW_SHARDS', `block ${sbn} is not decoded yet: it needs ${need} more symbols`);
    }
    return this.#kept ? this.#kept[sbn]! : this.#released(`block ${sbn}`);
  }

  /**
   * The whole object, exactly `length` bytes, in a new array.
   * @throws FecError `GS_ERR_FEC_TOO_FEW_SHARDS` while a block is missing,
   * `GS_ERR_FEC_INVALID_PARAMS` with `onBlock` (blocks went there, none is kept).
   */
  object(): Uint8Array {
    if (!this.#kept) return this.#released('the object');
    if (!this.complete) {
      const missing = this.missingBlocks();
      throw new FecError(
        'GS_ERR_FEC_TOO_FEW_SHARDS',
        `the object is not complete: ${missing.length} of ${this.layout.blockCount} blocks still need symbols (first: block ${missing[0]})`,
      );
    }
    const out = new Uint8Array(this.layout.length);
    const blockBytes = this.layout.sourceSymbols * this.layout.symbolSize;
    this.#kept.forEach((bytes, sbn) => out.set(bytes!, sbn * blockBytes));
    return out;
  }

  #released(what: string): never {
    throw new FecError('GS_ERR_FEC_INVALID_PARAMS', `${what}: this decoder hands each block to onBlock and keeps none`);
  }

  #isDone(sbn: number): boolean {
    return (this.#doneBits[sbn >>> 3]! & (1 << (sbn & 7))) !== 0;
  }

  /** Decode a block that has enough symbols, drop its symbols, keep its bytes or hand them to `onBlock`. */
  #decode(sbn: number, block: PendingBlock): void {
    const k = this.layout.sourceSymbols;
    const kb = blockSourceSymbols(this.layout, sbn);
    const shards = block.shards;
    for (let esi = kb; esi < k; esi++) shards[esi] = this.#zero; // implicit zeros past the object's end
    let sourceMissing = false;
    for (let esi = 0; esi < kb; esi++) if (shards[esi] === null) sourceMissing = true;
    if (sourceMissing) this.#coder.reconstruct(shards, { dataOnly: true });
    const length = blockLength(this.layout, sbn);
    const bytes = this.#blockArray(length);
    const t = this.layout.symbolSize;
    for (let esi = 0; esi < kb; esi++) bytes.set(shards[esi]!.subarray(0, Math.min(t, length - esi * t)), esi * t);
    this.#finish(sbn, bytes);
  }

  /** An array of `length` bytes for a finished block (a copy of `from` when given): the reused one, or a new one. */
  #blockArray(length: number, from?: Uint8Array): Uint8Array {
    if (!this.#reused || this.#lent) return from ? from.slice() : new Uint8Array(length);
    const bytes = this.#reused.subarray(0, length);
    if (from) bytes.set(from);
    return bytes;
  }

  /** Mark block `sbn` complete with object bytes `bytes`: drop its symbols, keep the bytes or hand them to `onBlock`. */
  #finish(sbn: number, bytes: Uint8Array): void {
    this.#doneBits[sbn >>> 3]! |= 1 << (sbn & 7);
    this.#pending.delete(sbn);
    this.#completeBlocks++;
    if (this.#kept) this.#kept[sbn] = bytes;
    else if (!this.#reused || this.#lent) this.#onBlock!(sbn, bytes);
    else {
      this.#lent = true;
      try {
        this.#onBlock!(sbn, bytes);
      } finally {
        this.#lent = false;
      }
    }
  }
}
