/**
 * A relay in its own thread, as a gateway runs in its own process: the
 * throughput figures put the relay hop (plain or secure) on the second core
 * and the sender and sink on this one, for ours and the baseline alike.
 */
import { Worker } from 'node:worker_threads';
import type { LoopbackServer } from './baselines.js';
import type { BenchPki } from './fixtures.js';

export async function startRelayThread(
  kind: 'plain' | 'secure',
  targetPort: number,
  options: { backend?: 'native' | 'noble'; pki?: BenchPki } = {},
): Promise<LoopbackServer> {
  const worker = new Worker(new URL('./relay-worker.mjs', import.meta.url), {
    workerData: {
      kind,
      backend: options.backend ?? 'native',
      targetPort,
      gateway: options.pki
        ? {
            key: options.pki.pem.gatewayKey,
            chain: options.pki.gateway.certificateChain.map((c) => Buffer.from(c).toString('base64')),
            root: Buffer.from(options.pki.root.der).toString('base64'),
          }
        : undefined,
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port));
    worker.once('error', reject);
  });
  return {
    port,
    async close() {
      const stopped = new Promise((r) => worker.once('message', r));
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000))]);
      await worker.terminate();
    },
  };
}
