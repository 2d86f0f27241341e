// Public API report: runs API Extractor over the built .d.ts of every public
// entry point and keeps one report per entry in etc/api/.
//
//   npm run build && npm run api         regenerate etc/api/*.api.md
//   npm run build && npm run api:check   fail if a report is stale or missing
//   node scripts/api-report.mjs --strict also fail on warnings (e.g. ae-undocumented)
//
// api-extractor takes one entry point per config (TOOLCHAIN.md §7), so this
// script loads the root api-extractor.json once and overrides its entry point
// and report name for each subpath in package.json "exports" (the entries are
// read from there, so a new subpath gets its report without touching this
// file): "." → etc/api/gatesock.api.md, "./session" →
// etc/api/gatesock-session.api.md, and so on. All entries share one
// TypeScript program.
//
// Exit status: 1 when any entry has an error (ae-missing-release-tag is one:
// every export must carry a release tag), when --check finds a report that
// differs from the built API, or with --strict when there is any warning.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompilerState, Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--check', '--strict', '--help'].includes(a)) {
    console.error(`api-report: unknown argument ${a} (use --check, --strict)`);
    process.exit(2);
  }
}
if (args.has('--help')) {
  console.log('usage: node scripts/api-report.mjs [--check] [--strict]');
  process.exit(0);
}
const check = args.has('--check');
const strict = args.has('--strict');

const pkgPath = join(root, 'package.json');
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
const baseConfigPath = join(root, 'api-extractor.json');
const base = ExtractorConfig.loadFile(baseConfigPath);
const reportFolder = join(root, 'etc', 'api');

/**
 * Public entry points from package.json "exports": `{ subpath, reportName, dts }`.
 * "." becomes `gatesock`, "./session" becomes `gatesock-session`.
 */
function entryPoints() {
  const out = [];
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    const dts = typeof target === 'object' ? target?.import?.types : undefined;
    if (typeof dts !== 'string') continue; // e.g. "./package.json"
    const suffix = subpath === '.' ? '' : '-' + subpath.replace(/^\.\//, '').replaceAll('/', '-');
    out.push({ subpath, reportName: pkg.name + suffix, dts: resolve(root, dts) });
  }
  return out;
}

const entries = entryPoints();
const missing = entries.filter((e) => !existsSync(e.dts));
if (missing.length > 0) {
  console.error(`api-report: missing ${missing.map((e) => relative(root, e.dts)).join(', ')}; run \`npm run build\` first.`);
  process.exit(1);
}

function prepare(entry) {
  const configObject = structuredClone(base);
  configObject.mainEntryPointFilePath = entry.dts;
  configObject.apiReport = { ...configObject.apiReport, reportFileName: entry.reportName };
  configObject.compiler = {
    ...configObject.compiler,
    overrideTsconfig: { ...configObject.compiler?.overrideTsconfig, files: [entry.dts] },
  };
  return ExtractorConfig.prepare({ configObject, configObjectFullPath: baseConfigPath, packageJsonFullPath: pkgPath });
}

const configs = entries.map((e) => ({ entry: e, config: prepare(e) }));
// One program for every entry point: the entries share most declarations.
const compilerState = CompilerState.create(configs[0].config, {
  additionalEntryPoints: configs.slice(1).map((c) => c.config.mainEntryPointFilePath),
});

/** Path of an entry's (complete-variant) report in `folder`. */
const reportIn = (config, folder) => join(folder, config.reportConfigs[0].fileName);

/**
 * Messages configured with `addToApiReportFile` (ae-forgotten-export and the
 * like) go into the report instead of the console; list them here too, so a
 * run shows every finding. The temp report is written in both modes.
 */
function warningsInReport(config) {
  const path = reportIn(config, config.reportTempFolder);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('// Warning: '))
    .map((line) => `  warning (in report) ${line.slice('// Warning: '.length)}`);
}

let failed = false;
let totalWarnings = 0;
for (const { entry, config } of configs) {
  const problems = [];
  let errors = 0;
  const result = Extractor.invoke(config, {
    localBuild: !check,
    compilerState,
    showVerboseMessages: false,
    messageCallback(message) {
      const level = message.logLevel;
      if (message.category !== 'console' && (level === ExtractorLogLevel.Error || level === ExtractorLogLevel.Warning)) {
        // Our own tally, printed once per entry with paths relative to the repo.
        const where = message.sourceFilePath
          ? `${relative(root, message.sourceFilePath)}:${message.sourceFileLine ?? 0}:${message.sourceFileColumn ?? 0} `
          : '';
        problems.push(`  ${level} ${where}(${message.messageId}) ${message.text}`);
        if (level === ExtractorLogLevel.Error) errors++;
      } else if (level === ExtractorLogLevel.Error) {
        return; // api-extractor's own errors print as they come
      }
      // Drop the chatter ("Analysis will use the bundled TypeScript version",
      // "You have changed the API signature"): the status line says it.
      message.handled = true;
    },
  });
  problems.push(...warningsInReport(config));
  const warnings = problems.length - errors;
  totalWarnings += warnings;
  let status;
  if (errors > 0 || result.errorCount > 0) status = `${Math.max(errors, result.errorCount)} error(s)`;
  else if (check && result.apiReportChanged) status = 'STALE: run `npm run build && npm run api` and commit it';
  else if (result.apiReportChanged) status = 'updated';
  else status = 'up to date';
  if (warnings > 0) status += `, ${warnings} warning(s)`;
  console.log(`${entry.subpath.padEnd(13)} ${relative(root, reportIn(config, config.reportFolder))}: ${status}`);
  for (const p of problems) console.log(p);
  // Not `result.succeeded`: outside a local build api-extractor fails on any
  // warning, and warnings fail this script only under --strict.
  if (errors > 0 || result.errorCount > 0 || (check && result.apiReportChanged)) failed = true;
}

// A report whose entry point is gone is stale too.
const expected = new Set(configs.map((c) => reportIn(c.config, c.config.reportFolder)));
for (const file of existsSync(reportFolder) ? readdirSync(reportFolder) : []) {
  const path = join(reportFolder, file);
  if (!file.endsWith('.api.md') || expected.has(path)) continue;
  if (check) {
    console.log(`${relative(root, path)}: no such entry point in package.json "exports"; delete it`);
    failed = true;
  } else {
    rmSync(path);
    console.log(`${relative(root, path)}: removed (no such entry point)`);
  }
}

if (totalWarnings > 0) console.log(`${totalWarnings} warning(s)${strict ? ' (--strict: failing)' : ''}`);
if (strict && totalWarnings > 0) failed = true;
if (failed) process.exitCode = 1;
