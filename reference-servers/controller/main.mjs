#!/usr/bin/env node
// The gateway system's controller as a deployable program: `gatesock
// controller` from the built package (run `npm run build` first), with
// controller.yaml beside this file as its configuration unless --config is
// given. Every flag of `gatesock controller --help` works here too and
// overrides the file:
//
//   node reference-servers/controller/main.mjs --config /etc/gatesock/controller.yaml
//   node reference-servers/controller/main.mjs --pki ./pki --listen 0.0.0.0:7000
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (!args.some((a) => a === '--config' || a.startsWith('--config='))) {
  args.unshift('--config', fileURLToPath(new URL('./controller.yaml', import.meta.url)));
}
process.argv.splice(2, Infinity, 'controller', ...args);
await import('../../dist/cli/main.js');
