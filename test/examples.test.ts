/**
 * The runnable examples, run as a user runs them (`npx tsx examples/…`), in a
 * child process with a timeout: each must exit 0 and print what it promises.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsx = join(repo, 'node_modules/.bin/tsx');
const MSID = 'MSID-[0-9A-F]{64}';

// Children get a clean env: no NODE_OPTIONS from the test runner.
const env = { ...process.env };
delete env.NODE_OPTIONS;

/** Run `examples/<file>` with tsx (and `args`); rejects on a non-zero exit or a timeout, with the output. */
function example(file: string, timeout = 30_000, args: readonly string[] = []): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(tsx, [join('examples', file), ...args], { cwd: repo, env, timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`examples/${file} failed (${error.killed ? `killed after ${timeout} ms` : `exit ${error.code}`}):\n${stdout}${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

describe('examples', () => {
  it('secure-echo.ts: both ends authenticate each other and the line comes back', async () => {
    const { stdout, stderr } = await example('secure-echo.ts');
    expect(stderr).toBe('');
    const server = new RegExp(`^server\\s+(${MSID})$`, 'm').exec(stdout)?.[1];
    const gateway = new RegExp(`^server sees\\s+gateway (${MSID})$`, 'm').exec(stdout)?.[1];
    expect(server, stdout).toBeDefined();
    expect(gateway, stdout).toBeDefined();
    expect(gateway).not.toBe(server);
    // The gateway authenticated the same server identity the server printed.
    expect(stdout).toMatch(new RegExp(`^gateway sees\\s+server ${server}$`, 'm'));
    expect(stdout).toMatch(/^echo\s+hello through gatesock$/m);
  });

  it('relay-echo.ts: a server found by its PCID echoes both lines through the gateway', async () => {
    const { stdout, stderr } = await example('relay-echo.ts');
    expect(stderr).toBe('');
    const pcid = /^server\s+online as PCID "([^"]+)"/m.exec(stdout)?.[1];
    expect(pcid, stdout).toBeDefined();
    expect(stdout).toMatch(new RegExp(`^client\\s+connected to ${pcid} through the gateway, end to end: true$`, 'm'));
    expect(stdout).toMatch(/^server\s+accepted connection 1 from MSID-/m);
    expect(stdout).toMatch(/^echo\s+hello through gatesock$/m);
    expect(stdout).toMatch(/^echo\s+second line$/m);
    expect(stdout).toMatch(/^closed$/m);
  });

  it('port-forward.ts: fetch gets the HTTP page through forwardTcp → gateway → serveTcp', async () => {
    const { stdout, stderr } = await example('port-forward.ts');
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^served as\s+PCID "example-web"/m);
    expect(stdout).toMatch(/^fetch\s+HTTP 200: hello from the HTTP server behind the relay \(you asked for \/through-the-tunnel\)$/m);
    expect(stdout).toMatch(/^forward\s+connection 1 closed \(\d+ B out, \d+ B in\)$/m);
  });

  it('keyaddress.ts: admitted at the key address found by name; used and random addresses refused (or the relay variant)', async () => {
    const { stdout, stderr } = await example('keyaddress.ts');
    expect(stderr).toBe('');
    if (/^mode\s+relay/m.test(stdout)) {
      // Not root here: the example says why and shows the relay variant (tested below).
      expect(stdout).toMatch(/^reply\s+echo hello over a secret PCID$/m);
      return;
    }
    const address = /^client\s+device\.example → (\S+)$/m.exec(stdout)?.[1];
    expect(address, stdout).toBeDefined();
    expect(stdout).toContain(`reply       echo hello over a key address (at ${address})`);
    expect(stdout).toMatch(new RegExp(`^again\\s+${address} → refused \\(reset after accept\\)$`, 'm'));
    expect(stdout).toMatch(/^random\s+\S+ → refused \(reset after accept\)$/m);
    const viaDns = /^dns\s+AAAA device\.example @\S+ → (\S+)$/m.exec(stdout)?.[1];
    expect(viaDns).toBeDefined();
    expect(viaDns).not.toBe(address);
    expect(stdout).toContain(`reply       echo hello via DNS (at ${viaDns})`);
  });

  it('keyaddress.ts --relay: the server answers to a secret PCID and moves on after each session', async () => {
    const { stdout, stderr } = await example('keyaddress.ts', 30_000, ['--relay']);
    expect(stderr).toBe('');
    const pcids = [...stdout.matchAll(/(ka-[a-z2-7]{5})…/g)].map((m) => m[1]);
    expect(pcids).toHaveLength(3);
    expect(new Set(pcids).size).toBe(3);
    expect(stdout).toMatch(/^reply\s+echo hello over a secret PCID$/m);
    expect(stdout).toMatch(/^reply\s+echo next session, next PCID$/m);
  });

  it('dispatch.ts: a center dispatches a bundle to two agents over the relay, every result verifies, a re-run with new args, the evidence log verifies', async () => {
    const { stdout, stderr } = await example('dispatch.ts', 60_000);
    expect(stderr).toBe('');
    const results = stdout.split('\n').filter((l) => l.startsWith('result '));
    expect(results).toHaveLength(4);
    for (const agent of ['example-agent-1', 'example-agent-2']) {
      expect(stdout).toContain(`result         run 0 ${agent}: verified, ran, exit 0, stdout is "hello first\\n"`);
      expect(stdout).toContain(`result         run 1 ${agent}: verified, ran, exit 0, stdout is "hello again with new args\\n"`);
    }
    expect(stdout).toMatch(/^run 0\s+2\/2 verified \(done\)$/m);
    expect(stdout).toMatch(/^run 1\s+2\/2 verified \(done\)$/m);
    expect(stdout).toMatch(/^evidence log\s+12 entries, every hash link and signature verifies \(log 1, bundle 1, dispatch 2, issued 4, result 4, failure 0\)$/m);
    expect(stdout).toMatch(/^closed$/m);
  }, 70_000);

  it('security-center.ts: a new advisory is fixed on exactly the affected hosts and confirmed', async () => {
    const { stdout } = await example('security-center.ts', 60_000);
    expect(stdout).toMatch(/^affected\s+DSA-9001-1: db-1, web-1$/m);
    expect(stdout).toMatch(/^to a person\s+LOCAL-2026-0002: sudo 1\.9\.13p3-1 on db-1 needs a manual fix$/m);
    expect(stdout).toMatch(/^fixed\s+every automatic countermeasure is confirmed by a report$/m);
    expect(stdout).toMatch(/^closed$/m);
  }, 70_000);

  // The experiments, at small sizes (each a few seconds; processes on loopback).
  const row = (stdout: string, label: string): string[] => {
    const line = stdout.split('\n').find((l) => l.startsWith(label));
    expect(line, stdout).toBeDefined();
    return line!.slice(label.length).trim().split(/\s{2,}/);
  };

  it('experiments/latency.ts: a table of RTT percentiles for every path', async () => {
    const { stdout } = await example('experiments/latency.ts', 30_000, ['--rounds', '100', '--repeats', '1']);
    for (const path of ['direct TCP', 'plain net relay', 'gatesock, end to end', 'gatesock, no end-to-end layer']) {
      const [samples, p50] = row(stdout, path).map(Number);
      expect(samples).toBeGreaterThanOrEqual(100);
      expect(p50).toBeGreaterThan(0);
    }
  }, 40_000);

  it('experiments/throughput.ts: MB/s each direction, end-to-end layer on and off', async () => {
    const { stdout } = await example('experiments/throughput.ts', 30_000, ['--mib', '8', '--rounds', '2']);
    for (const dir of ['client-to-server', 'server-to-client']) {
      for (const e2e of ['on', 'off']) {
        const cells = row(stdout, `${dir}  ${e2e}`).map(Number);
        expect(cells[0]).toBeGreaterThan(0); // gatesock MB/s
        expect(cells[1]).toBeGreaterThan(0); // plain relay MB/s
      }
    }
  }, 40_000);

  it('experiments/balancing.ts: every server lands on a gateway, for both strategies', async () => {
    const { stdout } = await example('experiments/balancing.ts', 30_000, ['--servers', '30', '--capacities', '10,20,30']);
    const rows = [1, 2, 3].map((i) => row(stdout, `gateway-${i}`).map(Number));
    expect(rows.map((r) => r[0])).toEqual([10, 20, 30]);
    expect(rows.reduce((n, r) => n + r[2]!, 0)).toBe(30); // least-sessions
    expect(rows.reduce((n, r) => n + r[3]!, 0)).toBe(30); // weighted
    // least-sessions keeps each gateway within one server of its share.
    for (const r of rows) expect(Math.abs(r[2]! - r[1]!)).toBeLessThanOrEqual(1);
  }, 40_000);

  it('experiments/failover.ts: the killed gateway\'s servers come back on the other one', async () => {
    const { stdout } = await example('experiments/failover.ts', 30_000, ['--servers', '30', '--gateways', '2']);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^all 30 servers back online on other gateways after \d+\.\d+ s$/);
    expect(lines.at(-2)!.trim().split(/\s+/).slice(1).map(Number)).toEqual([0, 30, 30]);
  }, 40_000);

  it('experiments/controller-capacity.ts: logins per minute at each load level', async () => {
    const { stdout } = await example('experiments/controller-capacity.ts', 30_000, ['--logins', '100', '--concurrency', '1,4', '--pool', '100']);
    for (const level of ['1', '4']) {
      const cells = stdout.split('\n').find((l) => new RegExp(`^\\s*${level}\\s+100\\s`).test(l));
      expect(cells, stdout).toBeDefined();
    }
  }, 40_000);
});
