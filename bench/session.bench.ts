/**
 * Session figures (issue 2): secure-channel throughput and round-trip time
 * against plain loopback TCP, and handshakes per second against Node's own
 * TLS 1.3, each backend, all measured side by side in this run.
 */
import { checkPath, pingPong, pushThrough, startTcpEcho, startTcpSink, usingServers as using, type BenchStream } from './baselines.js';
import { defineFigures, sideBySide } from './harness.js';
import { makePki, secureDial, serverOptions, startSecureEcho, type BenchPki } from './fixtures.js';
import { startFarSide } from './relay-thread.js';
import { runHandshakes } from './handshakes.js';
import { MuxSession, secureConnect, type CryptoBackendName } from '../src/session/index.js';
import { tcpConnect } from '../src/transport/index.js';

const MiB = 1 << 20;
const CHUNK = 256 * 1024;
const RTT_ROUNDS = 2000;

/**
 * The seal worker of `parallelSeal`, from src/ through the same type-stripping
 * hooks as the rest of the bench (a worker registers them itself), so the
 * figure measures the working tree like every other one, with no build step.
 */
const SEAL_WORKER = new URL(
  `data:text/javascript,${encodeURIComponent(
    `import ${JSON.stringify(new URL('../scripts/ts-register.mjs', import.meta.url).href)};\n` +
      `await import(${JSON.stringify(new URL('../src/session/secure/seal-worker.ts', import.meta.url).href)});`,
  )}`,
);

/**
 * {@link secureDial} with the pure-TS backend sealing in parallel
 * (`parallelSeal`: the default pool, one worker per core beyond this
 * thread's, and this thread sealing too).
 */
async function secureDialParallel(pki: BenchPki, port: number): Promise<BenchStream> {
  const options = { ...serverOptions(pki, 'noble'), parallelSeal: { workerUrl: SEAL_WORKER } };
  const channel = await secureConnect(await tcpConnect({ host: '127.0.0.1', port }), options);
  const session = new MuxSession(channel, { role: 'initiator' });
  const conn = session.open();
  conn.on('close', () => session.destroy());
  return conn;
}

/**
 * `client` is the backend of the sending end (the SDK), `gateway` that of the
 * relay end. Both native is a Node-to-Node deployment; a pure-TS client
 * against a native gateway is the portable SDK against a Node gateway; both
 * pure TS bounds what the pure path alone can do.
 */
function throughput(client: 'native' | 'noble' | 'noble-parallel', gateway: 'native' | 'noble', totalMiB: number, ratio: number) {
  // Many short rounds, ours and the baseline alternating, medians of each:
  // the plain pipe alone ranges from about 600 to 1,500 MB/s between 128 MiB
  // transfers on this 2-core machine (scheduling of its two threads), so a
  // pair measured seconds apart sees the same conditions more often than one
  // measured a minute apart. Same total bytes as before.
  const rounds = 16;
  const bytes = (totalMiB / rounds) * MiB;
  const backend = client === 'noble-parallel' ? 'noble' : client;
  // `noble-parallel`: the sender seals with noble on worker threads and this
  // one (parallelSeal); the far side, which only opens, is plain noble or native.
  const label = client === gateway || (client === 'noble-parallel' && gateway === 'noble') ? client : `${client}→${gateway}`;
  return {
    name: `secure-session throughput ${label} ${totalMiB}MiB/${CHUNK / 1024}KiB`,
    unit: 'MB/s',
    // The far side (relay hop and sink) runs in its own thread, the sender
    // here, for ours and the baseline alike (relay-thread.ts). Baseline:
    // sender → plain relay pipe → sink. Ours: sender → client end of the
    // secure session (encrypt) → secure relay (decrypt, demultiplex, forward)
    // → sink.
    target: { better: 'higher' as const, ratio },
    async run() {
      const pki = makePki();
      const plain = await startFarSide('plain');
      const secure = await startFarSide('secure', { backend: gateway, pki });
      return using([secure, plain], async () => {
        const entry = () => (client === 'noble-parallel' ? secureDialParallel(pki, secure.port) : secureDial(pki, secure.port, backend));
        // Check before timing: both paths deliver the same bytes.
        if ((await checkPath(entry, secure.sink)) !== (await checkPath(plain.port, plain.sink))) {
          throw new Error('secure and plain paths delivered different bytes');
        }
        // Warm both paths up untimed: the JIT compiles the session's data
        // path over the first hundred megabytes or so (measured here: 230,
        // 410, 550, 630 MB/s on four fresh 256 MiB transfers).
        for (let i = 0; i < 3; i++) {
          await pushThrough(entry, secure.sink, 64 * MiB, { chunk: CHUNK, timeoutMs: 120_000 });
          await pushThrough(plain.port, plain.sink, 64 * MiB, { chunk: CHUNK });
        }
        const m = await sideBySide(
          rounds,
          async () => (await pushThrough(entry, secure.sink, bytes, { chunk: CHUNK, timeoutMs: 120_000 })).mbPerSecond,
          async () => (await pushThrough(plain.port, plain.sink, bytes, { chunk: CHUNK })).mbPerSecond,
        );
        return { ...m, baselineName: 'plain-tcp-relay-pipe' };
      });
    },
  };
}

