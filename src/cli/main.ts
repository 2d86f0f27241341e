#!/usr/bin/env node
/**
 * The `gatesock` command: a thin shell over the public API. Each subcommand
 * lives in its own module; this file wires flags (checked by name, defaults
 * from the same objects the library uses) and maps errors to exit statuses.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { createRequire } from 'node:module';
import { relative, resolve } from 'node:path';
import { PKI_DEFAULTS, addGateway, initPki, type PkiIdentityFiles } from '../relay/index.js';
import { loadOrCreateServerIdentity, msidOf, parseCertificate } from '../session/index.js';
import { addSettingOptions } from './config.js';
import { runConnect } from './connect.js';
import { CONTROLLER_SETTINGS, runController } from './controller.js';
import { DEMO_DEFAULTS, runDemo } from './demo.js';
import { registerCenterCommands } from './center.js';
import { registerDispatchCommands } from './dispatch.js';
import { EXIT, reportError } from './errors.js';
import { GATEWAY_SETTINGS, runGateway } from './gateway.js';
import { ENDPOINT_DEFAULTS, runServe } from './serve.js';
import { UP_DEFAULTS, runUp } from './up.js';
import { registerUpdateCommands } from './update.js';

const version = (() => {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

function integer(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function backendName(value: string): 'auto' | 'native' | 'noble' {
  if (value !== 'auto' && value !== 'native' && value !== 'noble') throw new InvalidArgumentError('must be auto, native or noble');
  return value;
}

const program = new Command()
  .name('gatesock')
  .description('Encrypted, TCP-like streams between programs behind NAT and firewalls, relayed by a gateway system.')
  .version(version)
  .option('--debug', 'print stacks with errors')
  .addHelpText(
    'after',
    `\nExit status: ${EXIT.ok} ok, ${EXIT.failure} failure, ${EXIT.usage} usage, ${EXIT.config} bad option, ${EXIT.transport} network, ${EXIT.trust} certificate or handshake, ${EXIT.session} session, ${EXIT.relay} refused by the gateway system, ${EXIT.keyAddress} key-address set-up, ${EXIT.delivery} update delivery, ${EXIT.dispatch} verifiable dispatch, ${EXIT.security} security center.`,
  )
  .exitOverride();

program
  .command('demo')
  .description('run a whole gateway system on loopback with a throwaway PKI: controller, two gateways, a server found by its PCID, end-to-end encrypted connections with verified echo')
  .option('--bytes <n>', 'bytes each connection sends', integer('--bytes'), DEMO_DEFAULTS.bytes)
  .option('--connections <n>', 'relayed connections to the server, at once', integer('--connections'), DEMO_DEFAULTS.connections)
  .option('--backend <name>', 'crypto backend: auto, native or noble', backendName, DEMO_DEFAULTS.backend)
  .option('--dir <path>', 'keep the server identity in this folder (made on first run)')
  .action(async (o: { bytes: number; connections: number; backend: 'auto' | 'native' | 'noble'; dir?: string }) => {
    await runDemo({ ...o, log: (line) => console.log(line) });
  });

const identity = program.command('identity').description("a server's identity: key pair and self-signed certificate");
identity
  .command('init')
  .description('create the identity in a folder on first use, or load it, and print its MSID')
  .argument('<dir>', 'folder for key.pem and cert.pem')
  .action(async (dir: string) => {
    const id = await loadOrCreateServerIdentity(dir);
    console.log(msidOf(parseCertificate(id.certificateChain[0]!)));
  });

function nonNegativeInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer ≥ 0`);
    return n;
  };
}

/** One line per identity: label, MSID, and its two files relative to the PKI folder. */
function pkiLine(label: string, files: PkiIdentityFiles, directory: string): string {
  const rel = (p: string) => relative(directory, p) || p;
  return `${label.padEnd(12)}${files.msid}  ${rel(files.certificatePath)}, ${rel(files.keyPath)}`;
}

const pki = program.command('pki').description("the gateway system's PKI: a root CA and the controller and gateway certificates it signs");
pki
  .command('init')
  .description('create a root CA, a controller certificate and gateway certificates in a folder, and print their MSIDs')
  .argument('<dir>', 'folder for root/, controller/ and gateway-N/ (each with cert.pem and key.pem)')
  .option('--gateways <n>', 'gateway certificates to make', nonNegativeInteger('--gateways'), PKI_DEFAULTS.gateways)
  .option('--days <n>', 'days every certificate is valid', integer('--days'), PKI_DEFAULTS.validDays)
  .option('--force', 'replace a PKI already in the folder (certificates signed by the old root stop working)')
  .action(async (dir: string, o: { gateways: number; days: number; force?: boolean }) => {
    const layout = await initPki({ directory: dir, gateways: o.gateways, validDays: o.days, force: o.force === true });
    console.log(`wrote ${layout.directory}`);
    console.log(pkiLine('root CA', layout.root, layout.directory));
    console.log(pkiLine('controller', layout.controller, layout.directory));
    for (const g of layout.gateways) console.log(pkiLine(g.name, g, layout.directory));
    console.log(`Ship ${relative(layout.directory, layout.root.certificatePath)} with applications; keep ${relative(layout.directory, layout.root.keyPath)} offline (\`gatesock pki add-gateway\` needs it).`);
  });
