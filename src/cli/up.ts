/**
 * `gatesock up`: the embedded default — a whole gateway system in one
 * process on loopback, so that `gatesock serve` and `gatesock connect` work
 * with no set-up. Its state lives in one folder (default `./.gatesock`):
 *
 * ```
 * root/, controller/, gateway-N/   the PKI, made by initPki on first run and reused after
 * controller.db                    the server database (SQLite), so PCIDs survive a restart
 * ```
 *
 * The PKI's identities are read one by one (not with `loadPki`), because
 * `gatesock serve` keeps its own identity in `server-identity/` of the same
 * folder by default, and that is not a gateway.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Controller, Gateway, SqliteServerStore, addGateway, initPki, type Certificate, type Identity } from '../relay/index.js';
import { ConfigError } from '../errors/index.js';
import { LOG_LEVELS, loadPkiIdentity, type LogLevel } from './config.js';
import { createLogger, onShutdown } from './lifecycle.js';

/** Defaults of `gatesock up`. */
export const UP_DEFAULTS = Object.freeze({ dir: './.gatesock', port: 7000, gateways: 2, logLevel: 'warn' as LogLevel });

/** Options of {@link runUp}. */
export interface UpOptions {
  /** State folder. */
  dir: string;
  /** Controller port on 127.0.0.1. */
  port: number;
  /** Gateways to run, each on a free loopback port. */
  gateways: number;
  /** Level of the JSON logs on stderr. */
  logLevel: LogLevel;
  /** Where lines of output go. */
  print: (line: string) => void;
}

/** Read the PKI in `dir`, making it on first run and adding gateway certificates when more gateways are asked for. */
async function ensurePki(dir: string, gateways: number): Promise<{ root: Certificate; controller: Identity; gateways: Identity[]; created: boolean }> {
  const created = !existsSync(join(dir, 'root', 'cert.pem'));
  if (created) await initPki({ directory: dir, gateways, commonNamePrefix: 'gatesock up' });
  const { root, identity: controller } = await loadPkiIdentity(dir, 'controller', 'controller');
  const list: Identity[] = [];
  for (let i = 1; i <= gateways; i++) {
    const name = `gateway-${i}`;
    if (!existsSync(join(dir, name, 'cert.pem'))) await addGateway(dir, name);
    list.push((await loadPkiIdentity(dir, name, 'gateway')).identity);
  }
  return { root, controller, gateways: list, created };
}

/** Start the system and print how to use it; runs until SIGINT or SIGTERM. */
export async function runUp(options: UpOptions): Promise<void> {
  const { print } = options;
  if (!Number.isInteger(options.gateways) || options.gateways < 1 || options.gateways > 64) throw new ConfigError('GS_ERR_INVALID_OPTION', '--gateways must be 1..64');
  if (!(LOG_LEVELS as readonly string[]).includes(options.logLevel)) throw new ConfigError('GS_ERR_INVALID_OPTION', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const dir = resolve(options.dir);
  const pki = await ensurePki(dir, options.gateways);
  // Logs go to stderr: stdout is the instructions below.
  const log = createLogger('gatesock-up', options.logLevel, 2);
  const store = await SqliteServerStore.open(join(dir, 'controller.db'));
  const gateways: Gateway[] = [];
  let controller: Controller | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(gateways.map((g) => g.close()));
    await controller?.close();
  };
  onShutdown(async () => {
    print('stopping');
    await stop();
  });
  try {
    controller = await Controller.start({ identity: pki.controller, roots: [pki.root], store, host: '127.0.0.1', port: options.port, log: log.child({ role: 'controller' }) });
  } catch (error) {
    await store.close();
    throw error;
  }
  try {
    for (const [i, identity] of pki.gateways.entries()) {
      gateways.push(await Gateway.start({ identity, roots: [pki.root], controller: controller.address, host: '127.0.0.1', port: 0, log: log.child({ role: `gateway-${i + 1}` }) }));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const names = new Map(gateways.map((g, i) => [g.msid, `gateway-${i + 1}`]));
  // The PCID is left out: a server asking for its own name gets it by a rename after this login.
  controller.on('login', (msid, _pcid, gateway) => print(`server ${msid} is on ${names.get(gateway) ?? gateway}`));
  controller.on('gatewayDown', (msid, why) => stopping || print(`${names.get(msid) ?? msid} left the balancing set: ${why}`));

  const root = join(dir, 'root', 'cert.pem');
  const flags = `--controller ${controller.address} --root ${quote(root)}`;
  print(`gatesock up: a gateway system on loopback (${pki.created ? 'made' : 'reusing'} ${dir})`);
  print(`controller  ${controller.address}`);
  for (const g of gateways) print(`${names.get(g.msid)!.padEnd(12)}${g.address}`);
  print('');
  print('Serve a local TCP service under a name (here: a web server on 127.0.0.1:8080):');
  print(`  gatesock serve --forward 127.0.0.1:8080 --pcid my-web ${flags}`);
  print('Reach it through the relay from a local port:');
  print(`  gatesock connect my-web --listen 127.0.0.1:8081 ${flags}`);
  if (dir === resolve(UP_DEFAULTS.dir) && controller.port === UP_DEFAULTS.port) print('(From this folder, --controller and --root can be left out: these are their defaults.)');
  print('Ctrl-C stops.');
}

/** Quote a path for a POSIX shell if it needs it. */
function quote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
