/**
 * `gatesock gateway`: one relay of the gateway system as a long-running
 * process (design, system 1). It listens, registers with the controller,
 * and relays until stopped:
 *
 * - SIGTERM, SIGINT or SIGUSR2: drain — take no new server sessions, leave
 *   the balancing set, tell every server to move, close once they have (or
 *   at `drain-timeout`) and exit 0. SIGUSR2 is the same drain under a signal
 *   that process managers do not send on their own (`kill -USR2 PID`).
 * - A second SIGTERM or SIGINT during the drain: close at once, exit 0.
 */
import { DEFAULT_GATEWAY_OPTIONS, Gateway } from '../relay/index.js';
import { LOG_LEVELS, kind, loadPkiIdentity, required, resolveSettings, type HostPort, type Setting } from './config.js';
import { createLogger, onShutdown } from './lifecycle.js';

/** Every setting of `gatesock gateway`: flag `--KEY`, or `KEY:` in the config file. */
export const GATEWAY_SETTINGS = Object.freeze({
  pki: { parse: kind.path(), arg: 'dir', help: 'PKI folder: uses root/cert.pem and <name>/{cert,key}.pem' } as Setting<string>,
  name: { parse: kind.text(), arg: 'name', help: "this gateway's folder in the PKI folder, e.g. gateway-1" } as Setting<string>,
  controller: { parse: kind.controller(), default: '127.0.0.1:7000', arg: 'host:port', help: "the controller's address" },
  listen: { parse: kind.listen(), default: { host: DEFAULT_GATEWAY_OPTIONS.host, port: DEFAULT_GATEWAY_OPTIONS.port }, arg: 'host:port', help: 'address to listen on for servers and clients; port 0 picks one' },
  advertise: { parse: kind.controller(), arg: 'host:port|ws-url', help: 'address servers and clients are told to use: host:port, or the ws:// URL of the WebSocket listener as the world sees it (default: the address listened on)' } as Setting<string>,
  websocket: { parse: kind.listen(), arg: 'host:port', help: 'also listen for WebSocket upgrades (path /gatesock) here, for peers behind web proxies' } as Setting<HostPort>,
  capacity: { parse: kind.integer(1, 10_000_000), default: DEFAULT_GATEWAY_OPTIONS.capacity, arg: 'n', help: 'server sessions this gateway can hold; the controller balances on sessions / capacity' },
  'pass-through': { parse: kind.onOff(), default: DEFAULT_GATEWAY_OPTIONS.passThrough, arg: 'on|off', help: "relay end-to-end payload without a second encryption on the hops to peers that offer it; off seals every byte on every hop" },
  'drain-timeout': { parse: kind.integer(0), default: DEFAULT_GATEWAY_OPTIONS.drainTimeoutMs, arg: 'ms', help: 'how long a drain waits for servers to move before closing what is left' },
  'log-level': { parse: kind.oneOf(...LOG_LEVELS), default: 'info' as (typeof LOG_LEVELS)[number], arg: 'level', help: `log level: ${LOG_LEVELS.join(', ')}` },
});

/** Run the gateway until drained or closed. */
export async function runGateway(flags: Record<string, unknown>, config: string | undefined): Promise<void> {
  const s = await resolveSettings(GATEWAY_SETTINGS, flags, config);
  const pki = required(s.pki, 'pki');
  const name = required(s.name, 'name');
  const { root, identity } = await loadPkiIdentity(pki, name, 'gateway');
  const log = createLogger('gatesock-gateway', s['log-level']).child({ gateway: name });

  // Handlers go in before start: a signal while it waits for the controller stops it at once.
  let gateway: Gateway | undefined;
  const drain = async (signal: NodeJS.Signals): Promise<void> => {
    if (!gateway) return log.info({ signal }, 'stopped before registering');
    log.info({ signal, servers: gateway.serverCount, connections: gateway.connectionCount }, 'draining (send SIGTERM again to close at once)');
    await gateway.drain();
    log.info({}, 'drained and closed');
  };
  onShutdown(drain, async (signal) => {
    log.info({ signal }, 'closing at once');
    await gateway?.close();
  });
  process.on('SIGUSR2', () => {
    if (!gateway || gateway.isDraining) return;
    void drain('SIGUSR2').then(() => process.exit(0));
  });

  log.info({ controller: s.controller, msid: identity.msid }, 'registering with the controller');
  gateway = await Gateway.start({
    identity,
    roots: [root],
    controller: s.controller,
    host: s.listen.host,
    port: s.listen.port,
    advertise: s.advertise,
    websocket: s.websocket && { host: s.websocket.host, port: s.websocket.port },
    capacity: s.capacity,
    drainTimeoutMs: s['drain-timeout'],
    passThrough: s['pass-through'],
    log,
  });
  log.info({ address: gateway.address, websocket: gateway.websocketUrl, advertise: gateway.advertisedAddress, msid: gateway.msid, capacity: s.capacity, passThrough: s['pass-through'], pid: process.pid }, 'gateway listening');
}
