/**
 * A MuxConnection is a ByteStream: the transport layer's conformance suite,
 * run over connections of a session pair carried by a memory pair, a shaped
 * memory pair and loopback TCP, in both directions.
 */
import { memoryPair, tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { describeByteStreamConformance } from '../transport/conformance.js';
import { connectionPair } from '../helpers/mux-pair.js';

describeByteStreamConformance('mux over memory', async () => {
  const [ta, tb] = memoryPair();
  return connectionPair(ta, tb);
}, { kinds: ['mux', 'mux'], halfClose: true });

describeByteStreamConformance('mux over shaped memory', async () => {
  const [ta, tb] = memoryPair({ latencyMs: 2, jitterMs: 2, bandwidthBps: 4e9, seed: 5, highWaterMark: 256 * 1024 });
  return connectionPair(ta, tb);
}, { kinds: ['mux', 'mux'], halfClose: true });

describeByteStreamConformance('mux over tcp 127.0.0.1', async () => {
  let accept!: (s: ByteStream) => void;
  const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, accept);
  const ta = await tcpConnect({ host: '127.0.0.1', port: listener.port });
  const tb = await accepted;
  return connectionPair(ta, tb, () => listener.close());
}, { kinds: ['mux', 'mux'], halfClose: true });
