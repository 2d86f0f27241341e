// Noise engine behaviour beyond the vectors: turn order, wiping after
// Split(), nonce exhaustion, rekey, low-order keys, tampering.
import { describe, expect, it } from 'vitest';
import { nobleBackend, nativeBackend } from '../../src/session/crypto/index.js';
import { CipherState, HandshakeState, parsePattern } from '../../src/session/noise/index.js';

const backend = nativeBackend() ?? nobleBackend;
const keyPair = () => {
  const privateKey = backend.randomBytes(32);
  return { privateKey, publicKey: backend.x25519.publicKey(privateKey) };
};

function xxPair() {
  const init = new HandshakeState({ pattern: 'XX', initiator: true, backend, staticKey: keyPair() });
  const resp = new HandshakeState({ pattern: 'XX', initiator: false, backend, staticKey: keyPair() });
  return { init, resp };
}

describe('Noise engine', () => {
  it('names its states by role and message index and refuses out-of-turn use', () => {
    const { init, resp } = xxPair();
    expect(init.state).toBe('initiator:start');
    expect(() => resp.writeMessage()).toThrowError(expect.objectContaining({ code: 'GS_ERR_HANDSHAKE_FAILED' }));
    resp.readMessage(init.writeMessage());
    expect(init.state).toBe('initiator:sent-1');
    expect(resp.state).toBe('responder:read-1');
    init.readMessage(resp.writeMessage());
    expect(init.state).toBe('initiator:read-2');
    resp.readMessage(init.writeMessage());
    expect(init.state).toBe('split');
    expect(resp.state).toBe('split');
    expect(() => init.writeMessage()).toThrowError(/already complete/);
  });

  it('wipes the chaining key, handshake cipher and ephemeral secret after Split()', () => {
    const { init, resp } = xxPair();
    resp.readMessage(init.writeMessage());
    expect(init.ephemeralWiped).toBe(false);
    init.readMessage(resp.writeMessage());
    resp.readMessage(init.writeMessage());
    for (const hs of [init, resp]) {
      expect(hs.symmetricWiped).toBe(true);
      expect(hs.ephemeralWiped).toBe(true);
    }
    expect(Buffer.from(init.handshakeHash).equals(Buffer.from(resp.handshakeHash))).toBe(true);
  });

  it('fails the handshake on a tampered message and stays failed', () => {
    const { init, resp } = xxPair();
    resp.readMessage(init.writeMessage());
    const m2 = resp.writeMessage();
    m2[40]! ^= 0x80;
    expect(() => init.readMessage(m2)).toThrowError(expect.objectContaining({ code: 'GS_ERR_HANDSHAKE_FAILED' }));
    expect(init.state).toBe('failed');
    expect(() => init.writeMessage()).toThrow();
  });

  it('refuses a low-order ephemeral key from the peer', () => {
    const resp = new HandshakeState({ pattern: 'XX', initiator: false, backend, staticKey: keyPair() });
    resp.readMessage(new Uint8Array(32)); // e = 0: a low-order point
    expect(() => resp.writeMessage()).toThrowError(expect.objectContaining({ code: 'GS_ERR_LOW_ORDER_KEY' }));
  });

  it('refuses truncated handshake messages with a typed error', () => {
    const { init, resp } = xxPair();
    resp.readMessage(init.writeMessage());
    const m2 = resp.writeMessage();
    expect(() => init.readMessage(m2.subarray(0, 40))).toThrowError(expect.objectContaining({ code: 'GS_ERR_HANDSHAKE_FAILED' }));
  });

  it('throws GS_ERR_NONCE_EXHAUSTED at 2^64-1 instead of wrapping', () => {
    const a = new CipherState(backend);
    const b = new CipherState(backend);
    const key = backend.randomBytes(32);
    a.initializeKey(key);
    b.initializeKey(key);
    a.setNonce(2n ** 64n - 2n);
    b.setNonce(2n ** 64n - 2n);
    const ct = a.encryptWithAd(new Uint8Array(0), Uint8Array.of(1, 2, 3));
    expect(Array.from(b.decryptWithAd(new Uint8Array(0), ct))).toEqual([1, 2, 3]);
    expect(a.nonce).toBe(2n ** 64n - 1n);
    expect(() => a.encryptWithAd(new Uint8Array(0), Uint8Array.of(1))).toThrowError(expect.objectContaining({ code: 'GS_ERR_NONCE_EXHAUSTED' }));
    // The 32-bit carry works.
    a.setNonce(0xffffffffn);
    a.encryptWithAd(new Uint8Array(0), new Uint8Array(0));
    expect(a.nonce).toBe(0x100000000n);
  });

  it('rekey changes the key on both ends in step and keeps the nonce', () => {
    const a = new CipherState(backend);
    const b = new CipherState(backend);
    const key = backend.randomBytes(32);
    a.initializeKey(key);
    b.initializeKey(key);
    const before = a.encryptWithAd(new Uint8Array(0), Uint8Array.of(9));
    b.decryptWithAd(new Uint8Array(0), before);
    a.rekey();
    expect(() => b.decryptWithAd(new Uint8Array(0), a.encryptWithAd(new Uint8Array(0), Uint8Array.of(9)))).toThrow();
    const c = new CipherState(backend);
    c.initializeKey(key);
    c.setNonce(1n);
    c.rekey();
    c.setNonce(1n);
    const d = new CipherState(backend);
    d.initializeKey(key);
    d.rekey();
    d.setNonce(1n);
    const ct = c.encryptWithAd(new Uint8Array(0), Uint8Array.of(5));
    expect(Array.from(d.decryptWithAd(new Uint8Array(0), ct))).toEqual([5]);
  });

  it('parses psk modifiers and rejects unknown patterns', () => {
    expect(parsePattern('NNpsk0+psk2').messages).toEqual([['psk', 'e'], ['e', 'ee', 'psk']]);
    expect(parsePattern('XX').messages.length).toBe(3);
    expect(() => parsePattern('ZZ')).toThrowError(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
    expect(() => parsePattern('NNpsk7')).toThrowError(expect.objectContaining({ code: 'GS_ERR_INVALID_OPTION' }));
  });
});