function handshakes(backend: CryptoBackendName, count: number, ours: number) {
  return {
    name: `secure-session handshakes ${backend} XX+x509 x${count}`,
    unit: 'handshakes/s',
    // The responder (a gateway) runs on this thread, one core; initiators run
    // in a worker on the other core. Certificate checks include chain
    // verification through the bounded cache (a known peer) and the Ed25519
    // check of the static-key signature on every handshake.
    target: { better: 'higher' as const, ours },
    async run() {
      const pki = makePki();
      // Warm both paths up (JIT, caches, the worker's module load) untimed.
      await runHandshakes({ kind: 'gatesock', backend, count: Math.ceil(count / 10), pki });
      await runHandshakes({ kind: 'tls', backend, count: 100, pki });
      const m = await sideBySide(
        4,
        () => runHandshakes({ kind: 'gatesock', backend, count, pki }),
        () => runHandshakes({ kind: 'tls', backend, count: Math.max(count, 500), pki }),
      );
      return { ...m, baselineName: 'node-tls1.3-mutual' };
    },
  };
}

export const figures = defineFigures([
  throughput('native', 'native', 1024, 0.5),
  throughput('noble', 'native', 1024, 0.2),
  throughput('noble', 'noble', 1024, 0.2),
  throughput('noble-parallel', 'native', 1024, 0.2),
  throughput('noble-parallel', 'noble', 1024, 0.2),
  handshakes('native', 3000, 2000),
  handshakes('noble', 200, 150),
  ...(['native', 'noble'] as const).map((backend) => ({
    name: `secure-session ping-pong rtt ${backend} 8B x ${RTT_ROUNDS}`,
    unit: 'µs',
    // Added round-trip time of the secure session, against bare loopback TCP.
    // The issue asks for the figure, not a bound; ours is what one round trip
    // should cost: four records sealed or opened (5–8 µs each here, either
    // backend, at 8 bytes), the session's framing on both ends, and the same
    // two kernel hops as the baseline — about 40 µs over a ~16 µs baseline.
    target: { better: 'lower' as const, ratio: 4 },
    async run() {
      const pki = makePki();
      const echo = await startTcpEcho();
      const secure = await startSecureEcho(pki, backend);
      return using([secure, echo], async () => {
        const m = await sideBySide(
          2,
          async () => (await pingPong(() => secureDial(pki, secure.port, backend), RTT_ROUNDS / 2)).medianMicros,
          async () => (await pingPong(echo.port, RTT_ROUNDS / 2)).medianMicros,
        );
        return { ...m, baselineName: 'raw-loopback-tcp' };
      });
    },
  })),
]);
