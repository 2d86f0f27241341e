import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CryptoError } from '../../../src/errors/index.js';
import { nativeBackend, nobleBackend } from '../../../src/session/crypto/index.js';
import { IdentityKey, generateIdentityKey } from '../../../src/session/identity/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

// RFC 8410 §10.3 (private key) and §10.1 (its public key).
const RFC8410_PRIVATE_PEM = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n';
const RFC8410_PUBLIC = '19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1';

describe('identity keys', () => {
  it('RFC 8032 §7.1 test 1: seed → public key', () => {
    const key = IdentityKey.fromSeed(unhex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    expect(hex(key.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(hex(key.sign(new Uint8Array(0)))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('RFC 8410 §10.3 PEM loads and gives the §10.1 public key; writing it back gives the same PEM', () => {
    const key = IdentityKey.fromPem(RFC8410_PRIVATE_PEM);
    expect(hex(key.publicKey)).toBe(RFC8410_PUBLIC);
    expect(key.toPem()).toBe(RFC8410_PRIVATE_PEM);
  });

  it('generated keys round-trip through PKCS#8 and PEM, and both backends agree', () => {
    for (const crypto of [nobleBackend, nativeBackend()].filter((b) => b !== undefined)) {
      const key = generateIdentityKey({ crypto });
      const again = IdentityKey.fromPem(key.toPem(), { crypto: nobleBackend });
      expect(again.publicKey).toEqual(key.publicKey);
      expect(again.exportSeed()).toEqual(key.exportSeed());
      expect(IdentityKey.fromPkcs8(key.toPkcs8()).publicKey).toEqual(key.publicKey);
      const msg = new TextEncoder().encode('hello');
      expect(again.sign(msg)).toEqual(key.sign(msg)); // Ed25519 is deterministic
    }
  });

  it('never shows the seed in toString, JSON or util.inspect', () => {
    const key = generateIdentityKey();
    const seedHex = hex(key.exportSeed());
    const b64 = Buffer.from(key.exportSeed()).toString('base64');
    for (const shown of [String(key), JSON.stringify(key), inspect(key), inspect({ nested: key }, { depth: 5, showHidden: true })]) {
      expect(shown).not.toContain(seedHex);
      expect(shown).not.toContain(b64);
      expect(shown).toContain(hex(key.publicKey));
    }
    expect(Object.keys(key)).toEqual(['algorithm']);
  });

  it('exportSeed and publicKey return copies', () => {
    const key = generateIdentityKey();
    key.exportSeed().fill(0);
    key.publicKey.fill(0);
    expect(key.exportSeed().some((b) => b !== 0)).toBe(true);
    expect(key.publicKey.some((b) => b !== 0)).toBe(true);
  });

  it('reads PKCS#8 v2 (OneAsymmetricKey with the public key) and checks that key', () => {
    const key = IdentityKey.fromPem(RFC8410_PRIVATE_PEM);
    const v2 = (pub: Uint8Array) => {
      const body = [0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...key.exportSeed(), 0x81, 0x21, 0x00, ...pub];
      return Uint8Array.from([0x30, body.length, ...body]);
    };
    expect(IdentityKey.fromPkcs8(v2(key.publicKey)).publicKey).toEqual(key.publicKey);
    const wrong = key.publicKey;
    wrong[0] = wrong[0]! ^ 1;
    expect(() => IdentityKey.fromPkcs8(v2(wrong))).toThrow(/does not belong/);
  });

  it.each([
    ['short seed', () => IdentityKey.fromSeed(new Uint8Array(31))],
    ['garbage DER', () => IdentityKey.fromPkcs8(Uint8Array.of(1, 2, 3))],
    ['an X25519 key', () => IdentityKey.fromPkcs8(unhex(`302e020100300506032b656e04220420${'11'.repeat(32)}`))],
    ['no PEM block', () => IdentityKey.fromPem('hello')],
    ['a certificate PEM', () => IdentityKey.fromPem('-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n')],
    ['bad base64', () => IdentityKey.fromPem('-----BEGIN PRIVATE KEY-----\nMC4*AQAw\n-----END PRIVATE KEY-----\n')],
    ['mismatched END label', () => IdentityKey.fromPem('-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PUBLIC KEY-----\n')],
    ['encrypted key', () => IdentityKey.fromPem('-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n')],
    ['legacy headers', () => IdentityKey.fromPem('-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMAA=\n-----END PRIVATE KEY-----\n')],
  ])('%s → CryptoError GS_ERR_BAD_KEY', (_name, f) => {
    expect(f).toThrow(CryptoError);
    try {
      f();
    } catch (e) {
      expect((e as CryptoError).code).toBe('GS_ERR_BAD_KEY');
    }
  });
});
