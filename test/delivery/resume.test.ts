/**
 * A receiver stopped mid-transfer and started again on the same directory
 * resumes from its saved partial state: it needs far less after the restart
 * than the same receiver starting over (its working folder deleted; it then
 * joins late, from the announcement repeated with a round end), and ends with
 * the exact file either way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runSimUpdate, tempDirs } from '../../bench/multicast-sim-run.js';
import { PARTIAL_DIR } from '../../src/delivery/update/index.js';
import type { UpdateReceiver } from '../../src/delivery/update/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Stop r0 in the middle of round 1 of a 1 MiB update and start it again 20 ms later. */
function killAndRestart(startOver: boolean) {
  const dir = dirs.make();
  let restarted: UpdateReceiver | undefined;
  let savedFolders = 0;
  let symbolsBeforeKill = 0;
  const r = runSimUpdate({
    receivers: 20,
    loss: 0.05,
    fileSize: 1 << 20,
    seed: 21,
    dir,
    setup(ctx) {
      const clock = ctx.net.clock;
      // Round 1 starts after the 200 ms join window and takes ~90 ms at 100 Mbit/s.
      clock.setTimer(() => {
        symbolsBeforeKill = ctx.receivers[0]!.counters.symbols;
        ctx.receivers[0]!.close();
        savedFolders = fs.readdirSync(path.join(dir, 'r0', PARTIAL_DIR)).length;
        if (startOver) fs.rmSync(path.join(dir, 'r0', PARTIAL_DIR), { recursive: true, force: true });
        clock.setTimer(() => {
          restarted = ctx.restart(0);
        }, 20);
      }, 245);
    },
  });
  return { r, restarted: restarted!, savedFolders, symbolsBeforeKill, dir };
}

it('a receiver killed and restarted mid-transfer resumes, needs less than starting over, and completes', () => {
  const resumed = killAndRestart(false);
  expect(resumed.symbolsBeforeKill).toBeGreaterThan(100);
  expect(resumed.savedFolders).toBe(1);
  const report = resumed.restarted.reports.at(-1);
  expect(report?.resumed).toBe(true);
  expect(report?.ok).toBe(true);
  expect(resumed.r.correct).toBe(20);
  expect(resumed.r.report.receivers.find((o) => o.host === 'r0')?.completed).toBe(true);
  // The working folder is gone once the file is in place.
  expect(fs.readdirSync(path.join(resumed.dir, 'r0', PARTIAL_DIR))).toEqual([]);

  const over = killAndRestart(true);
  expect(over.restarted.reports.at(-1)?.resumed).toBe(false);
  expect(over.r.correct).toBe(20);
  // What the restarted receiver had to take in after the restart: far less when it resumed.
  expect(resumed.restarted.counters.datagrams).toBeLessThan(0.85 * over.restarted.counters.datagrams);
  const total = Math.ceil((1 << 20) / 1400);
  expect(resumed.restarted.counters.symbols).toBeLessThan(total - resumed.symbolsBeforeKill / 2);
});
