/**
 * Key-address figure: addresses derived per second by the ratchet — one
 * `KeyAddressClient.next()`, i.e. the address of C(t, n) (one HMAC-SHA256,
 * @noble/hashes) plus the step to C(t, n+1) (one more) and the canonical
 * text — against, as baseline, the seed's own scheme (paper 002 §4.3):
 * the next address is the prefix OR the low 64 bits of an unkeyed SHA-1 of
 * the previous address, on node:crypto (native), with the same canonical
 * text. One thread, in the same run, alternating rounds.
 *
 * The baseline is what the ratchet fixes (anyone who sees one address can
 * compute the next), so the ratio is the price of the keyed, pure-TS
 * construction, not a race to win. Target: our absolute rate only — at least
 * 20,000 addresses/s, far above need (a server derives one address per
 * session plus window + look-ahead per epoch; a DNS responder one per
 * query).
 *
 * Before timing, the figure checks that the client's first positions equal
 * keyAddressAt's (the published construction) and that the baseline keeps
 * the prefix and gives distinct addresses. The KDF (scrypt N=2^15, r=8,
 * p=1, once per process) is timed once and printed as an info line on
 * stderr, beside node:crypto's scryptSync for the same output.
 *
 * Second figure, `keyaddress admit + refill`: server CPU per admission —
 * `KeyAddressServer.admit()` of the next address, then a setImmediate tick
 * in which the deferred look-ahead refill runs (one chain step per
 * admission: two HMAC-SHA256 on node:crypto) — against, as baseline, the
 * floor under it: the two bare `createHmac(...).update(...).digest()` calls
 * of one chain step and the same tick. The ratio is what admission adds
 * around the two HMACs (text, maps, window, scheduling). Checked first:
 * each admission is accepted at the position the client says, and a second
 * admission of an address is refused as retired.
 */
import { createHash, createHmac, scryptSync } from 'node:crypto';
import { deriveMasterKey, formatIpv6, KeyAddressClient, keyAddressAt, KeyAddressServer, parsePrefix } from '../src/keyaddress/index.js';
import { defineFigures, sideBySide } from './harness.js';

const ROUNDS = 5;
const SAMPLE_MS = 300;
const WARMUP_MS = 300;
const PREFIX = '2001:db8:1:2::/64';
const EPOCH_MS = 3_600_000;
const NOW = 1_700_000_000_000;

/** Calls of `op` per second over about `ms`. */
function rate(op: () => void, ms: number): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    for (let i = 0; i < 64; i++) op();
    n += 64;
    t = performance.now();
  } while (t - t0 < ms);
  return (n * 1000) / (t - t0);
}

/** Admissions per sample of the admit figure, and before timing. */
const ADMITS = 4000;
const ADMIT_WARMUP = 6000;

/** CPU µs (user + system) per call of `op` over `count` calls, each followed by a setImmediate tick. */
async function cpuPerTick(op: (i: number) => void, count: number): Promise<number> {
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    op(i);
    await tick();
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / count;
}

/** The seed's generator: A(n+1) = prefix | low64(SHA-1(A(n))). */
function seedScheme(prefixBytes: Uint8Array, start: Uint8Array): () => string {
  let prev = start;
  return () => {
    const h = createHash('sha1').update(prev).digest();
    const next = new Uint8Array(16);
    next.set(prefixBytes.subarray(0, 8));
    next.set(h.subarray(12, 20), 8);
    prev = next;
    return formatIpv6(next);
  };
}

export const figures = defineFigures([
  {
    name: 'keyaddress derive',
    unit: 'addresses/s',
    target: { better: 'higher', ours: 20_000 },
    async run() {
      const t0 = performance.now();
      const master = deriveMasterKey({ passphrase: 'bench passphrase' });
      const kdfMs = performance.now() - t0;
      const t1 = performance.now();
      scryptSync('bench passphrase', 'gatesock/keyaddress/v1\0', 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
      const nativeMs = performance.now() - t1;
      process.stderr.write(`keyaddress kdf: scrypt N=2^15 r=8 p=1 (@noble/hashes, once per process) ${kdfMs.toFixed(0)} ms | node:crypto scryptSync ${nativeMs.toFixed(0)} ms\n`);

      const options = { prefix: PREFIX, epochMs: EPOCH_MS, now: () => NOW };
      const t = Math.floor(NOW / EPOCH_MS);
      const check = KeyAddressClient.fromMasterKey(master, options);
      for (let n = 0; n < 4; n++) {
        const got = check.next().address;
        const want = keyAddressAt(master, PREFIX, t, n).address;
        if (got !== want) throw new Error(`ratchet position (${t}, ${n}) is ${got}, construction says ${want}`);
      }
      const prefix = parsePrefix(PREFIX).bytes;
      const seed = seedScheme(prefix, prefix);
      const seen = new Set<string>();
      for (let i = 0; i < 1000; i++) {
        const a = seed();
        if (!a.startsWith('2001:db8:1:2:') || seen.has(a)) throw new Error(`seed scheme baseline gave ${a} at step ${i}`);
        seen.add(a);
      }

      const client = KeyAddressClient.fromMasterKey(master, options);
      master.fill(0);
      const ours = () => void client.next();
      const base = () => void seed();
      rate(ours, WARMUP_MS);
      rate(base, WARMUP_MS);
      const m = await sideBySide(
        ROUNDS,
        async () => rate(ours, SAMPLE_MS),
        async () => rate(base, SAMPLE_MS),
      );
      return { ...m, baselineName: 'seed-sha1-unkeyed (node:crypto)' };
    },
  },
  {
    name: 'keyaddress admit + refill',
    unit: 'µs CPU/admission',
    target: { better: 'lower', ratio: 1.5 },
    async run() {
      const master = deriveMasterKey({ passphrase: 'bench passphrase', kdf: { N: 1024 } });
      const options = { prefix: PREFIX, epochMs: EPOCH_MS, now: () => NOW };
      const t = Math.floor(NOW / EPOCH_MS);
      const client = KeyAddressClient.fromMasterKey(master, options);
      const server = KeyAddressServer.fromMasterKey(master, options);
      master.fill(0);
      const total = ADMIT_WARMUP + 2 + ROUNDS * ADMITS;
      const addresses: string[] = [];
      for (let i = 0; i < total; i++) addresses.push(client.next().address);
      let at = 0;
      const admit = () => {
        const r = server.admit(addresses[at]!);
        if (!r.ok || r.position.t !== t || r.position.n !== at) throw new Error(`admission ${at} of ${addresses[at]}: ${JSON.stringify(r)}`);
        at++;
      };
      admit();
      const again = server.admit(addresses[0]!);
      if (again.ok || again.reason !== 'retired') throw new Error(`a second admission of ${addresses[0]} gave ${JSON.stringify(again)}`);
      admit();

      // The floor: one chain step's two HMACs (address candidate, next key) on node:crypto.
      let key: Uint8Array = new Uint8Array(32).fill(1);
      const candidate = new TextEncoder().encode('gs-ka address\0\0\0\0');
      const next = new Uint8Array(10 + 16);
      const twoHmacs = () => {
        createHmac('sha256', key).update(candidate).digest();
        key = createHmac('sha256', key).update(next).digest();
      };
      await cpuPerTick(admit, ADMIT_WARMUP);
      await cpuPerTick(twoHmacs, ADMIT_WARMUP);
      const m = await sideBySide(
        ROUNDS,
        () => cpuPerTick(admit, ADMITS),
        () => cpuPerTick(twoHmacs, ADMITS),
      );
      return { ...m, baselineName: '2 x createHmac + tick' };
    },
  },
]);
