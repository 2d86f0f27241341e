/**
 * The one codec of a stored ratchet state (client or server): what a
 * restarted process needs to resume without the passphrase, and nothing
 * that reveals the past (no master key, no passed chain keys, no addresses).
 *
 * ```text
 *  offset  size  field
 *  0       4     magic "GSKA"
 *  4       1     version = 1
 *  5       1     role: 1 client, 2 server
 *  6       8     options fingerprint (prefix, epochMs, originMs)
 *  14      8     from: first epoch the frontier derives, u64 BE, ≤ 2^32
 *  22      1     F = number of frontier nodes (the shape frontierShape(from) gives, ≤ 32)
 *  23      F×37  node: depth u8 | index u32 BE | key 32
 *  ..      1     E = number of open epochs (client: 1; server: usually 1..3), increasing t, all t < from
 *  ..      E×…   epoch: t u32 BE | pos u32 BE | C(t, pos) 32 | R u16 BE | R × n u32 BE
 *                (R: positions ≥ pos already retired out of order, increasing; client: R = 0)
 *  ..      16    check: SHA-256 of every byte before, first 16 bytes
 * ```
 *
 * Decoding is canonical and strict: any length, order, shape, role or
 * fingerprint mismatch, or a wrong check, is `GS_ERR_KEYADDR_STATE`, so
 * `encode(decode(b))` equals `b`. The check catches damage, not tampering:
 * whoever can write the state can also read its keys.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { KeyAddressError } from '../errors/index.js';
import { EPOCH_COUNT, EpochFrontier, type FrontierNode } from './generator.js';

const MAGIC = [0x47, 0x53, 0x4b, 0x41]; // "GSKA"
const VERSION = 1;
const CHECK_BYTES = 16;
const KEY_BYTES = 32;

/** Which end a state belongs to. @internal */
export type StateRole = 'client' | 'server';

/** One open epoch of a stored state. @internal */
export interface StoredEpoch {
  readonly t: number;
  readonly pos: number;
  /** C(t, pos). */
  readonly key: Uint8Array;
  readonly retired: readonly number[];
}

/** A decoded state. @internal */
export interface StoredState {
  readonly role: StateRole;
  readonly fingerprint: Uint8Array;
  readonly frontier: EpochFrontier;
  readonly epochs: readonly StoredEpoch[];
}

const bad = (why: string) => new KeyAddressError('GS_ERR_KEYADDR_STATE', `key-address state: ${why}`);

/** Encode a state. @internal */
export function encodeState(role: StateRole, fingerprint: Uint8Array, from: number, nodes: readonly FrontierNode[], epochs: readonly StoredEpoch[]): Uint8Array {
  const size = 23 + nodes.length * 37 + 1 + epochs.reduce((s, e) => s + 42 + 4 * e.retired.length, 0) + CHECK_BYTES;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = role === 'client' ? 1 : 2;
  out.set(fingerprint, 6);
  v.setUint32(14, Math.floor(from / 2 ** 32));
  v.setUint32(18, from % 2 ** 32);
  out[22] = nodes.length;
  let at = 23;
  for (const n of nodes) {
    out[at] = n.depth;
    v.setUint32(at + 1, n.index);
    out.set(n.key, at + 5);
    at += 37;
  }
  out[at++] = epochs.length;
  for (const e of epochs) {
    v.setUint32(at, e.t);
    v.setUint32(at + 4, e.pos);
    out.set(e.key, at + 8);
    v.setUint16(at + 40, e.retired.length);
    at += 42;
    for (const r of e.retired) {
      v.setUint32(at, r);
      at += 4;
    }
  }
  out.set(sha256(out.subarray(0, at)).subarray(0, CHECK_BYTES), at);
  return out;
}

/**
 * Decode and check a state for `role` under options with `fingerprint`.
 * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` for anything damaged or mismatched.
 */
export function decodeState(input: Uint8Array, role: StateRole, fingerprint: Uint8Array): StoredState {
  if (!(input instanceof Uint8Array)) throw bad('must be a Uint8Array');
  // Work on a private copy: keys taken from it are wiped later, and the
  // caller's buffer (often a Buffer, whose slice() is a view) stays intact.
  const bytes = new Uint8Array(input);
  try {
    return decodeCopy(bytes, role, fingerprint);
  } finally {
    bytes.fill(0);
  }
}

function decodeCopy(bytes: Uint8Array, role: StateRole, fingerprint: Uint8Array): StoredState {
  if (bytes.length < 23 + 1 + CHECK_BYTES) throw bad(`${bytes.length} bytes is too short`);
  const body = bytes.subarray(0, bytes.length - CHECK_BYTES);
  const check = sha256(body).subarray(0, CHECK_BYTES);
  if (!check.every((b, i) => b === bytes[body.length + i])) throw bad('check value does not match (damaged)');
  if (!MAGIC.every((b, i) => bytes[i] === b)) throw bad('not a key-address state (magic)');
  if (bytes[4] !== VERSION) throw bad(`version ${bytes[4]} is not ${VERSION}`);
  const storedRole = bytes[5] === 1 ? 'client' : bytes[5] === 2 ? 'server' : undefined;
  if (storedRole !== role) throw bad(`is a ${storedRole ?? 'unknown'} state, a ${role} state expected`);
  if (!fingerprint.every((b, i) => bytes[6 + i] === b)) throw bad('was made with another prefix, epochMs or originMs');
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const from = v.getUint32(14) * 2 ** 32 + v.getUint32(18);
  if (from > EPOCH_COUNT) throw bad(`first epoch ${from} out of range`);
  const need = (n: number, at: number) => {
    if (at + n > body.length) throw bad('truncated');
  };
  const count = body[22]!;
  let at = 23;
  need(count * 37, at);
  const nodes: FrontierNode[] = [];
  for (let i = 0; i < count; i++, at += 37) {
    nodes.push({ depth: body[at]!, index: v.getUint32(at + 1), key: body.slice(at + 5, at + 5 + KEY_BYTES) });
  }
  const frontier = EpochFrontier.fromNodes(from, nodes);
  for (const n of nodes) n.key.fill(0);
  need(1, at);
  const epochCount = body[at++]!;
  if (role === 'client' && epochCount !== 1) throw bad(`${epochCount} open epochs for a ${role}`);
  const epochs: StoredEpoch[] = [];
  for (let i = 0; i < epochCount; i++) {
    need(42, at);
    const t = v.getUint32(at);
    const pos = v.getUint32(at + 4);
    const key = body.slice(at + 8, at + 8 + KEY_BYTES);
    const r = v.getUint16(at + 40);
    at += 42;
    need(4 * r, at);
    const retired: number[] = [];
    for (let j = 0; j < r; j++, at += 4) retired.push(v.getUint32(at));
    if (t >= from) throw bad(`open epoch ${t} is not before the frontier's first epoch ${from}`);
    if (i > 0 && t <= epochs[i - 1]!.t) throw bad('open epochs out of order');
    if (role === 'client' && r !== 0) throw bad('a client state lists retired positions');
    if (!retired.every((n, j) => n >= pos && (j === 0 || n > retired[j - 1]!))) throw bad('retired positions out of order');
    epochs.push({ t, pos, key, retired });
  }
  if (at !== body.length) throw bad(`${body.length - at} trailing bytes`);
  return { role, fingerprint: fingerprint.slice(), frontier, epochs };
}
