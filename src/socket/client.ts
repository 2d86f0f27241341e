/**
 * `clientConnect`: the seed's `ClientConnect` in TypeScript idiom — reach
 * the server named by a PCID through the gateway system and get a
 * {@link SockIo}.
 */
import { SocketError } from '../errors/index.js';
import { relayConnect, type RelayEndpointOptions } from '../relay/index.js';
import { SockIo, type SockIoOptions } from './sockio.js';

/**
 * Options of {@link clientConnect}.
 * @public
 */
export interface ClientConnectOptions extends RelayEndpointOptions {
  /** Options of the {@link SockIo}. */
  sockIo?: SockIoOptions;
  /** Give up after this many ms with `GS_ERR_TIMEOUT`. Default: the link's handshake and request timeouts only. */
  timeoutMs?: number;
}

/**
 * Connect to the server named `pcid`. Rejects with `GS_ERR_UNKNOWN_PCID`,
 * `GS_ERR_SERVER_OFFLINE`, a gateway's token error, a certificate error if
 * the server fails the end-to-end check, or `GS_ERR_TIMEOUT`.
 *
 * @example
 * ```ts
 * const sock = await clientConnect('my-server', { controller: 'ctl.example:7000', roots: [root] });
 * await sock.send(new TextEncoder().encode('hello'));
 * console.log(new TextDecoder().decode(await sock.recv()));
 * await sock.disconnect();
 * ```
 * @public
 */
export async function clientConnect(pcid: string, options: ClientConnectOptions): Promise<SockIo> {
  const connecting = relayConnect(pcid, options);
  const limit = options.timeoutMs;
  let connection;
  if (limit === undefined) connection = await connecting;
  else {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      connection = await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SocketError('GS_ERR_TIMEOUT', `could not connect to "${pcid}" within ${limit} ms`)), limit);
        }),
      ]);
    } catch (error) {
      // A connection that arrives after we gave up is closed, not leaked.
      connecting.then((c) => c.stream.destroy(), () => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
  const { stream, info } = connection;
  return SockIo.fromStream(stream, { connectionId: info.connectionId, peerMsid: info.peerMsid, pcid: info.pcid, gateway: info.gateway, endToEnd: info.endToEnd }, options.sockIo);
}
