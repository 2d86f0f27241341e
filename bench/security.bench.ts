/**
 * Security-center diagnosis figures (issue 8, "Measured in npm run bench"):
 * 10,000 synthetic hosts × 50,000 synthetic advisory entries.
 *
 * - `security advisory→hosts`: time from one new advisory to the list of
 *   affected hosts (DiagnosisEngine.addAdvisory: compile, index, match the
 *   host index, build every finding). Target ≤ 1 s (the issue's).
 * - `security report→findings`: time from one new host's report to its
 *   findings (DiagnosisEngine.updateHost: check, intern, index the host,
 *   match its packages, explain). Target ≤ 50 ms (the issue's).
 *
 * Baseline, measured side by side in the same process on the same data: a
 * naive linear scan with the same version ordering and the same compiled
 * ranges — for a new advisory, every package of every host; for a new
 * report, every package of the host against every advisory entry. The ratio
 * is ours / naive (lower is better); the target bounds our absolute time.
 * Before timing, each figure checks that ours and the naive scan find
 * exactly the same (host, advisory, package) set, or it throws.
 *
 * Data (seeded, so every run builds the same): a pool of 20,000 source
 * packages, each with a ladder of 8 Debian versions (epochs, `~rc`, `+dfsg`,
 * `+deb12uN` security revisions); each host runs 1,000–2,000 of them — 600
 * base packages every host has, the rest drawn with a popularity skew —
 * mostly at recent versions, some through binaries with another name
 * (`libfoo1` from `foo`); 85 % Debian:12, 15 % Debian:11. Advisories name
 * popular packages more often, start at `0` or a ladder version and end at a
 * fixed (95 %) or last-affected version, early in the ladder more often than
 * late (most advisories are old). The timed advisory names a base
 * package, so it is matched against all 10,000 hosts, and is fixed only at
 * the 7th of 8 versions, so every Debian 12 host running one of the six
 * older versions is affected (1,676 of the 10,000 here): a bad case (many
 * findings to build).
 *
 * Set-up takes most of the run: building 10,000 hosts (15 M packages) and
 * 50,000 advisories took 40–45 s of CPU here (40–90 s wall on a loaded
 * 2-core machine; the whole run 1–2¼ min), with a peak RSS of 1.06–1.2 GB,
 * of which about 180 MB is the naive scan's own copy of the hosts. The
 * set-up line on stderr prints time and memory.
 *
 * The report figure runs with the engine's verdict cache as the earlier
 * reports of the run left it (warm for the (package, version) pairs other
 * new hosts had): that is how a center runs, hosts of one release sharing
 * most pairs.
 *
 * `GS_BENCH_SECURITY_HOSTS` / `GS_BENCH_SECURITY_ADVISORIES` shrink the
 * data for a quick look (the targets then say little).
 */
import { AffectedMatcher, parseOsvDocument, type Advisory } from '../src/delivery/security/advisories/index.js';
import { DiagnosisEngine, type HostInventory } from '../src/delivery/security/diagnosis/index.js';
import { defineFigures, sideBySide } from './harness.js';

const HOSTS = Number(process.env.GS_BENCH_SECURITY_HOSTS ?? 10_000);
const ADVISORIES = Number(process.env.GS_BENCH_SECURITY_ADVISORIES ?? 50_000);
const POOL = 20_000;
const BASE = 600;
const LADDER = 8;
const ROUNDS = 5;

