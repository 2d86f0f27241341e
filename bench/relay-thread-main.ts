// Runs the far side of a throughput figure in this worker thread: the sink
// and one relay in front of it — the plain TCP relay pipe, or the secure
// relay (a gateway-like end that decrypts, demultiplexes and forwards). Posts
// the relay's port, then answers `next` requests for the sink's deliveries.
import { parentPort, workerData } from 'node:worker_threads';
import { IdentityKey, createIdentity, parseCertificate } from '../src/session/index.js';
import { startPlainRelay, startTcpSink } from './baselines.js';
import { startSecureRelay, type BenchPki } from './fixtures.js';

const w = workerData as { kind: 'plain' | 'secure'; backend: 'native' | 'noble'; gateway?: { key: string; chain: string[]; root: string } };
const sink = await startTcpSink();
const relay =
  w.kind === 'plain'
    ? await startPlainRelay(sink.port)
    : await startSecureRelay(
        {
          gateway: createIdentity(IdentityKey.fromPem(w.gateway!.key), w.gateway!.chain.map((c) => parseCertificate(Buffer.from(c, 'base64')))),
          root: parseCertificate(Buffer.from(w.gateway!.root, 'base64')),
        } as BenchPki,
        w.backend,
        sink.port,
      );
parentPort!.on('message', async (m: { type: 'next'; id: number; hash: boolean } | { type: 'stop' }) => {
  if (m.type === 'next') {
    sink.next({ hash: m.hash }).then(
      (d) => parentPort!.postMessage({ type: 'delivery', id: m.id, delivery: { ...d, endedAt: String(d.endedAt) } }),
      (e: Error) => parentPort!.postMessage({ type: 'delivery', id: m.id, error: e.message }),
    );
  } else {
    await relay.close();
    await sink.close();
    parentPort!.postMessage({ type: 'stopped' });
    parentPort!.close(); // let the thread end by itself (profilers write their output then)
  }
});
parentPort!.postMessage({ type: 'ready', port: relay.port });
