/**
 * Transport figures. For now the plain TCP relay itself, against raw loopback
 * TCP: what one extra hop through two piped sockets costs on this machine.
 * It calibrates the baseline that the gateway relay's figures are measured
 * against (DESIGN.md, "How it is checked").
 */
import {
  checkPath,
  pingPong,
  pushThrough,
  startPlainRelay,
  startTcpEcho,
  startTcpSink,
  usingServers as using,
} from './baselines.js';
import { defineFigures, sideBySide } from './harness.js';

const MiB = 1 << 20;
/** Timed bytes per path: ROUNDS transfers of ROUND_BYTES each. */
const ROUNDS = 4;
const ROUND_BYTES = 64 * MiB;
const CHUNK = 64 * 1024;
const RTT_ROUNDS = 2000;


export const figures = defineFigures([
  {
    name: `tcp-relay-pipe throughput ${(ROUNDS * ROUND_BYTES) / MiB}MiB/${CHUNK / 1024}KiB`,
    unit: 'MB/s',
    // Sender, relay and sink share one thread, so the relay's extra socket
    // pair costs about a third of the direct path's CPU per byte or more.
    target: { better: 'higher', ratio: 0.3 },
    async run() {
      const sink = await startTcpSink();
      const relay = await startPlainRelay(sink.port);
      return using([relay, sink], async () => {
        // Both paths must deliver the same bytes before either is timed.
        const direct = await checkPath(sink.port, sink);
        const relayed = await checkPath(relay.port, sink);
        if (direct !== relayed) throw new Error('relay and direct paths delivered different bytes');
        const m = await sideBySide(
          ROUNDS,
          async () => (await pushThrough(relay.port, sink, ROUND_BYTES, { chunk: CHUNK })).mbPerSecond,
          async () => (await pushThrough(sink.port, sink, ROUND_BYTES, { chunk: CHUNK })).mbPerSecond,
        );
        return { ...m, baselineName: 'raw-loopback-tcp' };
      });
    },
  },
  {
    name: `tcp-relay-pipe ping-pong rtt 8B x ${RTT_ROUNDS}`,
    unit: 'µs',
    // One more hop, two more socket writes and reads per round trip.
    target: { better: 'lower', ratio: 3 },
    async run() {
      const echo = await startTcpEcho();
      const relay = await startPlainRelay(echo.port);
      return using([relay, echo], async () => {
        // Two alternating halves per path: RTT_ROUNDS timed round trips each.
        const m = await sideBySide(
          2,
          async () => (await pingPong(relay.port, RTT_ROUNDS / 2)).medianMicros,
          async () => (await pingPong(echo.port, RTT_ROUNDS / 2)).medianMicros,
        );
        return { ...m, baselineName: 'raw-loopback-tcp' };
      });
    },
  },
]);
