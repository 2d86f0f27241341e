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
import { firewallForHost, generateForwardNftables, generateNftables, parseCidr, serviceRulesFor, type Policy, type ProtectedHost, type ServiceRule } from '../../src/delivery/security/firewall/index.js';

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

/** Network namespaces and veth pairs of one test, all deleted by cleanup(). */
class Netns {
  readonly #names: string[] = [];
  readonly #servers: Array<ReturnType<typeof spawn>> = [];
  #links = 0;

  ns(tag: string): string {
    const name = `gsfw-${tag}-${process.pid}`;
    run(['ip', 'netns', 'add', name]);
    this.#names.push(name);
    run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair between two namespaces, with one address (CIDR) on each end. */
  link(a: string, addrA: string, b: string, addrB: string): void {
    const n = this.#links++;
    const [va, vb] = [`gs${n}a${process.pid % 100000}`, `gs${n}b${process.pid % 100000}`];
    run(['ip', 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb]);
    for (const [ns, dev, addr] of [[a, va, addrA], [b, vb, addrB]] as const) {
      run(['ip', 'link', 'set', dev, 'netns', ns]);
      run(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
      run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
  }

  /** TCP servers on 0.0.0.0 that send "hi"; resolves once all listen. */
  async serve(ns: string, ports: number[]): Promise<void> {
    const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
      `const net=require('net');let n=0;for(const p of ${JSON.stringify(ports)})net.createServer(s=>s.end('hi')).listen(p,'0.0.0.0',()=>{if(++n===${ports.length})console.log('ready')});setTimeout(()=>process.exit(0),20000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
  }

  /** Connect to each target from `ns` (700 ms each, in parallel): open, timeout (dropped) or an error code. */
  probe(ns: string, targets: Array<[string, number]>): Array<[string, number, string]> {
    return JSON.parse(run(['ip', 'netns', 'exec', ns, process.execPath, '-e',
      `const net=require('net');Promise.all(${JSON.stringify(targets)}.map(([h,p])=>new Promise(r=>{const s=net.connect(p,h);const t=setTimeout(()=>{s.destroy();r([h,p,'timeout'])},700);s.on('data',()=>{clearTimeout(t);s.destroy();r([h,p,'open'])});s.on('error',e=>{clearTimeout(t);r([h,p,e.code])})}))).then(x=>console.log(JSON.stringify(x)))`]));
  }

  cleanup(): void {
    for (const s of this.#servers) s.kill();
    for (const n of this.#names) spawnSync('ip', ['netns', 'del', n]);
  }
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
    const net = new Netns();
    try {
      const [a, b] = [net.ns('a'), net.ns('b')];
      net.link(a, '10.231.0.1/24', b, '10.231.0.2/24');
      const rules = generateNftables('fw-test', [
        { proto: 'tcp', port: 8080, from: ['10.231.0.2/32'] },
        { proto: 'tcp', port: 8081, from: ['10.231.0.99/32', '2001:db8::/32'] },
        { proto: 'tcp', port: 8082 },
      ]);
      // loading twice: the second run replaces the table the first one made
      run(['ip', 'netns', 'exec', a, 'nft', '-f', '-'], rules);
      run(['ip', 'netns', 'exec', a, 'nft', '-f', '-'], rules);
      expect(run(['ip', 'netns', 'exec', a, 'nft', 'list', 'tables'])).toBe('table inet gatesock\n');
      await net.serve(a, [8080, 8081, 8082, 8083]);
      // 8081 allows other sources only and 8083 is not in the policy: both are dropped silently
      expect(net.probe(b, [8080, 8081, 8082, 8083].map((p) => ['10.231.0.1', p]))).toEqual([
        ['10.231.0.1', 8080, 'open'], ['10.231.0.1', 8081, 'timeout'], ['10.231.0.1', 8082, 'open'], ['10.231.0.1', 8083, 'timeout'],
      ]);
    } finally {
      net.cleanup();
    }
  });

  it('fences hosts behind a network device: forward chain per host, other traffic untouched', () => {
    const text = generateForwardNftables([
      { host: 'web-1', addresses: ['192.0.2.10', '2001:db8::10'], services: [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22, from: ['10.0.0.0/8', 'fd00::/8'] }] },
      { host: 'db-1', addresses: ['192.0.2.11'], services: [{ proto: 'tcp', port: 5432, from: ['192.0.2.10/32', '2001:db8::/32'] }] },
    ], { allowPing: false });
    expect(text.split('\n').slice(5, -3)).toEqual([
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\tct state invalid drop',
      '\t\tct state established,related accept',
      '\t\t# host db-1',
      '\t\tip daddr { 192.0.2.11 } tcp dport 5432 ip saddr { 192.0.2.10/32 } accept',
      '\t\tip daddr { 192.0.2.11 } drop',
      '\t\t# host web-1',
      '\t\tip daddr { 192.0.2.10 } tcp dport 22 ip saddr { 10.0.0.0/8 } accept',
      '\t\tip6 daddr { 2001:db8::10 } tcp dport 22 ip6 saddr { fd00::/8 } accept',
      '\t\tip daddr { 192.0.2.10 } tcp dport 443 accept',
      '\t\tip6 daddr { 2001:db8::10 } tcp dport 443 accept',
      '\t\tip daddr { 192.0.2.10 } drop',
      '\t\tip6 daddr { 2001:db8::10 } drop',
    ]);
    if (nftReason === null) {
      expect(nftCheck(text)).toBeNull();
      expect(nftCheck(generateForwardNftables([{ host: 'h', addresses: ['2001:db8::1'], services: [{ proto: 'udp', port: 53 }] }]))).toBeNull();
    }
    for (const hosts of [
      [{ host: 'h', addresses: ['192.0.2.0/24'], services: [] }],
      [{ host: 'h', addresses: ['192.0.2.300'], services: [] }],
      [{ host: 'h', addresses: [], services: [] }],
      [{ host: 'h', addresses: ['192.0.2.1'], services: [{ proto: 'tcp', port: 0 }] }],
      [{ host: 'a', addresses: ['192.0.2.1'], services: [] }, { host: 'b', addresses: ['192.0.2.1'], services: [] }],
      [{ host: 'bad name', addresses: ['192.0.2.1'], services: [] }],
    ]) expect(code(() => generateForwardNftables(hosts as ProtectedHost[])), JSON.stringify(hosts)).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
  });

  it.skipIf(netnsReason !== null)('a router namespace with the forward rules passes only what the protected host allows', async () => {
    const net = new Netns();
    try {
      const [client, router, server] = [net.ns('c'), net.ns('r'), net.ns('s')];
      net.link(client, '10.232.1.2/24', router, '10.232.1.1/24');
      net.link(router, '10.232.2.1/24', server, '10.232.2.2/24');
      run(['ip', '-n', server, 'addr', 'add', '10.232.2.3/24', 'dev', `gs1b${process.pid % 100000}`]);
      run(['ip', '-n', client, 'route', 'add', 'default', 'via', '10.232.1.1']);
      run(['ip', '-n', server, 'route', 'add', 'default', 'via', '10.232.2.1']);
      run(['ip', 'netns', 'exec', router, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
      run(['ip', 'netns', 'exec', router, 'nft', '-f', '-'], generateForwardNftables([
        { host: 'srv', addresses: ['10.232.2.2'], services: [{ proto: 'tcp', port: 8080 }, { proto: 'tcp', port: 8081, from: ['10.232.1.99/32'] }] },
      ]));
      await net.serve(server, [8080, 8081, 8082]);
      // 10.232.2.3 is on the same machine but not a protected host: its traffic passes untouched
      expect(net.probe(client, [['10.232.2.2', 8080], ['10.232.2.2', 8081], ['10.232.2.2', 8082], ['10.232.2.3', 8082]])).toEqual([
        ['10.232.2.2', 8080, 'open'], ['10.232.2.2', 8081, 'timeout'], ['10.232.2.2', 8082, 'timeout'], ['10.232.2.3', 8082, 'open'],
      ]);
    } finally {
      net.cleanup();
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
