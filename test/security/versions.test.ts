import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareDebianVersions,
  compareParsedDebian,
  compareParsedDebianReference,
  compareRpmVersions,
  debianVersionKey,
  parseDebianVersion,
  parseRpmVersion,
  rpmVersionKey,
  schemeForEcosystem,
} from '../../src/delivery/security/versions/index.js';
import { SecurityCenterError } from '../../src/errors/index.js';

function hasDpkg(): boolean {
  try {
    execFileSync('dpkg', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const DPKG = hasDpkg();
if (!DPKG) console.log('versions.test: dpkg is not installed; the comparison against `dpkg --compare-versions` is skipped');

/** a, b, expected sign of compare(a, b). Checked below against dpkg itself when it is installed. */
const DEBIAN_CASES: ReadonlyArray<readonly [string, string, -1 | 0 | 1]> = [
  // deb-version(7): epoch first.
  ['1:0.1', '2.0', 1],
  ['3:1.0', '2:9.9', 1],
  ['0:4.2', '4.2', 0],
  ['1', '0:1', 0],
  ['0', '0:0-0', 0],
  // Absent revision orders like "0".
  ['2.4-0', '2.4', 0],
  ['2.4-1', '2.4', 1],
  // "~" sorts before everything, even the end of the part: ~~ < ~~a < ~ < end < a.
  ['1.0~~', '1.0~~a', -1],
  ['1.0~~a', '1.0~', -1],
  ['1.0~', '1.0', -1],
  ['1.0', '1.0a', -1],
  ['1.0~rc1', '1.0', -1],
  ['1.0~rc1-1', '1.0-1', -1],
  ['2.6~beta2-1', '2.6~beta10-1', -1],
  ['1.0-1~bpo1', '1.0-1', -1],
  ['1~', '1', -1],
  // Letters before non-letters; non-letters by ASCII.
  ['1.0a', '1.0+', -1],
  ['1.0+', '1.0.', -1],
  ['1.0Z', '1.0a', -1],
  ['1.0~A', '1.0~a', -1],
  // Digit runs compare numerically.
  ['1.09', '1.9', 0],
  ['1.10', '1.9', 1],
  ['1.0000-1', '1.0-1', 0],
  ['1a', '1000a', -1],
  ['2.0.10', '2.0.9', 1],
  ['53', '52', 1],
  ['1.011-1', '1.06-2', 1],
  // End of part vs. a separator.
  ['1.0', '1.0.0', -1],
  ['1.0', '1.0.', -1],
  ['1.', '1.0', 0],
  ['5.2', '5.2.', -1],
  ['1.2.0', '1.2.0+dfsg', -1],
  ['1.0.8+nmu1', '1.0.8', 1],
  ['3.11', '3.10+nmu1', 1],
  ['0.9j-20080306-4', '0.9i-20070324-2', 1],
  ['1:3.8.1-1', '3.8.GA-1', 1],
  ['1.0.1+gpl-1', '1.0.1-2', 1],
  ['12345+that-is-a-ver-0', '12345+that-is-a-ver-10', -1],
  // Security backports: the fixed version of a DSA against what a host runs.
  ['3.0.11-1~deb12u2', '3.0.11-1~deb12u1', 1],
  ['3.0.11-1~deb12u2', '3.0.11-1', -1],
  ['1.1.1n-0+deb11u5', '1.1.1n-0+deb11u4', 1],
  ['1.1.1n-0+deb11u5', '1.1.1n-1', -1],
  ['2.36-9+deb12u4', '2.36-9+deb12u10', -1],
  ['1:9.18.24-1', '1:9.18.19-1~deb12u1', 1],
  ['7.88.1-10+deb12u5', '7.88.1-10+deb12u5+b1', -1],
  ['5.10.0-28', '5.10.0-28.1', -1],
  // Colons in the upstream part, allowed with an epoch.
  ['1:2:3-1', '1:2:3-1', 0],
  ['1:2:3-1', '1:2:4-1', -1],
  // Hyphens in the upstream part: the revision is after the last one.
  ['1.2-3-4', '1.2-3-5', -1],
  ['1.2-4-1', '1.2-3-9', 1],
];

const BAD_DEBIAN: ReadonlyArray<readonly [string, RegExp]> = [
  ['', /empty/],
  [':1.0', /epoch .* empty/],
  ['a:1.0', /epoch is not a decimal/],
  ['-1:1.0', /epoch is not a decimal/],
  ['99999999999:1.0', /epoch is larger/],
  ['1.0-', /revision .* empty/],
  ['-1', /upstream version is empty/],
  ['1.0-a_b', /revision may hold/],
  ['abc', /must start with a digit/],
  ['~1', /must start with a digit/],
  ['1.0 1', /upstream version may hold/],
  [' 1.0', /must start with a digit/],
  ['1.0\n', /upstream version may hold/],
  ['1.0_1', /upstream version may hold/],
  ['1.0:2', /epoch is not a decimal/],
  ['1.0/../../etc', /upstream version may hold/],
  ['1'.repeat(300), /longer than 256/],
];

describe('Debian versions (deb-version(7))', () => {
  it.each(DEBIAN_CASES)('%s vs %s → %i', (a, b, want) => {
    expect(compareDebianVersions(a, b)).toBe(want);
    expect(compareDebianVersions(b, a)).toBe((-want || 0) as -1 | 0 | 1);
    const keyEqual = debianVersionKey(parseDebianVersion(a)) === debianVersionKey(parseDebianVersion(b));
    expect(keyEqual).toBe(want === 0);
  });

  it('parses epoch, upstream and revision', () => {
    expect(parseDebianVersion('1:2.30-1+deb12u1')).toMatchObject({ epoch: 1, upstream: '2.30', revision: '1+deb12u1' });
    expect(parseDebianVersion('2.30')).toMatchObject({ epoch: 0, upstream: '2.30', revision: '' });
    expect(parseDebianVersion('1.2-3-4')).toMatchObject({ upstream: '1.2-3', revision: '4' });
    expect(parseDebianVersion('1:2:3')).toMatchObject({ epoch: 1, upstream: '2:3', revision: '' });
  });

  it('refuses strings that are not versions, saying why', () => {
    for (const [text, why] of BAD_DEBIAN) {
      let err: unknown;
      try {
        parseDebianVersion(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(SecurityCenterError);
      expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_BAD_VERSION');
      expect((err as Error).message, text).toMatch(why);
    }
    expect(() => parseDebianVersion(42 as unknown as string)).toThrow(/not a string/);
    expect(() => compareDebianVersions('1.0', 'x')).toThrow(SecurityCenterError);
  });

  it('orders a shuffled list the way the rules say', () => {
    const sorted = ['1.0~~', '1.0~~a', '1.0~', '1.0~rc1', '1.0', '1.0-0.1', '1.0-1~bpo', '1.0-1', '1.0-1+b1', '1.0a', '1.0+dfsg', '1.0.0', '1.1', '1:0.1'];
    const shuffled = [...sorted].reverse();
    shuffled.sort(compareDebianVersions);
    expect(shuffled).toEqual(sorted);
  });

  it('is antisymmetric and transitive, and keys agree with equality (property)', () => {
    const part = fc.stringMatching(/^[0-9][0-9a-c.+~]{0,6}$/);
    const rev = fc.option(fc.stringMatching(/^[0-9a-c.+~]{1,5}$/), { nil: undefined });
    const epoch = fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined });
    const version = fc.tuple(epoch, part, rev).map(([e, u, r]) => `${e === undefined ? '' : `${e}:`}${u}${r === undefined ? '' : `-${r}`}`);
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        const ab = compareDebianVersions(a, b);
        expect(compareDebianVersions(b, a)).toBe((-ab || 0) as 0 | 1 | -1);
        const ka = debianVersionKey(parseDebianVersion(a));
        const kb = debianVersionKey(parseDebianVersion(b));
        expect(ka === kb).toBe(ab === 0);
        if (ab <= 0 && compareDebianVersions(b, c) <= 0) expect(compareDebianVersions(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('sort keys order versions exactly as the dpkg algorithm written out does (reference twin, property)', () => {
    // Every character the parser allows, weighted towards the ones that decide orderings.
    const upstream = fc.stringMatching(/^[0-9][0-9aZz.+~:-]{0,7}$/);
    const revision = fc.option(fc.stringMatching(/^[0-9aZz.+~]{1,6}$/), { nil: undefined });
    const version = fc
      .tuple(fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }), upstream, revision)
      .map(([e, u, r]) => `${e === undefined ? (u.includes(':') ? '0:' : '') : `${e}:`}${u}${r === undefined ? (u.includes('-') ? '-0' : '') : `-${r}`}`);
    fc.assert(
      fc.property(version, version, (a, b) => {
        const pa = parseDebianVersion(a);
        const pb = parseDebianVersion(b);
        expect(Math.sign(compareParsedDebian(pa, pb)), `${a} vs ${b}`).toBe(Math.sign(compareParsedDebianReference(pa, pb)));
      }),
      { numRuns: 5000 },
    );
    for (const [a, b, want] of DEBIAN_CASES) {
      expect(Math.sign(compareParsedDebianReference(parseDebianVersion(a), parseDebianVersion(b)))).toBe(want);
    }
  });

  it.skipIf(!DPKG)('agrees with `dpkg --compare-versions` on the table and on random versions', () => {
    const rel = (x: -1 | 0 | 1) => (x < 0 ? 'lt' : x > 0 ? 'gt' : 'eq');
    const dpkgSays = (a: string, op: string, b: string): boolean => {
      try {
        execFileSync('dpkg', ['--compare-versions', '--', a, op, b], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    };
    for (const [a, b, want] of DEBIAN_CASES) expect(dpkgSays(a, rel(want), b), `${a} ${rel(want)} ${b}`).toBe(true);
    // Random versions over the characters that matter (digits, letters, . + ~, epochs, revisions).
    const part = fc.stringMatching(/^[0-9][0-9aAz.+~]{0,5}$/);
    const rev = fc.option(fc.stringMatching(/^[0-9aAz.+~]{1,4}$/), { nil: undefined });
    const version = fc
      .tuple(fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }), part, rev)
      .map(([e, u, r]) => `${e === undefined ? '' : `${e}:`}${u}${r === undefined ? '' : `-${r}`}`);
    const pairs = fc.sample(fc.tuple(version, version), { numRuns: 150, seed: 20261124 });
    for (const [a, b] of pairs) {
      expect(dpkgSays(a, rel(compareDebianVersions(a, b)), b), `${a} vs ${b}`).toBe(true);
    }
  });
});

/** a, b, expected sign (rpmvercmp semantics, rpm ≥ 4.15). */
const RPM_CASES: ReadonlyArray<readonly [string, string, -1 | 0 | 1]> = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1', 1],
  ['5.5p1', '5.5p2', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['xyz10', 'xyz10.1', -1],
  ['xyz.4', '8', -1],
  ['1b.fc17', '1b.fc17', 0],
  ['1b.fc17', '1.fc17', -1],
  ['1g.fc17', '1.fc17', 1],
  ['1.0a', '1.0', 1],
  ['1.010', '1.10', 0],
  ['1.0010', '1.010', 0],
  ['1_0', '1.0', 0],
  ['1..0', '1.0', 0],
  ['a', 'b', -1],
  ['abc', 'abd', -1],
  ['1a', '1.a', 0],
  // Tilde: pre-releases sort before the release.
  ['1.0~rc1', '1.0', -1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0~', '1.0', -1],
  // Caret: post-release snapshots sort after the base but before the next version.
  ['1.0^', '1.0', 1],
  ['1.0^git1', '1.0', 1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git1', '1.01', -1],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0^20160101^git1', '1.0^20160101', 1],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0~rc1^git1', '1.0', -1],
  // EVR: epoch, then version, then release when both have one.
  ['1:1.0-1', '2.0-1', 1],
  ['0:1.0-1', '1.0-1', 0],
  ['1.0-1.el9', '1.0-2.el9', -1],
  ['8.7p1-38.el9_4.1', '8.7p1-38.el9', 1],
  ['1.0', '1.0-5', 0],
];

describe('RPM versions (rpmvercmp)', () => {
  it.each(RPM_CASES)('%s vs %s → %i', (a, b, want) => {
    expect(compareRpmVersions(a, b)).toBe(want);
    expect(compareRpmVersions(b, a)).toBe((-want || 0) as -1 | 0 | 1);
  });

  it('parses epoch, version and release, and keys include the release', () => {
    expect(parseRpmVersion('2:8.7p1-38.el9_4.1')).toMatchObject({ epoch: 2, version: '8.7p1', release: '38.el9_4.1' });
    expect(parseRpmVersion('1.0')).toMatchObject({ epoch: 0, release: undefined });
    expect(rpmVersionKey(parseRpmVersion('1.010-1'))).toBe(rpmVersionKey(parseRpmVersion('0:1.10-1')));
    expect(rpmVersionKey(parseRpmVersion('1.0-1'))).not.toBe(rpmVersionKey(parseRpmVersion('1.0')));
  });

  it('refuses strings that are not versions', () => {
    for (const s of ['', '-1', '1.0-', 'x:1.0', '1.0 beta', '1/0', '...', '1.0-1-é']) {
      expect(() => parseRpmVersion(s), s).toThrow(SecurityCenterError);
    }
  });
});

describe('schemeForEcosystem', () => {
  it('picks dpkg ordering for Debian and Ubuntu, rpm for RPM distributions, nothing for others', () => {
    expect(schemeForEcosystem('Debian:12')?.name).toBe('deb');
    expect(schemeForEcosystem('Ubuntu:22.04:LTS')?.name).toBe('deb');
    expect(schemeForEcosystem('AlmaLinux:9')?.name).toBe('rpm');
    expect(schemeForEcosystem('Red Hat:enterprise_linux:9::baseos')?.name).toBe('rpm');
    expect(schemeForEcosystem('npm')).toBeUndefined();
    expect(schemeForEcosystem('debian:12')).toBeUndefined();
  });
});
