/**
 * `gatesock controller`: the gateway system's directory and load balancer
 * as a long-running process (design, system 1). Settings come from a YAML
 * file and flags ({@link CONTROLLER_SETTINGS}); logs are pino JSON lines on
 * stdout; SIGTERM or SIGINT closes the listener, every link and the
 * database, then exits 0.
 */
import { ConfigError } from '../errors/index.js';
import {
  Controller,
  DEFAULT_CONTROLLER_OPTIONS,
  SqliteServerStore,
  leastSessionsStrategy,
  weightedLoadStrategy,
  type BalancingStrategy,
} from '../relay/index.js';
import { LOG_LEVELS, kind, loadPkiIdentity, required, resolveSettings, type HostPort, type Setting } from './config.js';
import { createLogger, onShutdown } from './lifecycle.js';

/** The balancing strategies by their CLI name. */
export const STRATEGIES: Readonly<Record<'least-sessions' | 'weighted-load', BalancingStrategy>> = Object.freeze({
  'least-sessions': leastSessionsStrategy,
  'weighted-load': weightedLoadStrategy(),
});

/** Every setting of `gatesock controller`: flag `--KEY`, or `KEY:` in the config file. */
export const CONTROLLER_SETTINGS = Object.freeze({
  pki: { parse: kind.path(), arg: 'dir', help: 'PKI folder made by `gatesock pki init`: uses root/cert.pem and controller/{cert,key}.pem' } as Setting<string>,
  listen: { parse: kind.listen(), default: { host: '127.0.0.1', port: 7000 }, arg: 'host:port', help: 'address to listen on for gateways, servers and clients' },
  websocket: { parse: kind.listen(), arg: 'host:port', help: 'also listen for WebSocket upgrades (path /gatesock) here, for peers behind web proxies' } as Setting<HostPort>,
  db: { parse: kind.path(), default: './gatesock-controller.db', arg: 'file', help: 'SQLite file of the server database (MSID ↔ PCID), created on first use; ":memory:" keeps it in memory' },
  keepalive: {
    parse: kind.integer(10),
    default: DEFAULT_CONTROLLER_OPTIONS.keepaliveIntervalMs,
    arg: 'ms',
    help: 'T1: how often gateways send a keepalive, in ms',
  },
  'gateway-timeout': {
    parse: kind.integer(11),
    default: DEFAULT_CONTROLLER_OPTIONS.gatewayTimeoutMs,
    arg: 'ms',
    help: 'T2: a gateway silent this long leaves the balancing set, in ms (> keepalive)',
  },
  strategy: {
    parse: kind.oneOf('least-sessions', 'weighted-load'),
    default: 'least-sessions' as 'least-sessions' | 'weighted-load',
    arg: 'name',
    help: 'how a gateway is picked for a server: least-sessions (lowest sessions / capacity) or weighted-load (also connections, bandwidth, CPU)',
  },
  'log-level': { parse: kind.oneOf(...LOG_LEVELS), default: 'info' as (typeof LOG_LEVELS)[number], arg: 'level', help: `log level: ${LOG_LEVELS.join(', ')}` },
});

/** Run the controller until a signal; `flags` are commander's options, `config` the --config file. */
export async function runController(flags: Record<string, unknown>, config: string | undefined): Promise<void> {
  const s = await resolveSettings(CONTROLLER_SETTINGS, flags, config);
  const pki = required(s.pki, 'pki');
  if (s['gateway-timeout'] <= s.keepalive) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `gateway-timeout (${s['gateway-timeout']} ms) must be greater than keepalive (${s.keepalive} ms)`);
  }
  const { root, identity } = await loadPkiIdentity(pki, 'controller', 'controller');
  const log = createLogger('gatesock-controller', s['log-level']);
  const store = await SqliteServerStore.open(s.db);
  let controller: Controller;
  try {
    controller = await Controller.start({
      identity,
      roots: [root],
      store,
      host: s.listen.host,
      port: s.listen.port,
      websocket: s.websocket && { host: s.websocket.host, port: s.websocket.port },
      keepaliveIntervalMs: s.keepalive,
      gatewayTimeoutMs: s['gateway-timeout'],
      strategy: STRATEGIES[s.strategy],
      log,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  log.info({ msid: identity.msid, db: s.db, pki, keepaliveMs: s.keepalive, gatewayTimeoutMs: s['gateway-timeout'] }, 'controller ready');
  onShutdown(async (signal) => {
    log.info({ signal }, 'shutting down');
    await controller.close();
    log.info({}, 'closed');
  });
}
