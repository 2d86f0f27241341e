/**
 * A receiver stopped mid-transfer and started again on the same directory
 * resumes from its saved partial state: it takes far fewer symbols after the
 * restart than the file has, and still ends with the exact file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runSimUpdate, tempDirs } from '../../bench/multicast-sim-run.js';
import { PARTIAL_DIR } from '../../src/delivery/update/index.js';
import type { UpdateReceiver } from '../../src/delivery/update/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
const tmp = (): string => dirs.make();

it('a receiver killed and restarted mid-transfer resumes and completes', () => {
  const dir = tmp();
  const size = 1 << 20;
  let restarted: UpdateReceiver | undefined;
  let savedFolders = 0;
  let symbolsBeforeKill = 0;
  const r = runSimUpdate({
    receivers: 20,
    loss: 0.05,
    fileSize: size,
    seed: 21,
    dir,
    setup(ctx) {
      const clock = ctx.net.clock;
      // Round 1 starts after the 200 ms join window and takes ~90 ms at 100 Mbit/s: stop r0 in the middle…
      clock.setTimer(() => {
        symbolsBeforeKill = ctx.receivers[0]!.counters.symbols;
        ctx.receivers[0]!.close();
        savedFolders = fs.readdirSync(path.join(dir, 'r0', PARTIAL_DIR)).length;
        // …and start a new receiver on the same directory 20 ms later.
        clock.setTimer(() => {
          restarted = ctx.restart(0);
        }, 20);
      }, 245);
    },
  });
  expect(symbolsBeforeKill).toBeGreaterThan(100);
  expect(savedFolders).toBe(1);
  expect(restarted).toBeDefined();
  const report = restarted!.reports.at(-1);
  expect(report?.resumed).toBe(true);
  expect(report?.ok).toBe(true);
  expect(r.correct).toBe(20);
  // The file has 749 source symbols; starting over would need at least that many after the restart.
  const total = Math.ceil(size / 1400);
  expect(restarted!.counters.symbols).toBeLessThan(total - symbolsBeforeKill / 2);
  expect(r.report.receivers.find((o) => o.host === 'r0')?.completed).toBe(true);
  // The working folder is gone once the file is in place.
  expect(fs.existsSync(path.join(dir, 'r0', PARTIAL_DIR, fs.readdirSync(path.join(dir, 'r0', PARTIAL_DIR))[0] ?? 'x'))).toBe(false);
});
