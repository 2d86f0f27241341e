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

/** Run `examples/<file>` with tsx; rejects on a non-zero exit or a timeout, with the output. */
function example(file: string, timeout = 30_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(tsx, [join('examples', file)], { cwd: repo, env, timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
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
});
