// The two crypto backends must be interchangeable: same inputs, same bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getCryptoBackend, nativeBackend, nobleBackend } from '../../src/session/crypto/index.js';
import { CryptoError } from '../../src/errors/index.js';

const native = nativeBackend();
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe('crypto backends', () => {
  it('native is available on Node and chosen by auto', () => {
    expect(native).toBeDefined();
    expect(getCryptoBackend().name).toBe('native');
    expect(getCryptoBackend('noble').name).toBe('noble');
    expect(() => getCryptoBackend('rot13' as never)).toThrow(/crypto backend must be/);
  });

  it('AEAD seal/open give identical bytes', () => {
    fc.assert(
      fc.property(bytes(32), bytes(12), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 3000 }), (key, nonce, ad, pt) => {
        const a = nobleBackend.aead(key).seal(nonce, ad, pt);
        const b = native!.aead(key).seal(nonce, ad, pt);
        expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
        expect(Buffer.from(native!.aead(key).open(nonce, ad, a)).equals(Buffer.from(pt))).toBe(true);
        expect(Buffer.from(nobleBackend.aead(key).open(nonce, ad, b)).equals(Buffer.from(pt))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('AEAD open refuses a flipped bit on both backends with GS_ERR_DECRYPT_FAILED', () => {
    for (const be of [nobleBackend, native!]) {
      const key = new Uint8Array(32).fill(7);
      const nonce = new Uint8Array(12);
      const ct = be.aead(key).seal(nonce, new Uint8Array(0), new TextEncoder().encode('hello'));
      ct[2]! ^= 1;
      expect(() => be.aead(key).open(nonce, new Uint8Array(0), ct)).toThrow(CryptoError);
      try {
        be.aead(key).open(nonce, new Uint8Array(0), ct);
      } catch (e) {
        expect((e as CryptoError).code).toBe('GS_ERR_DECRYPT_FAILED');
      }
      expect(() => be.aead(key).open(nonce, new Uint8Array(0), new Uint8Array(3))).toThrow(CryptoError);
    }
  });

  it('X25519 public keys and shared secrets match', () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), (a, b) => {
        const pa = nobleBackend.x25519.publicKey(a);
        expect(Buffer.from(native!.x25519.publicKey(a)).equals(Buffer.from(pa))).toBe(true);
        const pb = native!.x25519.publicKey(b);
        const s1 = nobleBackend.x25519.sharedSecret(a, pb);
        const s2 = native!.x25519.sharedSecret(b, pa);
        expect(Buffer.from(s1).equals(Buffer.from(s2))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('X25519 refuses low-order peer keys with GS_ERR_LOW_ORDER_KEY on both backends', () => {
    // Low-order points of Curve25519 (RFC 7748 §6.1 / libsodium's blocklist): 0 and 1.
    const lowOrder = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];
    for (const be of [nobleBackend, native!]) {
      for (const p of lowOrder) {
        expect(() => be.x25519.sharedSecret(new Uint8Array(32).fill(9), p)).toThrowError(
          expect.objectContaining({ code: 'GS_ERR_LOW_ORDER_KEY' }),
        );
      }
    }
  });

  it('Ed25519 keys and signatures match and cross-verify', () => {
    fc.assert(
      fc.property(bytes(32), fc.uint8Array({ maxLength: 500 }), (seed, msg) => {
        const pk = nobleBackend.ed25519.publicKey(seed);
        expect(Buffer.from(native!.ed25519.publicKey(seed)).equals(Buffer.from(pk))).toBe(true);
        const sig = nobleBackend.ed25519.sign(msg, seed);
        expect(Buffer.from(native!.ed25519.sign(msg, seed)).equals(Buffer.from(sig))).toBe(true);
        expect(native!.ed25519.verify(sig, msg, pk)).toBe(true);
        const bad = sig.slice();
        bad[0]! ^= 1;
        expect(native!.ed25519.verify(bad, msg, pk)).toBe(false);
        expect(nobleBackend.ed25519.verify(bad, msg, pk)).toBe(false);
        expect(nobleBackend.ed25519.verify(sig.subarray(1), msg, pk)).toBe(false);
        expect(native!.ed25519.verify(sig.subarray(1), msg, pk)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('SHA-256 and HMAC match over split inputs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 80 }), (a, b, k) => {
        expect(Buffer.from(native!.sha256(a, b)).equals(Buffer.from(nobleBackend.sha256(a, b)))).toBe(true);
        expect(Buffer.from(native!.sha256(a)).equals(Buffer.from(nobleBackend.sha256(a)))).toBe(true); // the one-shot path
        expect(Buffer.from(native!.hmacSha256(k, a, b)).equals(Buffer.from(nobleBackend.hmacSha256(k, a, b)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('AEAD sealInto', () => {
  it('writes exactly the sealed bytes at the offset and nothing else, on both backends', () => {
    fc.assert(
      fc.property(bytes(32), bytes(12), fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 8 }), (key, nonce, pt, offset) => {
        const sealed = nobleBackend.aead(key).seal(nonce, new Uint8Array(0), pt);
        for (const be of [nobleBackend, native!]) {
          const out = new Uint8Array(offset + sealed.length + 3).fill(0xa5);
          expect(be.aead(key).sealInto(nonce, new Uint8Array(0), pt, out, offset)).toBe(sealed.length);
          expect(Buffer.from(out.subarray(offset, offset + sealed.length)).equals(Buffer.from(sealed))).toBe(true);
          expect([...out.subarray(0, offset), ...out.subarray(offset + sealed.length)].every((b) => b === 0xa5)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('sha256PrefixEquals agrees with comparing the SHA-256 prefix, for matches, one-bit differences and ranges outside', () => {
    const equals = native!.sha256PrefixEquals!.bind(native);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 40 }), fc.nat(), (data, length, at, flip) => {
        const expected = new Uint8Array(at + 32);
        expected.set(nobleBackend.sha256(data).subarray(0, length), at);
        expect(equals(data, expected, at, length)).toBe(true);
        if (length > 0) {
          const wrong = expected.slice();
          wrong[at + (flip % length)]! ^= 1 << flip % 8;
          expect(equals(data, wrong, at, length)).toBe(false);
        }
        // A range that does not fit in `expected`, or a length past the digest: false, never a throw.
        expect(equals(data, expected, expected.length - length + 1, length)).toBe(false);
        expect(equals(data, expected, -1, length)).toBe(false);
        expect(equals(data, new Uint8Array(64), 0, 33)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
