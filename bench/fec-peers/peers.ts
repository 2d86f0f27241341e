/**
 * Driver of the FEC peer figures (bench/fec-peers.bench.ts): finds and runs
 * the two outside Reed–Solomon encoders the issue compares us with, each in
 * its own process —
 *
 * - **ISA-L** (Intel's SIMD C library, Debian `libisal-dev`): `isal-rs.c`
 *   beside this file, compiled once per bench run with `cc -O2 … -lisal`
 *   into a temporary folder that is removed at exit (no build artefact is
 *   kept; `CC` picks another compiler);
 * - **zfec** (C core behind a Python API, Debian `python3-zfec`):
 *   `zfec_helper.py` beside this file, run by the first of `$PYTHON`,
 *   `python3`, `/usr/bin/python3` that can `import zfec` (a pyenv or venv
 *   `python3` on PATH often cannot see Debian's package).
 *
 * A peer that is not there is simply absent from {@link findPeers}' answer,
 * with one stderr line saying why; `GATESOCK_BENCH_NO_PEERS=1` hides both.
 * Nothing here throws because a peer is missing; a peer that is there but
 * misbehaves (bad output, wrong checksum) does throw, and so fails its figure.
 *
 * Each helper prints `<MB/s of data> <FNV-1a 32 of its parity>`. ISA-L's
 * parity is checked against the same Cauchy matrix computed with our GF(2^8)
 * kernel (a check of ISA-L and of our kernel alike); zfec checks itself by
 * decoding its own parity before timing.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gfInv } from '../../src/fec/gf256.js';
import { mulAdd } from '../../src/fec/gf256-kernel.js';

const here = dirname(fileURLToPath(import.meta.url));

/** One shape: k data and m parity shards of `len` bytes. */
export interface PeerShape {
  readonly k: number;
  readonly m: number;
  readonly len: number;
}

/** An outside encoder that can be timed on a shape. */
export interface Peer {
  /** Baseline name printed in the figure line. */
  readonly name: string;
  /**
   * Check the peer on `shape`, then return a sampler: each call runs the
   * helper once, timing about `ms` of encoding, and returns MB/s of data.
   */
  prepare(shape: PeerShape, ms: number): Promise<() => Promise<number>>;
}

/**
 * The bench's fixed pseudo-random data shards (the same LCG and seed as
 * bench/fec.bench.ts and isal-rs.c): byte = bits 23.. of x ← x·1103515245 + 12345.
 */
export function patternShards({ k, m, len }: PeerShape): Uint8Array[] {
  let x = (k * 1000 + m) | 1;
  return Array.from({ length: k }, () => {
    const s = new Uint8Array(len);
    for (let i = 0; i < len; i++) s[i] = (x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 23;
    return s;
  });
}

/** FNV-1a 32 over the shards one after the other, as 8 hex digits. */
function fnv1a(shards: readonly Uint8Array[]): string {
  let h = 0x811c9dc5;
  for (const s of shards) for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s[i]!, 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * What ISA-L's parity must hash to: `gf_gen_cauchy1_matrix`'s rows
 * (row i, column j = 1 / ((k + i) ^ j), not normalised as ours are)
 * applied to the pattern data with our kernel.
 */
function isalChecksum(shape: PeerShape): string {
  const { k, m, len } = shape;
  const data = patternShards(shape);
  const parity = Array.from({ length: m }, (_, i) => {
    const out = new Uint8Array(len);
    for (let j = 0; j < k; j++) mulAdd(gfInv((k + i) ^ j), data[j]!, out);
    return out;
  });
  return fnv1a(parity);
}

/** Run a helper once; its one stdout line parsed. */
function runHelper(file: string, args: string[], input?: Uint8Array): Promise<{ mbps: number; checksum: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', maxBuffer: 1 << 16 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${file} ${args.join(' ')}: ${error.message.trim()} ${stderr.trim()}`));
      const match = /^(\d+(?:\.\d+)?) ([0-9a-f]{8})\n$/.exec(stdout);
      if (!match) return reject(new Error(`${file} ${args.join(' ')}: unexpected output ${JSON.stringify(stdout)}`));
      resolve({ mbps: Number(match[1]), checksum: match[2]! });
    });
    child.stdin!.on('error', () => {}); // an early exit is reported by the callback
    child.stdin!.end(input);
  });
}