/** xorshift32: small, seeded, good enough for synthetic data. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

interface Pool {
  readonly names: string[];
  readonly binaries: (string | undefined)[];
  readonly ladders: { readonly 'Debian:12': string[]; readonly 'Debian:11': string[] }[];
}

function makePool(): Pool {
  const r = rng(7);
  const names: string[] = [];
  const binaries: (string | undefined)[] = [];
  const ladders: Pool['ladders'] = [];
  for (let i = 0; i < POOL; i++) {
    const name = `pkg${i.toString(36)}`;
    names.push(name);
    binaries.push(r() < 0.3 ? `lib${name}1` : undefined);
    const epoch = r() < 0.1 ? '1:' : '';
    const dfsg = r() < 0.2 ? '+dfsg' : '';
    const major = 1 + (i % 9);
    const minor = i % 23;
    const mk = (rel: string) => {
      const out: string[] = [];
      for (let k = 0; k < LADDER; k++) {
        const patch = k >> 1;
        // Alternate an upstream release with its security revision: x.y.z-1, x.y.z-1+debNNuM, …; one ~rc.
        const up = k === 0 ? `${major}.${minor}.0~rc1` : `${major}.${minor}.${patch}`;
        out.push(k % 2 === 0 ? `${epoch}${up}${dfsg}-1` : `${epoch}${up}${dfsg}-1+${rel}u${k}`);
      }
      return out;
    };
    ladders.push({ 'Debian:12': mk('deb12'), 'Debian:11': mk('deb11') });
  }
  return { names, binaries, ladders };
}

function makeHost(pool: Pool, id: string, seed: number): HostInventory {
  const r = rng(seed);
  const eco = r() < 0.85 ? 'Debian:12' : 'Debian:11';
  const count = 1000 + Math.floor(r() * 1001);
  const picked = new Set<number>();
  for (let i = 0; i < BASE; i++) picked.add(i);
  while (picked.size < count) picked.add(BASE + Math.floor((POOL - BASE) * r() * r()));
  const packages: { name: string; version: string; source?: string }[] = [];
  for (const i of picked) {
    const ladder = pool.ladders[i]![eco];
    const version = ladder[LADDER - 1 - Math.floor(LADDER * r() * r() * r())]!;
    const bin = pool.binaries[i];
    if (bin !== undefined) packages.push({ name: bin, version, source: pool.names[i]! });
    else packages.push({ name: pool.names[i]!, version });
  }
  return { hostId: id, os: { id: 'debian', versionId: eco.slice(7), ecosystem: eco }, packages };
}

function osvRecord(pool: Pool, id: string, pkg: number, eco: 'Debian:12' | 'Debian:11', r: () => number): unknown {
  const ladder = pool.ladders[pkg]![eco];
  // Most advisories are old: fixed early in the ladder, so hosts at recent versions are not affected.
  const end = 1 + Math.floor((LADDER - 1) * r() * r());
  const start = r() < 0.7 ? '0' : ladder[Math.floor(r() * end)]!;
  const closing = r() < 0.95 ? { fixed: ladder[end]! } : { last_affected: ladder[end - 1]! };
  return {
    id,
    modified: '2026-11-01T00:00:00Z',
    summary: `${pool.names[pkg]} - security update`,
    affected: [{ package: { ecosystem: eco, name: pool.names[pkg]! }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: start }, closing] }] }],
    references: [{ type: 'ADVISORY', url: `https://www.debian.org/security/${id.toLowerCase()}` }],
  };
}

function makeAdvisories(pool: Pool): Advisory[] {
  const r = rng(11);
  const docs: unknown[] = [];
  for (let i = 0; i < ADVISORIES; i++) {
    const pkg = r() < 0.3 ? Math.floor(r() * BASE) : Math.floor(POOL * r() * r());
    docs.push(osvRecord(pool, `DSA-${100000 + i}-1`, pkg, r() < 0.85 ? 'Debian:12' : 'Debian:11', r));
  }
  return parseOsvDocument(docs, 'synthetic');
}

// ---------------------------------------------------------------- the naive baseline

interface FlatEntry {
  readonly id: string;
  readonly ecosystem: string;
  readonly name: string;
  readonly matcher: AffectedMatcher;
}

function flatten(list: readonly Advisory[]): FlatEntry[] {
  return list.flatMap((a) => a.affected.map((p) => ({ id: a.id, ecosystem: p.ecosystem, name: p.name, matcher: new AffectedMatcher(p) })));
}

/**
 * A host as the naive scan keeps it: parallel arrays of the pool's strings
 * (a third of the memory of the inventory objects, so 10,000 of them fit
 * beside the engine).
 */
interface NaiveHost {
  readonly hostId: string;
  readonly ecosystem: string;
  readonly names: readonly string[];
  readonly matchNames: readonly string[];
  readonly versions: readonly string[];
}

function compact(h: HostInventory): NaiveHost {
  return {
    hostId: h.hostId,
    ecosystem: h.os.ecosystem,
    names: h.packages.map((p) => p.name),
    matchNames: h.packages.map((p) => p.source ?? p.name),
    versions: h.packages.map((p) => p.sourceVersion ?? p.version),
  };
}

/** Every package of every host against one advisory. */
function naiveAffected(hosts: readonly NaiveHost[], adv: Advisory): Set<string> {
  const entries = flatten([adv]);
  const out = new Set<string>();
  for (const h of hosts) {
    for (let i = 0; i < h.names.length; i++) {
      for (const e of entries) {
        if (e.ecosystem === h.ecosystem && e.name === h.matchNames[i] && e.matcher.matchText(h.versions[i]!)) out.add(`${h.hostId} ${adv.id} ${h.names[i]}`);
      }
    }
  }
  return out;
}

