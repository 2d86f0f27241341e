/**
 * The center's check of configuration reports: a real-shaped report passes
 * unchanged; every hostile variant (oversized, wrong types, extra or missing
 * keys, over the counts, path tricks, non-versions, content that does not
 * hash to its digest, another host's MSID) is refused with its code. Deltas:
 * diff then apply reproduces the target state for random package sets; gaps,
 * replays and deltas that do not fit ask for a full report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationLedger,
  applyReport,
  canonicalIp,
  canonicalReport,
  diffReports,
  encodeConfigurationReport,
  isPackageVersion,
  isEmptyDelta,
  osvEcosystem,
  parseConfigurationReport,
  toInventory,
  validateConfigurationReport,
  type DeltaReport,
  type FullReport,
  type PackageEntry,
} from '../../src/delivery/security/report/index.js';
import { codeOf } from '../helpers/error-code.js';

const TEXT = fs.readFileSync(path.join(import.meta.dirname, 'fixtures/reports/full-web1.json'), 'utf8');
const MSID = JSON.parse(TEXT).hostMsid as string;
const OTHER = `MSID-${'2E'.repeat(32)}`;
const fixture = (): FullReport => JSON.parse(TEXT) as FullReport;
type Mutable = Record<string, unknown> & { [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

const check = (v: unknown, limits = {}) => validateConfigurationReport(v, { authenticatedMsid: MSID, limits });
function variant(edit: (r: Mutable) => void): Mutable {
  const r = JSON.parse(TEXT) as Mutable;
  edit(r);
  return r;
}

describe('IP addresses', () => {
  it('have one canonical text (RFC 5952)', () => {
    expect(canonicalIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(canonicalIp('0:0:0:0:0:0:0:0')).toBe('::');
    for (const bad of ['1.2.3', '1.2.3.04', '256.1.1.1', '1::2::3', ':::', '12345::', 'fe80::1%eth0', '', ' 1.2.3.4']) expect(canonicalIp(bad), bad).toBeUndefined();
  });
});

describe('validateConfigurationReport', () => {
  it('accepts the fixture as it is, and its encoding round-trips', () => {
    expect(check(fixture())).toEqual(fixture());
    const bytes = encodeConfigurationReport(fixture());
    expect(parseConfigurationReport(bytes, { authenticatedMsid: MSID })).toEqual(fixture());
  });

  it('refuses a report for another host than the authenticated one', () => {
    expect(codeOf(() => validateConfigurationReport(fixture(), { authenticatedMsid: OTHER }))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    // the report's own claim does not matter: the channel's identity does
    expect(codeOf(() => check(variant((r) => { r.hostMsid = OTHER; })))).toBe('GS_ERR_SECURITY_WRONG_HOST');
  });

  it('refuses oversized input before parsing it, and input that is not UTF-8 JSON', () => {
    const big = `{"pad":"${'x'.repeat(2000)}"}`;
    expect(codeOf(() => parseConfigurationReport(big, { authenticatedMsid: MSID, limits: { maxBytes: 1000 } }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => parseConfigurationReport('{"format":', { authenticatedMsid: MSID }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => parseConfigurationReport(new Uint8Array([0x7b, 0xff, 0x7d]), { authenticatedMsid: MSID }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => parseConfigurationReport('[]', { authenticatedMsid: MSID }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
  });

  it('refuses wrong types, unknown and missing keys, duplicates and lists over their limits', () => {
    const malformed: Array<[string, (r: Mutable) => void]> = [
      ['format', (r) => { r.format = 'v0'; }],
      ['kind', (r) => { r.kind = 'partial'; }],
      ['seq 0', (r) => { r.seq = 0; }],
      ['seq string', (r) => { r.seq = '3'; }],
      ['seq float', (r) => { r.seq = 1.5; }],
      ['time negative', (r) => { r.time = -1; }],
      ['extra key', (r) => { r.extra = 1; }],
      ['__proto__ key', (r) => { Object.defineProperty(r, '__proto__', { value: {}, enumerable: true }); }],
      ['missing key', (r) => { delete r.kernel; }],
      ['os not object', (r) => { r.os = 'debian'; }],
      ['os id spaces', (r) => { r.os.id = 'deb ian'; }],
      ['os name control', (r) => { r.os.name = 'a\u0007b'; }],
      ['kernel', (r) => { r.kernel = '6.1 $(reboot)'; }],
      ['address not canonical', (r) => { r.addresses = ['2001:DB8::10']; }],
      ['address twice', (r) => { r.addresses = ['192.0.2.10', '192.0.2.10']; }],
      ['deeply nested value', (r) => { r.os.name = JSON.parse('['.repeat(5000) + ']'.repeat(5000)); }],
      ['packages not array', (r) => { r.packages = {}; }],
      ['package manager', (r) => { r.packages[0].manager = 'apk'; }],
      ['package name', (r) => { r.packages[0].name = '../libssl3'; }],
      ['package extra key', (r) => { r.packages[0].evil = true; }],
      ['package null arch', (r) => { r.packages[0].arch = null; }],
      ['duplicate package', (r) => { r.packages.push({ ...r.packages[0] }); }],
      ['service port', (r) => { r.services[0].port = 70000; }],
      ['service proto', (r) => { r.services[0].proto = 'sctp'; }],
      ['service process long', (r) => { r.services[0].process = 'p'.repeat(65); }],
      ['duplicate service', (r) => { r.services.push({ ...r.services[0], process: 'other' }); }],
      ['file sha', (r) => { r.files[0].sha256 = 'ABC'; }],
      ['file size without sha', (r) => { r.files[2].size = 3; }],
      ['file content and omitted', (r) => { r.files[1].omitted = 'policy'; }],
      ['file content not hashing to sha256', (r) => { r.files[1].content = 'PermitRootLogin yes\n'; }],
      ['file size not content length', (r) => { r.files[1].size += 1; }],
      ['file content too large', (r) => { r.files[1].content = 'x'.repeat(300 * 1024); }],
      ['omitted reason', (r) => { r.files[0].omitted = 'secret'; }],
    ];
    for (const [name, edit] of malformed) expect(codeOf(() => check(variant(edit))), name).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => check(fixture(), { maxPackages: 2 }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => check(fixture(), { maxServices: 2 }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => check(fixture(), { maxFiles: 2 }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    expect(codeOf(() => check(fixture(), { maxAddresses: 1 }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
  });

  it('refuses path tricks with GS_ERR_SECURITY_UNSAFE_PATH', () => {
    for (const p of ['etc/shadow', '../etc/shadow', '/etc/../root/.ssh/id_rsa', '/etc/./x', '/etc//x', '/etc/x/', '/', '/etc/x\u0000.conf', '/etc/x\n.conf', `/${'d/'.repeat(2050)}x`, `/etc/${'n'.repeat(256)}`, '', 42]) {
      expect(codeOf(() => check(variant((r) => { r.files[0].path = p; }))), JSON.stringify(p)).toBe('GS_ERR_SECURITY_UNSAFE_PATH');
    }
  });

  it('refuses version strings that are not versions with GS_ERR_SECURITY_BAD_VERSION', () => {
    for (const v of ['', 'latest', '1.0 ; rm -rf /', 'a1.0', '1:', ':1.0', 'x:1.0', '1.0-', '1.0-rev!', '1:2:3-', '1.0:2', '1'.repeat(300), 7]) {
      expect(codeOf(() => check(variant((r) => { r.packages[0].version = v; }))), JSON.stringify(v)).toBe('GS_ERR_SECURITY_BAD_VERSION');
    }
    expect(codeOf(() => check(variant((r) => { r.packages[1].sourceVersion = 'v1'; })))).toBe('GS_ERR_SECURITY_BAD_VERSION');
    expect(codeOf(() => check(variant((r) => { r.packages[0] = { ...r.packages[0], manager: 'rpm', version: '3.0.7' }; })))).toBe('GS_ERR_SECURITY_BAD_VERSION');
    for (const v of ['1.0', '1:2.30-1', '2.36-9+deb12u14', '1.0~rc1-1~bpo12+1', '1:9.2p1-2+deb12u3+b1', '2:1.8+git20210923~', '1.2.3-4-5', '1:2:3-4']) expect(isPackageVersion('dpkg', v), v).toBe(true);
  });
});

function full(packages: PackageEntry[], seq = 1, extra: Partial<FullReport> = {}): FullReport {
  return canonicalReport({ ...fixture(), seq, packages, ...extra });
}
const pkg = (name: string, version: string, arch = 'amd64'): PackageEntry => ({ manager: 'dpkg', name, version, arch, source: null, sourceVersion: null });

describe('deltas', () => {
  it('diff then apply gives the later state, for random package sets', () => {
    const entry = fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), version: fc.constantFrom('1.0-1', '1.0-2', '2:0.1'), arch: fc.constantFrom('amd64', 'i386') });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), fc.array(entry, { maxLength: 10 }), fc.boolean(), (a, b, kernelChanges) => {
        const dedupe = (xs: typeof a) => [...new Map(xs.map((x) => [`${x.name}/${x.arch}`, pkg(x.name, x.version, x.arch)])).values()];
        const before = full(dedupe(a), 5);
        const after = full(dedupe(b), 9, kernelChanges ? { kernel: '6.1.0-99-amd64', time: 2 } : { time: 2 });
        const delta = diffReports(before, after);
        expect(delta.seq).toBe(6);
        // the wire form passes the center's check
        const checked = check(JSON.parse(JSON.stringify(delta))) as DeltaReport;
        const out = applyReport(before, checked);
        expect(out).toEqual({ status: 'accepted', report: { ...after, seq: 6 } });
        expect(isEmptyDelta(delta)).toBe(!kernelChanges && JSON.stringify(before.packages) === JSON.stringify(after.packages));
      }),
      { numRuns: 200, seed: 8 },
    );
  });

  it('keeps the sequence: gaps and unknown bases ask for a full report, replays are stale', () => {
    const base = full([pkg('a', '1.0-1')], 4);
    const next = full([pkg('a', '1.0-2')], 5);
    const delta = diffReports(base, next);
    expect(applyReport(undefined, delta)).toMatchObject({ status: 'need-full', reason: 'no-base' });
    expect(applyReport(base, { ...delta, seq: 7 })).toMatchObject({ status: 'need-full', reason: 'gap' });
    expect(applyReport(base, { ...delta, seq: 4 })).toEqual({ status: 'stale', expectSeqAbove: 4 });
    expect(applyReport(base, { ...base, seq: 3 })).toEqual({ status: 'stale', expectSeqAbove: 4 });
    expect(applyReport(base, { ...next, seq: 9 })).toMatchObject({ status: 'accepted', report: { seq: 9 } });
  });

  it('asks for a full report when a delta does not fit the state held', () => {
    const base = full([pkg('a', '1.0-1'), pkg('b', '1.0-1')], 1);
    const d = diffReports(base, full([pkg('a', '1.0-1')], 2));
    const wrongRemoval = { ...d, packages: { ...d.packages, removed: [pkg('b', '9.9-9')] } };
    expect(applyReport(base, wrongRemoval)).toMatchObject({ status: 'need-full', reason: 'diverged' });
    const addExisting = { ...d, packages: { added: [pkg('a', '2.0-1')], removed: [], changed: [] } };
    expect(applyReport(base, addExisting)).toMatchObject({ status: 'need-full', reason: 'diverged' });
    const changeMissing = { ...d, packages: { added: [], removed: [], changed: [pkg('z', '2.0-1')] } };
    expect(applyReport(base, changeMissing)).toMatchObject({ status: 'need-full', reason: 'diverged' });
    const grow = { ...d, packages: { added: [pkg('c', '1-1'), pkg('d', '1-1')], removed: [], changed: [] } };
    expect(codeOf(() => applyReport(base, grow, { maxPackages: 3 }))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
    // the center's check refuses a delta listing one key twice
    const twice = JSON.parse(JSON.stringify({ ...d, packages: { added: [pkg('c', '1-1')], removed: [], changed: [pkg('c', '1-1')] } }));
    expect(codeOf(() => check(twice))).toBe('GS_ERR_SECURITY_MALFORMED_REPORT');
  });
});

describe('toInventory', () => {
  it('gives the diagnosis engine its input: OSV ecosystem, source names, present files', () => {
    const inv = toInventory(fixture());
    expect(inv.hostId).toBe(MSID);
    expect(inv.os).toEqual({ id: 'debian', versionId: '12', ecosystem: 'Debian:12' });
    expect(inv.packages).toContainEqual({ name: 'libssl3', version: '3.0.11-1~deb12u2', source: 'openssl', arch: 'amd64' });
    expect(inv.packages).toContainEqual({ name: 'openssl', version: '3.0.11-1~deb12u2', arch: 'amd64' });
    expect(inv.packages).toContainEqual({ name: 'openssh-server', version: '1:9.2p1-2+deb12u3+b1', source: 'openssh', sourceVersion: '1:9.2p1-2+deb12u3', arch: 'amd64' });
    expect(inv.services).toContainEqual({ proto: 'tcp', port: 22, address: '0.0.0.0', process: 'sshd' });
    expect(inv.files?.map((f) => f.path)).toEqual(['/etc/shadow', '/etc/ssh/sshd_config']);
    expect(inv.files?.[0]).not.toHaveProperty('content');
    const os = fixture().os;
    expect(osvEcosystem({ ...os, id: 'ubuntu', versionId: '22.04', prettyName: 'Ubuntu 22.04.3 LTS' })).toBe('Ubuntu:22.04:LTS');
    expect(osvEcosystem({ ...os, id: 'ubuntu', versionId: '23.10', prettyName: 'Ubuntu 23.10' })).toBe('Ubuntu:23.10');
    expect(osvEcosystem({ ...os, id: 'alpine', versionId: '3.18.4' })).toBe('Alpine:v3.18');
    expect(osvEcosystem({ ...os, id: 'rocky', versionId: '9.3' })).toBe('Rocky Linux:9');
  });
});

describe('ConfigurationLedger', () => {
  it('keeps latest and previous per host; refused reports change nothing and are recorded', () => {
    const ledger = new ConfigurationLedger({ now: () => 77 });
    const first = ledger.receive(TEXT, MSID);
    expect(first).toMatchObject({ status: 'accepted', changes: null, inventory: { hostId: MSID } });
    const next = { ...fixture(), seq: 4, packages: fixture().packages.map((p) => (p.name === 'libssl3' ? { ...p, version: '3.0.11-1~deb12u3' } : p)) };
    const delta = diffReports(fixture(), next);
    const second = ledger.receive(JSON.stringify(delta), MSID);
    if (second.status !== 'accepted') throw new Error(second.status);
    expect(second.changes?.packages.changed.map((p) => p.version)).toEqual(['3.0.11-1~deb12u3']);
    expect(ledger.latest(MSID)?.seq).toBe(4);
    expect(ledger.previous(MSID)?.seq).toBe(3);
    // another host's report on this channel, a malformed one, a replay: nothing changes
    expect(codeOf(() => ledger.receive(TEXT, OTHER))).toBe('GS_ERR_SECURITY_WRONG_HOST');
    expect(codeOf(() => ledger.receive(TEXT.replace('"/etc/shadow"', '"/etc/../shadow"'), MSID))).toBe('GS_ERR_SECURITY_UNSAFE_PATH');
    expect(ledger.receive(TEXT, MSID)).toEqual({ status: 'stale', expectSeqAbove: 4 });
    expect(ledger.receive(JSON.stringify({ ...delta, seq: 9 }), MSID)).toMatchObject({ status: 'need-full', reason: 'gap' });
    expect(ledger.latest(MSID)?.seq).toBe(4);
    expect(ledger.hosts()).toEqual([MSID]);
    expect(ledger.refusals().map((r) => [r.time, r.authenticatedMsid, r.code])).toEqual([[77, OTHER, 'GS_ERR_SECURITY_WRONG_HOST'], [77, MSID, 'GS_ERR_SECURITY_UNSAFE_PATH']]);
    ledger.forget(MSID);
    expect(ledger.reports()).toEqual([]);
  });
});
