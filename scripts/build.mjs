// Build: JavaScript with tsup (ESM + CJS), declarations with tsc.
//
// tsup's own declaration bundler splits shared types into chunks with
// mangled names when there are several entries, so a subpath's .d.ts would
// advertise exports its runtime lacks. Instead tsc emits one .d.ts per source
// file under dist/types, a copy with .d.cts / .cjs specifiers serves
// `require` consumers, and each entry gets a one-line .d.ts / .d.cts that
// re-exports its module (package.json "exports" points at those).
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const run = (script, args) => execFileSync(process.execPath, [join(root, script), ...args], { stdio: 'inherit', cwd: root });

rmSync(dist, { recursive: true, force: true });
run('node_modules/tsup/dist/cli-default.js', []);
run('node_modules/typescript/bin/tsc', ['-p', 'tsconfig.build.json']);

// CommonJS twin of the declaration tree.
const esmTypes = join(dist, 'types');
const cjsTypes = join(dist, 'types-cjs');
cpSync(esmTypes, cjsTypes, { recursive: true });
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8').replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.js\2/g, '$1$2$3.cjs$2');
      writeFileSync(p.slice(0, -'.d.ts'.length) + '.d.cts', text);
      rmSync(p);
    }
  }
})(cjsTypes);

const entries = ['index', 'session/index', 'transport/index', 'relay/index', 'socket/index', 'fec/index', 'keyaddress/index', 'delivery/index'];
for (const entry of entries) {
  const stub = join(dist, entry);
  mkdirSync(dirname(stub), { recursive: true });
  const rel = (to) => { const r = relative(dirname(stub), join(to, entry)); return r.startsWith('.') ? r : './' + r; };
  writeFileSync(stub + '.d.ts', `export * from '${rel(esmTypes)}.js';\n`);
  writeFileSync(stub + '.d.cts', `export * from '${rel(cjsTypes)}.cjs';\n`);
}
chmodSync(join(dist, 'cli/main.js'), 0o755);
