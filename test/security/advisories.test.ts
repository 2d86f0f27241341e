import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AffectedMatcher,
  importAdvisoryFiles,
  parseCountermeasureFile,
  parseOsv,
  parseOsvDocument,
  type Advisory,
} from '../../src/delivery/security/advisories/index.js';
import { SecurityCenterError } from '../../src/errors/index.js';

const FIX = fileURLToPath(new URL('./fixtures/osv/', import.meta.url));
const read = (name: string) => readFile(join(FIX, name));

function refusal(fn: () => unknown): SecurityCenterError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SecurityCenterError);
    expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_MALFORMED_ADVISORY');
    return err as SecurityCenterError;
  }
  throw new Error('expected a refusal');
}

const base = (over: Record<string, unknown> = {}, affected: Record<string, unknown> = {}) => ({
  id: 'DSA-1-1',
  modified: '2026-01-01T00:00:00Z',
  affected: [
    {
      package: { ecosystem: 'Debian:12', name: 'zlib' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1:1.2.13.dfsg-1' }] }],
      ...affected,
    },
  ],
  ...over,
});

describe('OSV import', () => {
  it('reads a Debian DSA record: source package, ranges, listed versions, references', async () => {
    const [a] = parseOsv(await read('DSA-5532-1.json'), 'DSA-5532-1.json');
    expect(a).toMatchObject({
      id: 'DSA-5532-1',
      modified: '2023-10-26T09:14:32Z',
      published: '2023-10-24T00:00:00Z',
      summary: 'openssl - security update',
      related: ['CVE-2023-5363', 'CVE-2023-5678'],
      references: [{ type: 'ADVISORY', url: 'https://www.debian.org/security/2023/dsa-5532' }],
    });
    expect(a!.affected).toHaveLength(1);
    expect(a!.affected[0]).toMatchObject({
      ecosystem: 'Debian:12',
      name: 'openssl',
      ranges: [{ type: 'ECOSYSTEM', events: [{ kind: 'introduced', version: '0' }, { kind: 'fixed', version: '3.0.11-1~deb12u2' }] }],
      versions: ['3.0.9-1', '3.0.11-1~deb12u1'],
    });
  });

  it('matches with dpkg ordering, so backported fixes are not vulnerable', async () => {
    const [a] = parseOsv(await read('DSA-5532-1.json'));
    const m = new AffectedMatcher(a!.affected[0]!);
    expect(m.matchText('3.0.11-1~deb12u1')).toEqual({ introduced: '0', fixed: '3.0.11-1~deb12u2' });
    expect(m.matchText('3.0.9-1')).toEqual({ introduced: '0', fixed: '3.0.11-1~deb12u2' });
    expect(m.matchText('3.0.11-1~deb12u2')).toBeUndefined();
    expect(m.matchText('3.0.11-1~deb12u2+b1')).toBeUndefined(); // binNMU of the fixed version
    expect(m.matchText('3.0.13-1~deb12u1')).toBeUndefined(); // a later point release
    expect(m.matchText('3.0.11-1')).toBeUndefined(); // 3.0.11-1 (testing) > 3.0.11-1~deb12u2
  });

  it('reads epochs, several releases, per-CVE records and severity', async () => {
    const [a] = parseOsv(await read('DEBIAN-CVE-2024-6387.json'));
    expect(a!.affected.map((x) => x.ecosystem)).toEqual(['Debian:12', 'Debian:13']);
    expect(a!.severity[0]!.type).toBe('CVSS_V3');
    const m = new AffectedMatcher(a!.affected[0]!);
    expect(m.matchText('1:9.2p1-2+deb12u2')).toEqual({ introduced: '1:8.5p1-1', fixed: '1:9.2p1-2+deb12u3' });
    expect(m.matchText('1:9.2p1-2+deb12u3')).toBeUndefined();
    expect(m.matchText('1:8.4p1-5+deb11u3')).toBeUndefined(); // before introduced
    expect(m.matchText('9.9')).toBeUndefined(); // no epoch: older than any 1:…
  });

  it('reads an array: last_affected, versions-only entries, RPM ecosystems; GIT ranges are skipped', async () => {
    const list = parseOsv(await read('bundle.json'), 'bundle.json');
    expect(list.map((a) => a.id)).toEqual(['DLA-3800-1', 'LOCAL-2026-0001', 'ALSA-2024:4312']);
    const xml = new AffectedMatcher(list[0]!.affected[0]!);
    expect(list[0]!.affected[0]!.ranges).toHaveLength(1);
    expect(xml.matchText('2.9.10+dfsg-6.7+deb11u4')).toEqual({ introduced: '2.9.10+dfsg-6', lastAffected: '2.9.10+dfsg-6.7+deb11u4' });
    expect(xml.matchText('2.9.10+dfsg-6.7+deb11u5')).toBeUndefined();
    expect(xml.matchText('2.9.10+dfsg-5')).toBeUndefined();
    const sudo = new AffectedMatcher(list[1]!.affected[0]!);
    expect(sudo.matchText('1.9.13p3-1')).toEqual({ listed: true });
    expect(sudo.matchText('0:1.9.13p3-1+deb12u1')).toEqual({ listed: true }); // equal under dpkg ordering
    expect(sudo.matchText('1.9.13p3-1+deb12u2')).toBeUndefined();
    const ssh = new AffectedMatcher(list[2]!.affected[0]!);
    expect(ssh.scheme.name).toBe('rpm');
    expect(ssh.matchText('8.7p1-38.el9_4')).toBeDefined();
    expect(ssh.matchText('8.7p1-38.el9_4.1')).toBeUndefined();
  });

  it('evaluates several intervals, limits and unsorted events as the OSV schema says', () => {
    const [a] = parseOsvDocument(
      base({}, {
        ranges: [
          { type: 'ECOSYSTEM', events: [{ fixed: '1.5-1' }, { introduced: '2.0-1' }, { introduced: '1.0-1' }, { fixed: '2.3-1' }] },
          { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { limit: '0.5' }] },
        ],
      }),
    );
    const m = new AffectedMatcher(a!.affected[0]!);
    expect(m.matchText('0.9')).toBeUndefined();
    expect(m.matchText('0.4')).toEqual({ introduced: '0' });
    expect(m.matchText('1.2-1')).toEqual({ introduced: '1.0-1', fixed: '1.5-1' });
    expect(m.matchText('1.7-1')).toBeUndefined();
    expect(m.matchText('2.3~rc1-1')).toEqual({ introduced: '2.0-1', fixed: '2.3-1' });
    expect(m.matchText('2.3-1')).toBeUndefined();
  });

  it('refuses bad input naming the entry and the field, and imports nothing from that document', async () => {
    expect(refusal(() => parseOsv(readFileText('bad/bad-version.json'), 'bad-version.json')).message).toMatch(
      /bad-version\.json: DSA-9999-1: affected\[0\]\.ranges\[0\]\.events\[1\]\.fixed: .*not a Debian version/,
    );
    expect(refusal(() => parseOsv(readFileText('bad/unknown-range.json'), 'u.json')).message).toMatch(/u\.json\[1\]: DSA-9997-1: affected\[0\]\.ranges\[0\]\.type: unknown range type/);
    expect(refusal(() => parseOsv(readFileText('bad/wrong-type.json'), 'w.json')).message).toMatch(/DSA-9996-1: aliases: must be an array/);
    const cases: [unknown, RegExp][] = [
      [[], /./], // an empty array is fine: nothing
      [42, /must be an object/],
      [{ ...base(), id: 'x y' }, /id: "x y" is not an advisory ID/],
      [{ ...base(), id: 'A'.repeat(200) }, /id: longer than 128/],
      [{ ...base(), modified: 'yesterday' }, /modified: "yesterday" is not an RFC 3339/],
      [{ ...base(), modified: undefined }, /modified: must be a string/],
      [{ ...base(), summary: 'x'.repeat(2000) }, /summary: longer than 1024/],
      [{ ...base(), summary: 'a\u0000b' }, /summary: contains control/],
      [base({}, { package: { ecosystem: 'npm', name: 'left-pad' } }), /ecosystem: "npm" has no version ordering/],
      [base({}, { package: { ecosystem: 'Debian:12', name: '../etc/passwd' } }), /package\.name: .* is not a package name/],
      [base({}, { package: 'zlib' }), /package: must be an object/],
      [base({}, { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }] }] }), /SEMVER ranges do not apply/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: [] }] }), /events: must not be empty/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: [{ fixed: '1.0' }] }] }), /has no "introduced"/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0', fixed: '1.0' }] }] }), /exactly one of/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1' }, { last_affected: '2' }] }] }), /both "fixed" and "last_affected"/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: 0 }] }] }), /introduced: must be a string/],
      [base({}, { ranges: [{ type: 'ECOSYSTEM', events: Array.from({ length: 300 }, () => ({ introduced: '0' })) }] }), /more than 256/],
      [base({}, { versions: ['1.0', 'not a version'] }), /versions\[1\]: .*not a Debian version/],
      [base({ references: [{ type: 'ADVISORY', url: 'javascript:alert(1)' }] }), /references\[0\]\.url: .*not an http\(s\) URL/],
      [base({ references: [{ type: 'BLOG', url: 'https://example.org/' }] }), /unknown reference type/],
    ];
    for (const [doc, why] of cases) {
      if (Array.isArray(doc) && doc.length === 0) {
        expect(parseOsvDocument(doc)).toEqual([]);
        continue;
      }
      expect(refusal(() => parseOsvDocument(doc, 'doc')).message).toMatch(why);
    }
    expect(refusal(() => parseOsvDocument([base(), base()], 'dup')).message).toMatch(/DSA-1-1: appears twice/);
    expect(refusal(() => parseOsv('{"id":', 'trunc.json')).message).toMatch(/trunc\.json: not JSON/);
    expect(refusal(() => parseOsv(new Uint8Array([0x7b, 0xff, 0x7d]), 'b.json')).message).toMatch(/not UTF-8/);
    expect(refusal(() => parseOsv(' '.repeat(16 * 1024 * 1024 + 1), 'big.json')).message).toMatch(/more than the limit/);
  });

  it('can skip entries in ecosystems it cannot order, when asked', () => {
    const doc = base({}, { package: { ecosystem: 'PyPI', name: 'requests' } });
    const [a] = parseOsvDocument(doc, 'x', { unsupportedEcosystems: 'skip' });
    expect(a!.affected).toEqual([]);
  });
});

