/**
 * nftables rule sets from the policy database: the exact text for a fixture
 * policy, `nft -c -f` accepting every generated set (when nft runs here),
 * determinism, and refusal of every field that could smuggle text into the
 * rule set.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SecurityCenterError } from '../../src/errors/index.js';
import { firewallForHost, generateNftables, parseCidr, serviceRulesFor, type Policy, type ServiceRule } from '../../src/delivery/security/firewall/index.js';

const FIX = path.join(import.meta.dirname, 'fixtures/policy');
const POLICY = JSON.parse(fs.readFileSync(path.join(FIX, 'site.json'), 'utf8')) as Policy;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gs-nft-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `nft -c -f` on a file: null when accepted, else nft's message. */
function nftCheck(text: string): string | null {
  const file = path.join(dir, `r${Math.random().toString(36).slice(2)}.nft`);
  fs.writeFileSync(file, text);
  const r = spawnSync('nft', ['-c', '-f', file], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? null : `${r.error?.message ?? ''}${r.stderr}`;
}
const probe = spawnSync('nft', ['-c', '-f', '/dev/stdin'], { input: 'table inet gs_probe {\n\tchain c {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n', encoding: 'utf8', timeout: 10_000 });
const nftReason = probe.error !== undefined ? `nft is not installed (${probe.error.message})` : probe.status !== 0 ? `nft -c cannot run here: ${probe.stderr.trim()}` : null;
if (nftReason !== null) console.log(`firewall.test: nft checks skipped: ${nftReason}`);

// Namespaces for the traffic test: two of our own, joined by a veth pair, always deleted.
const nsProbe = `gsfw-probe-${process.pid}`;
const nsAdd = spawnSync('ip', ['netns', 'add', nsProbe], { encoding: 'utf8' });
spawnSync('ip', ['netns', 'del', nsProbe]);
const netnsReason = nftReason ?? (nsAdd.error !== undefined || nsAdd.status !== 0 ? `cannot create network namespaces (${nsAdd.error?.message ?? nsAdd.stderr.trim()})` : null);
if (netnsReason !== null) console.log(`firewall.test: traffic test skipped: ${netnsReason}`);

function run(args: string[], input?: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000, ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof SecurityCenterError) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('parseCidr', () => {
  it('parses networks strictly and prints them canonically', () => {
    expect(parseCidr('10.0.0.0/8')?.text).toBe('10.0.0.0/8');
    expect(parseCidr('203.0.113.7')?.text).toBe('203.0.113.7/32');
    expect(parseCidr('2001:DB8::/32')?.text).toBe('2001:db8::/32');
    expect(parseCidr('::/0')?.text).toBe('::/0');
    for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/', '/8', '10.0.0/8', '2001:db8::1/32', 'fd00::/129', 'any', '10.0.0.0/8 ', '10.0.0.0/8;', 'x'.repeat(100), 5]) {
      expect(parseCidr(bad), String(bad)).toBeUndefined();
    }
  });
});

