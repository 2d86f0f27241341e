#!/usr/bin/env node
// One gateway of the gateway system as a deployable program: `gatesock
// gateway` from the built package (run `npm run build` first), with
// gateway.yaml beside this file as its configuration unless --config is
// given. Every flag of `gatesock gateway --help` works here too and
// overrides the file:
//
//   node reference-servers/gateway/main.mjs --config /etc/gatesock/gateway.yaml
//   node reference-servers/gateway/main.mjs --name gateway-2 --listen 0.0.0.0:7001 --advertise gw2.example.net:7001
//
// SIGTERM (or SIGINT, or SIGUSR2) drains: no new servers, the controller
// takes it out of the balancing set, its servers move to other gateways, and
// it exits 0 once they have (or at drain-timeout). A second SIGTERM closes at once.
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (!args.some((a) => a === '--config' || a.startsWith('--config='))) {
  args.unshift('--config', fileURLToPath(new URL('./gateway.yaml', import.meta.url)));
}
process.argv.splice(2, Infinity, 'gateway', ...args);
await import('../../dist/cli/main.js');
