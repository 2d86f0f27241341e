/**
 * `gatesock demo`: the main job on an embedded default, with no outside
 * service. Until the relay lands it shows the layer everything rides on, for
 * real, over loopback TCP: a throwaway gateway-system root CA and gateway
 * certificate, a server identity (made on first start, or loaded from
 * `--dir`), a Noise XX handshake in which each side checks the other's
 * certificate, and a multiplexed session carrying several connections whose
 * bytes are verified end to end.
 */
import { createHash } from 'node:crypto';
import {
  certificateVerifier,
  createIdentity,
  createRootCa,
  createServerIdentity,
  generateIdentityKey,
  issueCertificate,
  loadOrCreateServerIdentity,
  msidOf,
  MuxSession,
  parseCertificate,
  secureAccept,
  secureConnect,
  type CryptoBackendName,
  type Identity,
  type MuxConnection,
} from '../session/index.js';
import { tcpConnect, tcpListen, type ByteStream } from '../transport/index.js';
import { checkOption } from '../errors/check.js';

/** Options of the demo, with the CLI's defaults. */
export interface DemoOptions {
  /** Bytes each connection sends and gets back. */
  bytes: number;
  /** Connections opened over the one session. */
  connections: number;
  backend: CryptoBackendName;
  /** Keep the server identity here (created on first run); temporary when absent. */
  dir?: string;
  /** Where lines of output go. */
  log: (line: string) => void;
}

export const DEMO_DEFAULTS = Object.freeze({ bytes: 32 << 20, connections: 4, backend: 'auto' as CryptoBackendName });

export async function runDemo(options: DemoOptions): Promise<void> {
  const { bytes, connections, backend, log } = options;
  checkOption(Number.isInteger(bytes) && bytes > 0, '--bytes', 'must be a positive integer');
  checkOption(Number.isInteger(connections) && connections >= 1 && connections <= 1024, '--connections', 'must be 1..1024');

  // The gateway system's operator: a root CA and a gateway certificate under it.
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'gatesock demo root', validDays: 1, key: rootKey });
  const gatewayKey = generateIdentityKey();
  const gateway = createIdentity(gatewayKey, [
    issueCertificate({ role: 'gateway', commonName: 'demo-gateway', publicKey: gatewayKey.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 }),
  ]);
  // The server: a key pair and a self-signed certificate made on first start.
  const server: Identity = options.dir ? await loadOrCreateServerIdentity(options.dir) : createServerIdentity();
  const serverMsid = msidOf(parseCertificate(server.certificateChain[0]!));
  log(`root CA        ${msidOf(root)}`);
  log(`gateway        ${msidOf(parseCertificate(gateway.certificateChain[0]!))} (signed by the root)`);
  log(`server         ${serverMsid} (self-signed${options.dir ? `, kept in ${options.dir}` : ', temporary'})`);

  // The gateway side: accept, authenticate the server, echo every connection.
  let gatewaySession: MuxSession | undefined;
  let accept!: { resolve: (msid: string) => void; reject: (e: unknown) => void };
  const accepted = new Promise<string>((resolve, reject) => (accept = { resolve, reject }));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, (stream: ByteStream) => {
    secureAccept(stream, { identity: gateway, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }), backend }).then((channel) => {
      gatewaySession = new MuxSession(channel, { role: 'responder' });
      gatewaySession.on('connection', (conn: MuxConnection) => echo(conn));
      accept.resolve(channel.peer.msid);
    }, accept.reject);
  });
  const port = listener.port;

  const t0 = performance.now();
  const channel = await secureConnect(await tcpConnect({ host: '127.0.0.1', port }), {
    identity: server,
    verifyPeer: certificateVerifier({ roots: [root], role: 'gateway' }),
    backend,
  });
  const seenByGateway = await accepted;
  log(`handshake      Noise_XX_25519_ChaChaPoly_SHA256 in ${(performance.now() - t0).toFixed(1)} ms over 127.0.0.1:${port}`);
  log(`  server sees  ${channel.peer.role} ${channel.peer.msid}`);
  log(`  gateway sees ${seenByGateway === serverMsid ? 'server' : 'UNEXPECTED'} ${seenByGateway}`);

  const session = new MuxSession(channel, { role: 'initiator' });
  try {
    const rtt = await session.ping();
    log(`ping           ${rtt.toFixed(2)} ms round trip through the session`);
    const t1 = performance.now();
    const results = await Promise.all(Array.from({ length: connections }, (_, i) => roundTrip(session, bytes, i)));
    const seconds = (performance.now() - t1) / 1000;
    for (const [i, ok] of results.entries()) if (!ok) throw new Error(`connection ${i + 1}: bytes came back different`);
    const total = bytes * connections * 2;
    log(`connections    ${connections} × ${formatBytes(bytes)} sent and echoed back, SHA-256 verified on each`);
    log(`throughput     ${(total / seconds / 1e6).toFixed(0)} MB/s through the secure session (both directions, one process)`);
  } finally {
    await session.close().catch(() => undefined);
    gatewaySession?.destroy();
    await listener.close();
  }
  log('ok');
}

function echo(conn: MuxConnection): void {
  conn.on('data', (d) => {
    if (!conn.write(d)) {
      conn.pause();
      conn.once('drain', () => conn.resume());
    }
  });
  conn.on('end', () => conn.end());
  conn.resume();
}

/** Send `bytes` of a per-connection pattern, read them back, compare digests. */
function roundTrip(session: MuxSession, bytes: number, index: number): Promise<boolean> {
  const conn = session.open(new TextEncoder().encode(`demo-${index}`));
  const block = new Uint8Array(64 * 1024).map((_, i) => (i * 31 + index * 7) & 0xff);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  return new Promise((resolve, reject) => {
    conn.on('data', (d) => got.update(d));
    conn.on('end', () => resolve(sent.digest('hex') === got.digest('hex')));
    conn.on('close', (e) => e && reject(e));
    conn.resume();
    let off = 0;
    const pump = () => {
      while (off < bytes) {
        const piece = block.subarray(0, Math.min(block.length, bytes - off));
        sent.update(piece);
        off += piece.length;
        if (!conn.write(piece)) return void conn.once('drain', pump);
      }
      conn.end();
    };
    pump();
  });
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB` : `${n} B`;
}
