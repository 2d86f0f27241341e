/**
 * The built `gatesock` command as tests run it: long-running CLI processes
 * whose output is collected as they print it, every one killed at the end
 * of the file ({@link Procs.killAll}), and {@link waitFor} to wait for a
 * line. `npm test` builds `dist/` before vitest; a bare `vitest run` of
 * these files says to build first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../..', import.meta.url));
export const cliMain = path.join(repo, 'dist/cli/main.js');

// A parent's NODE_OPTIONS (vitest's loaders) must not reach the children.
const env = { ...process.env };
delete env.NODE_OPTIONS;

/** A long-running child process and what it has printed so far. */
export interface Child {
  readonly proc: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** Children of one test file: started here, every one killed by {@link Procs.killAll}. */
export class Procs {
  readonly children: Child[] = [];

  /** Spawn `script` (default: the built CLI) with `args` in `cwd`. */
  start(args: string[], cwd: string, script = cliMain): Child {
    if (!fs.existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`);
    const proc = spawn(process.execPath, [script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const child: Child = {
      proc,
      stdout: '',
      stderr: '',
      exited: new Promise((resolve) => {
        proc.on('exit', (code, signal) => resolve(signal ? null : code));
        proc.on('error', (err) => {
          child.stderr += `spawn failed: ${err.message}\n`;
          resolve(-1);
        });
      }),
    };
    proc.stdout!.on('data', (d: Buffer) => (child.stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (child.stderr += d.toString()));
    this.children.push(child);
    return child;
  }

  /** SIGKILL every child still running and wait for them. */
  async killAll(): Promise<void> {
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(this.children.map((c) => c.exited));
  }
}

/** The first match of `re` in the child's stream; fails after `ms` or when the child exits first. */
export async function waitFor(child: Child, stream: 'stdout' | 'stderr', re: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    const m = re.exec(child[stream]);
    if (m) return m;
    if (exited || Date.now() > deadline) {
      throw new Error(`${exited ? 'exited' : `no match after ${ms} ms`} waiting for ${re} on ${stream}\n--- stdout\n${child.stdout}\n--- stderr\n${child.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Run a short-lived CLI command to its end (SIGKILLed after `timeout` ms). */
export function runCli(args: string[], cwd: string, timeout = 30_000): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliMain, ...args], { cwd, env, timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new Error(`gatesock ${args.join(' ')}: ${error.message}\n${stdout}\n${stderr}`));
      resolve({ status: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}
