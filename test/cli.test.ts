/**
 * The `gatesock` command as a user runs it: the built `dist/cli/main.js` in a
 * child process, checked by exit status and output. Needs a fresh `dist/`
 * (`npm test` builds first). Every run has a timeout, so a hung CLI fails the
 * test instead of stalling the suite.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitStatusOf } from '../src/cli/errors.js';
import { CryptoError } from '../src/errors/index.js';
import { certificateFromPem, msidOf, verifyCertificateChain } from '../src/session/index.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const main = join(repo, 'dist/cli/main.js');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
const MSID = 'MSID-[0-9A-F]{64}';

// Children get a clean env: no NODE_OPTIONS from the test runner.
const env = { ...process.env };
delete env.NODE_OPTIONS;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI with `args`; resolves with its exit status and output (never rejects on a non-zero status). */
function gatesock(args: string[], timeout = 20_000): Promise<Run> {
  // Checked per run, so that each test fails with this message rather than being skipped.
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (\`npm test\` does)`);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [main, ...args], { cwd: repo, env, timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`gatesock ${args.join(' ')}: ${error.killed ? `killed after ${timeout} ms` : error.message}\n${stderr}`));
        return;
      }
      resolve({ status: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** The one MSID on the line that starts with `label`. */
function msidAfter(out: string, label: string): string {
  const m = new RegExp(`^${label}\\s+(${MSID})\\b`, 'm').exec(out);
  if (!m) throw new Error(`no "${label} MSID-…" line in:\n${out}`);
  return m[1]!;
}

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gatesock-cli-'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('gatesock demo', () => {
  it('runs a whole gateway system, finds the server by PCID and verifies an end-to-end echo over several connections', async () => {
    const r = await gatesock(['demo', '--bytes', '1048576', '--connections', '3']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    const root = msidAfter(r.stdout, 'root CA');
    const gateway1 = msidAfter(r.stdout, 'gateway 1');
    const gateway2 = msidAfter(r.stdout, 'gateway 2');
    const server = msidAfter(r.stdout, 'server');
    expect(new Set([root, gateway1, gateway2, server]).size).toBe(4);
    expect(r.stdout).toMatch(new RegExp(`^server\\s+${server} \\(self-signed, temporary\\)$`, 'm'));
    // The server's session is on one of the two gateways, and the client proved the same MSID end to end.
    expect([gateway1, gateway2]).toContain(msidAfter(r.stdout, '\\s+online\\s+as PCID \\S+, server session on gateway'));
    expect(msidAfter(r.stdout, '\\s+proven\\s+the server behind the relay is')).toBe(server);
    expect(r.stdout).toMatch(/^connections\s+3 × 1 MiB sent and echoed back, SHA-256 verified on each$/m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('ok');
  });

  it('works with the noble (pure JavaScript) crypto backend', async () => {
    const r = await gatesock(['demo', '--backend', 'noble', '--bytes', '65536']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/× 65536 B sent and echoed back, SHA-256 verified on each$/m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('ok');
  });

  // Values the parser refuses: usage errors that name what was wrong, and nothing runs.
  it.each([
    [['demo', '--bytes', 'x'], ['--bytes', "'x'"]],
    [['demo', '--bytes', '0'], ['--bytes must be a positive integer']],
    [['demo', '--backend', 'rot13'], ['--backend', 'rot13']],
    [['identity', 'init'], ["missing required argument 'dir'"]],
    [['pki', 'init'], ["missing required argument 'dir'"]],
    [['pki', 'init', 'x', '--gateways', '-1'], ['--gateways must be an integer ≥ 0']],
    [['pki', 'init', 'x', '--days', '0'], ['--days must be a positive integer']],
    [['pki', 'add-gateway', 'x'], ["missing required argument 'name'"]],
  ])('gatesock %j exits with the usage status', async (args, named) => {
    const r = await gatesock(args, 10_000);
    expect(r.status).toBe(EXIT.usage);
    for (const text of named) expect(r.stderr).toContain(text);
    expect(r.stdout).toBe('');
  });

  it('reports a value the library refuses as one line with its code, the stack only under --debug', async () => {
    const r = await gatesock(['demo', '--connections', '2000']);
    expect(r.status).toBe(EXIT.config);
    expect(r.stderr).toBe('gatesock: GS_ERR_INVALID_OPTION: --connections must be 1..1024\n');
    const debug = await gatesock(['--debug', 'demo', '--connections', '2000']);
    expect(debug.status).toBe(EXIT.config);
    expect(debug.stderr).toMatch(/^gatesock: GS_ERR_INVALID_OPTION: .*\nConfigError: .*\n\s+at /);
  });
});

describe('gatesock --version and --help', () => {
  it('--version prints the package version', async () => {
    const r = await gatesock(['--version'], 10_000);
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--help lists the commands and every exit status', async () => {
    const r = await gatesock(['--help'], 10_000);
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^\s+demo\b/m);
    expect(r.stdout).toMatch(/^\s+identity\b/m);
    expect(r.stdout).toMatch(/^\s+pki\b/m);
    const line = /^Exit status: (.*)$/m.exec(r.stdout)?.[1];
    expect(line, 'an "Exit status:" line').toBeDefined();
    const listed = [...line!.matchAll(/(\d+) [a-z]/g)].map((m) => Number(m[1]));
    expect(listed.sort((a, b) => a - b)).toEqual(Object.values(EXIT).sort((a, b) => a - b));
  });
});

describe('gatesock identity init', () => {
  it('creates an identity once, then loads the same one; demo --dir uses it', async () => {
    const dir = join(work, 'server-id'); // does not exist yet: init creates it
    const first = await gatesock(['identity', 'init', dir], 10_000);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(EXIT.ok);
    expect(first.stdout).toMatch(new RegExp(`^${MSID}\\n$`));
    const msid = first.stdout.trim();

    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(cert, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const keyPem = readFileSync(key, 'utf8');

    const second = await gatesock(['identity', 'init', dir], 10_000);
    expect(second.status).toBe(EXIT.ok);
    expect(second.stdout.trim()).toBe(msid);
    expect(readFileSync(key, 'utf8')).toBe(keyPem);

    const demo = await gatesock(['demo', '--dir', dir, '--bytes', '4096', '--connections', '1']);
    expect(demo.stderr).toBe('');
    expect(demo.status).toBe(EXIT.ok);
    expect(msidAfter(demo.stdout, 'server')).toBe(msid);
    expect(demo.stdout).toContain(`(self-signed, kept in ${dir})`);
    expect(msidAfter(demo.stdout, '\\s+proven\\s+the server behind the relay is')).toBe(msid);
  });

  it('refuses a damaged key file with its code and leaves it in place', async () => {
    const dir = join(work, 'damaged-id');
    expect((await gatesock(['identity', 'init', dir], 10_000)).status).toBe(EXIT.ok);
    writeFileSync(join(dir, 'key.pem'), 'not a key\n');
    const r = await gatesock(['identity', 'init', dir], 10_000);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^gatesock: GS_ERR_BAD_KEY: /);
    expect(r.status).toBe(exitStatusOf(new CryptoError('GS_ERR_BAD_KEY', '')));
    // A new key would mean a new MSID: the CLI must never replace a broken one silently.
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe('not a key\n');
  });
});

describe('gatesock pki init and add-gateway', () => {
  it('writes a root CA, a controller and gateways, prints each MSID, refuses to overwrite without --force', async () => {
    const dir = join(work, 'pki'); // does not exist yet
    const r = await gatesock(['pki', 'init', dir, '--gateways', '3', '--days', '30'], 10_000);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`wrote ${dir}`);
    const root = msidAfter(r.stdout, 'root CA');
    expect(r.stdout).toMatch(new RegExp(`^root CA\\s+${root}  root/cert\\.pem, root/key\\.pem$`, 'm'));
    const controller = msidAfter(r.stdout, 'controller');
    const gateways = ['gateway-1', 'gateway-2', 'gateway-3'].map((g) => msidAfter(r.stdout, g));
    expect(new Set([root, controller, ...gateways]).size).toBe(5);
    expect(lines.at(-1)).toMatch(/^Ship root\/cert\.pem with applications; keep root\/key\.pem offline/);

    // What it printed is what it wrote: each MSID is its certificate's, each key 0600.
    for (const [name, msid] of [['root', root], ['controller', controller], ['gateway-3', gateways[2]!]] as const) {
      expect(msidOf(certificateFromPem(readFileSync(join(dir, name, 'cert.pem'), 'utf8')))).toBe(msid);
      expect(statSync(join(dir, name, 'key.pem')).mode & 0o777).toBe(0o600);
    }
    const controllerCert = certificateFromPem(readFileSync(join(dir, 'controller', 'cert.pem'), 'utf8'));
    const rootCert = certificateFromPem(readFileSync(join(dir, 'root', 'cert.pem'), 'utf8'));
    expect(verifyCertificateChain([controllerCert], { roots: [rootCert], role: 'controller' }).role).toBe('controller');
    const days = (controllerCert.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(Math.round(days)).toBe(30);

    const again = await gatesock(['pki', 'init', dir], 10_000);
    expect(again.status).toBe(EXIT.config);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/^gatesock: GS_ERR_INVALID_OPTION: directory .* already holds a PKI .*--force/);
    expect(msidOf(certificateFromPem(readFileSync(join(dir, 'root', 'cert.pem'), 'utf8')))).toBe(root);

    const add = await gatesock(['pki', 'add-gateway', dir, 'gateway-4'], 10_000);
    expect(add.stderr).toBe('');
    expect(add.status).toBe(EXIT.ok);
    const g4 = msidAfter(add.stdout, 'gateway-4');
    expect(add.stdout).toBe(`${'gateway-4'.padEnd(12)}${g4}  gateway-4/cert.pem, gateway-4/key.pem\n`);
    const g4Cert = certificateFromPem(readFileSync(join(dir, 'gateway-4', 'cert.pem'), 'utf8'));
    expect(msidOf(verifyCertificateChain([g4Cert], { roots: [rootCert], role: 'gateway' }))).toBe(g4);

    const forced = await gatesock(['pki', 'init', dir, '--force', '--gateways', '1'], 10_000);
    expect(forced.status).toBe(EXIT.ok);
    expect(msidAfter(forced.stdout, 'root CA')).not.toBe(root);
    expect(existsSync(join(dir, 'gateway-4', 'cert.pem'))).toBe(false);
  });
});
