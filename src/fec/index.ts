/**
 * gatesock/fec — erasure codes in pure TypeScript: systematic, MDS
 * Reed–Solomon over GF(2^8) (up to 256 shards, the fast path) and GF(2^16)
 * (up to 65,536 shards), progressive encoding and decoding, and an object
 * layer that splits data into source blocks and numbers every symbol the way
 * multicast packets carry it.
 *
 * FEC proves nothing about authenticity: a forged shard decodes into wrong
 * data without any error. Authenticate shards (the multicast layer signs and
 * digests what it sends) and check the result before using it.
 *
 * @packageDocumentation
 */
export type { ErasureCoder } from './coder.js';
export { GF256_POLYNOMIAL, gfDiv, gfInv, gfMul, gfPow } from './gf256.js';
export { mul, mulAdd, xorInto } from './gf256-kernel.js';
export { RS8_MAX_SHARDS, ReedSolomon, createReedSolomon, type ReconstructOptions, type ReedSolomonOptions } from './reed-solomon.js';
export { ProgressiveDecoder, StreamingEncoder } from './streaming.js';
export { ParallelReedSolomon, createParallelReedSolomon, type ParallelReedSolomonOptions, type ReconstructBlocksOptions } from './parallel.js';
export { GF65536_ORDER, GF65536_POLY, gf65536Div, gf65536Exp, gf65536Inv, gf65536Log, gf65536Mul } from './gf65536.js';
export { RS16_MAX_SHARDS, ReedSolomon16, createReedSolomon16 } from './reed-solomon16.js';
export {
  FEC_INFO_MAX_BLOCKS,
  FEC_INFO_MAX_SYMBOLS,
  ObjectDecoder,
  ObjectEncoder,
  blockSourceSymbols,
  decodeFecInfo,
  encodeFecInfo,
  objectLayout,
  type AddOptions,
  type AddResult,
  type CoderFactory,
  type EncodedSymbol,
  type FecInfo,
  type ObjectBlockSource,
  type ObjectCodeOptions,
  type ObjectDecoderOptions,
  type ObjectLayout,
  type SymbolsOptions,
} from './object.js';
export * from '../errors/index.js';
