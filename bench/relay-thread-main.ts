// Runs one relay in this worker thread and posts its port: the plain TCP
// relay pipe, or the secure relay (a gateway-like end that decrypts and
// forwards to a plain TCP port).
import { parentPort, workerData } from 'node:worker_threads';
import { IdentityKey, createIdentity, parseCertificate } from '../src/session/index.js';
import { startPlainRelay } from './baselines.js';
import { startSecureRelay, type BenchPki } from './fixtures.js';

const w = workerData as { kind: 'plain' | 'secure'; backend: 'native' | 'noble'; targetPort: number; gateway?: { key: string; chain: string[]; root: string } };
const relay =
  w.kind === 'plain'
    ? await startPlainRelay(w.targetPort)
    : await startSecureRelay(
        {
          gateway: createIdentity(IdentityKey.fromPem(w.gateway!.key), w.gateway!.chain.map((c) => parseCertificate(Buffer.from(c, 'base64')))),
          root: parseCertificate(Buffer.from(w.gateway!.root, 'base64')),
        } as BenchPki,
        w.backend,
        w.targetPort,
      );
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    await relay.close();
    parentPort!.postMessage('stopped');
  }
});
parentPort!.postMessage({ port: relay.port });