function readFileText(name: string): string {
  return readFileSync(join(FIX, name), 'utf8');
}

describe('countermeasure files', () => {
  it('reads the four kinds', async () => {
    const set = parseCountermeasureFile(await read('countermeasures.json'), 'countermeasures.json');
    expect(set.get('DSA-5532-1')).toEqual([
      { kind: 'upgrade', package: 'openssl', version: '3.0.11-1~deb12u2' },
      { kind: 'command', argv: ['systemctl', 'try-restart', 'nginx.service'] },
    ]);
    expect(set.get('DEBIAN-CVE-2024-6387')).toEqual([
      { kind: 'upgrade', package: 'openssh' },
      { kind: 'config', path: '/etc/ssh/sshd_config', set: { LoginGraceTime: '0' } },
    ]);
    expect(set.get('LOCAL-2026-0001')![0]!.kind).toBe('manual');
  });

  it('refuses bad entries, naming the advisory and the field', () => {
    const doc = (steps: unknown) => JSON.stringify({ format: 'gatesock-countermeasures/1', countermeasures: { 'DSA-1-1': steps } });
    const cases: [string, RegExp][] = [
      [JSON.stringify({ format: 'other', countermeasures: {} }), /format: must be "gatesock-countermeasures\/1"/],
      [JSON.stringify({ format: 'gatesock-countermeasures/1', countermeasures: {}, extra: 1 }), /extra: unknown field/],
      [doc([]), /DSA-1-1: must hold at least one step/],
      [doc({ kind: 'manual' }), /DSA-1-1: must be an array/],
      [doc([{ kind: 'reboot' }]), /DSA-1-1\[0\]\.kind: must be "upgrade"/],
      [doc([{ kind: 'upgrade', package: 'openssl', version: '3.0 beta' }]), /DSA-1-1\[0\]\.version: .*not a Debian or RPM version/],
      [doc([{ kind: 'upgrade', package: 'openssl; rm -rf /' }]), /\[0\]\.package: .*not a package name/],
      [doc([{ kind: 'upgrade', package: 'openssl', versoin: '1' }]), /\[0\]\.versoin: unknown field/],
      [doc([{ kind: 'config', path: 'etc/ssh/sshd_config', set: { A: 'b' } }]), /\[0\]\.path: .*not an absolute path/],
      [doc([{ kind: 'config', path: '/etc/ssh/../shadow', set: { A: 'b' } }]), /\[0\]\.path: .*not a normalised path/],
      [doc([{ kind: 'config', path: '/etc/x', set: {} }]), /\[0\]\.set: must set at least one key/],
      [doc([{ kind: 'config', path: '/etc/x', set: { A: 'b\nPermitRootLogin yes' } }]), /\[0\]\.set\.A: must be one line/],
      [doc([{ kind: 'config', path: '/etc/x', set: { 'A B': 'c' } }]), /\[0\]\.set: "A B" is not a setting name/],
      [doc([{ kind: 'command', argv: [] }]), /\[0\]\.argv: must name a program/],
      [doc([{ kind: 'command', argv: ['ls', 3] }]), /\[0\]\.argv\[1\]: must be a string/],
      [doc([{ kind: 'manual', instructions: '' }]), /\[0\]\.instructions: must not be empty/],
      [JSON.stringify({ format: 'gatesock-countermeasures/1', countermeasures: { 'bad id': [] } }), /"bad id" is not an advisory ID/],
    ];
    for (const [text, why] of cases) expect(refusal(() => parseCountermeasureFile(text, 'cm.json')).message).toMatch(why);
  });
});

