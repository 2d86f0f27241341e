/**
 * One parallel sealing job: a run of transport records (their plaintexts,
 * the key and the first of their consecutive nonces) in one
 * `SharedArrayBuffer`, sealed in place by whichever threads take its items
 * — the calling thread and the seal workers (seal-worker.ts). This module is
 * what both sides share, so it imports nothing but @noble/ciphers: the
 * worker bundle stays small, and the sealing is noble's, not ours
 * (DESIGN.md: no hand-written primitives).
 *
 * Layout of a job buffer (all integers little-endian, as the platform's
 * typed arrays on every platform Node runs on):
 *
 * ```
 * offset      size      field
 *  0           4        next item to take    (Int32, Atomics.add by every thread)
 *  4           4        items finished       (Int32, Atomics.add by every thread)
 *  8           4        item count n
 * 12           4        first nonce, low 32 bits
 * 16           4        first nonce, high 32 bits
 * 20          12        zero
 * 32          32        ChaCha20-Poly1305 key (wiped when the job is done)
 * 64          4·n       plaintext length of each item
 * S0 = align64(64 + 4·n)
 * S0          slot 0    item 0: plaintext, sealed in place into ciphertext ‖ 16-byte tag
 * S1 = S0 + align64(len0 + 16)
 * …           slot i    item i, at S(i) = S(i−1) + align64(len(i−1) + 16)
 * ```
 *
 * Item `i` is sealed with nonce `first + i` (Noise ChaChaPoly nonce, spec
 * §12.3: four zero bytes, then the 64-bit counter little-endian) and empty
 * associated data, as `CipherState.encryptWithAd(EMPTY, plaintext)` would.
 * Slots start on 64-byte boundaries because noble seals a 64 KiB record
 * 10–30 % faster when its bytes are word-aligned (measured here), and the
 * 2-byte record prefix makes a record's bytes unaligned in the wire layout.
 *
 * A thread takes item `Atomics.add(next, 1)` until that is ≥ n, so each item
 * is sealed exactly once whoever takes it, and counts each one it finishes
 * in `finished`; the job is complete when `finished` reaches n.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';

/** Byte offset of the item lengths; everything before is the header. */
export const JOB_HEADER_LEN = 64;
/** Byte offset of the key in the header. */
export const JOB_KEY_OFFSET = 32;
/** Bytes of the AEAD tag each slot holds after its ciphertext. */
export const JOB_TAG_LEN = 16;
const ALIGN = 64;
const EMPTY = new Uint8Array(0);

/** Int32 indexes of the header fields. */
const NEXT = 0;
const FINISHED = 1;
const COUNT = 2;
const NONCE_LO = 3;
const NONCE_HI = 4;

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** Byte offset of slot 0 for `count` items. */
export function jobSlotsStart(count: number): number {
  return align(JOB_HEADER_LEN + 4 * count);
}

/** Bytes a job buffer needs for items of these plaintext lengths. */
export function jobBufferBytes(lengths: readonly number[]): number {
  let end = jobSlotsStart(lengths.length);
  for (const len of lengths) end += align(len + JOB_TAG_LEN);
  return end;
}

/**
 * Write the header of a job into `buffer` (counters zero, count, lengths)
 * and return each item's slot offset; the caller then copies each plaintext
 * into its slot and the key and first nonce with {@link writeJobKey}.
 */
export function writeJobHeader(buffer: SharedArrayBuffer, lengths: readonly number[]): number[] {
  const words = new Int32Array(buffer, 0, JOB_HEADER_LEN / 4 + lengths.length);
  words.fill(0, 0, JOB_HEADER_LEN / 4);
  words[COUNT] = lengths.length;
  const slots: number[] = [];
  let at = jobSlotsStart(lengths.length);
  for (let i = 0; i < lengths.length; i++) {
    words[JOB_HEADER_LEN / 4 + i] = lengths[i]!;
    slots.push(at);
    at += align(lengths[i]! + JOB_TAG_LEN);
  }
  return slots;
}

/** The 32 key bytes of a job buffer, to be filled by `CipherState.reserve` and wiped when done. */
export function jobKey(buffer: SharedArrayBuffer): Uint8Array {
  return new Uint8Array(buffer, JOB_KEY_OFFSET, 32);
}

/** Record the first nonce of the job's run. */
export function writeJobNonce(buffer: SharedArrayBuffer, lo: number, hi: number): void {
  const words = new Uint32Array(buffer, 0, JOB_HEADER_LEN / 4);
  words[NONCE_LO] = lo;
  words[NONCE_HI] = hi;
}

/**
 * Publish a filled job buffer: an atomic store after every plain write of
 * the header, plaintexts and key, so that a thread whose first act is the
 * atomic take of an item sees them all (whatever the message it came by
 * guarantees).
 */
export function publishJob(buffer: SharedArrayBuffer): void {
  Atomics.store(jobCounters(buffer), NEXT, 0);
}

/** The job's counters, for Atomics. */
export function jobCounters(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, 0, 2);
}

/** True once every item of the job has been sealed. */
export function jobComplete(counters: Int32Array, count: number): boolean {
  return Atomics.load(counters, FINISHED) === count;
}

/**
 * Take and seal items of the job in `buffer` until none is left; returns
 * how many this thread sealed. What the calling thread and every seal
 * worker run. A thread that finds nothing left touches nothing else (it
 * reads neither the key nor a slot).
 */
export function sealJobItems(buffer: SharedArrayBuffer): number {
  const counters = jobCounters(buffer);
  let i = Atomics.add(counters, NEXT, 1);
  const header = new Uint32Array(buffer, 0, JOB_HEADER_LEN / 4);
  const count = header[COUNT]!;
  if (i >= count) return 0;
  const lengths = new Uint32Array(buffer, JOB_HEADER_LEN, count);
  const key = jobKey(buffer);
  const lo = header[NONCE_LO]!;
  const hi = header[NONCE_HI]!;
  const nonce = new Uint8Array(12);
  const nonceView = new DataView(nonce.buffer);
  // Slot offsets, walked forward as items are taken (always in rising order).
  let slotIndex = 0;
  let slot = jobSlotsStart(count);
  let sealed = 0;
  for (; i < count; i = Atomics.add(counters, NEXT, 1)) {
    while (slotIndex < i) slot += align(lengths[slotIndex++]! + JOB_TAG_LEN);
    const len = lengths[i]!;
    // Nonce first + i: lo + i < 2^33, exact in a double; the carry goes to hi.
    const n = lo + i;
    nonceView.setUint32(4, n >>> 0, true);
    nonceView.setUint32(8, (hi + (n >= 2 ** 32 ? 1 : 0)) >>> 0, true);
    const out = new Uint8Array(buffer, slot, len + JOB_TAG_LEN);
    // In place: noble copies the plaintext to the output's start (here the
    // same bytes), then encrypts the output and appends the tag.
    chacha20poly1305(key, nonce, EMPTY).encrypt(out.subarray(0, len), out);
    sealed++;
    Atomics.add(counters, FINISHED, 1);
  }
  nonce.fill(0);
  return sealed;
}
