import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCountermeasureFile, parseOsv, parseOsvDocument, type Advisory } from '../../src/delivery/security/advisories/index.js';
import {
  DiagnosisEngine,
  checkPolicy,
  loadAdvisories,
  planCountermeasures,
  readSetting,
  type HostInventory,
  type Policy,
  type VulnerabilityFinding,
} from '../../src/delivery/security/diagnosis/index.js';
import { MemorySecurityStore } from '../../src/delivery/security/secdb/index.js';
import { compareDebianVersions } from '../../src/delivery/security/versions/index.js';
import { SecurityCenterError } from '../../src/errors/index.js';

const FIX = fileURLToPath(new URL('./fixtures/osv/', import.meta.url));
const osv = (name: string) => parseOsv(readFileSync(join(FIX, name)), name);
const [DSA5532] = osv('DSA-5532-1.json');
const [SSH] = osv('DEBIAN-CVE-2024-6387.json');
const [XML, SUDO, ALSA] = osv('bundle.json');
const CM = parseCountermeasureFile(readFileSync(join(FIX, 'countermeasures.json')));

const deb12 = { id: 'debian', versionId: '12', ecosystem: 'Debian:12' };
const hostA: HostInventory = {
  hostId: 'web-1',
  os: deb12,
  packages: [
    { name: 'libssl3', version: '3.0.11-1~deb12u1', source: 'openssl' },
    { name: 'openssl', version: '3.0.11-1~deb12u1' },
    { name: 'openssh-server', version: '1:9.2p1-2+deb12u2', source: 'openssh' },
    { name: 'zlib1g', version: '1:1.2.13.dfsg-1', source: 'zlib' },
  ],
};
const hostB: HostInventory = {
  hostId: 'web-2',
  os: deb12,
  packages: [
    { name: 'libssl3', version: '3.0.11-1~deb12u2', source: 'openssl' },
    { name: 'openssh-server', version: '1:9.2p1-2+deb12u3', source: 'openssh' },
  ],
};
const hostC: HostInventory = {
  hostId: 'old-1',
  os: { id: 'debian', versionId: '11', ecosystem: 'Debian:11' },
  packages: [
    { name: 'libssl1.1', version: '1.1.1w-0+deb11u1', source: 'openssl' },
    { name: 'libxml2', version: '2.9.10+dfsg-6.7+deb11u4' },
  ],
};

const vulnIds = (fs: readonly { kind: string }[]) =>
  fs.filter((f): f is VulnerabilityFinding => f.kind === 'vulnerable').map((f) => `${f.advisoryId}:${f.package}`);

