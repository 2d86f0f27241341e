/**
 * The secure channel is a ByteStream, and so is a mux connection riding on
 * one: the transport conformance suite over both, on memory pairs and over
 * loopback TCP, in both directions. This is the stack a relay session uses.
 */
import { describe, expect, it } from 'vitest';
import { MuxSession, secureAccept, secureConnect, type SecureChannel } from '../../src/session/index.js';
import { memoryPair, tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { describeByteStreamConformance } from '../transport/conformance.js';
import { connectionPair } from '../helpers/mux-pair.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';

async function securePair(ta: ByteStream, tb: ByteStream): Promise<[SecureChannel, SecureChannel]> {
  return Promise.all([
    secureConnect(ta, { identity: fakeIdentity('a'), verifyPeer: fakeVerifier() }),
    secureAccept(tb, { identity: fakeIdentity('b'), verifyPeer: fakeVerifier() }),
  ]);
}

async function tcpPair(): Promise<{ ta: ByteStream; tb: ByteStream; close: () => Promise<void> }> {
  let accept!: (s: ByteStream) => void;
  const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, accept);
  const ta = await tcpConnect({ host: '127.0.0.1', port: listener.port });
  return { ta, tb: await accepted, close: () => listener.close() };
}

describeByteStreamConformance('secure channel over memory', async () => {
  const [ta, tb] = memoryPair();
  const [a, b] = await securePair(ta, tb);
  return { a, b, cleanup: async () => (a.destroy(), b.destroy()) };
}, { kinds: ['secure', 'secure'], halfClose: true });

describeByteStreamConformance('secure channel over tcp 127.0.0.1', async () => {
  const { ta, tb, close } = await tcpPair();
  const [a, b] = await securePair(ta, tb);
  return { a, b, cleanup: async () => (a.destroy(), b.destroy(), await close()) };
}, { kinds: ['secure', 'secure'], halfClose: true });

describeByteStreamConformance('mux over secure channel over tcp 127.0.0.1', async () => {
  const { ta, tb, close } = await tcpPair();
  const [a, b] = await securePair(ta, tb);
  return connectionPair(a, b, close);
}, { kinds: ['mux', 'mux'], halfClose: true });


describe('mux session on a fresh secure channel', () => {
  it('delivers a connection opened the moment the handshake completes, even to a slow responder', async () => {
    // The responder's verifier is slow, so the initiator's OPEN and data reach
    // the responder's channel before its MuxSession exists; they must wait
    // for the `connection` listener rather than be refused.
    const [ta, tb] = memoryPair();
    const verify = fakeVerifier();
    const slowVerify = async (chain: Uint8Array[]) => {
      await new Promise((r) => setTimeout(r, 20));
      return verify(chain);
    };
    const responder = secureAccept(tb, { identity: fakeIdentity('b'), verifyPeer: slowVerify }).then((ch) => {
      const session = new MuxSession(ch, { role: 'responder' });
      return new Promise<string>((resolve) =>
        session.on('connection', (conn) => {
          conn.on('data', (d) => resolve(new TextDecoder().decode(d)));
          conn.resume();
        }),
      );
    });
    const initiator = new MuxSession(await secureConnect(ta, { identity: fakeIdentity('a'), verifyPeer: verify }), { role: 'initiator' });
    const conn = initiator.open();
    const closed = new Promise<unknown>((r) => conn.on('close', r));
    conn.write(new TextEncoder().encode('first words'));
    expect(await responder).toBe('first words');
    initiator.destroy();
    await closed;
  });
});