/** Every package of one host against every advisory entry. */
function naiveFindings(entries: readonly FlatEntry[], h: NaiveHost): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < h.names.length; i++) {
    const name = h.matchNames[i];
    for (const e of entries) {
      if (e.name === name && e.ecosystem === h.ecosystem && e.matcher.matchText(h.versions[i]!)) out.add(`${h.hostId} ${e.id} ${h.names[i]}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- set-up (once, shared by both figures)

interface World {
  readonly pool: Pool;
  readonly engine: DiagnosisEngine;
  readonly hosts: NaiveHost[];
  readonly advisories: Advisory[];
  readonly flat: FlatEntry[];
}

let world: World | undefined;

function setUp(): World {
  if (world) return world;
  const t0 = performance.now();
  const heap0 = process.memoryUsage().heapUsed;
  const pool = makePool();
  const engine = new DiagnosisEngine();
  const hosts: NaiveHost[] = [];
  let packages = 0;
  for (let i = 0; i < HOSTS; i++) {
    const h = makeHost(pool, `host-${String(i).padStart(5, '0')}`, 1000 + i);
    engine.updateHost(h);
    hosts.push(compact(h));
    packages += h.packages.length;
  }
  const t1 = performance.now();
  const advisories = makeAdvisories(pool);
  engine.addAdvisories(advisories);
  const flat = flatten(advisories);
  const t2 = performance.now();
  const mem = process.memoryUsage();
  console.error(
    `security bench set-up: ${HOSTS} hosts (${packages} packages) in ${((t1 - t0) / 1000).toFixed(1)} s, ` +
      `${advisories.length} advisories in ${((t2 - t1) / 1000).toFixed(1)} s; heap +${((mem.heapUsed - heap0) / 1e6).toFixed(0)} MB ` +
      `(the naive scan's copy included), array buffers ${(mem.arrayBuffers / 1e6).toFixed(0)} MB, rss ${(mem.rss / 1e6).toFixed(0)} MB`,
  );
  world = { pool, engine, hosts, advisories, flat };
  return world;
}

const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

let serial = 0;

export const figures = defineFigures([
  {
    name: `security advisory→hosts ${HOSTS / 1000}k hosts x ${ADVISORIES / 1000}k advisories`,
    unit: 'ms',
    target: { better: 'lower', ours: 1000 },
    async run() {
      const w = setUp();
      const r = rng(99);
      // A base package, so every host is a candidate; from 0 to a fix at the 7th ladder step, so
      // every Debian 12 host running one of the six older versions is affected.
      const fresh = (): Advisory => {
        const pkg = Math.floor(r() * BASE);
        const doc = osvRecord(w.pool, `DSA-NEW${++serial}-1`, pkg, 'Debian:12', r) as { affected: { ranges: { events: unknown[] }[] }[] };
        doc.affected[0]!.ranges[0]!.events = [{ introduced: '0' }, { fixed: w.pool.ladders[pkg]!['Debian:12'][LADDER - 2]! }];
        return parseOsvDocument(doc)[0]!;
      };
      // Check: ours and the naive scan find the same (host, advisory, package) set.
      for (let i = 0; i < 3; i++) {
        const adv = fresh();
        const impact = w.engine.addAdvisory(adv);
        const ours = new Set(impact.hosts.flatMap((h) => h.findings.map((f) => `${f.hostId} ${f.advisoryId} ${f.package}`)));
        const naive = naiveAffected(w.hosts, adv);
        w.engine.removeAdvisory(adv.id);
        if (!sameSet(ours, naive)) throw new Error(`advisory ${adv.id}: engine found ${ours.size} (host, package) pairs, the naive scan ${naive.size}`);
        if (i === 0) console.error(`security bench: ${adv.id} on ${adv.affected[0]!.name} affects ${impact.hosts.length} of ${HOSTS} hosts`);
      }
      const m = await sideBySide(
        ROUNDS,
        async () => {
          const adv = fresh();
          const t = performance.now();
          const impact = w.engine.addAdvisory(adv);
          const ms = performance.now() - t;
          w.engine.removeAdvisory(adv.id);
          if (impact.hosts.length === 0 && HOSTS >= 1000) throw new Error('the timed advisory affected no host: data generator broken');
          return ms;
        },
        async () => {
          const adv = fresh();
          const t = performance.now();
          naiveAffected(w.hosts, adv);
          return performance.now() - t;
        },
      );
      return { ...m, baselineName: 'naive-scan-all-hosts' };
    },
  },
  {
    name: `security report→findings ${HOSTS / 1000}k hosts x ${ADVISORIES / 1000}k advisories`,
    unit: 'ms',
    target: { better: 'lower', ours: 50 },
    async run() {
      const w = setUp();
      const fresh = () => makeHost(w.pool, `new-${++serial}`, 5_000_000 + serial);
      for (let i = 0; i < 2; i++) {
        const h = fresh();
        const d = w.engine.updateHost(h);
        w.engine.removeHost(h.hostId);
        const ours = new Set(d.findings.map((f) => (f.kind === 'vulnerable' ? `${f.hostId} ${f.advisoryId} ${f.package}` : f.kind)));
        const naive = naiveFindings(w.flat, compact(h));
        if (!sameSet(ours, naive)) throw new Error(`host ${h.hostId}: engine found ${ours.size} findings, the naive scan ${naive.size}`);
        if (i === 0) console.error(`security bench: a new host with ${h.packages.length} packages has ${d.findings.length} findings`);
      }
      const m = await sideBySide(
        ROUNDS,
        async () => {
          const h = fresh();
          const t = performance.now();
          w.engine.updateHost(h);
          const ms = performance.now() - t;
          w.engine.removeHost(h.hostId);
          return ms;
        },
        async () => {
          const h = compact(fresh());
          const t = performance.now();
          naiveFindings(w.flat, h);
          return performance.now() - t;
        },
      );
      return { ...m, baselineName: 'naive-scan-all-advisories' };
    },
  },
]);
