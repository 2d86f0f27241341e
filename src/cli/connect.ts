/**
 * `gatesock connect NAME --listen HOST:PORT`: a local TCP port that reaches
 * the server named NAME through the gateway system (`forwardTcp`); each
 * accepted connection is its own relayed connection, so many run at once.
 *
 * At start it looks NAME up at the controller (`relayLookup`; nothing
 * reaches the server), so that an unknown PCID, an offline server, an
 * unreachable controller or a certificate problem is reported at once, with
 * its exit status, rather than at the first forwarded connection;
 * `--no-check` skips it.
 */
import { relayLookup } from '../relay/index.js';
import { forwardTcp } from '../socket/index.js';
import { checkReachable, kind, loadRoots, parseValue } from './config.js';
import { reportError } from './errors.js';
import { onShutdown } from './lifecycle.js';
import { ROOT_HINT } from './serve.js';

/** Options of {@link runConnect}, as the flags give them. */
export interface ConnectOptions {
  pcid: string;
  listen: string;
  controller: string;
  root: string;
  e2e: boolean;
  /** Pass end-to-end ciphertext through the hop unsealed (`--no-pass-through` seals every byte). */
  passThrough: boolean;
  /** Leave through this HTTP CONNECT proxy (`[user:password@]host:port`). */
  proxy?: string;
  /** Check NAME at start (`--no-check` turns it off). */
  check: boolean;
  debug: boolean;
  print: (line: string) => void;
  note: (line: string) => void;
}

/** Forward until SIGINT or SIGTERM. */
export async function runConnect(o: ConnectOptions): Promise<void> {
  const listen = parseValue(kind.listen(), o.listen, '--listen');
  const controller = parseValue(kind.controller(), o.controller, '--controller');
  const roots = await loadRoots(o.root, ROOT_HINT);
  const proxy = o.proxy === undefined ? undefined : parseValue(kind.proxy(), o.proxy, '--proxy');
  const options = { controller, roots, endToEnd: o.e2e, passThrough: o.passThrough, link: proxy && { proxy } };
  let close: (() => Promise<void>) | undefined;
  onShutdown(async () => {
    await close?.();
  });
  // Through a proxy the controller may be unreachable directly; the look-up below tells.
  if (!proxy) await checkReachable(controller, 'the controller');
  if (o.check) {
    const found = await relayLookup(o.pcid, options);
    o.print(`found    ${o.pcid} (${found.msid}) via gateway ${found.gateway.msid}${o.e2e ? ', end to end' : ', end-to-end layer off'}`);
  }
  const forwarder = await forwardTcp({ ...options, pcid: o.pcid, host: listen.host, port: listen.port });
  close = () => forwarder.close();
  o.print(`listening on ${forwarder.address}, forwarding to ${o.pcid}`);
  forwarder.events.on('open', (id) => o.note(`open   #${id}`));
  forwarder.events.on('close', (id, bytesIn, bytesOut) => o.note(`close  #${id} ${bytesIn} B sent, ${bytesOut} B received`));
  forwarder.events.on('failed', (error) => void reportError(error, o.debug));
}