describe('DiagnosisEngine: advisories and hosts', () => {
  it('a new advisory lists exactly the affected hosts, each finding explained', () => {
    const e = new DiagnosisEngine();
    for (const h of [hostA, hostB, hostC]) expect(e.updateHost(h).findings).toEqual([]);
    const impact = e.addAdvisory(DSA5532!);
    expect(impact.hosts.map((h) => h.hostId)).toEqual(['web-1']);
    const [f1, f2] = impact.hosts[0]!.findings;
    expect(impact.hosts[0]!.findings.map((f) => f.package).sort()).toEqual(['libssl3', 'openssl']);
    const lib = [f1, f2].find((f) => f!.package === 'libssl3')!;
    expect(lib).toMatchObject({
      kind: 'vulnerable',
      hostId: 'web-1',
      advisoryId: 'DSA-5532-1',
      ecosystem: 'Debian:12',
      package: 'libssl3',
      matchedPackage: 'openssl',
      installed: '3.0.11-1~deb12u1',
      matchedVersion: '3.0.11-1~deb12u1',
      range: { introduced: '0', fixed: '3.0.11-1~deb12u2' },
      fixed: '3.0.11-1~deb12u2',
      countermeasure: [{ kind: 'upgrade', package: 'libssl3', version: '3.0.11-1~deb12u2' }],
      automatic: true,
    });
    expect(lib.reason).toBe(
      'web-1: libssl3 3.0.11-1~deb12u1 (built from source openssl) on Debian:12 falls in DSA-5532-1 range [every version, 3.0.11-1~deb12u2) (fixed in 3.0.11-1~deb12u2); planned: upgrade libssl3 to 3.0.11-1~deb12u2.',
    );
    // The epoch-versioned per-CVE record: web-1 runs deb12u2 (affected), web-2 deb12u3 (fixed).
    expect(e.addAdvisory(SSH!).hosts.map((h) => h.hostId)).toEqual(['web-1']);
    // last_affected: old-1 runs exactly the last affected libxml2.
    const xml = e.addAdvisory(XML!);
    expect(xml.hosts.map((h) => h.hostId)).toEqual(['old-1']);
    expect(xml.hosts[0]!.findings[0]).toMatchObject({ range: { lastAffected: '2.9.10+dfsg-6.7+deb11u4' }, automatic: false });
    expect(xml.hosts[0]!.findings[0]!.countermeasure[0]!.kind).toBe('manual');
    expect(e.affectedHosts('DSA-5532-1').hosts.map((h) => h.hostId)).toEqual(['web-1']);
    expect(e.affectedHosts('NOPE').hosts).toEqual([]);
  });

  it('a new host report gives its findings; a changed report says what appeared and what was resolved', () => {
    const e = new DiagnosisEngine();
    e.addAdvisories([DSA5532!, SSH!, SUDO!]);
    const first = e.updateHost(hostA);
    expect(first.firstReport).toBe(true);
    expect(vulnIds(first.findings)).toEqual(['DEBIAN-CVE-2024-6387:openssh-server', 'DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    expect(first.added).toEqual(first.findings);
    const upgraded: HostInventory = {
      ...hostA,
      packages: [
        { name: 'libssl3', version: '3.0.11-1~deb12u2', source: 'openssl' },
        { name: 'openssl', version: '3.0.11-1~deb12u2' },
        { name: 'openssh-server', version: '1:9.2p1-2+deb12u2', source: 'openssh' },
        { name: 'sudo', version: '1.9.13p3-1+deb12u1' },
      ],
    };
    const second = e.updateHost(upgraded);
    expect(second.firstReport).toBe(false);
    expect(vulnIds(second.resolved)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    expect(vulnIds(second.added)).toEqual(['LOCAL-2026-0001:sudo']);
    expect(vulnIds(second.findings)).toEqual(['DEBIAN-CVE-2024-6387:openssh-server', 'LOCAL-2026-0001:sudo']);
    expect(second.findings.find((f) => f.kind === 'vulnerable' && f.advisoryId === 'LOCAL-2026-0001')).toMatchObject({ range: { listed: true } });
    // The host index followed: DSA-5532-1 no longer affects web-1.
    expect(e.affectedHosts('DSA-5532-1').hosts).toEqual([]);
    expect(e.affectedHosts('LOCAL-2026-0001').hosts.map((h) => h.hostId)).toEqual(['web-1']);
    expect(e.removeHost('web-1')).toBe(true);
    expect(e.affectedHosts('DEBIAN-CVE-2024-6387').hosts).toEqual([]);
    expect(e.diagnoseHost('web-1')).toBeUndefined();
  });

  it('a host diagnosed earlier sees advisories added, replaced and removed later', () => {
    const e = new DiagnosisEngine();
    e.addAdvisory(DSA5532!);
    expect(vulnIds(e.updateHost(hostA).findings)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    const [other] = parseOsvDocument({
      id: 'DSA-7001-1',
      modified: '2026-01-01T00:00:00Z',
      affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '3.0.0-1' }, { fixed: '3.0.11-1~deb12u3' }] }] }],
    });
    expect(e.addAdvisory(other!).hosts.map((h) => h.hostId)).toEqual(['web-1']);
    expect(vulnIds(e.diagnoseHost('web-1')!)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl', 'DSA-7001-1:libssl3', 'DSA-7001-1:openssl']);
    // Replaced by a revision that no longer affects web-1's version.
    const revised = { ...other!, modified: '2026-02-01T00:00:00Z', affected: [{ ...other!.affected[0]!, ranges: [{ type: 'ECOSYSTEM' as const, events: [{ kind: 'introduced' as const, version: '3.0.11-1~deb12u2' }] }] }] };
    expect(e.addAdvisory(revised).hosts).toEqual([]);
    expect(vulnIds(e.diagnoseHost('web-1')!)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    // A hand-made advisory with a version that is not one is refused and changes nothing.
    const broken = { ...DSA5532!, modified: '2027-01-01T00:00:00Z', affected: [{ ...DSA5532!.affected[0]!, versions: ['not a version'] }] };
    expect(() => e.addAdvisory(broken)).toThrow(SecurityCenterError);
    expect(vulnIds(e.diagnoseHost('web-1')!)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    e.removeAdvisory('DSA-5532-1');
    expect(e.diagnoseHost('web-1')).toEqual([]);
  });

  it('plans from the countermeasure entry: an upgrade of the source becomes an upgrade of the installed binary', () => {
    const e = new DiagnosisEngine();
    e.setCountermeasureSet(CM);
    e.addAdvisories([DSA5532!, SSH!]);
    const fs = e.updateHost(hostA).findings as VulnerabilityFinding[];
    expect(fs.find((f) => f.package === 'libssl3')!.countermeasure).toEqual([
      { kind: 'upgrade', package: 'libssl3', version: '3.0.11-1~deb12u2' },
      { kind: 'command', argv: ['systemctl', 'try-restart', 'nginx.service'] },
    ]);
    // The entry's upgrade has no version: the fixed version of the matched range is used.
    expect(fs.find((f) => f.package === 'openssh-server')!.countermeasure).toEqual([
      { kind: 'upgrade', package: 'openssh-server', version: '1:9.2p1-2+deb12u3' },
      { kind: 'config', path: '/etc/ssh/sshd_config', set: { LoginGraceTime: '0' } },
    ]);
    expect(fs.find((f) => f.package === 'openssh-server')!.reason).toMatch(/planned: upgrade openssh-server to 1:9\.2p1-2\+deb12u3; set LoginGraceTime=0 in \/etc\/ssh\/sshd_config\.$/);
  });

  it('merges the findings of a host into one plan: highest upgrade per package, configs per file, commands once, conflicts to a person', () => {
    const e = new DiagnosisEngine({
      policy: {
        roles: { web: { settings: [{ path: '/etc/ssh/sshd_config', key: 'LoginGraceTime', value: '30' }, { path: '/etc/ssh/sshd_config', key: 'MaxAuthTries', value: '3' }] } },
        hosts: { 'web-1': { role: 'web' } },
      },
    });
    e.setCountermeasureSet(CM);
    const [later] = parseOsvDocument({
      id: 'DSA-7002-1',
      modified: '2026-01-01T00:00:00Z',
      affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.15-1~deb12u1' }] }] }],
    });
    e.addAdvisories([DSA5532!, SSH!, later!, SUDO!]);
    const inv: HostInventory = {
      ...hostA,
      packages: [...hostA.packages, { name: 'sudo', version: '1.9.13p3-1' }],
      files: [{ path: '/etc/ssh/sshd_config', sha256: 'a'.repeat(64), content: 'LoginGraceTime 120\n' }],
    };
    const { findings } = e.updateHost(inv);
    const plan = planCountermeasures('web-1', findings);
    expect(plan.automatic.map((p) => p.step)).toEqual([
      { kind: 'upgrade', package: 'libssl3', version: '3.0.15-1~deb12u1' },
      { kind: 'upgrade', package: 'openssh-server', version: '1:9.2p1-2+deb12u3' },
      { kind: 'upgrade', package: 'openssl', version: '3.0.15-1~deb12u1' },
      { kind: 'config', path: '/etc/ssh/sshd_config', set: { LoginGraceTime: '0', MaxAuthTries: '3' } },
      { kind: 'command', argv: ['systemctl', 'try-restart', 'nginx.service'] },
    ]);
    expect(plan.automatic[0]!.because).toEqual(['vulnerable DSA-5532-1 libssl3', 'vulnerable DSA-7002-1 libssl3']);
    expect(plan.automatic[4]!.because).toEqual(['vulnerable DSA-5532-1 libssl3', 'vulnerable DSA-5532-1 openssl']);
    expect(plan.manual.map((p) => (p.step.kind === 'manual' ? p.step.instructions : ''))).toEqual([
      expect.stringMatching(/^sudo cannot be upgraded automatically/),
      'Conflicting settings for LoginGraceTime in /etc/ssh/sshd_config on web-1: "0" and "30" were both asked for; "0" is planned, decide which must hold.',
    ]);
  });

  it('compares the source version when the inventory has it (binNMUs, own binary versions)', () => {
    const e = new DiagnosisEngine();
    const [adv] = parseOsvDocument({
      id: 'DSA-7000-1',
      modified: '2026-01-01T00:00:00Z',
      affected: [{ package: { ecosystem: 'Debian:12', name: 'gcc-defaults' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.204' }] }] }],
    });
    e.addAdvisory(adv!);
    const r = e.updateHost({
      hostId: 'build-1',
      os: deb12,
      packages: [{ name: 'gcc', version: '4:12.2.0-3', source: 'gcc-defaults', sourceVersion: '1.203' }],
    });
    expect(r.findings[0]).toMatchObject({ package: 'gcc', installed: '4:12.2.0-3', matchedVersion: '1.203', fixed: '1.204' });
    expect((r.findings[0] as VulnerabilityFinding).reason).toMatch(/gcc 4:12\.2\.0-3 \(built from source gcc-defaults 1\.203\)/);
  });

  it('matches RPM hosts with rpm ordering, ignores withdrawn advisories and hosts of other releases', () => {
    const e = new DiagnosisEngine();
    e.updateHost({ hostId: 'alma-1', os: { id: 'almalinux', versionId: '9.4', ecosystem: 'AlmaLinux:9' }, packages: [{ name: 'openssh', version: '8.7p1-38.el9_4' }] });
    e.updateHost({ hostId: 'alma-2', os: { id: 'almalinux', versionId: '9.4', ecosystem: 'AlmaLinux:9' }, packages: [{ name: 'openssh', version: '8.7p1-38.el9_4.1' }] });
    e.updateHost({ hostId: 'deb-1', os: deb12, packages: [{ name: 'openssh', version: '8.7p1-1' }] });
    expect(e.addAdvisory(ALSA!).hosts.map((h) => h.hostId)).toEqual(['alma-1']);
    expect(e.addAdvisory({ ...ALSA!, modified: '2024-08-01T00:00:00Z', withdrawn: '2024-08-01T00:00:00Z' }).hosts).toEqual([]);
    expect(e.diagnoseHost('alma-1')).toEqual([]);
    expect(e.removeAdvisory(ALSA!.id)).toBe(true);
    expect(e.size).toEqual({ hosts: 3, advisories: 0 });
  });

  it('refuses malformed inventories and changes nothing', () => {
    const e = new DiagnosisEngine();
    e.addAdvisories([DSA5532!]);
    e.updateHost(hostA);
    const refuse = (inv: unknown, code: string, why: RegExp) => {
      let err: unknown;
      try {
        e.updateHost(inv as HostInventory);
      } catch (x) {
        err = x;
      }
      expect(err).toBeInstanceOf(SecurityCenterError);
      expect((err as SecurityCenterError).code).toBe(code);
      expect((err as Error).message).toMatch(why);
    };
    refuse({ ...hostA, packages: [...hostA.packages, { name: 'evil', version: '1.0; rm -rf /' }] }, 'GS_ERR_SECURITY_BAD_VERSION', /web-1.*package evil: .*not a Debian version/);
    refuse({ ...hostA, packages: [{ name: '../x', version: '1' }] }, 'GS_ERR_SECURITY_MALFORMED_REPORT', /packages\[0\]\.name/);
    refuse({ ...hostA, packages: 'all of them' }, 'GS_ERR_SECURITY_MALFORMED_REPORT', /packages must be an array/);
    refuse({ ...hostA, hostId: '' }, 'GS_ERR_SECURITY_MALFORMED_REPORT', /hostId/);
    refuse({ ...hostA, os: { ecosystem: 12 } }, 'GS_ERR_SECURITY_MALFORMED_REPORT', /os must be/);
    refuse(null, 'GS_ERR_SECURITY_MALFORMED_REPORT', /must be an object/);
    // An ecosystem without a version ordering: packages are still checked, not matched.
    const alpine = { hostId: 'alp-1', os: { id: 'alpine', versionId: '3.20.1', ecosystem: 'Alpine:v3.20' } };
    refuse({ ...alpine, packages: [{ name: 'musl', version: 7 }] }, 'GS_ERR_SECURITY_MALFORMED_REPORT', /packages\[0\]\.version must be a string/);
    expect(e.updateHost({ ...alpine, packages: [{ name: 'musl', version: '1.2.5-r0' }] }).findings).toEqual([]);
    // web-1's earlier report still stands.
    expect(vulnIds(e.diagnoseHost('web-1')!)).toEqual(['DSA-5532-1:libssl3', 'DSA-5532-1:openssl']);
    expect(e.affectedHosts('DSA-5532-1').hosts.map((h) => h.hostId)).toEqual(['web-1']);
  });

  it('loads advisories and countermeasures from a store', async () => {
    const store = new MemorySecurityStore();
    await store.putAdvisories([DSA5532!, SSH!]);
    await store.putCountermeasures(CM);
    const e = new DiagnosisEngine();
    expect(await loadAdvisories(e, store)).toBe(2);
    const fs = e.updateHost(hostA).findings as VulnerabilityFinding[];
    expect(fs.find((f) => f.package === 'openssl')!.countermeasure[1]).toEqual({ kind: 'command', argv: ['systemctl', 'try-restart', 'nginx.service'] });
  });
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SSHD_GOOD = '# hardened\nPort 22\nPermitRootLogin no\nPasswordAuthentication no\n';
const SSHD_BAD = 'Port 22\npermitrootlogin yes\n';

const POLICY: Policy = {
  roles: {
    web: {
      services: [{ proto: 'tcp', port: 443, description: 'HTTPS' }, { proto: 'tcp', port: 22, from: ['10.0.0.0/8'] }],
      files: [{ path: '/etc/nginx/nginx.conf', sha256: sha('nginx ok') }],
      settings: [
        { path: '/etc/ssh/sshd_config', key: 'PermitRootLogin', value: 'no' },
        { path: '/etc/ssh/sshd_config', key: 'PasswordAuthentication', value: 'no' },
      ],
    },
    db: { services: [{ proto: 'tcp', port: 5432 }], allowLoopback: false },
  },
  hosts: { 'web-1': { role: 'web' }, 'db-1': { role: 'db', services: [{ proto: 'udp', port: 161 }] } },
};

describe('DiagnosisEngine: policy', () => {
  it('reports listeners no rule allows, files whose hash differs or is missing, settings that do not hold', () => {
    const e = new DiagnosisEngine({ policy: POLICY });
    const r = e.updateHost({
      hostId: 'web-1',
      os: deb12,
      packages: [],
      services: [
        { proto: 'tcp', port: 443, address: '0.0.0.0', process: 'nginx' },
        { proto: 'tcp', port: 22, address: '::', process: 'sshd' },
        { proto: 'tcp', port: 3306, address: '0.0.0.0', process: 'mariadbd' },
        { proto: 'tcp', port: 6379, address: '127.0.0.1', process: 'redis-server' },
        { proto: 'udp', port: 443, address: '0.0.0.0' },
      ],
      files: [
        { path: '/etc/ssh/sshd_config', sha256: sha(SSHD_BAD), content: SSHD_BAD },
      ],
    });
    expect(r.findings.map((f) => f.kind)).toEqual(['service-not-allowed', 'service-not-allowed', 'file-missing', 'setting-mismatch', 'setting-mismatch']);
    expect(r.findings[0]).toMatchObject({ service: { port: 3306 }, role: 'web', automatic: false });
    expect(r.findings[0]!.reason).toBe('web-1 listens on tcp/3306 at 0.0.0.0 (mariadbd), which no service rule of role "web" allows.');
    expect(r.findings[1]).toMatchObject({ service: { proto: 'udp', port: 443 } });
    expect(r.findings[3]).toMatchObject({
      key: 'PermitRootLogin',
      found: 'yes',
      required: 'no',
      countermeasure: [{ kind: 'config', path: '/etc/ssh/sshd_config', set: { PermitRootLogin: 'no' } }],
      automatic: true,
    });
    expect(r.findings[4]).toMatchObject({ key: 'PasswordAuthentication', countermeasure: [{ kind: 'config' }] });
    expect(r.findings[4]!.reason).toMatch(/PasswordAuthentication in \/etc\/ssh\/sshd_config on web-1 is not set, but role "web" requires "no"/);
    // Fixed: the right files, no stray listener.
    const fixed = e.updateHost({
      hostId: 'web-1',
      os: deb12,
      packages: [],
      services: [{ proto: 'tcp', port: 443, address: '0.0.0.0' }],
      files: [
        { path: '/etc/ssh/sshd_config', sha256: sha(SSHD_GOOD), content: SSHD_GOOD },
        { path: '/etc/nginx/nginx.conf', sha256: sha('nginx ok') },
      ],
    });
    expect(fixed.findings).toEqual([]);
    expect(fixed.resolved).toHaveLength(5);
    // A changed file.
    const changed = e.updateHost({ hostId: 'web-1', os: deb12, packages: [], files: [{ path: '/etc/nginx/nginx.conf', sha256: sha('tampered') }] });
    expect(changed.added.map((f) => f.kind)).toEqual(['file-mismatch']);
    expect(changed.added[0]).toMatchObject({ reported: sha('tampered'), required: sha('nginx ok') });
  });

  it('host rules add to the role; loopback is exempt unless the role says otherwise; unlisted hosts get no policy checks', () => {
    const e = new DiagnosisEngine({ policy: POLICY });
    const db = e.updateHost({
      hostId: 'db-1',
      os: deb12,
      packages: [],
      services: [
        { proto: 'udp', port: 161, address: '0.0.0.0' },
        { proto: 'tcp', port: 5432, address: '0.0.0.0' },
        { proto: 'tcp', port: 6379, address: '127.0.0.1' },
      ],
    });
    expect(db.findings.map((f) => (f.kind === 'service-not-allowed' ? f.service.port : 0))).toEqual([6379]);
    expect(e.updateHost({ hostId: 'stray', os: deb12, packages: [], services: [{ proto: 'tcp', port: 1, address: '0.0.0.0' }] }).findings).toEqual([]);
    e.setPolicy({ ...POLICY, defaultRole: 'db' });
    expect(e.diagnoseHost('stray')!.map((f) => f.kind)).toEqual(['service-not-allowed']);
  });

  it('checks a policy when it is set, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ roles: {}, hosts: { h: { role: 'web' } } }, /hosts\.h\.role: "web" is not a role/],
      [{ roles: { web: { services: [{ proto: 'sctp', port: 1 }] } }, hosts: {} }, /roles\.web\.services\[0\]\.proto/],
      [{ roles: { web: { services: [{ proto: 'tcp', port: 70000 }] } }, hosts: {} }, /\.port: must be an integer/],
      [{ roles: { web: { services: [{ proto: 'tcp', port: 22, from: ['10.0.0.0/33'] }] } }, hosts: {} }, /from\[0\]: "10\.0\.0\.0\/33" is not/],
      [{ roles: { web: { services: [{ proto: 'tcp', port: 22, from: ['10.0.0.1/8'] }] } }, hosts: {} }, /from\[0\]: "10\.0\.0\.1\/8" is not/],
      [{ roles: { web: { files: [{ path: '/etc/../shadow', sha256: 'a'.repeat(64) }] } }, hosts: {} }, /files\[0\]\.path/],
      [{ roles: { web: { files: [{ path: '/etc/x', sha256: 'XYZ' }] } }, hosts: {} }, /files\[0\]\.sha256/],
      [{ roles: { web: { settings: [{ path: '/etc/x', key: 'a b', value: 'c' }] } }, hosts: {} }, /settings\[0\]\.key/],
      [{ roles: {}, hosts: {}, defaultRole: 'none' }, /defaultRole/],
      [{ roles: [], hosts: {} }, /roles: must be an object/],
    ];
    for (const [p, why] of bad) {
      let err: unknown;
      try {
        checkPolicy(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SecurityCenterError);
      expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_MALFORMED_POLICY');
      expect((err as Error).message).toMatch(why);
    }
    expect(() => new DiagnosisEngine({ policy: bad[0]![0] as Policy })).toThrow(SecurityCenterError);
  });

  it('reads settings as sshd and sysctl write them', () => {
    const text = '# PermitRootLogin yes\n  permitrootlogin   prohibit-password  \nnet.ipv4.ip_forward = 0\nnet.ipv4.ip_forward=1\n';
    expect(readSetting(text, 'PermitRootLogin')).toBe('prohibit-password');
    expect(readSetting(text, 'net.ipv4.ip_forward')).toBe('1');
    expect(readSetting(text, 'Port')).toBeUndefined();
  });
});

/** The OSV schema's evaluation as written there (sorted events, walked in order), with dpkg ordering. */
function osvAffected(af: Advisory['affected'][number], v: string): boolean {
  if (af.versions.some((x) => compareDebianVersions(x, v) === 0)) return true;
  for (const r of af.ranges) {
    const ev = [...r.events].sort((a, b) => {
      if (a.version === '0' && a.kind === 'introduced') return -1;
      if (b.version === '0' && b.kind === 'introduced') return 1;
      return compareDebianVersions(a.version, b.version) || (a.kind === 'introduced' ? -1 : b.kind === 'introduced' ? 1 : 0);
    });
    let affected = false;
    for (const e of ev) {
      if (e.kind === 'introduced' && (e.version === '0' || compareDebianVersions(v, e.version) >= 0)) affected = true;
      else if (e.kind === 'fixed' && compareDebianVersions(v, e.version) >= 0) affected = false;
      else if (e.kind === 'lastAffected' && compareDebianVersions(v, e.version) > 0) affected = false;
    }
    if (affected) return true;
  }
  return false;
}

/** The plain definition: every host × every package × every advisory entry. */
function naive(hosts: Map<string, HostInventory>, advisories: Map<string, Advisory>): Set<string> {
  const out = new Set<string>();
  for (const h of hosts.values()) {
    for (const p of h.packages) {
      for (const a of advisories.values()) {
        if (a.withdrawn) continue;
        for (const af of a.affected) {
          if (af.ecosystem !== h.os.ecosystem || af.name !== (p.source ?? p.name)) continue;
          if (osvAffected(af, p.sourceVersion ?? p.version)) out.add(`${h.hostId} ${a.id} ${p.name}`);
        }
      }
    }
  }
  return out;
}

describe('DiagnosisEngine against the plain definition (property)', () => {
  it('both directions agree with checking everything, through updates and removals', () => {
    const version = fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom('', '~rc1', '+b1'), fc.integer({ min: 1, max: 3 })).map(
      ([e, u, s, r]) => `${e ? '1:' : ''}${u}.0${s}-${r}`,
    );
    const pkgName = fc.constantFrom('aa', 'bb', 'cc');
    const eco = fc.constantFrom('Debian:12', 'Debian:12', 'Debian:12', 'Debian:11');
    const inv = fc.record({
      hostId: fc.constantFrom('h1', 'h2', 'h3', 'h4'),
      eco,
      packages: fc.array(fc.tuple(pkgName, fc.boolean(), version), { maxLength: 5 }),
    });
    const adv = fc.record({
      id: fc.constantFrom('A-1', 'A-2', 'A-3'),
      eco,
      name: pkgName,
      intro: fc.option(version, { nil: undefined }),
      end: fc.option(fc.tuple(fc.constantFrom('fixed', 'last_affected'), version), { nil: undefined }),
      listed: fc.array(version, { maxLength: 2 }),
      withdrawn: fc.boolean(),
    });
    const op = fc.oneof(
      inv.map((x) => ({ t: 'host' as const, x })),
      adv.map((x) => ({ t: 'adv' as const, x })),
      fc.constantFrom('h1', 'h2').map((x) => ({ t: 'rmhost' as const, x })),
      fc.constantFrom('A-1', 'A-2').map((x) => ({ t: 'rmadv' as const, x })),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
        const e = new DiagnosisEngine();
        const hosts = new Map<string, HostInventory>();
        const advs = new Map<string, Advisory>();
        let clock = 0;
        for (const o of ops) {
          if (o.t === 'host') {
            const h: HostInventory = {
              hostId: o.x.hostId,
              os: { id: 'debian', versionId: o.x.eco.slice(7), ecosystem: o.x.eco },
              packages: o.x.packages.map(([n, bin, v], i) => (bin ? { name: `lib${n}${i}`, version: v, source: n } : { name: n, version: v })),
            };
            hosts.set(h.hostId, h);
            const d = e.updateHost(h);
            const mine = new Set(d.findings.map((f) => (f.kind === 'vulnerable' ? `${f.hostId} ${f.advisoryId} ${f.package}` : '')));
            const want = [...naive(new Map([[h.hostId, h]]), advs)];
            expect(new Set(want)).toEqual(mine);
          } else if (o.t === 'adv') {
            const events: Record<string, string>[] = [{ introduced: o.x.intro ?? '0' }];
            if (o.x.end) events.push({ [o.x.end[0]]: o.x.end[1] });
            const [a] = parseOsvDocument({
              id: o.x.id,
              modified: new Date(Date.UTC(2026, 0, 1, 0, 0, ++clock)).toISOString(),
              ...(o.x.withdrawn ? { withdrawn: '2026-02-01T00:00:00Z' } : {}),
              affected: [{ package: { ecosystem: o.x.eco, name: o.x.name }, ranges: [{ type: 'ECOSYSTEM', events }], versions: o.x.listed }],
            });
            advs.set(a!.id, a!);
            const impact = e.addAdvisory(a!);
            const mine = new Set(impact.hosts.flatMap((h) => h.findings.map((f) => `${f.hostId} ${f.advisoryId} ${f.package}`)));
            const want = new Set([...naive(hosts, advs)].filter((k) => k.split(' ')[1] === a!.id));
            expect(mine).toEqual(want);
          } else if (o.t === 'rmhost') {
            hosts.delete(o.x);
            e.removeHost(o.x);
          } else {
            advs.delete(o.x);
            e.removeAdvisory(o.x);
          }
        }
        // At the end, every host's findings and every advisory's hosts agree with the definition.
        const all = naive(hosts, advs);
        const fromHosts = new Set(e.hostIds().flatMap((id) => e.diagnoseHost(id)!.map((f) => (f.kind === 'vulnerable' ? `${f.hostId} ${f.advisoryId} ${f.package}` : ''))));
        expect(fromHosts).toEqual(all);
        const fromAdvs = new Set([...advs.keys()].flatMap((id) => e.affectedHosts(id).hosts.flatMap((h) => h.findings.map((f) => `${f.hostId} ${f.advisoryId} ${f.package}`))));
        expect(fromAdvs).toEqual(all);
      }),
      { numRuns: 500 },
    );
  });
});
