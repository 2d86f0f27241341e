#!/usr/bin/env node
/**
 * The `gatesock` command: a thin shell over the public API. Each subcommand
 * lives in its own module; this file wires flags (checked by name, defaults
 * from the same objects the library uses) and maps errors to exit statuses.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { createRequire } from 'node:module';
import { loadOrCreateServerIdentity, msidOf, parseCertificate } from '../session/index.js';
import { DEMO_DEFAULTS, runDemo } from './demo.js';
import { EXIT, reportError } from './errors.js';

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
    `\nExit status: ${EXIT.ok} ok, ${EXIT.failure} failure, ${EXIT.usage} usage, ${EXIT.config} bad option, ${EXIT.transport} network, ${EXIT.trust} certificate or handshake, ${EXIT.session} session, ${EXIT.relay} refused by the gateway system.`,
  )
  .exitOverride();

program
  .command('demo')
  .description('run a secure session on loopback with a throwaway PKI: handshake, multiplexed connections, verified echo')
  .option('--bytes <n>', 'bytes each connection sends', integer('--bytes'), DEMO_DEFAULTS.bytes)
  .option('--connections <n>', 'connections over the session', integer('--connections'), DEMO_DEFAULTS.connections)
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(err, program.opts<{ debug?: boolean }>().debug === true);
  }
}
