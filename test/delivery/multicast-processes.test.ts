/**
 * The updater as users run it, over real UDP multicast on the loopback
 * interface: `gatesock update send` and eight `gatesock update receive`
 * processes (each dropping 5 % of what arrives, with the loss injector), plus
 * one receiver that is not permitted to take the update, while a hostile
 * member of the group sends altered copies of every datagram, junk and a
 * forged announcement to the receivers and the sender. Every permitted
 * receiver must end with the file, its SHA-256 equal to the sender's, its
 * `--on-update` command run and its result in the sender's JSON report; the
 * one not permitted must never join. IPv4 and IPv6, each where the machine
 * allows multicast on lo (scripts/multicast-loopback.sh sets it up);
 * otherwise the family is skipped with the reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPublicKey, generatePublisherKey, publisherKeyId } from '../../src/delivery/index.js';
import { udpBind } from '../../src/transport/index.js';
import type { SendReportJson } from '../../src/cli/update.js';
import { loopbackMulticastProblem } from './fixtures/multicast-probe.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const CLI = [path.join(repo, 'scripts/ts-register.mjs'), path.join(repo, 'src/cli/main.ts')];
const RECEIVERS = 8;

// Children get a clean env: no NODE_OPTIONS from the test runner.
const env = { ...process.env };
delete env.NODE_OPTIONS;

const FAMILIES = [
  { family: 'ipv4' as const, group: '239.255.72.9', bracket: (g: string) => g },
  { family: 'ipv6' as const, group: 'ff15::72:9', bracket: (g: string) => `[${g}]` },
];

const missing = new Map<string, string | undefined>();
for (const f of FAMILIES) {
  const why = await loopbackMulticastProblem(f.family, f.group);
  missing.set(f.family, why);
  if (why !== undefined) {
    console.log(`multicast-processes.test: ${f.family} multicast on loopback is not available here, skipping it: ${why}. Fix: sudo bash scripts/multicast-loopback.sh`);
  }
}

interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function gatesock(args: string[], cwd: string): Proc {
  const child = spawn(process.execPath, ['--import', CLI[0]!, CLI[1]!, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  child.stdout!.on('data', (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.stderr += d.toString()));
  return proc;
}

/** Wait until `cond()`; fail after `ms` with `what`. */
async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with the exit code, or rejects after `ms` (and kills the process). */
function exitWithin(p: Proc, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.exited.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        p.child.kill('SIGKILL');
        reject(new Error(`${what} did not exit within ${ms} ms\nstdout: ${p.stdout}\nstderr: ${p.stderr}`));
      }, ms);
    }),
  ]);
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe.each(FAMILIES)('gatesock update over $family multicast on lo, as separate processes', ({ family, group, bracket }) => {
  const skip = missing.get(family) !== undefined;

  it.skipIf(skip)(`${RECEIVERS} receivers with 5 % loss and forgeries on the group get the file with its SHA-256; one not permitted never joins`, async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `gatesock-mc-${family}-`));
    try {
      const key = generatePublisherKey();
      fs.writeFileSync(path.join(work, 'publisher.key'), key.toPem(), { mode: 0o600 });
      const pub = formatPublicKey(key.publicKey);
      const file = new Uint8Array(randomBytes(1_500_000));
      fs.writeFileSync(path.join(work, 'pkg.bin'), file);
      const digest = sha256(file);
      const port = 40_000 + Math.floor(Math.random() * 10_000);
      const where = `${bracket(group)}:${port}`;

      const receive = (host: string, allow: string, extra: string[]) =>
        gatesock(
          ['update', 'receive', '--group', where, '--interface', 'lo', '--dir', path.join(work, host), '--host', host, '--allow', allow, '--publisher-key', pub, ...extra],
          work,
        );
      const receivers = Array.from({ length: RECEIVERS }, (_, i) =>
        receive(`r${i + 1}`, 'app/*', ['--once', '--inject-loss', '0.05', '--loss-seed', String(i + 1), '--on-update', 'sha256sum "$1" | cut -d" " -f1']),
      );
      const outsider = receive('outsider', 'other/*', []);
      const all = [...receivers, outsider];
      await until(() => all.every((p) => p.stderr.includes('receiving on')), 60_000, () => all.map((p) => p.stderr).join('\n'));

      // A hostile member of the group: it hears every datagram the sender multicasts and sends back, to the
      // group and to the sender, a copy with one byte changed, plus random junk and a forged announcement.
      const hostile = await udpBind({ family, port, groups: [group], interface: 'lo', reuseAddr: true });
      const forgedBy = generatePublisherKey();
      let sent = 0;
      hostile.on('message', (data, from) => {
        if (hostile.closed || sent > 3000) return;
        const bad = data.slice();
        bad[Math.floor(Math.random() * bad.length)]! ^= 1 + Math.floor(Math.random() * 255);
        hostile.send(bad, { address: group, port });
        hostile.send(bad, from);
        hostile.send(new Uint8Array(randomBytes(1 + Math.floor(Math.random() * 64))), { address: group, port });
        if (data[0] === 0x55 /* 'U' */) {
          const line = Buffer.from(data).toString('latin1').split(' ');
          line[15] = publisherKeyId(forgedBy.publicKey); // signed by a key nobody pins
          hostile.send(new Uint8Array(Buffer.from(line.join(' '), 'latin1')), { address: group, port });
        }
        sent += 3;
      });

      const reportFile = path.join(work, 'report.json');
      const sender = gatesock(
        [
          'update', 'send', 'pkg.bin', '--group', where, '--interface', 'lo', '--key', 'publisher.key', '--name', 'app/pkg.bin',
          '--expect', receivers.map((_, i) => `r${i + 1}`).join(','), '--join-window', '5000', '--report', reportFile, '--rate', '200M',
        ],
        work,
      );
      const status = await exitWithin(sender, 90_000, 'the sender').finally(() => hostile.close());
      expect(sent, 'the hostile member sent forgeries').toBeGreaterThan(30);
      expect(status, `sender: ${sender.stdout}\n${sender.stderr}`).toBe(0);

      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as SendReportJson;
      expect(report.ok).toBe(true);
      expect(report.digest).toBe(digest);
      expect(report.receivers.map((r) => r.host).sort()).toEqual(receivers.map((_, i) => `r${i + 1}`).sort());
      for (const r of report.receivers) {
        expect(r, r.host).toMatchObject({ joined: true, completed: true, ok: true, result: `ok ${digest}` });
        expect(r.rounds).toBeGreaterThanOrEqual(1);
      }
      // The table the sender printed names every receiver.
      for (let i = 1; i <= RECEIVERS; i++) expect(sender.stdout).toMatch(new RegExp(`^r${i}\\s+yes\\s+yes\\s+\\d+\\s+\\d+\\s+ok ${digest}$`, 'm'));

      const rejected: number[] = [];
      for (const [i, p] of receivers.entries()) {
        expect(await exitWithin(p, 15_000, `receiver r${i + 1}`), p.stderr).toBe(0);
        expect(p.stdout).toContain(`app/pkg.bin: ok ${digest}`);
        // What the hostile member sent was counted and dropped: altered symbols and pages as forged or junk.
        const c = /counters: datagrams (\d+), symbols \d+, duplicates \d+, junk (\d+), foreign (\d+), forged (\d+), refused (\d+)/.exec(p.stderr);
        expect(c, p.stderr).not.toBeNull();
        rejected.push(Number(c![2]) + Number(c![3]) + Number(c![4]) + Number(c![5]));
        expect(sha256(fs.readFileSync(path.join(work, `r${i + 1}`, 'app', 'pkg.bin')))).toBe(digest);
      }
      expect(rejected.every((n) => n > 0), `rejected per receiver: ${rejected}`).toBe(true);
      // The receiver that may not take app/* never joined, said nothing, wrote nothing.
      expect(outsider.stderr).not.toMatch(/joined/);
      expect(outsider.stdout).toBe('');
      expect(fs.existsSync(path.join(work, 'outsider', 'app'))).toBe(false);
      outsider.child.kill('SIGTERM');
      expect(await exitWithin(outsider, 10_000, 'the outsider')).toBe(0);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 150_000);
});
