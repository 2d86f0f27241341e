/**
 * One process of the relay figures and experiments (started by
 * bench/relay-procs.ts with the bench's TypeScript hooks). It does nothing until the parent sends a
 * command over IPC (`{ id, command, args }`) and answers each with
 * `{ id, ok, value | error }`. A process may hold several roles (a controller
 * and a gateway, say); it exits when the parent goes away.
 *
 * Commands: ping, controller, gateway, gateways, cpu, app, plainRelay,
 * drain, servers, serversStatus, closeServers, memory, idleListen, idleDial,
 * loginLoad, tlsListen, tlsLoad.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  Controller,
  Gateway,
  MemoryServerStore,
  ServerEndpoint,
  leastSessionsStrategy,
  loadPki,
  weightedLoadStrategy,
  type LoadedPki,
} from '../src/relay/index.js';
import { dialLink } from '../src/relay/link.js';
import { METHOD } from '../src/relay/messages.js';
import { certificateVerifier, type Identity } from '../src/session/index.js';
import { HOST, listenApp, listenPlainRelay, listenTcp, serveApp, type AppStream } from './relay-app.js';
import { derToPem, serverIdentities } from './relay-procs.js';

// BENCH_RELAY_MUX='{"connectionHighWaterMark":4194304}': session tunables for a diagnosis run.
const LINK = { backend: 'native' as const, ...(process.env.BENCH_RELAY_MUX ? { mux: JSON.parse(process.env.BENCH_RELAY_MUX) as object } : {}) };
const pkis = new Map<string, Promise<LoadedPki>>();
const pkiOf = (dir: string): Promise<LoadedPki> => {
  let p = pkis.get(dir);
  if (!p) pkis.set(dir, (p = loadPki(dir)));
  return p;
};

let controller: Controller | undefined;
const gateways: Gateway[] = [];
const servers: ServerEndpoint[] = [];
const held: net.Socket[] = [];

type Handler = (args: any) => Promise<unknown> | unknown;

const commands: Record<string, Handler> = {
  ping: () => process.pid,

  /** A controller on a memory store; `strategy`: 'least-sessions' (default) or 'weighted'. */
  async controller(a: { pki: string; t1?: number; t2?: number; strategy?: string }) {
    const pki = await pkiOf(a.pki);
    controller = await Controller.start({
      identity: pki.controller,
      roots: [pki.root],
      store: new MemoryServerStore(),
      keepaliveIntervalMs: a.t1,
      gatewayTimeoutMs: a.t2,
      strategy: a.strategy === "weighted" ? weightedLoadStrategy() : leastSessionsStrategy,
      link: LINK,
    });
    return { address: controller.address };
  },

  /** A gateway (`name` from the PKI folder) registered with `controller`. */
  async gateway(a: { pki: string; name: string; controller: string; capacity?: number }) {
    const pki = await pkiOf(a.pki);
    const g = await Gateway.start({
      identity: pki.gateways.get(a.name)!,
      roots: [pki.root],
      controller: a.controller,
      capacity: a.capacity,
      reconnect: { firstMs: 50, maxMs: 500 },
      link: LINK,
    });
    gateways.push(g);
    return { address: g.address, msid: g.msid };
  },

  /** Start draining every gateway of this process (answers at once). */
  drain: () => {
    for (const g of gateways) void g.drain();
    return true;
  },

  /** The controller's view of its gateways. */
  gateways: () => controller!.gateways().map((g) => ({ msid: g.msid, address: g.address, capacity: g.capacity, servers: g.servers, sessions: g.sessions })),

  /** CPU time of this process (µs) and the controller's login count. */
  cpu: () => ({ ...process.cpuUsage(), logins: controller?.loginCount ?? 0, gatewaySessions: gateways.reduce((n, g) => n + g.serverCount, 0) }),

  /** The app over plain TCP. */
  app: async () => ({ port: (await listenApp()).port }),

  /** A plain `net` pipe relay to `target`. */
  plainRelay: async (a: { target: number }) => ({ port: (await listenPlainRelay(a.target)).port }),

  /**
   * Start `count` relay servers (cached identities from `from`) serving the
   * app; at most `concurrency` (0: no limit) are coming online at once.
   * Resolves when all are online, with their PCIDs and the time it took
   * (identity loading excluded).
   */
  async servers(a: { pki: string; controller: string; from: number; count: number; concurrency?: number; endToEnd?: boolean; passThrough?: boolean; timeoutMs?: number }) {
    const pki = await pkiOf(a.pki);
    const ids = serverIdentities(a.from, a.count);
    const t0 = performance.now();
    const limit = a.concurrency && a.concurrency > 0 ? a.concurrency : ids.length;
    let next = 0;
    const started: ServerEndpoint[] = [];
    const startOne = (identity: Identity): Promise<void> => {
      const s = new ServerEndpoint({ controller: a.controller, roots: [pki.root], identity, endToEnd: a.endToEnd ?? true, passThrough: a.passThrough, link: LINK });
      s.on('connection', (stream) => serveApp(stream as unknown as AppStream));
      servers.push(s);
      started.push(s);
      return s.online();
    };
    const lane = async (): Promise<void> => {
      while (next < ids.length) await startOne(ids[next++]!);
    };
    const all = Promise.all(Array.from({ length: Math.min(limit, ids.length) }, lane));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          const online = started.filter((s) => s.isOnline).length;
          reject(new Error(`only ${online} of ${a.count} servers online after ${a.timeoutMs ?? 240_000} ms`));
        }, a.timeoutMs ?? 240_000);
      }),
    ]).finally(() => clearTimeout(timer));
    return { pcids: started.map((s) => s.pcid!), ms: performance.now() - t0 };
  },

  /** How many of this process's servers are online, and on which gateway (by MSID). */
  serversStatus: () => {
    const byGateway: Record<string, number> = {};
    let online = 0;
    for (const s of servers) {
      if (!s.isOnline) continue;
      online++;
      const g = s.gateway!.msid;
      byGateway[g] = (byGateway[g] ?? 0) + 1;
    }
    return { total: servers.length, online, byGateway };
  },

  closeServers: async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    return true;
  },

  /** Memory after a full GC (run with --expose-gc), in bytes. */
  async memory() {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc');
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
  },

  /** A plain `net` server that accepts connections and keeps them, idle. */
  idleListen: async () => ({ port: (await listenTcp((s) => s.on('error', () => s.destroy()))).port }),

  /** Open `count` idle TCP connections to `port` (at most 200 connecting at once) and keep them. */
  async idleDial(a: { port: number; count: number }) {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next++ < a.count) {
        held.push(
          await new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: HOST, port: a.port }, () => resolve(s));
            s.once('error', reject);
          }),
        );
      }
    };
    await Promise.all(Array.from({ length: 200 }, lane));
    return held.length;
  },

  /**
   * Server logins against `controller`: `logins` of them, `concurrency` in
   * flight, cycling through `pool` cached identities from `from`. Each is a
   * fresh link (TCP, handshake with certificates) and one login request.
   */
  async loginLoad(a: { pki: string; controller: string; from: number; pool: number; logins: number; concurrency: number; timeoutMs?: number }) {
    const pki = await pkiOf(a.pki);
    const ids = serverIdentities(a.from, a.pool);
    const verify = certificateVerifier({ roots: [pki.root], role: 'controller', crypto: 'native' });
    let next = 0;
    let ok = 0;
    const errors = new Map<string, number>();
    const deadline = performance.now() + (a.timeoutMs ?? 60_000);
    const t0 = performance.now();
    const lane = async (): Promise<void> => {
      while (next < a.logins && performance.now() < deadline) {
        const identity = ids[next++ % ids.length]!;
        try {
          const link = await dialLink(a.controller, identity, verify, LINK);
          try {
            const reply = (await link.rpc.request(METHOD.login, {})) as { msid?: string };
            if (reply.msid !== identity.msid) throw new Error('login reply for another MSID');
            ok++;
          } finally {
            link.session.destroy();
          }
        } catch (e) {
          const code = (e as { code?: string }).code ?? (e as Error).message;
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: a.concurrency }, lane));
    return { ok, failed: Object.fromEntries(errors), seconds: (performance.now() - t0) / 1000 };
  },

  /**
   * The login baseline's server: Node TLS 1.3 with client certificates, the
   * controller's key and certificate; per connection it reads one request
   * line and answers one line, then closes.
   */
  async tlsListen(a: { pki: string }) {
    const pki = await pkiOf(a.pki);
    const files = pki.layout.controller;
    const server = tls.createServer(
      {
        key: readFileSync(files.keyPath),
        cert: readFileSync(files.certificatePath),
        requestCert: true,
        // Server certificates are self-signed: as our controller, accept any and look at it.
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      },
      (socket) => {
        socket.on('error', () => socket.destroy());
        const peer = socket.getPeerCertificate();
        let line = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          line += d;
          if (!line.includes('\n')) return;
          const req = JSON.parse(line) as { method: string };
          socket.end(JSON.stringify({ ok: req.method === 'login', peer: peer.fingerprint256 }) + '\n');
        });
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, HOST, 4096, () => r()));
    return { port: (server.address() as net.AddressInfo).port };
  },

  /** The baseline's load: like loginLoad, over TLS 1.3 with each identity's key and certificate. */
  async tlsLoad(a: { pki: string; port: number; from: number; pool: number; logins: number; concurrency: number; timeoutMs?: number }) {
    const pki = await pkiOf(a.pki);
    const ca = readFileSync(pki.layout.root.certificatePath);
    const ids = serverIdentities(a.from, a.pool).map((id) => ({ key: id.key.toPem(), cert: derToPem(id.certificateChain[0]!) }));
    let next = 0;
    let ok = 0;
    const errors = new Map<string, number>();
    const deadline = performance.now() + (a.timeoutMs ?? 60_000);
    const t0 = performance.now();
    const one = (id: { key: string; cert: string }): Promise<void> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: HOST, port: a.port, key: id.key, cert: id.cert, ca, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined, rejectUnauthorized: false }, () => {
          if (!s.getPeerCertificate().fingerprint256) return reject(new Error('no server certificate'));
          s.write('{"method":"login"}\n');
        });
        let reply = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (reply += d));
        s.on('end', () => {
          s.destroy();
          const r = reply ? (JSON.parse(reply) as { ok: boolean; peer?: string }) : undefined;
          if (r?.ok && r.peer) resolve();
          else reject(new Error('bad reply'));
        });
        s.on('error', reject);
      });
    const lane = async (): Promise<void> => {
      while (next < a.logins && performance.now() < deadline) {
        try {
          await one(ids[next++ % ids.length]!);
          ok++;
        } catch (e) {
          const m = (e as Error).message;
          errors.set(m, (errors.get(m) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: a.concurrency }, lane));
    return { ok, failed: Object.fromEntries(errors), seconds: (performance.now() - t0) / 1000 };
  },
};

process.on('message', (m: { id: number; command: string; args: unknown }) => {
  const handler = commands[m.command];
  Promise.resolve()
    .then(() => {
      if (!handler) throw new Error(`unknown command ${m.command}`);
      return handler(m.args);
    })
    .then(
      (value) => process.send!({ id: m.id, ok: true, value }),
      (e: unknown) => process.send!({ id: m.id, ok: false, error: e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e) }),
    );
});
process.on('disconnect', () => process.exit(0));
