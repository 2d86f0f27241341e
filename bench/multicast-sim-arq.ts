/**
 * The benchmark's baseline: plain-retransmission ARQ multicast, no FEC, on
 * the same simulated network, seed and link models as our updater
 * (bench/multicast-sim-run.ts). Round 1 sends every source packet; after each
 * round every receiver that still lacks packets sends the list of what it
 * lacks (after a random back-off, no suppression), and the sender
 * retransmits every packet any receiver asked for, until every receiver has
 * them all. It uses the updater's own packets (data packets, round ends,
 * retransmission requests with their `lacking` lists, completion notices)
 * and the same rate limiter, so bytes compare like for like; it sends no
 * manifests and no announcement (the layout is given to its receivers), which
 * favours the baseline slightly.
 */
import { Pacer } from '../src/delivery/update/pacer.js';
import { decodeDatagram, encodePacket, splitRetransmissionRequest } from '../src/delivery/update/wire/index.js';
import { SimNetwork, type DatagramAddress, type DatagramSocket } from '../src/transport/index.js';
import { SIM_DATA, SIM_PORT, simFile, simKey, simLoss } from './multicast-sim-run.js';
import { prepareUpdate } from '../src/delivery/update/wire/index.js';

/** What one ARQ run measured. */
export interface ArqResult {
  readonly rounds: number;
  readonly bytesSent: number;
  readonly fileSize: number;
  /** Receivers that got every packet. */
  readonly complete: number;
}

/** Run the ARQ baseline with the same shape as `runSimUpdate`. */
export function runSimArq(o: { receivers: number; loss: number; bursty?: boolean; fileSize: number; seed: number; delayMs?: number; rateBps?: number }): ArqResult {
  const net = new SimNetwork({ seed: o.seed });
  const delay = o.delayMs ?? 5;
  const loss = simLoss(o.loss, o.bursty ?? false);
  const senderHost = net.addHost({ name: 'sender' });
  const hosts = [];
  for (let i = 0; i < o.receivers; i++) {
    const link = { delayMs: delay, jitterMs: 1, ...(loss ? { loss } : {}) };
    hosts.push(net.addHost({ name: `r${i}`, downlink: link, uplink: link }));
  }
  const file = simFile(o.fileSize, o.seed);
  // One block holding the whole file's source symbols' numbering; no repair is ever sent.
  const update = prepareUpdate(file, { name: 'update.bin', key: simKey(), fileId: 1, version: 1, repairSymbols: 1 });
  const l = update.layout;
  const group: DatagramAddress = { address: SIM_DATA, port: SIM_PORT };
  const grtt = 2 * delay + 2;
  const backoff = 2 * grtt;

  // Receivers: a bitmap of source symbols per block.
  let complete = 0;
  const total = l.sourceSymbolCount;
  for (let i = 0; i < o.receivers; i++) {
    const sock: DatagramSocket = hosts[i]!.bind(SIM_PORT);
    sock.joinGroup(SIM_DATA);
    const have = new Uint8Array(total);
    let count = 0;
    let timer: unknown;
    let rx = i * 7919 + o.seed;
    const rand = (): number => ((rx = (rx * 1103515245 + 12345) >>> 0) / 4294967296);
    sock.on('message', (data, from) => {
      const m = decodeDatagram(data);
      if (m.kind === 'data') {
        const idx = m.sbn * l.sourceSymbols + m.esi;
        if (have[idx] === 0) {
          have[idx] = 1;
          if (++count === total) {
            complete++;
            sock.send(encodePacket({ kind: 'notice', fileId: l.fileId, host: `r${i}`, requests: 0 }), from);
          }
        }
      } else if (m.kind === 'round' && count === total) {
        // The notice may have been lost: repeat it at every round end.
        sock.send(encodePacket({ kind: 'notice', fileId: l.fileId, host: `r${i}`, requests: 0 }), from);
      } else if (m.kind === 'round' && timer === undefined) {
        timer = sock.clock.setTimer(() => {
          timer = undefined;
          // One request per block lacking packets: the exact list (plain ARQ).
          for (let sbn = 0; sbn < l.blockCount; sbn++) {
            const esis: number[] = [];
            const kb = Math.min(l.sourceSymbols, total - sbn * l.sourceSymbols);
            for (let esi = 0; esi < kb; esi++) if (have[sbn * l.sourceSymbols + esi] === 0) esis.push(esi);
            if (esis.length === 0) continue;
            const req = { kind: 'request' as const, fileId: l.fileId, highestInOrder: null, round: m.round, needs: [], pages: [], lacking: { sbn, esis } };
            for (const part of splitRetransmissionRequest(req)) sock.send(encodePacket(part), { address: 'sender', port: SIM_PORT });
          }
        }, backoff * rand());
      }
    });
  }

  // Sender.
  const sock = senderHost.bind(SIM_PORT);
  const pacer = new Pacer(sock.clock, o.rateBps ?? 100_000_000, 16 * 1500);
  const asked = new Set<number>();
  const noticed = new Set<string>();
  let notices = 0;
  let rounds = 0;
  let marker = 0;
  sock.on('message', (data) => {
    const m = decodeDatagram(data);
    if (m.kind === 'notice' && !noticed.has(m.host)) {
      noticed.add(m.host);
      notices++;
    }
    else if (m.kind === 'request' && m.lacking) for (const esi of m.lacking.esis) asked.add(m.lacking.sbn * l.sourceSymbols + esi);
  });
  const send = (bytes: Uint8Array): void => pacer.push(bytes, () => sock.send(bytes, group));
  const endPass = (): void => {
    send(update.roundPacket(++marker, grtt, backoff));
    sock.clock.setTimer(() => {
      if (notices >= o.receivers) return;
      const next = [...asked].sort((a, b) => a - b);
      asked.clear();
      if (next.length > 0) pass(next);
      else endPass(); // requests lost: ask again
    }, backoff + 2 * grtt + 5);
  };
  const pass = (symbols: number[]): void => {
    rounds++;
    for (const idx of symbols) send(update.symbolPacket(Math.floor(idx / l.sourceSymbols), idx % l.sourceSymbols));
    pacer.whenDrained(endPass);
  };
  const all: number[] = [];
  for (let sbn = 0; sbn < l.blockCount; sbn++) {
    const kb = Math.min(l.sourceSymbols, total - sbn * l.sourceSymbols);
    for (let esi = 0; esi < kb; esi++) all.push(sbn * l.sourceSymbols + esi);
  }
  pass(all);
  net.run({ until: () => notices >= o.receivers, maxTimeMs: 600_000 });
  return { rounds, bytesSent: pacer.bytes, fileSize: o.fileSize, complete };
}
