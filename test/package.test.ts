/**
 * The published package, as a user gets it: `npm pack` the built dist, install
 * the tarball into a fresh folder, and load every public entry point both as
 * CommonJS (`require`) and as ESM (`import`), type-check both ways, and run
 * the `gatesock` bin.
 *
 * Needs a fresh `dist/` (`npm test` builds first). Installs without the
 * network: the consumer gets a lockfile derived from this repo's
 * package-lock.json (the runtime dependencies at the versions we test with),
 * and `npm ci --offline` takes their tarballs from the npm cache that the
 * repo's own `npm ci` filled. If that cache lacks a tarball, it falls back to
 * `npm install --prefer-offline`, which may ask the registry for metadata.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  exports: Record<string, unknown>;
};
/** Every subpath a user can import: `gatesock`, `gatesock/session`, ... (not `./package.json`). */
const specifiers = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`));

// Children get a clean env: no NODE_OPTIONS from the test runner.
const env = { ...process.env };
delete env.NODE_OPTIONS;
const opts = (cwd: string) => ({ cwd, env, timeout: 60_000, maxBuffer: 16 << 20 });

let work: string;
let consumer: string;
let packedFiles: string[];

/** The runtime dependency closure of the repo's lockfile, re-rooted under a consumer of the tarball. */
function consumerLockfile(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
  };
  const packages: Record<string, object> = {
    '': { name: 'gatesock-pack-test', version: '0.0.0', dependencies: { [pkg.name]: `file:${tarball}` } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: `file:${tarball}`,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev) continue;
    // devOptional: needed by dev tooling, or optionally at run time.
    packages[path] = entry.devOptional ? { ...entry, devOptional: undefined, optional: true } : entry;
  }
  return { name: 'gatesock-pack-test', version: '0.0.0', lockfileVersion: 3, requires: true, packages };
}

beforeAll(async () => {
  for (const e of [...Object.values(pkg.bin), 'dist/index.js', 'dist/index.cjs']) {
    if (!existsSync(join(repo, e))) throw new Error(`${e} is missing: run \`npm run build\` first (npm test does)`);
  }
  work = mkdtempSync(join(tmpdir(), 'gatesock-pack-'));
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], opts(repo));
  const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  packedFiles = info.files.map((f) => f.path);

  consumer = join(work, 'consumer');
  const tarball = `../${info.filename}`;
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'gatesock-pack-test', version: '0.0.0', private: true, dependencies: { [pkg.name]: `file:${tarball}` } }),
  );
  writeFileSync(join(consumer, 'package-lock.json'), JSON.stringify(consumerLockfile(tarball)));
  const quiet = ['--no-audit', '--no-fund', '--ignore-scripts'];
  try {
    await run('npm', ['ci', '--offline', ...quiet], opts(consumer));
  } catch (error) {
    console.warn(`offline install failed, retrying with --prefer-offline: ${String(error).slice(0, 500)}`);
    await run('npm', ['install', '--prefer-offline', ...quiet], opts(consumer));
  }
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Run a script in the consumer folder and parse the JSON it prints. */
async function runScript(name: string, source: string): Promise<Record<string, string[]>> {
  writeFileSync(join(consumer, name), source);
  const { stdout } = await run(process.execPath, [name], opts(consumer));
  return JSON.parse(stdout) as Record<string, string[]>;
}

/** For each specifier, the sorted export names and the names of exports that are functions. */
const inspect = `
  const out = {};
  for (const [spec, mod] of loaded) {
    out[spec] = Object.keys(mod).filter((k) => k !== 'default' && k !== 'module.exports').sort();
    out[spec + ' functions'] = out[spec].filter((k) => typeof mod[k] === 'function');
  }
  console.log(JSON.stringify(out));
`;

