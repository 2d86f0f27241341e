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
import { DEFAULT_UPDATE_OPTIONS, PARTIAL_DIR } from '../../src/delivery/update/index.js';
import type { UpdateReceiver } from '../../src/delivery/update/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/**
 * Stop r0 in round 1 of a 1 MiB update (at `killAtMs`, by default in its middle) and start it again
 * 20 ms later (`startOver`: its working folder deleted; `tamper`: called on the working folder while it is stopped).
 */
function killAndRestart(startOver: boolean, tamper?: (folder: string) => void, killAtMs = 245) {
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
        const partial = path.join(dir, 'r0', PARTIAL_DIR);
        if (tamper) for (const f of fs.readdirSync(partial)) tamper(path.join(partial, f));
        clock.setTimer(() => {
          restarted = ctx.restart(0);
        }, 20);
      }, killAtMs);
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

/** The blocks a stopped receiver's newer saved state counts as decoded. */
function savedDoneBlocks(folder: string): number[] {
  let best: { seq: number; done: string } | undefined;
  for (const slot of ['state.0', 'state.1']) {
    if (!fs.existsSync(path.join(folder, slot))) continue;
    const b = fs.readFileSync(path.join(folder, slot));
    const state = JSON.parse(b.subarray(40, 40 + b.readUInt32BE(0)).toString('utf8')) as { blocksDone: string };
    if (!best || b.readUInt32BE(4) > best.seq) best = { seq: b.readUInt32BE(4), done: state.blocksDone };
  }
  const bits = Buffer.from(best?.done ?? '', 'base64');
  const out: number[] = [];
  for (let i = 0; i < bits.length * 8; i++) if ((bits[i >>> 3]! & (1 << (i & 7))) !== 0) out.push(i);
  return out;
}

it('a block decoded before the stop is hashed from the file after the restart: a byte changed on disk meanwhile is refused, nothing applied', () => {
  let changed = -1;
  const run = killAndRestart(false, (folder) => {
    const done = savedDoneBlocks(folder);
    expect(done.length).toBeGreaterThan(0);
    // A byte inside the last block the saved state counts as decoded.
    const data = path.join(folder, 'data');
    const size = fs.statSync(data).size;
    const blockBytes = DEFAULT_UPDATE_OPTIONS.sourceSymbols * DEFAULT_UPDATE_OPTIONS.symbolSize;
    changed = Math.min(size - 1, done.at(-1)! * blockBytes + 700);
    const fd = fs.openSync(data, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, changed);
    b[0]! ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, changed);
    fs.closeSync(fd);
  }, 280);
  expect(changed).toBeGreaterThanOrEqual(0);
  const report = run.restarted.reports.at(-1);
  expect(report?.resumed).toBe(true);
  expect(report?.ok).toBe(false);
  expect(report?.status).toMatch(/digest mismatch/);
  expect(report?.file).toBeUndefined();
  // The other 19 receivers are not affected.
  expect(run.r.correct).toBe(19);
});
