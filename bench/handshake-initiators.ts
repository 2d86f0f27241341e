// Runs `count` handshakes against the responder, `concurrency` at a time.
import tls from 'node:tls';
import { workerData } from 'node:worker_threads';
import { IdentityKey, certificateVerifier, createIdentity, parseCertificate, secureConnect } from '../src/session/index.js';
import { tcpConnect } from '../src/transport/index.js';

const w = workerData as {
  kind: 'gatesock' | 'tls';
  backend: 'native' | 'noble';
  count: number;
  concurrency: number;
  port: number;
  server: { key: string; chain: string[] };
  root: string;
  rootPem: string;
  client: { key: string; cert: string };
};

const identity = createIdentity(
  IdentityKey.fromPem(w.server.key),
  w.server.chain.map((c) => parseCertificate(Buffer.from(c, 'base64'))),
);
const verifyPeer = certificateVerifier({ roots: [parseCertificate(Buffer.from(w.root, 'base64'))], role: 'gateway' });

// One TLS context for every connection, as a real client keeps: parsing the
// key per connection would make the baseline's initiator, not its responder,
// the bottleneck.
const tlsContext = w.kind === 'tls' ? tls.createSecureContext({ ca: w.rootPem, key: w.client.key, cert: w.client.cert, minVersion: 'TLSv1.3' }) : undefined;

async function one(): Promise<void> {
  if (w.kind === 'gatesock') {
    const c = await secureConnect(await tcpConnect({ host: '127.0.0.1', port: w.port }), { identity, verifyPeer, backend: w.backend });
    // Wait for the responder to finish (it closes) so each handshake is whole.
    await new Promise<void>((r) => {
      c.on('close', () => r());
      c.resume();
    });
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: w.port, secureContext: tlsContext, rejectUnauthorized: false, checkServerIdentity: () => undefined });
    s.on('secureConnect', () => s.resume());
    s.on('close', () => resolve());
    s.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
  });
}

let next = 0;
async function lane(): Promise<void> {
  while (next < w.count) {
    next++;
    await one();
  }
}
await Promise.all(Array.from({ length: w.concurrency }, lane));