describe('the packed package', () => {
  it('ships dist and every file "exports" names, and nothing from src or test', () => {
    const targets: string[] = [];
    const collect = (node: unknown): void => {
      if (typeof node === 'string') targets.push(node.replace(/^\.\//, ''));
      else if (node && typeof node === 'object') Object.values(node).forEach(collect);
    };
    collect(pkg.exports);
    expect(targets.length).toBeGreaterThan(specifiers.length * 4);
    for (const target of [...targets, ...Object.values(pkg.bin).map((b) => b.replace(/^\.\//, ''))]) {
      expect(packedFiles, target).toContain(target);
    }
    const outside = packedFiles.filter((f) => !f.startsWith('dist/') && !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md)$/.test(f));
    expect(outside).toEqual([]);
  });

  it('loads every entry point with require() and import(), with the same exports', async () => {
    const list = JSON.stringify(specifiers);
    const cjs = await runScript('check.cjs', `const loaded = ${list}.map((s) => [s, require(s)]);\n${inspect}`);
    const esm = await runScript('check.mjs', `const loaded = [];\nfor (const s of ${list}) loaded.push([s, await import(s)]);\n${inspect}`);
    expect(Object.keys(cjs).filter((k) => !k.endsWith(' functions')).sort()).toEqual([...specifiers].sort());
    expect(esm).toEqual(cjs);
    for (const name of ['GatesockError', 'TransportError', 'memoryPair']) {
      expect(cjs[`${pkg.name} functions`], name).toContain(name);
    }
    expect(cjs[`${pkg.name}/transport functions`]).toContain('memoryPair');
  });

  it('recognises errors across the CommonJS and ESM copies (Symbol.for brands)', async () => {
    const out = await runScript(
      'brand.mjs',
      `import { createRequire } from 'node:module';
       import * as esm from 'gatesock';
       const cjs = createRequire(import.meta.url)('gatesock');
       const e = new cjs.TransportError('GS_ERR_CONNECT_FAILED', 'x');
       console.log(JSON.stringify({ r: [esm.GatesockError !== cjs.GatesockError, e instanceof esm.GatesockError,
         e instanceof esm.TransportError, e instanceof esm.FrameError].map(String) }));`,
    );
    expect(out.r).toEqual(['true', 'true', 'true', 'false']);
  });

  it('refuses deep imports that "exports" does not name', async () => {
    const out = await runScript(
      'deep.cjs',
      `let code = 'none';
       try { require('gatesock/dist/index.cjs'); } catch (e) { code = e.code; }
       console.log(JSON.stringify({ code: [code], version: [require('gatesock/package.json').version] }));`,
    );
    expect(out).toEqual({ code: ['ERR_PACKAGE_PATH_NOT_EXPORTED'], version: [pkg.version] });
  });

  it('type-checks every entry point from ESM and CommonJS consumers', async () => {
    const lines = (form: (spec: string, i: number) => string) => specifiers.map(form).join('\n');
    writeFileSync(
      join(consumer, 'types.mts'),
      `${lines((s, i) => `import * as m${i} from '${s}';`)}\nimport { memoryPair, GatesockError } from 'gatesock';\n` +
        `const pair: [import('gatesock').ByteStream, import('gatesock').ByteStream] = memoryPair();\n` +
        `export const used = [pair, GatesockError, ${specifiers.map((_, i) => `m${i}`).join(', ')}];\n`,
    );
    writeFileSync(
      join(consumer, 'types.cts'),
      `${lines((s, i) => `import m${i} = require('${s}');`)}\n` +
        `const err: import('gatesock').GatesockError = new m0.GatesockError('GS_ERR_INVALID_OPTION', 'x');\n` +
        `export const used = [err, ${specifiers.map((_, i) => `m${i}`).join(', ')}];\n`,
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    // A Node consumer has @types/node; borrow the repo's rather than install it.
    const typeRoots = [join(repo, 'node_modules', '@types')];
    const compilerOptions = { noEmit: true, strict: true, module: 'nodenext', target: 'es2022', typeRoots, types: ['node'] };
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['types.mts', 'types.cts'] }));
    await run(process.execPath, [tsc, '-p', '.'], opts(consumer)).catch((e: { stdout?: string }) => {
      throw new Error(`tsc failed:\n${e.stdout ?? String(e)}`);
    });
  });

  it('installs a working `gatesock` bin', async () => {
    const bin = join(consumer, 'node_modules', '.bin', 'gatesock');
    // Spawned directly, so the shebang and the executable bit are tested too.
    const { stdout } = await run(bin, ['--help'], opts(consumer));
    expect(stdout.trim().length).toBeGreaterThan(0);
  });
});
