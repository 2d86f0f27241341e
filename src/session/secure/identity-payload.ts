/**
 * The handshake payload that tells the peer who we are (carried, encrypted,
 * in XX messages 2 and 3):
 *
 * ```
 *  0        1        2        4               4+n
 * +--------+--------+--------+---------------+-- … --+----------------------+
 * | ver=1  | count  | len u16| certificate 1 |  …    | signature (64 bytes) |
 * +--------+--------+--------+---------------+-- … --+----------------------+
 *                    \___ repeated `count` times, leaf first ___/
 * ```
 *
 * `signature` is Ed25519 by the leaf certificate's key over
 * {@link STATIC_KEY_CONTEXT} ‖ the sender's Noise static public key. It binds
 * the X.509 identity to this Noise static key, so a payload copied into
 * another handshake (with another static key) does not verify.
 *
 * Decoding is canonical: a wrong version, a count outside 1..8, a short
 * certificate or any trailing byte is refused.
 */
import { HandshakeError } from '../../errors/index.js';

/** Domain separation for the static-key signature. */
export const STATIC_KEY_CONTEXT = new TextEncoder().encode('gatesock/1 noise static key\0');
const VERSION = 1;
const MAX_CERTS = 8;
const SIG_LEN = 64;

/** A decoded identity payload. */
export interface IdentityPayload {
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  /** Signature over STATIC_KEY_CONTEXT ‖ Noise static key. */
  readonly signature: Uint8Array;
}

/** The message the identity key signs for a given Noise static key. */
export function staticKeyMessage(noiseStaticKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(STATIC_KEY_CONTEXT.length + noiseStaticKey.length);
  out.set(STATIC_KEY_CONTEXT);
  out.set(noiseStaticKey, STATIC_KEY_CONTEXT.length);
  return out;
}

export function encodeIdentityPayload(p: IdentityPayload): Uint8Array {
  if (p.chain.length < 1 || p.chain.length > MAX_CERTS) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `certificate chain must hold 1..${MAX_CERTS} certificates`);
  if (p.signature.length !== SIG_LEN) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'identity signature must be 64 bytes');
  let n = 2 + SIG_LEN;
  for (const c of p.chain) {
    if (c.length === 0 || c.length > 0xffff) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'certificate too large for the identity payload');
    n += 2 + c.length;
  }
  const out = new Uint8Array(n);
  out[0] = VERSION;
  out[1] = p.chain.length;
  let off = 2;
  for (const c of p.chain) {
    out[off] = c.length >> 8;
    out[off + 1] = c.length & 0xff;
    out.set(c, off + 2);
    off += 2 + c.length;
  }
  out.set(p.signature, off);
  return out;
}

export function decodeIdentityPayload(b: Uint8Array): IdentityPayload {
  const bad = (why: string) => new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `malformed identity payload: ${why}`);
  if (b.length < 2) throw bad('too short');
  if (b[0] !== VERSION) throw bad(`version ${b[0]}`);
  const count = b[1]!;
  if (count < 1 || count > MAX_CERTS) throw bad(`certificate count ${count}`);
  const chain: Uint8Array[] = [];
  let off = 2;
  for (let i = 0; i < count; i++) {
    if (off + 2 > b.length) throw bad('truncated');
    const len = (b[off]! << 8) | b[off + 1]!;
    if (len === 0) throw bad('empty certificate');
    if (off + 2 + len > b.length) throw bad('truncated certificate');
    chain.push(b.slice(off + 2, off + 2 + len));
    off += 2 + len;
  }
  if (b.length !== off + SIG_LEN) throw bad(b.length < off + SIG_LEN ? 'truncated signature' : 'trailing bytes');
  return { chain, signature: b.slice(off) };
}