pki
  .command('add-gateway')
  .description("issue one more gateway certificate into DIR/NAME, signed by the root key in DIR/root")
  .argument('<dir>', 'the folder `gatesock pki init` made')
  .argument('<name>', 'the gateway\'s name and folder, e.g. gateway-3')
  .option('--days <n>', "days the certificate is valid (default: 3650, or what is left of the root's validity)", integer('--days'))
  .action(async (dir: string, name: string, o: { days?: number }) => {
    const files = await addGateway(dir, name, o.days === undefined ? {} : { validDays: o.days });
    console.log(pkiLine(name, files, resolve(dir)));
  });

const debug = (): boolean => program.opts<{ debug?: boolean }>().debug === true;
const print = (line: string): void => void process.stdout.write(line + '\n');
const note = (line: string): void => void process.stderr.write(line + '\n');

addSettingOptions(
  program
    .command('controller')
    .description('run the controller: directory and load balancer of the gateway system (JSON logs on stdout; SIGTERM or SIGINT closes and exits 0)')
    .option('--config <file>', 'YAML file of settings (keys are the flag names without dashes); flags override it'),
  CONTROLLER_SETTINGS,
).action(async (o: Record<string, unknown> & { config?: string }) => runController(o, o.config));

addSettingOptions(
  program
    .command('gateway')
    .description('run a gateway: relays between clients and servers (JSON logs on stdout; SIGTERM, SIGINT or SIGUSR2 drains and exits 0, a second SIGTERM closes at once)')
    .option('--config <file>', 'YAML file of settings (keys are the flag names without dashes); flags override it'),
  GATEWAY_SETTINGS,
).action(async (o: Record<string, unknown> & { config?: string }) => runGateway(o, o.config));

program
  .command('up')
  .description('run a whole gateway system on loopback (a controller and gateways in one process, state in --dir) and print how to serve and connect')
  .option('--dir <path>', 'state folder: PKI (made on first run) and controller.db', UP_DEFAULTS.dir)
  .option('--port <n>', 'controller port on 127.0.0.1', integer('--port'), UP_DEFAULTS.port)
  .option('--gateways <n>', 'gateways to run', integer('--gateways'), UP_DEFAULTS.gateways)
  .option('--log-level <level>', 'level of the JSON logs on stderr', UP_DEFAULTS.logLevel)
  .action(async (o: { dir: string; port: number; gateways: number; logLevel: string }) =>
    runUp({ ...o, logLevel: o.logLevel as typeof UP_DEFAULTS.logLevel, print }),
  );

program
  .command('serve')
  .description('serve a local TCP service through the gateway system under a PCID; prints the PCID and MSID, and a line per connection on stderr')
  .requiredOption('--forward <host:port>', 'the local TCP service each connection is forwarded to')
  .option('--pcid <name>', 'ask for this PCID (1 to 31 printable ASCII characters); default: the one the controller gave')
  .option('--controller <host:port>', "the controller's address", ENDPOINT_DEFAULTS.controller)
  .option('--root <file>', "the gateway system's root certificate (PEM)", ENDPOINT_DEFAULTS.root)
  .option('--identity <dir>', "the server's identity folder, made on first run (its hash is the MSID)", ENDPOINT_DEFAULTS.identity)
  .option('--no-e2e', 'turn the end-to-end layer off (the gateways can then read the bytes)')
  .option('--no-pass-through', 'seal every byte on the hop to the gateway too, even end-to-end ciphertext')
  .option('--proxy <[user:password@]host:port>', 'reach the controller and gateways through this HTTP CONNECT proxy')
  .action(async (o: { forward: string; pcid?: string; controller: string; root: string; identity: string; e2e: boolean; passThrough: boolean; proxy?: string }) =>
    runServe({ ...o, debug: debug(), print, note }),
  );

program
  .command('connect')
  .description('listen on a local TCP port and forward each connection to the server NAME through the gateway system')
  .argument('<name>', "the server's PCID")
  .option('--listen <host:port>', 'local address to listen on; port 0 picks one', '127.0.0.1:0')
  .option('--controller <host:port>', "the controller's address", ENDPOINT_DEFAULTS.controller)
  .option('--root <file>', "the gateway system's root certificate (PEM)", ENDPOINT_DEFAULTS.root)
  .option('--no-e2e', 'turn the end-to-end layer off (the server must allow it)')
  .option('--no-pass-through', 'seal every byte on the hop to the gateway too, even end-to-end ciphertext')
  .option('--no-check', 'do not look NAME up at start (errors then show per connection)')
  .option('--proxy <[user:password@]host:port>', 'reach the controller and gateways through this HTTP CONNECT proxy')
  .action(async (pcid: string, o: { listen: string; controller: string; root: string; e2e: boolean; passThrough: boolean; check: boolean; proxy?: string }) =>
    runConnect({ ...o, pcid, debug: debug(), print, note }),
  );

registerUpdateCommands(program, { print, note });
registerDispatchCommands(program, { print, note });
registerCenterCommands(program, { print, note });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(err, program.opts<{ debug?: boolean }>().debug === true);
  }
}
