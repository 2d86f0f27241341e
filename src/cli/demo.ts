/**
 * `gatesock demo`: the main job on an embedded default, with no outside
 * service and nothing left behind. In one process, over loopback TCP, it
 * stands up a whole gateway system — a throwaway root CA, a controller (its
 * server database in memory) and two gateways — then a server that logs in
 * and keeps its server session, and a client that finds the server by its
 * PCID and opens connections to it through a gateway. Each connection runs
 * the end-to-end layer (the server proves the certificate whose hash is the
 * MSID the controller gave) and its bytes are echoed and verified.
 */
import { createHash } from 'node:crypto';
import { checkOption } from '../errors/check.js';
import { Controller, Gateway, MemoryServerStore, ServerEndpoint, relayConnect, type RelayConnection } from '../relay/index.js';
import {
  createIdentity,
  createRootCa,
  createServerIdentity,
  generateIdentityKey,
  issueCertificate,
  loadOrCreateServerIdentity,
  msidOf,
  type ByteStream,
  type CryptoBackendName,
  type Identity,
} from '../session/index.js';

/** Options of the demo, with the CLI's defaults. */
export interface DemoOptions {
  /** Bytes each connection sends and gets back. */
  bytes: number;
  /** Relayed connections opened to the server, at once. */
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
  const link = { backend };

  // The operator of the gateway system: a root CA, and certificates it signs.
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'gatesock demo root', validDays: 1, key: rootKey });
  const issue = (role: 'controller' | 'gateway', name: string): Identity => {
    const key = generateIdentityKey();
    return createIdentity(key, [issueCertificate({ role, commonName: name, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 })]);
  };
  const controller = await Controller.start({ identity: issue('controller', 'demo-controller'), roots: [root], store: new MemoryServerStore(), link });
  const gateways: Gateway[] = [];
  let server: ServerEndpoint | undefined;
  try {
    for (const n of [1, 2]) gateways.push(await Gateway.start({ identity: issue('gateway', `demo-gateway-${n}`), roots: [root], controller: controller.address, link }));
    log(`root CA        ${msidOf(root)}`);
    log(`controller     ${controller.address} (signed by the root; server database in memory)`);
    for (const [i, g] of gateways.entries()) log(`gateway ${i + 1}      ${g.msid} on ${g.address} (signed by the root)`);

    // The server: a key pair and a self-signed certificate made on first start; its MSID is the certificate's hash.
    const identity = options.dir ? await loadOrCreateServerIdentity(options.dir) : createServerIdentity();
    log(`server         ${identity.msid} (self-signed, ${options.dir ? `kept in ${options.dir}` : 'temporary'})`);
    server = new ServerEndpoint({ controller: controller.address, roots: [root], identity, link });
    server.on('connection', echo);
    await server.online();
    const pcid = server.pcid!;
    log(`  online       as PCID ${pcid}, server session on gateway ${server.gateway!.msid}`);

    // The client: nothing but the PCID and the root certificate.
    const t0 = performance.now();
    const first = await relayConnect(pcid, { controller: controller.address, roots: [root], link });
    log(`client         found ${pcid} and connected in ${(performance.now() - t0).toFixed(1)} ms (controller lookup, gateway session, end-to-end handshake)`);
    log(`  proven       the server behind the relay is ${first.info.peerMsid}${first.info.peerMsid === identity.msid ? '' : ' (UNEXPECTED)'}`);
    log(`ping           ${(await ping(first.stream)).toFixed(2)} ms round trip client → gateway → server → back`);
    first.stream.end();

    const t1 = performance.now();
    const results = await Promise.all(
      Array.from({ length: connections }, async (_, i) => roundTrip(await relayConnect(pcid, { controller: controller.address, roots: [root], link }), bytes, i)),
    );
    const seconds = (performance.now() - t1) / 1000;
    for (const [i, ok] of results.entries()) if (!ok) throw new Error(`connection ${i + 1}: bytes came back different`);
    log(`connections    ${connections} × ${formatBytes(bytes)} sent and echoed back, SHA-256 verified on each`);
    log(`throughput     ${((bytes * connections * 2) / seconds / 1e6).toFixed(0)} MB/s through the relay, encrypted end to end (both directions, one process)`);
  } finally {
    await server?.close();
    await Promise.all(gateways.map((g) => g.close()));
    await controller.close();
  }
  log('ok');
}

function echo(stream: ByteStream): void {
  stream.on('data', (d) => {
    if (!stream.write(d)) {
      stream.pause();
      stream.once('drain', () => stream.resume());
    }
  });
  stream.on('end', () => stream.end());
  stream.resume();
}

/** One 8-byte round trip (after a warm-up one), in ms. */
function ping(stream: ByteStream): Promise<number> {
  return new Promise((resolve) => {
    let t0 = 0;
    let trips = 0;
    stream.on('data', () => {
      if (++trips === 2) return resolve(performance.now() - t0);
      t0 = performance.now();
      stream.write(new Uint8Array(8));
    });
    stream.resume();
    stream.write(new Uint8Array(8));
  });
}

/** Send `bytes` of a per-connection pattern, read them back, compare digests. */
function roundTrip({ stream }: RelayConnection, bytes: number, index: number): Promise<boolean> {
  const block = new Uint8Array(64 * 1024).map((_, i) => (i * 31 + index * 7) & 0xff);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  return new Promise((resolve, reject) => {
    stream.on('data', (d) => got.update(d));
    stream.on('end', () => resolve(sent.digest('hex') === got.digest('hex')));
    stream.on('close', (e) => e && reject(e));
    stream.resume();
    let off = 0;
    const pump = (): void => {
      while (off < bytes) {
        const piece = block.subarray(0, Math.min(block.length, bytes - off));
        sent.update(piece);
        off += piece.length;
        if (!stream.write(piece)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
  });
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB` : `${n} B`;
}
