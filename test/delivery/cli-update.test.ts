/**
 * `gatesock update` as a user runs it (the CLI from source in a child
 * process, with a timeout): keygen files and output, flags checked by name
 * with the documented exit statuses, a send nobody answers, the helpers
 * behind the flags and the table, and the embedding example.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { IdentityKey } from '../../src/session/index.js';
import { parsePublicKey, publisherKeyId } from '../../src/delivery/index.js';
import { EXIT } from '../../src/cli/errors.js';
import { parseGroup, parseRate, receiverTable, type SendReportJson } from '../../src/cli/update.js';
import { loopbackMulticastProblem } from './fixtures/multicast-probe.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env };
delete env.NODE_OPTIONS;

function gatesock(args: string[], cwd: string, timeout = 20_000): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', path.join(repo, 'scripts/ts-register.mjs'), path.join(repo, 'src/cli/main.ts'), ...args],
      { cwd, env, timeout, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(new Error(`gatesock ${args.join(' ')}: ${error.message}\n${stderr}`));
        resolve({ status: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gatesock-cli-update-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const ipv4 = (await loopbackMulticastProblem('ipv4', '239.255.73.2')) === undefined;
if (!ipv4) console.log('cli-update.test: IPv4 multicast on lo does not work here; skipping the send nobody answers');

describe('flag helpers', () => {
  it('parseGroup takes [IPv6]:port and IPv4:port only', () => {
    expect(parseGroup('[ff15::1]:5000')).toEqual({ address: 'ff15::1', port: 5000 });
    expect(parseGroup('239.1.2.3:6000')).toEqual({ address: '239.1.2.3', port: 6000 });
    for (const bad of ['ff15::1:5000', '[ff15::1]', '[ff15::1]:0', '[ff15::1]:70000', 'host:5000', '239.1.2.3']) expect(() => parseGroup(bad), bad).toThrow(/must be/);
  });

  it('parseRate reads k, M, G suffixes as bits per second', () => {
    expect(parseRate('100M')).toBe(100_000_000);
    expect(parseRate('2.5G')).toBe(2_500_000_000);
    expect(parseRate('800k')).toBe(800_000);
    expect(parseRate('1000000')).toBe(1_000_000);
    expect(parseRate('10Mbps')).toBe(10_000_000);
    for (const bad of ['', 'fast', '-1M', '10T', '999']) expect(() => parseRate(bad), bad).toThrow(/rate/);
  });

  it('the final table has a row per receiver', () => {
    const report = {
      receivers: [
        { host: 'alpha', address: null, joined: true, completed: true, rounds: 2, requests: 1, result: 'ok done', ok: true, dropped: null },
        { host: 'b', address: null, joined: false, completed: false, rounds: null, requests: 0, result: null, ok: false, dropped: 'never answered' },
      ],
    } as unknown as SendReportJson;
    expect(receiverTable(report)).toEqual([
      'host   joined  completed  rounds  requests  result',
      'alpha  yes     yes        2       1         ok done',
      'b      no      no         -       0         never answered',
    ]);
  });
});

describe('gatesock update (child processes)', () => {
  it('keygen writes a 0600 PEM key and the public key, prints both ids; refuses to overwrite without --force', async () => {
    const r = await gatesock(['update', 'keygen', '--out', 'keys', '--name', 'pub1'], work);
    expect(r.status, r.stderr).toBe(0);
    const keyFile = path.join(work, 'keys', 'pub1.key');
    const key = IdentityKey.fromPem(fs.readFileSync(keyFile, 'utf8'));
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const pub = parsePublicKey(fs.readFileSync(path.join(work, 'keys', 'pub1.pub'), 'utf8'));
    expect(pub).toEqual(key.publicKey);
    expect(r.stdout).toMatch(/^public key {2}ed25519:[A-Za-z0-9_-]{43}$/m);
    expect(r.stdout).toContain(`key id      ${publisherKeyId(pub)}`);
    const again = await gatesock(['update', 'keygen', '--out', 'keys', '--name', 'pub1'], work);
    expect(again.status).toBe(EXIT.config);
    expect(again.stderr).toMatch(/GS_ERR_INVALID_OPTION: .*exists; pass --force/);
    expect((await gatesock(['update', 'keygen', '--out', 'keys', '--name', 'pub1', '--force'], work)).status).toBe(0);
    expect(IdentityKey.fromPem(fs.readFileSync(keyFile, 'utf8')).publicKey).not.toEqual(key.publicKey);
  });

  it('flags are checked by name: usage errors exit 2, bad settings 3', async () => {
    // Independent runs, at once.
    const [bad, noAllow, badKey, loss, name, host] = await Promise.all([
      gatesock(['update', 'send', 'x', '--group', 'nope', '--key', 'k'], work),
      gatesock(['update', 'receive', '--group', '239.255.73.1:5000', '--dir', 'd', '--publisher-key', 'ed25519:AAAA'], work),
      gatesock(['update', 'receive', '--group', '239.255.73.1:5000', '--dir', 'd', '--allow', '*', '--publisher-key', 'no-such-file'], work),
      gatesock(['update', 'receive', '--group', '239.255.73.1:5000', '--dir', 'd', '--allow', '*', '--publisher-key', 'x', '--inject-loss', '2'], work),
      gatesock(['update', 'send', 'keys/pub1.pub', '--group', '239.255.73.1:5000', '--key', 'keys/pub1.key', '--name', '../escape'], work),
      gatesock(['update', 'receive', '--group', '239.255.73.1:5000', '--dir', 'd', '--allow', '*', '--publisher-key', 'keys/pub1.pub', '--host', 'two words'], work),
    ]);
    expect(host.status).toBe(EXIT.config);
    expect(host.stderr).toMatch(/--host must be/);
    expect(bad.status).toBe(EXIT.usage);
    expect(bad.stderr).toMatch(/--group.*must be \[IPv6-group\]:port/);
    expect(noAllow.status).toBe(EXIT.config);
    expect(noAllow.stderr).toMatch(/--allow is required/);
    expect(badKey.status).toBe(EXIT.config);
    expect(badKey.stderr).toMatch(/--publisher-key no-such-file/);
    expect(loss.status).toBe(EXIT.usage);
    expect(name.status).toBe(EXIT.delivery);
    expect(name.stderr).toMatch(/GS_ERR_DELIVERY_UNSAFE_NAME/);
  });

  it.skipIf(!ipv4)('a send nobody answers ends after the join window with an empty table, a report, and status 9', async () => {
    fs.writeFileSync(path.join(work, 'small.bin'), 'hello multicast\n');
    const r = await gatesock(
      ['update', 'send', 'small.bin', '--group', '239.255.73.2:47311', '--interface', 'lo', '--key', 'keys/pub1.key', '--join-window', '300', '--update-version', '9', '--report', 'empty.json', '--progress'],
      work,
    );
    expect(r.status, r.stderr).toBe(EXIT.delivery);
    const note = /^sending small\.bin \(16 B, version 9, file ID \d+, key [0-9a-f]{16}\) to 239\.255\.73\.2 port 47311 from port (\d+)$/m.exec(r.stderr);
    expect(note, r.stderr).not.toBeNull();
    // By default the sender has a port of its own, so multicast loopback never hands it its own data.
    expect(Number(note![1])).not.toBe(47311);
    expect(r.stdout).toMatch(/^0\/0 receivers applied small\.bin/m);
    expect(r.stdout).toMatch(/^host {2}joined {2}completed {2}rounds {2}requests {2}result$/m);
    // --progress draws the bar even on a pipe.
    expect(r.stderr).toMatch(/\d+% \| [\d.]+ [KMG]?i?B sent \| receivers 0\/0 \| round \d+/);
    const report = JSON.parse(fs.readFileSync(path.join(work, 'empty.json'), 'utf8')) as SendReportJson;
    expect(report).toMatchObject({ name: 'small.bin', version: 9, fileSize: 16, ok: false, receivers: [], group: '239.255.73.2:47311' });
  });
});

describe('examples/multicast-update.ts', () => {
  it('embeds a sender and receivers: every permitted receiver gets the file, the outsider never joins', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(path.join(repo, 'node_modules/.bin/tsx'), ['examples/multicast-update.ts'], { cwd: repo, env, timeout: 60_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stdout}${stderr}`));
        else resolve(stdout);
      });
    });
    const rows = out.split('\n').filter((l) => l.startsWith('receiver '));
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row).toMatch(/joined true completed true round \d+: ok installed 2000000 bytes; sha256 matches: true$/);
    expect(out).toMatch(/^outsider {4}joined: false, wrote: false$/m);
    expect(out).toMatch(/^sender {6}\d+ bytes sent \(1\.\d+ × the file\), \d+ round\(s\)$/m);
  });
});
