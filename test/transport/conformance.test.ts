/**
 * The ByteStream conformance suite over every transport, both directions:
 * in-memory (plain and shaped), TCP over IPv4 and IPv6, WebSocket, and HTTP
 * CONNECT through the test proxy (with Basic auth).
 */
import type { ByteStream, ByteStreamListener } from '../../src/transport/index.js';
import { httpConnect, memoryPair, tcpConnect, tcpListen, wsConnect, wsListen } from '../../src/transport/index.js';
import { startConnectProxy } from '../helpers/connect-proxy.js';
import { describeByteStreamConformance, type StreamPair } from './conformance.js';

/** Listen, connect once, and pair the client with the accepted stream. */
async function acceptPair(
  listen: (onStream: (s: ByteStream) => void) => Promise<ByteStreamListener>,
  connect: (listener: ByteStreamListener) => Promise<ByteStream>,
): Promise<StreamPair & { listener: ByteStreamListener }> {
  let accept!: (s: ByteStream) => void;
  const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
  const listener = await listen(accept);
  const a = await connect(listener);
  const b = await accepted;
  return { a, b, listener, cleanup: () => listener.close() };
}

describeByteStreamConformance('memory', async () => {
  const [a, b] = memoryPair();
  return { a, b };
}, { kinds: ['memory', 'memory'], halfClose: true });

describeByteStreamConformance('memory shaped', async () => {
  const [a, b] = memoryPair({ latencyMs: 2, jitterMs: 2, bandwidthBps: 4e9, seed: 11, highWaterMark: 256 * 1024 });
  return { a, b };
}, { kinds: ['memory', 'memory'], halfClose: true });

for (const host of ['127.0.0.1', '::1']) {
  describeByteStreamConformance(`tcp ${host}`, () =>
    acceptPair(
      (onStream) => tcpListen({ host, port: 0 }, onStream),
      (l) => tcpConnect({ host, port: l.port }),
    ), { kinds: ['tcp', 'tcp'], halfClose: true });
}

describeByteStreamConformance('websocket', () =>
  acceptPair(
    (onStream) => wsListen({ host: '127.0.0.1', port: 0, path: '/gs' }, onStream),
    (l) => wsConnect(`ws://127.0.0.1:${l.port}/gs`),
  ), { kinds: ['websocket', 'websocket'], halfClose: false });

describeByteStreamConformance('http-connect', async () => {
  const auth = { username: 'alice', password: 's3cret' };
  const proxy = await startConnectProxy({ auth });
  // `a` is the tunnel under test; `b`, accepted by the target, is plain TCP.
  const pair = await acceptPair(
    (onStream) => tcpListen({ host: '127.0.0.1', port: 0 }, onStream),
    (l) => httpConnect({ proxy: { host: '127.0.0.1', port: proxy.port, auth }, target: { host: '127.0.0.1', port: l.port } }),
  );
  return {
    a: pair.a,
    b: pair.b,
    cleanup: async () => {
      await pair.listener.close();
      await proxy.close();
    },
  };
}, { kinds: ['http-connect', 'tcp'], halfClose: true });
