// Benchmark runner: `npm run bench [-- [--json FILE] [--list] [--strict] [NAME ...]]`.
//
// Discovers bench/*.bench.ts, imports them through scripts/ts-hooks.mjs
// (registered here, so plain `node scripts/bench.mjs` runs TypeScript
// without a build step; the bench code imports src/ directly, so figures
// always measure the working tree; the hooks strip types only, so the code
// runs as the built package does — see ts-hooks.mjs for why not tsx), and
// runs every figure one after the other in this one process.
// The contract of a benchmark module, and the output line, are documented in
// bench/harness.ts.
//
//   NAME ...      run only the figures whose name contains one of the NAMEs
//   --json FILE   also write the figures as a JSON array of
//                 { name, unit, ours, baseline, baselineValue, ratio, target, met }
//   --list        print the figure names and exit
//   --strict      exit 1 when a target is NOT met (default: only when a figure fails)
//
// stdout carries exactly one line per figure; everything else goes to stderr.
// Exit status: 0, 1 when a figure failed its checks or threw (or --strict and
// a target was not met), 2 on a usage error or when no figure matched.
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import './ts-register.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(root, 'bench');

function usage(message) {
  if (message) console.error(`bench: ${message}`);
  console.error('usage: npm run bench -- [--json FILE] [--list] [--strict] [NAME ...]');
  process.exit(2);
}

const names = [];
let jsonFile;
let list = false;
let strict = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--json') {
    jsonFile = argv[++i];
    if (!jsonFile) usage('--json needs a FILE');
  } else if (a.startsWith('--json=')) jsonFile = a.slice('--json='.length);
  else if (a === '--list') list = true;
  else if (a === '--strict') strict = true;
  else if (a === '--help' || a === '-h') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else names.push(a);
}

const harness = await import(pathToFileURL(join(benchDir, 'harness.ts')).href);

const files = readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const selected = [];
const seen = new Map();
for (const file of files) {
  const mod = await import(pathToFileURL(join(benchDir, file)).href);
  if (!Array.isArray(mod.figures)) {
    console.error(`bench: bench/${file} does not export \`figures\` (see bench/harness.ts)`);
    process.exit(1);
  }
  for (const figure of harness.defineFigures(mod.figures)) {
    if (seen.has(figure.name)) {
      console.error(`bench: figure ${JSON.stringify(figure.name)} is in both ${seen.get(figure.name)} and bench/${file}`);
      process.exit(1);
    }
    seen.set(figure.name, `bench/${file}`);
    if (names.length === 0 || names.some((n) => figure.name.includes(n))) selected.push(figure);
  }
}

if (list) {
  for (const f of selected) console.log(f.name);
  process.exit(0);
}
if (selected.length === 0) {
  usage(names.length > 0 ? `no figure name contains ${names.map((n) => JSON.stringify(n)).join(' or ')}` : 'no figures in bench/*.bench.ts');
}

const results = [];
let failed = 0;
let missed = 0;
for (const figure of selected) {
  try {
    const result = harness.evaluate(figure, await figure.run());
    console.log(harness.formatLine(result));
    results.push(result);
    if (!result.met) missed++;
  } catch (error) {
    failed++;
    console.error(`${figure.name}: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}

if (jsonFile) {
  const path = resolve(process.env.INIT_CWD ?? process.cwd(), jsonFile);
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
  console.error(`bench: wrote ${results.length} figure(s) to ${path}`);
}
if (failed > 0) console.error(`bench: ${failed} figure(s) failed`);
if (failed > 0 || (strict && missed > 0)) process.exitCode = 1;
