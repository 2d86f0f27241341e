/**
 * The seed's asynchronous style (paper §4.5.6–4.5.8): one loop serves many
 * sockets with `recvAsync` / `sendAsync` and waits on readiness events, here
 * an echo server over 50 connections, on each transport, either with one
 * event shared by all sockets (`replaceEvent`) or with one event per socket
 * (`waitForMultiple`). Each client checks its echo by SHA-256.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SockEvent, SockIo, waitForMultiple, WOULD_BLOCK } from '../../src/socket/index.js';
import { randomBytes, recvAll, sendAll, sha256, TRANSPORTS, type SockPair } from './pairs.js';

const CONNECTIONS = 50;
/** A wait this long with nothing happening means the loop lost a wake-up. */
const STALL_MS = 10_000;

/** One connection's state in the echo loop. */
interface Served {
  sock: SockIo;
  pending: Uint8Array[];
  ended: boolean;
  done: boolean;
}

/**
 * Move what can move on one socket without waiting: flush pending echo
 * bytes, and read more only once they are flushed (so a client that does
 * not read its echo slows only itself). Returns true when the connection is
 * finished.
 */
function service(s: Served): boolean {
  for (;;) {
    while (s.pending.length > 0) {
      const head = s.pending[0]!;
      const n = s.sock.sendAsync(head);
      if (n === WOULD_BLOCK) return false; // the event is set when room returns
      if (n < head.length) s.pending[0] = head.subarray(n);
      else s.pending.shift();
    }
    if (s.ended) break;
    const data = s.sock.recvAsync(4096);
    if (data === WOULD_BLOCK) return false; // the event is set when data arrives
    if (data.length === 0) s.ended = true;
    else s.pending.push(data);
  }
  if (!s.done) {
    s.done = true;
    s.sock.end();
  }
  return true;
}

/** Serve until every connection ended and its echo was flushed; returns the number of waits. */
async function echoLoop(socks: SockIo[], mode: 'shared' | 'multiple'): Promise<number> {
  const served: Served[] = socks.map((sock) => ({ sock, pending: [], ended: false, done: false }));
  let remaining = served.length;
  let waits = 0;
  if (mode === 'shared') {
    const shared = new SockEvent();
    for (const s of socks) s.replaceEvent(shared);
    while (remaining > 0) {
      for (const s of served) if (!s.done && service(s)) remaining--;
      if (remaining === 0) break;
      waits++;
      if (!(await shared.wait(STALL_MS))) throw new Error(`echo loop stalled with ${remaining} connections open`);
    }
  } else {
    const events = socks.map((s) => s.getEvent());
    while (remaining > 0) {
      waits++;
      const i = await waitForMultiple(events, STALL_MS);
      if (i < 0) throw new Error(`echo loop stalled with ${remaining} connections open`);
      const s = served[i]!;
      if (!s.done && service(s)) remaining--;
    }
  }
  return waits;
}

for (const [name, makePair] of TRANSPORTS) {
  describe(`one loop serving ${CONNECTIONS} sockets over ${name}`, () => {
    let pairs: SockPair[] = [];
    afterEach(async () => {
      await Promise.all(pairs.map((p) => p.cleanup()));
      pairs = [];
    });

    for (const mode of ['shared', 'multiple'] as const) {
      it(`echoes every connection intact (${mode === 'shared' ? 'one shared event via replaceEvent' : 'waitForMultiple over one event each'})`, async () => {
        // A small in-memory link buffer makes the server's echo writes wait for
        // room, so the loop depends on writable events as well as readable ones.
        pairs = await Promise.all(
          Array.from({ length: CONNECTIONS }, () => makePair({ sock: { recvHighWaterMark: 16 * 1024 }, memory: { highWaterMark: 4096 } })),
        );
        const server = echoLoop(
          pairs.map((p) => p.b),
          mode,
        );
        const clients = pairs.map(async ({ a }, i) => {
          const data = randomBytes(16 * 1024 + i * 2048, 100 + i);
          const [echoed] = await Promise.all([recvAll(a, 8192, i), sendAll(a, data, 3000, i).then(() => a.end())]);
          expect(sha256(echoed), `connection ${i}`).toBe(sha256([data]));
        });
        await Promise.all([server, ...clients]);
        const waits = await server;
        // The loop waited rather than spun: at most a few wake-ups per chunk moved.
        expect(waits).toBeGreaterThan(0);
        for (const p of pairs) expect((await p.a.recv()).length).toBe(0);
      });
    }

    it('a client that stops reading its echo stalls only its own connection', async () => {
      pairs = await Promise.all(Array.from({ length: 5 }, () => makePair({ sock: { recvHighWaterMark: 16 * 1024 } })));
      const server = echoLoop(
        pairs.map((p) => p.b),
        'shared',
      );
      server.catch(() => {}); // it never finishes here: the stalled connection stays open
      const stuck = pairs[0]!.a;
      const big = randomBytes(64 << 20, 7);
      // The stuck client sends without reading; its sends soon wait.
      let stuckSent = 0;
      const stuckSending = (async () => {
        while (stuckSent < big.length) stuckSent += await stuck.send(big.subarray(stuckSent, stuckSent + 65536));
      })();
      stuckSending.catch(() => {});
      // Meanwhile the other four complete their echoes.
      await Promise.all(
        pairs.slice(1).map(async ({ a }, i) => {
          const data = randomBytes(256 * 1024, 200 + i);
          const [echoed] = await Promise.all([recvAll(a), sendAll(a, data, 10_000, i).then(() => a.end())]);
          expect(sha256(echoed)).toBe(sha256([data]));
        }),
      );
      expect(stuckSent).toBeLessThan(big.length);
      await stuck.disconnect();
    });
  });
}