describe('generateNftables', () => {
  it('gives the exact rule set for a host: role rules plus its own, merged per port, sorted', () => {
    expect(firewallForHost(POLICY, 'web-1')).toBe(fs.readFileSync(path.join(FIX, 'web-1.nft'), 'utf8'));
    expect(serviceRulesFor(POLICY, 'ns-1')).toHaveLength(2);
    // a host not listed gets the default role (no services: only the base rules)
    const other = firewallForHost(POLICY, 'unlisted-host')!;
    expect(other).not.toMatch(/dport/);
    expect(other).toMatch(/policy drop;/);
    expect(firewallForHost({ roles: {}, hosts: {} }, 'x')).toBeUndefined();
    expect(code(() => firewallForHost(POLICY, 'broken'))).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
    expect(generateNftables('h', [{ proto: 'tcp', port: 22, from: [] }])).toMatch(/# tcp\/22: the policy allows no source/);
    expect(generateNftables('h', [{ proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }, { proto: 'tcp', port: 22 }])).toMatch(/\t\ttcp dport 22 accept\n/);
    expect(generateNftables('h', [], { allowPing: false, table: 'edge_fw' })).not.toMatch(/echo-request/);
  });

  it('is deterministic: the order of rules and sources does not matter', () => {
    const rule = fc.record({ proto: fc.constantFrom('tcp' as const, 'udp' as const), port: fc.integer({ min: 1, max: 65535 }), from: fc.option(fc.subarray(['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32', '198.51.100.9']), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 8 }), fc.integer(), (rules, seed) => {
        const clean = rules.map((r) => (r.from === undefined ? { proto: r.proto, port: r.port } : r)) as ServiceRule[];
        const shuffled = [...clean].sort(() => (seed = (seed * 1103515245 + 12345) | 0) & 1 ? 1 : -1).map((r) => (r.from === undefined ? r : { ...r, from: [...r.from].reverse() }));
        expect(generateNftables('h', shuffled)).toBe(generateNftables('h', clean));
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it.skipIf(nftReason !== null)('writes rule sets nft -c -f accepts (fixture hosts and random policies)', () => {
    for (const host of ['web-1', 'ns-1', 'unlisted-host']) expect(nftCheck(firewallForHost(POLICY, host)!), host).toBeNull();
    expect(nftCheck(generateNftables('h', [], { allowPing: false, table: 'edge_fw' }))).toBeNull();
    expect(nftCheck(generateNftables('h', [{ proto: 'udp', port: 53, from: [] }]))).toBeNull();
    const v4 = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 32 })).map(([a, b, p]) => {
      const n = ((a << 24) | (b << 16)) >>> 0;
      const masked = p === 0 ? 0 : (n & (~0 << (32 - p))) >>> 0;
      return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${p}`;
    });
    const rule = fc.record({ proto: fc.constantFrom('tcp' as const, 'udp' as const), port: fc.integer({ min: 1, max: 65535 }), from: fc.array(fc.oneof(v4, fc.constantFrom('2001:db8::/32', 'fe80::/10', '::1/128')), { maxLength: 4 }), description: fc.stringMatching(/^[A-Za-z0-9 ._,:()/+@-]{0,20}$/) });
    // a handful of random sets in one nft call each (nft is a process per run; keep the count small)
    fc.assert(fc.property(fc.array(rule, { maxLength: 6 }), (rules) => nftCheck(generateNftables('h', rules)) === null), { numRuns: 8, seed: 11 });
    // and nft does reject a broken file, so the check can fail
    expect(nftCheck('table inet x { chain c { tcp dport 99999 accept } }\n')).not.toBeNull();
  });

  it.skipIf(netnsReason !== null)('lets through exactly the allowed services, from the allowed sources (two network namespaces)', async () => {
    const a = `gsfw-a-${process.pid}`;
    const b = `gsfw-b-${process.pid}`;
    const va = `gsfa${process.pid % 100000}`;
    const vb = `gsfb${process.pid % 100000}`;
    let server: ReturnType<typeof spawn> | undefined;
    try {
      run(['ip', 'netns', 'add', a]);
      run(['ip', 'netns', 'add', b]);
      run(['ip', 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb]);
      run(['ip', 'link', 'set', va, 'netns', a]);
      run(['ip', 'link', 'set', vb, 'netns', b]);
      run(['ip', '-n', a, 'addr', 'add', '10.231.0.1/24', 'dev', va]);
      run(['ip', '-n', b, 'addr', 'add', '10.231.0.2/24', 'dev', vb]);
      for (const [ns, dev] of [[a, va], [b, vb]] as const) {
        run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      }
      const rules = generateNftables('fw-test', [
        { proto: 'tcp', port: 8080, from: ['10.231.0.2/32'] },
        { proto: 'tcp', port: 8081, from: ['10.231.0.99/32', '2001:db8::/32'] },
        { proto: 'tcp', port: 8082 },
      ]);
      // loading twice: the second run replaces the table the first one made
      run(['ip', 'netns', 'exec', a, 'nft', '-f', '-'], rules);
      run(['ip', 'netns', 'exec', a, 'nft', '-f', '-'], rules);
      expect(run(['ip', 'netns', 'exec', a, 'nft', 'list', 'tables'])).toBe('table inet gatesock\n');
      const ports = [8080, 8081, 8082, 8083];
      server = spawn('ip', ['netns', 'exec', a, process.execPath, '-e',
        `const net=require('net');let n=0;for(const p of ${JSON.stringify(ports)})net.createServer(s=>s.end('hi')).listen(p,'0.0.0.0',()=>{if(++n===${ports.length})console.log('ready')});setTimeout(()=>process.exit(0),20000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        server!.stdout!.once('data', () => resolve());
        server!.once('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
      const client = run(['ip', 'netns', 'exec', b, process.execPath, '-e',
        `const net=require('net');Promise.all(${JSON.stringify(ports)}.map(p=>new Promise(r=>{const s=net.connect(p,'10.231.0.1');const t=setTimeout(()=>{s.destroy();r([p,'timeout'])},700);s.on('data',()=>{clearTimeout(t);s.destroy();r([p,'open'])});s.on('error',e=>{clearTimeout(t);r([p,e.code])})}))).then(x=>console.log(JSON.stringify(x)))`]);
      // 8081 allows other sources only and 8083 is not in the policy: both are dropped silently
      expect(JSON.parse(client)).toEqual([[8080, 'open'], [8081, 'timeout'], [8082, 'open'], [8083, 'timeout']]);
    } finally {
      server?.kill();
      spawnSync('ip', ['netns', 'del', a]);
      spawnSync('ip', ['netns', 'del', b]);
    }
  });

  it('refuses every field that could carry text into the rule set', () => {
    const bad: unknown[] = [
      { proto: 'tcp; drop', port: 22 },
      { proto: 'icmp', port: 22 },
      { proto: 'tcp', port: 0 },
      { proto: 'tcp', port: 65536 },
      { proto: 'tcp', port: 22.5 },
      { proto: 'tcp', port: '22' },
      { proto: 'tcp', port: 22, from: '10.0.0.0/8' },
      { proto: 'tcp', port: 22, from: ['10.0.0.0/8 } accept; chain x {'] },
      { proto: 'tcp', port: 22, from: ['10.0.0.1/8'] },
      { proto: 'tcp', port: 22, from: ['0.0.0.0/0\naccept'] },
      { proto: 'tcp', port: 22, description: 'x" accept #' },
      { proto: 'tcp', port: 22, description: 'line\nbreak' },
      { proto: 'tcp', port: 22, description: 'a;b' },
      { proto: 'tcp', port: 22, description: '{}' },
      { proto: 'tcp', port: 22, description: 'back\\slash' },
      { proto: 'tcp', port: 22, description: 'x'.repeat(65) },
      { proto: 'tcp', port: 22, extra: 'accept' },
      'tcp/22',
      null,
    ];
    for (const rule of bad) expect(code(() => generateNftables('h', [rule as ServiceRule])), JSON.stringify(rule)).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
    for (const host of ['', 'web 1', 'web"1', 'a\nb', 'h;', 'x'.repeat(129)]) expect(code(() => generateNftables(host, [])), host).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
    for (const table of ['', 'Gatesock', '1abc', 'a-b', 'a b', 'x'.repeat(32)]) expect(code(() => generateNftables('h', [], { table })), table).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
    expect(code(() => generateNftables('h', 'x' as unknown as ServiceRule[]))).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
    const many = { proto: 'tcp', port: 22, from: new Array(1025).fill('10.0.0.0/8') };
    expect(code(() => generateNftables('h', [many as ServiceRule]))).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
  });
});