describe('importAdvisoryFiles', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reads a folder of OSV and countermeasure files; a bad file contributes nothing and is listed', async () => {
    const r = await importAdvisoryFiles([FIX, join(FIX, 'bad')]);
    expect(r.advisories.map((a: Advisory) => a.id).sort()).toEqual(
      ['ALSA-2024:4312', 'DEBIAN-CVE-2024-6387', 'DLA-3800-1', 'DLA-3905-1', 'DSA-5532-1', 'LOCAL-2026-0001'].sort(),
    );
    expect([...r.countermeasures.keys()].sort()).toEqual(['DEBIAN-CVE-2024-6387', 'DSA-5532-1', 'LOCAL-2026-0001']);
    expect(r.rejected.map((x) => x.file.split('/').pop()).sort()).toEqual(['bad-version.json', 'unknown-range.json', 'wrong-type.json']);
    // DSA-9998-1 is valid by itself but shares a document with a bad record: not imported.
    expect(r.advisories.some((a) => a.id === 'DSA-9998-1')).toBe(false);
  });

  it('does not follow symbolic links in a folder, and refuses a second definition of an ID', async () => {
    const d = await mkdtemp(join(tmpdir(), 'gs-osv-'));
    dirs.push(d);
    await symlink(join(FIX, 'DSA-5532-1.json'), join(d, 'a-link.json'));
    await writeFile(join(d, 'b.json'), await read('DLA-3905-1.json'));
    await writeFile(join(d, 'c.json'), await read('DLA-3905-1.json'));
    const r = await importAdvisoryFiles([d, join(d, 'missing.json')]);
    expect(r.advisories.map((a) => a.id)).toEqual(['DLA-3905-1']);
    expect(r.rejected.map((x) => x.error.message)).toEqual([expect.stringMatching(/ENOENT/), expect.stringMatching(/DLA-3905-1: also defined in .*b\.json/)]);
  });
});
