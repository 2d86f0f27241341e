// Every Noise_*_25519_ChaChaPoly_SHA256 vector of cacophony (source recorded in
// test/vectors/noise/README.md), byte for byte, on both crypto backends.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativeBackend, nobleBackend, type CryptoBackend } from '../../src/session/crypto/index.js';
import { HandshakeState, type CipherState } from '../../src/session/noise/index.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  resp_prologue: string;
  init_static?: string;
  resp_static?: string;
  init_ephemeral?: string;
  resp_ephemeral?: string;
  init_remote_static?: string;
  resp_remote_static?: string;
  init_psks?: string[];
  resp_psks?: string[];
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const file = new URL('../vectors/noise/cacophony-25519-chachapoly-sha256.json', import.meta.url);
const vectors: Vector[] = JSON.parse(readFileSync(file, 'utf8')).vectors;
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function party(v: Vector, backend: CryptoBackend, initiator: boolean): HandshakeState {
  const p = initiator ? 'init' : 'resp';
  const pattern = /^Noise_(.+)_25519_ChaChaPoly_SHA256$/.exec(v.protocol_name)![1]!;
  const s = v[`${p}_static`];
  const e = v[`${p}_ephemeral`];
  const rs = v[`${p}_remote_static`];
  const psks = v[`${p}_psks`];
  return new HandshakeState({
    pattern,
    initiator,
    backend,
    prologue: hex(v[`${p}_prologue`]),
    staticKey: s ? { privateKey: hex(s), publicKey: backend.x25519.publicKey(hex(s)) } : undefined,
    ephemeralPrivateKey: e ? hex(e) : undefined,
    remoteStaticKey: rs ? hex(rs) : undefined,
    psks: psks?.map(hex),
  });
}

const backends = [nobleBackend, nativeBackend()].filter((b): b is CryptoBackend => b !== undefined);

describe.each(backends.map((b) => [b.name, b] as const))('cacophony vectors (%s backend)', (_name, backend) => {
  it('has the vectors', () => expect(vectors.length).toBe(59));
  it.each(vectors.map((v) => [v.protocol_name, v] as const))('%s', (_n, v) => {
    const init = party(v, backend, true);
    const resp = party(v, backend, false);
    const handshakeLen = init.pattern.messages.length;
    let initCs: { send: CipherState; receive: CipherState } | undefined;
    let respCs: { send: CipherState; receive: CipherState } | undefined;
    v.messages.forEach((m, i) => {
      // Handshake and transport messages alternate, starting with the
      // initiator; in one-way patterns only the initiator sends.
      const fromInit = init.pattern.oneWay || i % 2 === 0;
      const payload = hex(m.payload);
      let ct: Uint8Array;
      let pt: Uint8Array;
      if (i < handshakeLen) {
        const [w, r] = fromInit ? [init, resp] : [resp, init];
        ct = w.writeMessage(payload);
        pt = r.readMessage(ct);
        if (i === handshakeLen - 1) {
          initCs = init.split;
          respCs = resp.split;
          expect(toHex(init.handshakeHash)).toBe(v.handshake_hash);
          expect(toHex(resp.handshakeHash)).toBe(v.handshake_hash);
        }
      } else {
        const [w, r] = fromInit ? [initCs!, respCs!] : [respCs!, initCs!];
        ct = w.send.encryptWithAd(new Uint8Array(0), payload);
        pt = r.receive.decryptWithAd(new Uint8Array(0), ct);
      }
      expect(toHex(ct)).toBe(m.ciphertext);
      expect(toHex(pt)).toBe(m.payload);
    });
  });
});
