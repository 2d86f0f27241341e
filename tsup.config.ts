import { defineConfig } from 'tsup';

// One entry per public subpath (package.json "exports"), plus the CLI.
const entry = {
  index: 'src/index.ts',
  'session/index': 'src/session/index.ts',
  'transport/index': 'src/transport/index.ts',
  'relay/index': 'src/relay/index.ts',
  'socket/index': 'src/socket/index.ts',
  'fec/index': 'src/fec/index.ts',
  'keyaddress/index': 'src/keyaddress/index.ts',
  'delivery/index': 'src/delivery/index.ts',
};
// The CLI is ESM only (it uses top-level await); it is a bin, not an import.
const cli = { 'cli/main': 'src/cli/main.ts' };
// The worker thread of ParallelReedSolomon, loaded by URL beside fec/index
// (both the ESM and the CJS fec entry use this one ESM file); not an export.
const fecWorker = { 'fec/parallel-worker': 'src/fec/parallel-worker.ts', 'session/seal-worker': 'src/session/secure/seal-worker.ts' };
// The dispatch agent's loader runs as its own Node process (docs/dispatch.md); not an export.
const loader = { 'delivery/dispatch-loader': 'src/delivery/dispatch/agent/loader-main.ts' };

// ESM-only dependencies are bundled into the CommonJS build only, so that
// `require('gatesock')` works in loaders without require(esm) (TOOLCHAIN.md §4).
const esmOnly = [/^@noble\//, 'pkijs', 'asn1js', '@peculiar/utils', 'bytestreamjs', 'pvtsutils', 'pvutils'];

export default defineConfig([
  { entry: { ...entry, ...cli, ...fecWorker, ...loader }, format: ['esm'], sourcemap: true, target: 'node20', splitting: true, outDir: 'dist' },
  { entry, format: ['cjs'], sourcemap: true, target: 'node20', outDir: 'dist', noExternal: esmOnly, shims: true },
]);
