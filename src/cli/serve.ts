/**
 * `gatesock serve --forward HOST:PORT`: put a local TCP service on the
 * gateway system under a PCID. Every client connection to that PCID becomes
 * a TCP connection to HOST:PORT (`serveTcp`). The server's identity — and
 * so its MSID, and so its PCID at the controller — is kept in a folder and
 * reused on every start.
 *
 * stdout: the PCID, MSID, target and gateway once online. stderr: a line per
 * forwarded connection (open, close with byte counts), and each change of
 * gateway or failure, as one plain line.
 */
import { loadOrCreateServerIdentity } from '../session/index.js';
import { serveTcp } from '../socket/index.js';
import { checkReachable, formatHostPort, kind, loadRoots, parseValue } from './config.js';
import { reportError } from './errors.js';
import { onShutdown } from './lifecycle.js';

/**
 * Defaults shared by `serve` and `connect`: those of `gatesock up` run in the
 * same folder, so that after `gatesock up` no flag is needed.
 */
export const ENDPOINT_DEFAULTS = Object.freeze({
  controller: '127.0.0.1:7000',
  root: './.gatesock/root/cert.pem',
  identity: './.gatesock/server-identity',
});

/** What `--root` failing to load should suggest. */
export const ROOT_HINT = ' (start `gatesock up` in this folder first, or pass --root with the gateway system\'s root certificate)';

/** Options of {@link runServe}, as the flags give them. */
export interface ServeOptions {
  forward: string;
  pcid?: string;
  controller: string;
  root: string;
  identity: string;
  /** The end-to-end layer (`--no-e2e` turns it off). */
  e2e: boolean;
  /** Pass end-to-end ciphertext through the hop unsealed (`--no-pass-through` seals every byte). */
  passThrough: boolean;
  /** Leave through this HTTP CONNECT proxy (`[user:password@]host:port`). */
  proxy?: string;
  debug: boolean;
  /** stdout and stderr lines. */
  print: (line: string) => void;
  note: (line: string) => void;
}

/** Serve until SIGINT or SIGTERM. */
export async function runServe(o: ServeOptions): Promise<void> {
  const target = parseValue(kind.address(), o.forward, '--forward');
  const controller = parseValue(kind.controller(), o.controller, '--controller');
  const roots = await loadRoots(o.root, ROOT_HINT);
  const identity = await loadOrCreateServerIdentity(o.identity);
  let server: Awaited<ReturnType<typeof serveTcp>> | undefined;
  onShutdown(async () => {
    await server?.close();
  });
  const proxy = o.proxy === undefined ? undefined : parseValue(kind.proxy(), o.proxy, '--proxy');
  // Through a proxy the controller may be unreachable directly; the proxy's answer tells.
  if (!proxy) await checkReachable(controller, 'the controller');
  // Online takes a login and an attach; if it takes long the controller has no gateway to give.
  const slow = setTimeout(() => o.note(`not online yet: the controller at ${controller} answers, but gives no gateway; still trying`), 5000);
  try {
    server = await serveTcp(target, { controller, roots, identity, pcid: o.pcid, endToEnd: o.e2e, passThrough: o.passThrough, link: proxy && { proxy } });
  } finally {
    clearTimeout(slow);
  }
  const forward = formatHostPort(target);
  o.print(`pcid     ${server.pcid}`);
  o.print(`msid     ${server.msid}`);
  o.print(`forward  ${forward}${o.e2e ? '' : ' (end-to-end layer off)'}`);
  o.print(`gateway  ${server.gateway?.address} (${server.gateway?.msid})`);
  o.print(`Connect with: gatesock connect ${server.pcid} --listen 127.0.0.1:PORT`);

  server.events.on('open', (id, peer) => o.note(`open   #${id} from ${peer}`));
  server.events.on('close', (id, bytesIn, bytesOut) => o.note(`close  #${id} ${bytesOut} B to ${forward}, ${bytesIn} B back`));
  server.events.on('failed', (error) => void reportError(error, o.debug));
  server.endpoint.on('online', (gateway, pcid) => o.note(`online as ${pcid} via gateway ${gateway.address} (${gateway.msid})`));
  server.endpoint.on('offline', (error) => o.note(`offline${error ? `: ${error.code}: ${error.message}` : ''}; logging in again`));
  server.endpoint.on('connectionError', (error, info) => o.note(`refused #${info.connectionId} from ${info.peerMsid}: ${error.code}: ${error.message}`));
}