/**
 * A peer from a helper: `command(shape, rounds)` gives the file and
 * arguments, `input` what to send on stdin, `expected` the checksum
 * every run must print (undefined: the first run's, then always the same).
 */
function helperPeer(
  name: string,
  command: (shape: PeerShape, rounds: number) => [string, string[]],
  input: (shape: PeerShape) => Uint8Array | undefined,
  expected: (shape: PeerShape) => string | undefined,
): Peer {
  return {
    name,
    async prepare(shape, ms) {
      const stdin = input(shape);
      let want = expected(shape);
      const run = async (rounds: number) => {
        const [file, args] = command(shape, rounds);
        const r = await runHelper(file, args, stdin);
        want ??= r.checksum;
        if (r.checksum !== want) throw new Error(`${name}: parity checksum ${r.checksum}, expected ${want}`);
        if (!(r.mbps > 0)) throw new Error(`${name}: reported ${r.mbps} MB/s`);
        return r.mbps;
      };
      const block = shape.k * shape.len;
      // Calibrate on about 20 MB of data, then size each sample to `ms`.
      const estimate = await run(Math.max(1, Math.ceil(20e6 / block)));
      const rounds = Math.max(1, Math.ceil((estimate * 1e6 * (ms / 1000)) / block));
      return () => run(rounds);
    },
  };
}

function findIsal(): Peer | string {
  const cc = process.env.CC || 'cc';
  const dir = mkdtempSync(join(tmpdir(), 'gatesock-fec-peers-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'isal-rs');
  const built = spawnSync(cc, ['-O2', join(here, 'isal-rs.c'), '-o', exe, '-lisal'], { encoding: 'utf8' });
  if (built.error) return `no C compiler (${cc}: ${built.error.message})`;
  if (built.status !== 0) {
    const first = built.stderr.split('\n').find((l) => l.trim() !== '') ?? `exit status ${built.status}`;
    return `${cc} could not build against libisal (install libisal-dev): ${first.trim()}`;
  }
  return helperPeer('isal', (s, rounds) => [exe, [s.k, s.m, s.len, rounds].map(String)], () => undefined, isalChecksum);
}

function findZfec(): Peer | string {
  const candidates = [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
  const python = candidates.find((p) => spawnSync(p, ['-c', 'import zfec'], { stdio: 'ignore' }).status === 0);
  if (!python) return `no python with zfec among ${candidates.join(', ')} (install python3-zfec)`;
  const script = join(here, 'zfec_helper.py');
  return helperPeer(
    'zfec',
    (s, rounds) => [python, [script, ...[s.k, s.m, s.len, rounds].map(String)]],
    (s) => Buffer.concat(patternShards(s)),
    () => undefined,
  );
}

/** The peers present on this machine; each absent one explained in one stderr line. */
export function findPeers(): { readonly isal?: Peer; readonly zfec?: Peer } {
  if (process.env.GATESOCK_BENCH_NO_PEERS === '1') {
    console.error('fec-peers: ISA-L and zfec figures skipped: GATESOCK_BENCH_NO_PEERS=1');
    return {};
  }
  const found: { isal?: Peer; zfec?: Peer } = {};
  for (const [key, find] of [['isal', findIsal], ['zfec', findZfec]] as const) {
    const peer = find();
    if (typeof peer === 'string') console.error(`fec-peers: ${key} figure skipped: ${peer}`);
    else found[key] = peer;
  }
  return found;
}
