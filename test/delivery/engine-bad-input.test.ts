/**
 * Engine-level bad input: a host on the simulated network injects junk,
 * another update's packets (foreign file ID), replayed genuine packets
 * (duplicates) and tampered copies (forged) into a running transfer, and
 * junk to the sender. Every kind is counted and ignored, and every receiver
 * still ends with the exact file.
 */
import { afterEach, expect, it } from 'vitest';
import { SIM_CONTROL, SIM_DATA, SIM_PORT, runSimUpdate, simFile, simKey, tempDirs } from '../../bench/multicast-sim-run.js';
import { decodeDatagram, prepareUpdate } from '../../src/delivery/update/wire/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
const tmp = (): string => dirs.make();

it('junk, foreign, duplicate and forged packets are counted and ignored; the transfer completes', () => {
  const dir = tmp();
  const injected = { junk: 0, foreign: 0, replayed: 0, forged: 0 };
  const r = runSimUpdate({
    receivers: 20,
    loss: 0.02,
    fileSize: 300_000,
    seed: 5,
    dir,
    setup(ctx) {
      const mallory = ctx.net.addHost({ name: 'mallory' }).bind(SIM_PORT, { reuseAddr: true, multicastLoopback: false });
      mallory.joinGroup(SIM_DATA);
      const group = { address: SIM_DATA, port: SIM_PORT };
      const other = prepareUpdate(simFile(50_000, 99), { name: 'other.bin', key: simKey(), fileId: 4242, version: 1 });
      let seen = 0;
      mallory.on('message', (data) => {
        let kind: string;
        try {
          kind = decodeDatagram(data).kind;
        } catch {
          return;
        }
        if ((kind !== 'data' && kind !== 'repair') || seen++ >= 60) return;
        mallory.send(data, group); // a replay: a duplicate at every receiver that has it
        injected.replayed++;
        const forged = data.slice();
        forged[forged.length - 1]! ^= 0x5a; // same header, one payload byte changed
        mallory.send(forged, group);
        injected.forged++;
      });
      const clock = ctx.net.clock;
      let ticks = 0;
      const tick = (): void => {
        if (++ticks > 60) return; // bounded: 60 rounds of injection, 5 ms apart
        const junk = new Uint8Array(40 + (ticks % 30));
        for (let i = 0; i < junk.length; i++) junk[i] = (i * 37 + ticks * 11) & 0xff;
        mallory.send(junk, group);
        mallory.send(junk, { address: 'sender', port: SIM_PORT });
        mallory.send(new TextEncoder().encode(`UDATE junk ${ticks}\n`), { address: SIM_CONTROL, port: SIM_PORT });
        injected.junk += 3;
        mallory.send(other.symbolPacket(0, ticks % 20), group);
        injected.foreign++;
        clock.setTimer(tick, 5);
      };
      clock.setTimer(tick, 1);
    },
  });
  expect(injected.replayed).toBeGreaterThan(0);
  expect(r.correct).toBe(20);
  for (const o of r.report.receivers) expect(o.completed && o.result === 'ok', o.host).toBe(true);
  const sum = { junk: 0, foreign: 0, duplicates: 0, forged: 0, refused: 0 };
  for (const rx of r.ctx.receivers) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += rx.counters[k];
  expect(sum.junk).toBeGreaterThan(0);
  expect(sum.foreign).toBeGreaterThan(0);
  expect(sum.duplicates).toBeGreaterThan(0);
  expect(sum.forged).toBeGreaterThan(0);
  expect(r.report.junk).toBeGreaterThan(0); // the junk sent to the sender
});
