/**
 * Shared fixtures of the session figures: a small gateway-system PKI, and
 * loopback servers that speak the secure session — a multiplexed session on a
 * Noise channel over TCP (an echo, and a relay that decrypts and forwards each
 * connection to a plain TCP port) — so a figure can push bytes or ping-pong
 * through gatesock exactly as through the plain baselines.
 */
import {
  certificateToPem,
  certificateVerifier,
  createIdentity,
  createRootCa,
  createServerIdentity,
  generateIdentityKey,
  issueCertificate,
  secureAccept,
  secureConnect,
  MuxSession,
  type CryptoBackendName,
  type Identity,
} from '../src/session/index.js';
import { tcpConnect, tcpListen, type ByteStream } from '../src/transport/index.js';
import type { BenchStream, LoopbackServer } from './baselines.js';

const HOST = '127.0.0.1';

export interface BenchPki {
  readonly rootPem: string;
  readonly root: ReturnType<typeof createRootCa>;
  /** The responder's identity (a gateway certificate under the root). */
  readonly gateway: Identity;
  /** The initiator's identity (a self-signed server certificate, as a server logging in). */
  readonly server: Identity;
  /** PEM material of the gateway and a controller, for the TLS baseline. */
  readonly pem: { gatewayKey: string; gatewayCert: string; clientKey: string; clientCert: string };
}

export function makePki(): BenchPki {
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'bench root', validDays: 30, key: rootKey });
  const issue = (role: 'gateway' | 'controller', cn: string) => {
    const key = generateIdentityKey();
    const cert = issueCertificate({ role, commonName: cn, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 30 });
    return { key, cert, identity: createIdentity(key, [cert]) };
  };
  const gw = issue('gateway', 'bench-gateway');
  const client = issue('controller', 'bench-client');
  return {
    root,
    rootPem: certificateToPem(root),
    gateway: gw.identity,
    server: createServerIdentity(),
    pem: { gatewayKey: gw.key.toPem(), gatewayCert: certificateToPem(gw.cert), clientKey: client.key.toPem(), clientCert: certificateToPem(client.cert) },
  };
}

// One verifier (and so one verification cache) per PKI and side, as a
// long-running gateway or server has.
const verifiers = new WeakMap<BenchPki, { gateway: ReturnType<typeof certificateVerifier>; server: ReturnType<typeof certificateVerifier> }>();
function verifiersOf(pki: BenchPki) {
  let v = verifiers.get(pki);
  if (!v) {
    v = {
      gateway: certificateVerifier({ role: 'server', allowSelfSignedServer: true }),
      server: certificateVerifier({ roots: [pki.root], role: 'gateway' }),
    };
    verifiers.set(pki, v);
  }
  return v;
}

/** The responder's secure-channel options: a gateway accepting servers. */
export function gatewayOptions(pki: BenchPki, backend: CryptoBackendName) {
  return { identity: pki.gateway, verifyPeer: verifiersOf(pki).gateway, backend };
}

/** The initiator's options: a server that trusts the root and wants a gateway. */
export function serverOptions(pki: BenchPki, backend: CryptoBackendName) {
  return { identity: pki.server, verifyPeer: verifiersOf(pki).server, backend };
}

/**
 * Open a secure session to `port` as the initiator — a Noise channel over
 * TCP with a multiplexed session on it — and one connection on that session.
 * Destroying the connection ends the session.
 */
export async function secureDial(pki: BenchPki, port: number, backend: CryptoBackendName): Promise<BenchStream> {
  const channel = await secureConnect(await tcpConnect({ host: HOST, port }), serverOptions(pki, backend));
  const session = new MuxSession(channel, { role: 'initiator' });
  const conn = session.open();
  conn.on('close', () => session.destroy());
  return conn;
}

/** Accept secure sessions on a free port and hand each incoming connection to `onConnection`. */
async function secureListen(pki: BenchPki, backend: CryptoBackendName, onConnection: (c: ByteStream) => void): Promise<LoopbackServer> {
  const open = new Set<ByteStream>();
  const listener = await tcpListen({ host: HOST, port: 0 }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    secureAccept(s, gatewayOptions(pki, backend)).then(
      (channel) => new MuxSession(channel, { role: 'responder' }).on('connection', (conn) => onConnection(conn)),
      () => undefined,
    );
  });
  return {
    port: listener.port,
    async close() {
      for (const s of open) s.destroy();
      await listener.close();
    },
  };
}

/** A secure echo: every byte that arrives on a connection goes back on it. */
export function startSecureEcho(pki: BenchPki, backend: CryptoBackendName): Promise<LoopbackServer> {
  return secureListen(pki, backend, (c) => {
    c.on('data', (d) => c.write(d));
    c.on('end', () => c.end());
    c.resume();
  });
}

/** A secure relay: decrypt and forward to a plain TCP port, with backpressure both ways. */
export function startSecureRelay(pki: BenchPki, backend: CryptoBackendName, targetPort: number): Promise<LoopbackServer> {
  return secureListen(pki, backend, (c) => {
    void tcpConnect({ host: HOST, port: targetPort }).then((t) => pipeBoth(c, t));
  });
}

function pipeOne(from: ByteStream, to: ByteStream): void {
  from.on('data', (d) => {
    if (!to.write(d)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
  from.on('close', (e) => e && to.destroy(e));
  from.resume();
}

function pipeBoth(a: ByteStream, b: ByteStream): void {
  pipeOne(a, b);
  pipeOne(b, a);
}
