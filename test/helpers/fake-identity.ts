// A stand-in identity for exercising the secure channel's mechanics without
// X.509: the "certificate" is `FAKE:` + the Ed25519 public key, and the
// verifier accepts any such certificate (or refuses, on demand). Tests of the
// real certificate checks use the identity module.
import { nobleBackend } from '../../src/session/crypto/index.js';
import type { ChannelIdentity, VerifiedPeer } from '../../src/session/secure/channel.js';
import { CertificateError } from '../../src/errors/index.js';

const PREFIX = new TextEncoder().encode('FAKE:');

export function fakeIdentity(name = 'x'): ChannelIdentity & { publicKey: Uint8Array; name: string } {
  const seed = nobleBackend.sha256(new TextEncoder().encode(name));
  const publicKey = nobleBackend.ed25519.publicKey(seed);
  const cert = new Uint8Array(PREFIX.length + 32);
  cert.set(PREFIX);
  cert.set(publicKey, PREFIX.length);
  return { name, publicKey, certificateChain: [cert], sign: (m) => nobleBackend.ed25519.sign(m, seed) };
}

export function fakeVerifier(opts: { refuse?: boolean } = {}) {
  return (chain: Uint8Array[]): VerifiedPeer => {
    const leaf = chain[0]!;
    if (opts.refuse || leaf.length !== PREFIX.length + 32) throw new CertificateError('GS_ERR_CERT_UNTRUSTED', 'fake verifier refused the peer');
    const publicKey = leaf.slice(PREFIX.length);
    return { publicKey, msid: 'MSID-' + Buffer.from(nobleBackend.sha256(leaf)).toString('hex').toUpperCase(), role: 'test' };
  };
}
