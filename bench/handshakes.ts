/**
 * Handshakes per second on one core: the responder runs on this thread, the
 * initiators in a worker thread (the other core), and the figure is
 * handshakes completed per second that this thread was busy (its event-loop
 * utilisation, which counts every JavaScript, crypto and socket call made on
 * it). That is what one gateway core can accept, whether or not the
 * initiators keep it saturated. Ours is the full XX handshake with
 * certificate checks over loopback TCP, accept to close; the baseline is
 * Node's TLS 1.3 with mutual certificate authentication, the same Ed25519
 * certificates and the same loopback, measured the same way.
 */
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { secureAccept, type CryptoBackendName } from '../src/session/index.js';
import { tcpListen, type ByteStream } from '../src/transport/index.js';
import { gatewayOptions, type BenchPki } from './fixtures.js';

export interface HandshakeRun {
  kind: 'gatesock' | 'tls';
  backend: CryptoBackendName;
  count: number;
  pki: BenchPki;
}

/** In flight at once from the worker: enough to keep the responder busy. */
const CONCURRENCY = 16;

export async function runHandshakes(run: HandshakeRun): Promise<number> {
  let done = 0;
  let failed = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const finish = (ok: boolean) => {
    if (ok) done++;
    else failed++;
    if (done + failed === run.count) resolveAll();
  };
  let port: number;
  let close: () => Promise<void>;
  if (run.kind === 'gatesock') {
    const listener = await tcpListen({ host: '127.0.0.1', port: 0, backlog: 1024 }, (s: ByteStream) => {
      secureAccept(s, gatewayOptions(run.pki, run.backend)).then(
        (c) => {
          finish(c.peer.role === 'server');
          c.destroy();
        },
        () => finish(false),
      );
    });
    port = listener.port;
    close = () => listener.close();
  } else {
    // OpenSSL checks extendedKeyUsage for TLS purposes and ours carry gatesock
    // role OIDs, so chain errors are read from `authorizationError` instead of
    // aborting: the verification work is done all the same.
    const server = tls.createServer(
      { key: run.pki.pem.gatewayKey, cert: run.pki.pem.gatewayCert, ca: run.pki.rootPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      (socket) => {
        const peer = socket.getPeerCertificate();
        const ok = peer?.subject !== undefined;
        if (!ok && process.env.BENCH_DEBUG) console.error('tls peer', peer, socket.authorizationError);
        finish(ok);
        socket.destroy();
      },
    );
    server.on('tlsClientError', (e) => {
      if (process.env.BENCH_DEBUG) console.error('tls client error', e);
      finish(false);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', 1024, () => r()));
    port = (server.address() as { port: number }).port;
    close = () => new Promise((r) => server.close(() => r()));
  }
  const worker = new Worker(new URL('./handshake-worker.mjs', import.meta.url), {
    workerData: {
      kind: run.kind,
      backend: run.backend,
      count: run.count,
      concurrency: CONCURRENCY,
      port,
      server: { key: run.pki.server.key.toPem(), chain: run.pki.server.certificateChain.map((c) => Buffer.from(c).toString('base64')) },
      root: Buffer.from(run.pki.root.der).toString('base64'),
      rootPem: run.pki.rootPem,
      client: { key: run.pki.pem.clientKey, cert: run.pki.pem.clientCert },
    },
  });
  const workerDone = new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`handshake worker exited with ${code}`))));
  });
  const idleBefore = performance.eventLoopUtilization();
  try {
    await Promise.race([Promise.all([all, workerDone]), new Promise((_, rej) => setTimeout(() => rej(new Error('handshake run timed out')), 120_000).unref())]);
  } finally {
    await worker.terminate();
    await close();
  }
  const busySeconds = performance.eventLoopUtilization(idleBefore).active / 1000;
  if (failed > 0) throw new Error(`${failed} of ${run.count} ${run.kind} handshakes failed`);
  return done / busySeconds;
}
