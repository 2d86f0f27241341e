/**
 * The receiver's rules: nothing is joined for an update its policy does not
 * permit; the handler's status (or its failure) reaches the sender in FIN;
 * and the on-disk store keeps only what its state counts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SIM_CONTROL, SIM_DATA, SIM_PORT, runSimUpdate, simKey, tempDirs } from '../../bench/multicast-sim-run.js';
import { UpdateReceiver } from '../../src/delivery/update/index.js';
import { ResumeStore } from '../../src/delivery/update/resume-state.js';
import { generatePublisherKey } from '../../src/delivery/update/wire/index.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
const tmp = (): string => dirs.make();

describe('UpdateReceiver', () => {
  it('never joins an update its policy does not permit (name or publisher)', () => {
    const dir = tmp();
    const refused: UpdateReceiver[] = [];
    const r = runSimUpdate({
      receivers: 2,
      loss: 0,
      fileSize: 30_000,
      seed: 31,
      dir,
      setup(ctx) {
        for (const [name, policy] of [
          ['wrong-name', { allow: ['apps/**'], publisherKeys: [simKey().publicKey] }],
          ['wrong-key', { allow: ['**'], publisherKeys: [generatePublisherKey().publicKey] }],
        ] as const) {
          const socket = ctx.net.addHost({ name }).bind(SIM_PORT, { reuseAddr: true });
          const rx = new UpdateReceiver({ socket, policy, controlGroup: SIM_CONTROL, dataGroup: SIM_DATA, host: name, directory: path.join(dir, name) });
          rx.start();
          refused.push(rx);
        }
      },
    });
    expect(r.correct).toBe(2);
    for (const rx of refused) {
      expect(rx.state).toBe('idle');
      expect(rx.counters.refused).toBeGreaterThan(0);
      expect(rx.counters.symbols).toBe(0); // it never joined the data group
      expect(fs.readdirSync(path.join(dir, rx === refused[0] ? 'wrong-name' : 'wrong-key'))).toEqual([]);
    }
    expect(r.report.receivers.map((o) => o.host).sort()).toEqual(['r0', 'r1']);
  });

  it('a receiver started after the join window still joins (the announcement repeats with each round end) and completes', () => {
    const dir = tmp();
    let late: UpdateReceiver | undefined;
    const r = runSimUpdate({
      receivers: 3,
      loss: 0.05,
      fileSize: 300_000,
      seed: 33,
      dir,
      // No burst allowance: round 1 paced from its first datagram, so it is still running at 260 ms.
      sender: { burstMs: 0 },
      setup(ctx) {
        ctx.net.clock.setTimer(() => {
          const socket = ctx.net.addHost({ name: 'late' }).bind(SIM_PORT, { reuseAddr: true });
          late = new UpdateReceiver({
            socket,
            policy: { allow: ['**'], publisherKeys: [simKey().publicKey] },
            controlGroup: SIM_CONTROL,
            dataGroup: SIM_DATA,
            host: 'late',
            directory: path.join(dir, 'late'),
          });
          late.start();
        }, 260); // the join window is 200 ms; round 1 is under way
      },
    });
    expect(r.correct).toBe(3);
    expect(late?.reports.at(-1)?.ok).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'late', 'update.bin')).equals(r.ctx.file)).toBe(true);
    expect(r.report.receivers.find((o) => o.host === 'late')).toMatchObject({ joined: true, completed: true, result: 'ok' });
  });

  it("reports the handler's status, and a throwing handler as failed, in FIN", () => {
    const r = runSimUpdate({
      receivers: 4,
      loss: 0.02,
      fileSize: 60_000,
      seed: 32,
      dir: tmp(),
      handler: (file, update) => {
        if (file.includes('/r3/')) throw new Error('disk full\nreally');
        return `installed ${update.name} (${update.size} bytes)`;
      },
    });
    expect(r.correct).toBe(4);
    const results = Object.fromEntries(r.report.receivers.map((o) => [o.host, o.result]));
    expect(results['r0']).toBe('installed update.bin (60000 bytes)');
    expect(results['r3']).toBe('failed: disk full really');
    expect(r.receiverReports[3]?.ok).toBe(false);
    expect(r.receiverReports[0]?.ok).toBe(true);
  });
});

describe('ResumeStore', () => {
  it('resumes only what the saved state counts, and cuts off what came after', () => {
    const dir = tmp();
    const a = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    a.begin(new Uint8Array([1, 2, 3]), { sender: { address: 's', port: 1 } });
    a.addSymbol(0x00000001, new Uint8Array(8).fill(1));
    a.addSymbol(0x00010002, new Uint8Array(8).fill(2));
    a.flush(); // counted
    a.writeBlock(2, new Uint8Array(32).fill(7));
    a.save();
    a.addSymbol(0x00000003, new Uint8Array(8).fill(3));
    a.flush(false); // appended, not counted (no save)
    // A crash here: no close().
    const b = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    const saved = b.resume()!;
    expect(saved.announcement).toEqual(new Uint8Array([1, 2, 3]));
    expect(saved.symbols.map((s) => s.fecInfo)).toEqual([0x00000001, 0x00010002]);
    expect(saved.symbols[1]!.symbol).toEqual(new Uint8Array(8).fill(2));
    expect(saved.blocksDone).toEqual([2]);
    expect(ResumeStore.extraOf(b.folder)?.['sender']).toEqual({ address: 's', port: 1 });
    // New appends line up after the counted records.
    b.addSymbol(0x00000004, new Uint8Array(8).fill(4));
    b.close();
    const c = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    expect(c.resume()!.symbols.map((s) => s.fecInfo)).toEqual([0x00000001, 0x00010002, 0x00000004]);
    c.discard();
    expect(fs.existsSync(c.folder)).toBe(false);
  });

  it('writes source symbols once, at their place in the file (cut at its end); a decoded block adds only the rest', () => {
    const dir = tmp();
    // k = 4 symbols of 8 bytes per block, 3 blocks, a 90-byte file: the last block has 26 bytes.
    const a = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3, 90);
    a.begin(new Uint8Array([1]));
    a.addSymbol(0x00000001, new Uint8Array(8).fill(0x11)); // source (0, 1)
    a.addSymbol(0x00000005, new Uint8Array(8).fill(0x55)); // repair (0, 5): the spool
    a.addSymbol(0x00020003, new Uint8Array(8).fill(0x23)); // source (2, 3): 2 real bytes
    a.flush();
    const data = fs.readFileSync(a.dataPath);
    expect(data.length).toBe(90); // nothing past the file's end
    expect(data.subarray(8, 16)).toEqual(Buffer.alloc(8, 0x11));
    expect(data.subarray(88, 90)).toEqual(Buffer.alloc(2, 0x23));
    expect(fs.statSync(path.join(a.folder, 'spool')).size).toBe(4 + 8); // the repair symbol only
    // A decoded block writes the symbols not yet there, never a held one again.
    a.writeBlock(0, new Uint8Array(32).fill(0xee));
    const after = fs.readFileSync(a.dataPath);
    expect(after.subarray(0, 8)).toEqual(Buffer.alloc(8, 0xee));
    expect(after.subarray(8, 16)).toEqual(Buffer.alloc(8, 0x11));
    expect(after.subarray(16, 32)).toEqual(Buffer.alloc(16, 0xee));
    // A buffered source symbol of a block written whole is let go at once and not written after it.
    a.addSymbol(0x00010000, new Uint8Array(8).fill(0x10));
    a.addSymbol(0x00020000, new Uint8Array(8).fill(0x20));
    expect(a.buffered).toBe(2);
    a.writeBlock(1, new Uint8Array(32).fill(0x77));
    expect(a.buffered).toBe(1);
    a.flush();
    expect(fs.readFileSync(a.dataPath).subarray(32, 40)).toEqual(Buffer.alloc(8, 0x77));
    expect(fs.readFileSync(a.dataPath).subarray(64, 72)).toEqual(Buffer.alloc(8, 0x20));
    a.close();
    // A resume hands back the held source symbols of open blocks (padded), then the spooled ones.
    const b = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3, 90);
    const saved = b.resume()!;
    expect(saved.blocksDone).toEqual([0, 1]);
    expect(saved.symbols.map((s) => s.fecInfo)).toEqual([0x00020000, 0x00020003, 0x00000005]);
    expect(saved.symbols[1]!.symbol).toEqual(new Uint8Array([0x23, 0x23, 0, 0, 0, 0, 0, 0]));
    b.discard();
  });

  it('starts over on a damaged or foreign state file', () => {
    const dir = tmp();
    const a = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    a.begin(new Uint8Array([1]));
    a.close();
    for (const slot of ['state.0', 'state.1']) {
      const f = path.join(a.folder, slot);
      if (fs.existsSync(f)) fs.writeFileSync(f, Buffer.from(fs.readFileSync(f).map((x, i) => (i === 45 ? x ^ 1 : x))));
    }
    expect(new ResumeStore(dir, 9, 'f.bin', 8, 32, 3).resume()).toBeUndefined();
    expect(fs.existsSync(a.folder)).toBe(false);
    // Another transfer's state (file ID 10) in the folder of file 9: not taken.
    const b = new ResumeStore(dir, 10, 'f.bin', 8, 32, 3);
    b.begin(new Uint8Array([1]));
    b.close();
    fs.mkdirSync(new ResumeStore(dir, 9, 'f.bin', 8, 32, 3).folder, { recursive: true });
    for (const f of fs.readdirSync(b.folder)) fs.copyFileSync(path.join(b.folder, f), path.join(a.folder, f));
    expect(new ResumeStore(dir, 9, 'f.bin', 8, 32, 3).resume()).toBeUndefined();
  });

  it('saves the state into two slots in turn: a torn newer slot leaves the older state', () => {
    const dir = tmp();
    const a = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    a.begin(new Uint8Array([1])); // seq 1: slot 1
    a.writeBlock(0, new Uint8Array(32).fill(1));
    a.save(); // seq 2: slot 0, block 0 done
    a.writeBlock(1, new Uint8Array(32).fill(2));
    a.save(); // seq 3: slot 1, blocks 0 and 1 done
    a.close();
    expect(new ResumeStore(dir, 9, 'f.bin', 8, 32, 3).resume()?.blocksDone).toEqual([0, 1]);
    // The newest write (slot 1) cut short: the state of seq 2 stands.
    const slot1 = path.join(a.folder, 'state.1');
    fs.truncateSync(slot1, fs.statSync(slot1).size - 5);
    const b = new ResumeStore(dir, 9, 'f.bin', 8, 32, 3);
    expect(b.resume()?.blocksDone).toEqual([0]);
    // The next save after that resume goes on from seq 2 (to slot 1 again) and is the newest.
    b.writeBlock(2, new Uint8Array(32).fill(3));
    b.save();
    b.close();
    expect(new ResumeStore(dir, 9, 'f.bin', 8, 32, 3).resume()?.blocksDone).toEqual([0, 2]);
  });
});
