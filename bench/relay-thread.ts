/**
 * The far side of a throughput figure in its own thread: a relay hop (plain
 * or secure) and the sink behind it share the second core, as a gateway and
 * the service it reaches sit away from the client; the sender — and, for
 * ours, the client end of the secure session — has this core to itself. The
 * same split for ours and the baseline.
 */
import { Worker } from 'node:worker_threads';
import type { Delivery, LoopbackServer, TcpSink } from './baselines.js';
import type { BenchPki } from './fixtures.js';

/** The far side: the relay's port, and the sink behind it as a {@link TcpSink}. */
export interface FarSide extends LoopbackServer {
  readonly sink: TcpSink;
}

export async function startFarSide(kind: 'plain' | 'secure', options: { backend?: 'native' | 'noble'; pki?: BenchPki } = {}): Promise<FarSide> {
  const worker = new Worker(new URL('./relay-worker.mjs', import.meta.url), {
    workerData: {
      kind,
      backend: options.backend ?? 'native',
      gateway: options.pki
        ? {
            key: options.pki.pem.gatewayKey,
            chain: options.pki.gateway.certificateChain.map((c) => Buffer.from(c).toString('base64')),
            root: Buffer.from(options.pki.root.der).toString('base64'),
          }
        : undefined,
    },
  });
  const waiting = new Map<number, { resolve: (d: Delivery) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let onStopped: (() => void) | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (m: { type: string; port?: number; id?: number; delivery?: Delivery & { endedAt: string }; error?: string }) => {
      if (m.type === 'ready') resolve(m.port!);
      else if (m.type === 'stopped') onStopped?.();
      else if (m.type === 'delivery') {
        const w = waiting.get(m.id!);
        waiting.delete(m.id!);
        if (m.error !== undefined) w?.reject(new Error(m.error));
        else w?.resolve({ ...m.delivery!, endedAt: BigInt(m.delivery!.endedAt) });
      }
    });
    worker.once('error', reject);
  });
  const sink: TcpSink = {
    port,
    next(o = {}) {
      const id = nextId++;
      worker.postMessage({ type: 'next', id, hash: o.hash === true });
      return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
    },
    close: async () => undefined,
  };
  return {
    port,
    sink,
    async close() {
      const stopped = new Promise<void>((r) => (onStopped = r));
      worker.postMessage({ type: 'stop' });
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000))]);
      await worker.terminate();
    },
  };
}
