/**
 * `serverStart`: the seed's `ServerStart` in TypeScript idiom. The server
 * logs in through the controller, keeps a server session on the gateway it
 * is given (logging in again with backoff and jitter whenever it drops), and
 * calls `onAccept` with a {@link SockIo} for each client connection.
 */
import { SocketError } from '../errors/index.js';
import { ServerEndpoint, type GatewayAddress, type RelayConnectionInfo, type ServerEndpointOptions, type ServerInfo } from '../relay/index.js';
import { SockIo, type SockIoOptions } from './sockio.js';

/**
 * Options of {@link serverStart}.
 * @public
 */
export interface ServerStartOptions extends ServerEndpointOptions {
  /** Options of each accepted {@link SockIo}. */
  sockIo?: SockIoOptions;
  /** Resolve only once the first server session is up (default true); false resolves at once. */
  waitOnline?: boolean;
  /** With `waitOnline`, give up after this many ms with `GS_ERR_TIMEOUT` (the server keeps trying unless closed). Default: no limit. */
  startTimeoutMs?: number;
}

/**
 * A running server: its name, its gateway, and the seed's
 * `ServerGetLoginInfo` / `ServerRenameMachine`.
 * @public
 */
export interface SockServer {
  /** The server's machine ID. */
  readonly msid: string;
  /** Its PCID (from the last login or rename). */
  readonly pcid: string | undefined;
  /** The gateway holding its session now. */
  readonly gateway: GatewayAddress | undefined;
  /** True while its server session is up. */
  readonly isOnline: boolean;
  /** The endpoint underneath, for its events (`online`, `offline`, `connectionError`). */
  readonly endpoint: ServerEndpoint;
  /** Its record at the controller. */
  getLoginInfo(): Promise<ServerInfo>;
  /** Rename it; `GS_ERR_PCID_TAKEN` / `GS_ERR_PCID_INVALID`. */
  renameMachine(pcid: string): Promise<ServerInfo>;
  /** Stop serving: the server session ends, open connections are reset. */
  close(): Promise<void>;
}

/**
 * Start a server on the gateway system; `onAccept` gets each new connection.
 * An exception thrown by `onAccept` disconnects that connection only.
 *
 * @example
 * ```ts
 * const server = await serverStart({ controller: 'ctl.example:7000', roots: [root], identity }, async (sock) => {
 *   for await (const chunk of sock) await sock.send(chunk);   // echo
 *   await sock.disconnect();
 * });
 * console.log(`serving as ${server.pcid}`);
 * ```
 * @public
 */
export async function serverStart(options: ServerStartOptions, onAccept: (sock: SockIo, info: RelayConnectionInfo) => void | Promise<void>): Promise<SockServer> {
  const endpoint = new ServerEndpoint(options);
  endpoint.on('connection', (stream, info) => {
    const sock = SockIo.fromStream(stream, { connectionId: info.connectionId, peerMsid: info.peerMsid, gateway: info.gateway, endToEnd: info.endToEnd }, options.sockIo);
    try {
      Promise.resolve(onAccept(sock, info)).catch(() => void sock.disconnect());
    } catch {
      void sock.disconnect();
    }
  });
  const server = sockServerOf(endpoint);
  if (options.waitOnline === false) return server;
  const limit = options.startTimeoutMs;
  if (limit === undefined) {
    await endpoint.online();
    return server;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      endpoint.online(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SocketError('GS_ERR_TIMEOUT', `the server did not come online within ${limit} ms`)), limit);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return server;
}

/** The {@link SockServer} face of an endpoint (internal; forward.ts uses it too). */
export function sockServerOf(endpoint: ServerEndpoint): SockServer {
  return {
    get msid() {
      return endpoint.msid;
    },
    get pcid() {
      return endpoint.pcid;
    },
    get gateway() {
      return endpoint.gateway;
    },
    get isOnline() {
      return endpoint.isOnline;
    },
    endpoint,
    getLoginInfo: () => endpoint.getLoginInfo(),
    renameMachine: (pcid) => endpoint.renameMachine(pcid),
    close: () => endpoint.close(),
  };
}
