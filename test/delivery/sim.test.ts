/**
 * The updater on the seeded simulated network with a thousand receivers:
 * every receiver ends with the exact file, its handler's status reaches the
 * sender in FIN, and the sender's report lists every one as completed.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimUpdate, tempDirs } from '../../bench/multicast-sim-run.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
const tmp = (): string => dirs.make();

function run(bursty: boolean) {
  const dir = tmp();
  return runSimUpdate({
    receivers: 1000,
    loss: 0.05,
    bursty,
    fileSize: 128 * 1024,
    seed: bursty ? 11 : 7,
    dir,
    handler: (file) => `ok applied ${fs.statSync(file).size}`,
  });
}

it('GF(2^16) blocks (k = 300, two blocks) work the same way: 30 receivers at 5 % loss get the exact file', () => {
  const r = runSimUpdate({
    receivers: 30,
    loss: 0.05,
    fileSize: 600_000,
    seed: 13,
    dir: tmp(),
    code: { code: 'rs16', sourceSymbols: 300, repairSymbols: 60 },
  });
  expect(r.correct).toBe(30);
  for (const o of r.report.receivers) expect(o.completed && o.result === 'ok', o.host).toBe(true);
  expect(r.report.bytesByKind.repair).toBeGreaterThan(0);
});

describe('1,000 receivers on the simulated network', () => {
  for (const bursty of [false, true]) {
    it(`5% ${bursty ? 'bursty (Gilbert–Elliott)' : 'independent'} loss: all complete with the right bytes`, () => {
      const r = run(bursty);
      expect(r.outcome).toBe('condition');
      expect(r.correct).toBe(1000);
      expect(r.report.receivers).toHaveLength(1000);
      for (const o of r.report.receivers) {
        expect(o.completed, o.host).toBe(true);
        expect(o.dropped, o.host).toBeUndefined();
        expect(o.result, o.host).toBe(`ok applied ${128 * 1024}`);
      }
      for (const rep of r.receiverReports) expect(rep?.ok).toBe(true);
      // Loss forces repair rounds, and suppression keeps the requests far below one per receiver per round.
      expect(r.report.rounds).toBeGreaterThanOrEqual(2);
      const requests = r.report.receivers.reduce((n, o) => n + o.requests, 0);
      expect(requests).toBeLessThan(1000);
    });
  }
});
