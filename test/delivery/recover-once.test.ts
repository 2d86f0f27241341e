/**
 * A block whose manifest page was lost is decoded once: the receiver checks
 * the block recovered from held symbols against its block hash
 * (`UpdateAuthenticator.recoverBlock`) and hands that block to its decoder
 * whole (`ObjectDecoder.setBlock`), instead of feeding its source symbols back
 * in, which made the decoder reconstruct the block a second time from the
 * repair symbols it held. The file still matches its digest.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runSimUpdate, tempDirs } from '../../bench/multicast-sim-run.js';
import { ReedSolomon } from '../../src/fec/reed-solomon.js';
import { UpdateAuthenticator } from '../../src/delivery/update/wire/index.js';

const dirs = tempDirs();
afterEach(() => {
  vi.restoreAllMocks();
  dirs.cleanup();
});

describe('UpdateReceiver block recovery', () => {
  it('decodes a block recovered without its manifest page once, and the file matches', () => {
    const k = 96;
    const T = 1400;
    const blocks = 10;
    const reconstruct = vi.spyOn(ReedSolomon.prototype, 'reconstruct');
    const recover = vi.spyOn(UpdateAuthenticator.prototype, 'recoverBlock');
    const r = runSimUpdate({
      receivers: 1,
      loss: 0.1,
      fileSize: blocks * k * T - 700, // a short last block too
      seed: 41,
      dir: dirs.make(),
      code: { code: 'rs8', sourceSymbols: k, repairSymbols: 32 } // 128 symbol hashes: two manifest pages a block,
    });
    expect(r.correct).toBe(1);
    expect(r.receiverReports[0]?.ok).toBe(true);
    const file = r.ctx.file;
    // Which block each reconstruction was of: its first source symbol (filled in by then) says.
    const blockOf = (shards: (Uint8Array | null | undefined)[]): number => {
      for (let sbn = 0; sbn < blocks; sbn++) {
        const first = file.subarray(sbn * k * T, sbn * k * T + Math.min(T, file.length - sbn * k * T));
        if (shards[0] && Buffer.from(shards[0].subarray(0, first.length)).equals(first)) return sbn;
      }
      return -1;
    };
    const decodes = new Map<number, number>();
    for (const [shards] of reconstruct.mock.calls) {
      const sbn = blockOf(shards);
      decodes.set(sbn, (decodes.get(sbn) ?? 0) + 1);
    }
    expect(decodes.has(-1)).toBe(false);
    const recovered = recover.mock.calls.flatMap(([sbn], i) => (recover.mock.results[i]?.value !== undefined ? [sbn] : []));
    // The seeded 10 % loss does lose manifest pages of some blocks whose other pages arrived.
    expect(recovered.length).toBeGreaterThan(0);
    for (const sbn of recovered) expect(decodes.get(sbn)).toBe(1);
    for (const [, n] of decodes) expect(n).toBe(1);
  });
});
