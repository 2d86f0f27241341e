/**
 * The agent's collectors on fixture trees (os-release, dpkg status, rpm query
 * output, /proc/net tables with fd links, configured files) and once on this
 * real Debian machine, where their result must pass the center's own check
 * and agree with dpkg-query.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SecurityCenterError } from '../../src/errors/index.js';
import {
  ReportSequencer,
  collectConfiguration,
  collectDpkgPackages,
  collectFiles,
  collectKernel,
  collectListeningServices,
  collectOsRelease,
  collectRpmPackages,
  decodeProcAddress,
  parseDpkgStatus,
  parseOsReleaseText,
  parseProcNetTable,
  parseRpmQuery,
} from '../../src/delivery/security/collect/index.js';
import { applyReport, validateConfigurationReport } from '../../src/delivery/security/report/index.js';

const MSID = `MSID-${'AB'.repeat(32)}`;
const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});
function tmpRoot(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gs-collect-'));
  made.push(d);
  return d;
}
function write(root: string, rel: string, content: string | Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
}

describe('os-release', () => {
  it('parses quoting, escapes and comments as os-release(5) says, skipping broken lines', () => {
    const vars = parseOsReleaseText([
      '# comment',
      'NAME="Debian GNU/Linux"',
      "PRETTY_NAME='Debian 12 \"x\"'",
      'ID=debian',
      'VERSION_ID="12"',
      'ESCAPED="a \\"b\\" \\$c \\\\d \\n"',
      'BROKEN="unterminated',
      'TWO="a" "b"',
      'UNQUOTED=has space',
      '  ID_LIKE="rhel fedora"  ',
      'lower_case=ok',
      '',
    ].join('\n'));
    expect(vars.get('NAME')).toBe('Debian GNU/Linux');
    expect(vars.get('PRETTY_NAME')).toBe('Debian 12 "x"');
    expect(vars.get('ESCAPED')).toBe('a "b" $c \\d \\n');
    expect(vars.get('ID_LIKE')).toBe('rhel fedora');
    expect(vars.get('lower_case')).toBe('ok');
    for (const k of ['BROKEN', 'TWO', 'UNQUOTED']) expect(vars.has(k), k).toBe(false);
  });

  it('reads /etc/os-release, falls back to /usr/lib/os-release, then to the defaults', async () => {
    const root = tmpRoot();
    expect(await collectOsRelease({ root })).toEqual({ id: 'linux', versionId: '', name: 'Linux', prettyName: 'Linux', idLike: [], versionCodename: '' });
    write(root, 'usr/lib/os-release', 'ID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nNAME="Rocky Linux"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n');
    expect(await collectOsRelease({ root })).toMatchObject({ id: 'rocky', versionId: '9.3', idLike: ['rhel', 'centos', 'fedora'] });
    fs.mkdirSync(path.join(root, 'etc'));
    fs.symlinkSync('../usr/lib/os-release', path.join(root, 'etc/os-release'));
    expect((await collectOsRelease({ root })).id).toBe('rocky');
    fs.rmSync(path.join(root, 'etc/os-release'));
    write(root, 'etc/os-release', 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n');
    expect(await collectOsRelease({ root })).toMatchObject({ id: 'debian', versionId: '12', versionCodename: 'bookworm', name: 'Linux' });
    write(root, 'proc/sys/kernel/osrelease', '6.1.0-18-amd64\n');
    expect(await collectKernel({ root })).toBe('6.1.0-18-amd64');
  });
});

describe('packages', () => {
  it('reads installed dpkg packages: held ones too, config-files and half-installed not, Source with its version', () => {
    const scan = parseDpkgStatus(fs.readFileSync(path.join(FIXTURES, 'reports/dpkg-status'), 'utf8'));
    expect(scan.packages).toEqual([
      { manager: 'dpkg', name: 'base-files', version: '12.4+deb12u11', arch: 'amd64', source: null, sourceVersion: null },
      { manager: 'dpkg', name: 'libc6', version: '2.36-9+deb12u14', arch: 'amd64', source: 'glibc', sourceVersion: null },
      { manager: 'dpkg', name: 'libc6', version: '2.36-9+deb12u14', arch: 'i386', source: 'glibc', sourceVersion: null },
      { manager: 'dpkg', name: 'libssl3', version: '3.0.19-1~deb12u2', arch: 'amd64', source: 'openssl', sourceVersion: null },
      { manager: 'dpkg', name: 'openssh-server', version: '1:9.2p1-2+deb12u3+b1', arch: 'amd64', source: 'openssh', sourceVersion: '1:9.2p1-2+deb12u3' },
      { manager: 'dpkg', name: 'tzdata', version: '2025b-0+deb12u2', arch: 'all', source: null, sourceVersion: null },
    ]);
    expect(scan.skipped).toEqual([{ name: 'broken-version', reason: 'Version "not a version" is not a Debian version' }]);
  });

  it('reads rpm query output: epochs, several kernels, SOURCERPM names, gpg-pubkey', () => {
    const out = [
      'openssl-libs\t1\t3.0.7\t27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm',
      'kernel-core\t(none)\t5.14.0\t362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm',
      'kernel-core\t(none)\t5.14.0\t427.13.1.el9_4\tx86_64\tkernel-5.14.0-427.13.1.el9_4.src.rpm',
      'bash\t(none)\t5.1.8\t6.el9_1\tx86_64\tbash-5.1.8-6.el9_1.src.rpm',
      'gpg-pubkey\t(none)\t350d275d\t6279464b\t(none)\t(none)',
      'short\tline',
      '',
    ].join('\n');
    const scan = parseRpmQuery(out);
    expect(scan.packages).toEqual([
      { manager: 'rpm', name: 'bash', version: '5.1.8-6.el9_1', arch: 'x86_64', source: null, sourceVersion: null },
      { manager: 'rpm', name: 'gpg-pubkey', version: '350d275d-6279464b', arch: '(none)', source: null, sourceVersion: null },
      { manager: 'rpm', name: 'kernel-core', version: '5.14.0-362.8.1.el9_3', arch: 'x86_64', source: 'kernel', sourceVersion: null },
      { manager: 'rpm', name: 'kernel-core', version: '5.14.0-427.13.1.el9_4', arch: 'x86_64', source: 'kernel', sourceVersion: null },
      { manager: 'rpm', name: 'openssl-libs', version: '1:3.0.7-27.el9', arch: 'x86_64', source: 'openssl', sourceVersion: null },
    ]);
    expect(scan.skipped).toEqual([{ name: 'short', reason: 'has 2 fields, not 6' }]);
  });

  it('skips rpm when the program is not installed', async () => {
    expect(await collectRpmPackages({ rpm: path.join(tmpRoot(), 'no-such-rpm') })).toEqual({ absent: expect.stringContaining('is not installed') });
    expect(await collectDpkgPackages({ root: tmpRoot() })).toEqual({ packages: [], skipped: [] });
  });
});

// A little-endian /proc/net fixture: LISTEN on 0.0.0.0:22 and 127.0.0.1:631,
// an ESTABLISHED connection, [::]:80 and [::ffff:127.0.0.1]:8080 on tcp6, an
// unconnected udp socket on 0.0.0.0:53 and a connected one.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0A00000A:0016 0B00000A:D2F0 01 00000000:00000000 02:0009A6E8 00000000     0        0 1003 4 0000000000000000 20 4 29 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1005 1 0000000000000000 100 0 0 10 0
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1006 2 0000000000000000 0
  101: 0A00000A:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 1007 2 0000000000000000 0
`;

describe('listening services', () => {
  it('decodes /proc/net addresses in host byte order, IPv6 per 32-bit word', () => {
    expect(decodeProcAddress('0100007F', 'LE')).toBe('127.0.0.1');
    expect(decodeProcAddress('7F000001', 'BE')).toBe('127.0.0.1');
    expect(decodeProcAddress('00000000000000000000000001000000', 'LE')).toBe('::1');
    expect(decodeProcAddress('0000000000000000FFFF00000100007F', 'LE')).toBe('::ffff:127.0.0.1');
    expect(decodeProcAddress('B80D0120000000000000000001000000', 'LE')).toBe('2001:db8::1');
    expect(() => decodeProcAddress('12345', 'LE')).toThrow(RangeError);
    const rows = parseProcNetTable(TCP, 'tcp', 'LE');
    expect(rows.map((r) => [r.address, r.port, r.state, r.inode])).toEqual([['0.0.0.0', 22, 10, 1001], ['127.0.0.1', 631, 10, 1002], ['10.0.0.10', 22, 1, 1003]]);
    expect(rows[2]).toMatchObject({ remoteAddress: '10.0.0.11', remotePort: 54000 });
  });

  it('lists LISTEN tcp and unconnected udp sockets with their owners from /proc/PID/fd', async () => {
    const proc = tmpRoot();
    write(proc, 'net/tcp', TCP);
    write(proc, 'net/tcp6', TCP6);
    write(proc, 'net/udp', UDP);
    // no udp6 table: skipped
    const fdLinks: Array<[number, string, number]> = [[410, 'sshd', 1001], [410, 'sshd', 1003], [520, 'cupsd', 1002], [600, 'nginx', 1004], [601, 'nginx', 1004], [700, 'named', 1006]];
    for (const [pid, comm, inode] of fdLinks) {
      write(proc, `${pid}/comm`, `${comm}\n`);
      fs.mkdirSync(path.join(proc, String(pid), 'fd'), { recursive: true });
      fs.symlinkSync(`socket:[${inode}]`, path.join(proc, String(pid), 'fd', String(3 + fs.readdirSync(path.join(proc, String(pid), 'fd')).length)));
    }
    fs.symlinkSync('/dev/null', path.join(proc, '410/fd/0'));
    const services = await collectListeningServices({ procRoot: proc, endianness: 'LE' });
    expect(services).toEqual([
      { proto: 'tcp', address: '0.0.0.0', port: 22, process: 'sshd' },
      { proto: 'tcp', address: '127.0.0.1', port: 631, process: 'cupsd' },
      { proto: 'tcp', address: '::', port: 80, process: 'nginx' },
      { proto: 'tcp', address: '::ffff:127.0.0.1', port: 8080, process: null },
      { proto: 'udp', address: '0.0.0.0', port: 53, process: 'named' },
    ]);
    const bare = await collectListeningServices({ procRoot: proc, endianness: 'LE', resolveProcesses: false });
    expect(bare.every((s) => s.process === null)).toBe(true);
  });

  it('finds a TCP and a UDP socket this process opens on the real machine, owned by this process', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    try {
      const tcpPort = (server.address() as net.AddressInfo).port;
      const udpPort = udp.address().port;
      const comm = fs.readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim();
      const services = await collectListeningServices();
      expect(services).toContainEqual({ proto: 'tcp', address: '127.0.0.1', port: tcpPort, process: comm });
      expect(services).toContainEqual({ proto: 'udp', address: '127.0.0.1', port: udpPort, process: comm });
    } finally {
      server.close();
      udp.close();
    }
  });
});

describe('configuration files', () => {
  it('hashes every configured file; content only when allowed, small and UTF-8', async () => {
    const root = tmpRoot();
    write(root, 'etc/ssh/sshd_config', 'PermitRootLogin no\n');
    write(root, 'etc/big.conf', 'x'.repeat(2000));
    write(root, 'etc/bin.conf', Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    write(root, 'etc/private.conf', 'secret=1\n');
    fs.mkdirSync(path.join(root, 'etc/dir.d'));
    fs.symlinkSync('/etc/passwd', path.join(root, 'etc/escape.conf'));
    execFileSync('mkfifo', [path.join(root, 'etc/fifo.conf')]);
    const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
    const files = await collectFiles({
      root,
      paths: ['/etc/ssh/sshd_config', '/etc/big.conf', '/etc/bin.conf', '/etc/private.conf', '/etc/missing.conf', '/etc/dir.d', '/etc/escape.conf', '/etc/fifo.conf'],
      content: ['/etc/ssh/sshd_config', '/etc/big.conf', '/etc/bin.conf'],
      maxContentBytes: 1024,
    });
    const absent = (p: string) => ({ path: p, sha256: null, size: null, content: null, omitted: null });
    expect(files).toEqual([
      { path: '/etc/big.conf', sha256: sha('x'.repeat(2000)), size: 2000, content: null, omitted: 'too-large' },
      { path: '/etc/bin.conf', sha256: sha(Buffer.from([0xff, 0xfe, 0x00, 0x80])), size: 4, content: null, omitted: 'not-text' },
      absent('/etc/dir.d'),
      absent('/etc/escape.conf'),
      absent('/etc/fifo.conf'),
      absent('/etc/missing.conf'),
      { path: '/etc/private.conf', sha256: sha('secret=1\n'), size: 9, content: null, omitted: 'policy' },
      { path: '/etc/ssh/sshd_config', sha256: sha('PermitRootLogin no\n'), size: 19, content: 'PermitRootLogin no\n', omitted: null },
    ]);
  });

  it('refuses configured paths that are not absolute and normalised', async () => {
    for (const p of ['etc/x', '/etc/../x', '/etc/./x', '/etc//x', '/etc/x/', '/', '/etc/\u0000x', `/${'a'.repeat(256)}`, `/${'a/'.repeat(2100)}b`]) {
      const err = await collectFiles({ paths: [p] }).catch((e: unknown) => e);
      expect(err, JSON.stringify(p)).toBeInstanceOf(SecurityCenterError);
      expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_UNSAFE_PATH');
    }
    const err = await collectFiles({ paths: ['/etc/ok'], content: ['../x'] }).catch((e: unknown) => e);
    expect((err as SecurityCenterError).code).toBe('GS_ERR_SECURITY_UNSAFE_PATH');
  });
});

const noDpkg = !fs.existsSync('/var/lib/dpkg/status') || spawnSync('dpkg-query', ['--version']).error !== undefined;
if (noDpkg) console.log('collect.test: the real-machine test is skipped: this host has no dpkg database (it is written for Debian-family hosts)');

describe('the whole report', () => {
  it.skipIf(noDpkg)('on this Debian machine: packages agree with dpkg-query, and the center accepts the report', async () => {
    const { report, notes } = await collectConfiguration({ hostMsid: MSID, files: { paths: ['/etc/os-release', '/etc/hostname', '/etc/no-such-file'], content: ['/etc/os-release'] } });
    expect(report.os.id).toBe(/^ID="?([^"\n]+)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1]);
    expect(report.kernel).toBe(os.release());
    const hasRpm = spawnSync('rpm', ['--version']).error === undefined;
    if (!hasRpm) expect(notes).toContain('rpm: rpm is not installed');
    const expected = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\n'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^[ih]i /.test(l))
      .map((l) => l.split('\t').slice(1).join(' '))
      .sort();
    expect(report.packages.filter((p) => p.manager === 'dpkg').map((p) => `${p.name} ${p.arch} ${p.version}`).sort()).toEqual(expected);
    expect(expected.length).toBeGreaterThan(50);
    const checked = validateConfigurationReport(JSON.parse(JSON.stringify(report)), { authenticatedMsid: MSID });
    expect(checked).toEqual(report);
    expect(report.files.find((f) => f.path === '/etc/os-release')?.content).toContain('ID=debian');
  });

  it('numbers reports: full first, then deltas the center can apply, full again on request', async () => {
    const root = tmpRoot();
    fs.mkdirSync(path.join(root, 'var/lib/dpkg'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'reports/dpkg-status'), path.join(root, 'var/lib/dpkg/status'));
    write(root, 'etc/os-release', 'ID=debian\nVERSION_ID="12"\n');
    write(root, 'proc/sys/kernel/osrelease', '6.1.0-18-amd64\n');
    write(root, 'etc/app.conf', 'a=1\n');
    const proc = tmpRoot();
    write(proc, 'net/tcp', TCP);
    const collect = async () =>
      (await collectConfiguration({ hostMsid: MSID, root, rpm: false, addresses: ['192.0.2.10'], services: { procRoot: proc, endianness: 'LE' }, files: { paths: ['/etc/app.conf'], content: true }, now: () => 1000 })).report;
    const seqr = new ReportSequencer();
    const first = seqr.next(await collect());
    expect(first).toMatchObject({ kind: 'full', seq: 1 });
    let center = applyReport(undefined, validateConfigurationReport(JSON.parse(JSON.stringify(first)), { authenticatedMsid: MSID }));
    expect(center.status).toBe('accepted');

    write(root, 'etc/app.conf', 'a=2\n');
    fs.writeFileSync(path.join(root, 'var/lib/dpkg/status'), fs.readFileSync(path.join(FIXTURES, 'reports/dpkg-status'), 'utf8').replace('Version: 3.0.19-1~deb12u2', 'Version: 3.0.19-1~deb12u3'));
    const current = await collect();
    const second = seqr.next(current);
    expect(second.kind).toBe('delta');
    if (second.kind !== 'delta' || center.status !== 'accepted') throw new Error('unreachable');
    expect(second.seq).toBe(2);
    expect(second.packages.changed.map((p) => `${p.name} ${p.version}`)).toEqual(['libssl3 3.0.19-1~deb12u3']);
    expect(second.files.changed.map((f) => f.content)).toEqual(['a=2\n']);
    center = applyReport(center.report, validateConfigurationReport(JSON.parse(JSON.stringify(second)), { authenticatedMsid: MSID }));
    expect(center).toEqual({ status: 'accepted', report: { ...current, seq: 2 } });

    seqr.requestFull(10);
    expect(seqr.next(current)).toMatchObject({ kind: 'full', seq: 11 });
    expect(seqr.next(current)).toMatchObject({ kind: 'delta', seq: 12 });
  });
});
