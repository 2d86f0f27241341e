/**
 * Where a controller or gateway listens: TCP always, and WebSocket when
 * asked, so that peers that may only reach HTTP(S) ports through web
 * infrastructure can still get in. Both hand their streams to one handler.
 */
import { tcpListen, wsListen, type ByteStream, type ByteStreamListener } from '../transport/index.js';

/**
 * A WebSocket listener's settings.
 * @public
 */
export interface WebSocketListenOptions {
  /** Address to listen on. Default: the TCP listener's host. */
  host?: string;
  /** Port; 0 picks one. Default 0. */
  port?: number;
  /** Only upgrades to this path are taken. Default `/gatesock`. */
  path?: string;
}

/** The listeners of one controller or gateway. */
export interface Listeners {
  readonly tcp: ByteStreamListener;
  /** The WebSocket listener and the `ws://` URL it is reached at. */
  readonly ws?: { readonly listener: ByteStreamListener; readonly url: string };
  close(): Promise<void>;
}

/**
 * Listen on TCP (and WebSocket when `websocket` is given). Streams that
 * arrive before the caller is ready are held and handed over by `ready()`.
 */
export async function listenAll(
  tcp: { host: string; port: number },
  websocket: WebSocketListenOptions | undefined,
): Promise<{ listeners: Listeners; ready: (onStream: (stream: ByteStream) => void) => void }> {
  let handler: ((stream: ByteStream) => void) | undefined;
  const early: ByteStream[] = [];
  const take = (stream: ByteStream): void => (handler ? handler(stream) : void early.push(stream));
  const tcpListener = await tcpListen(tcp, take);
  let ws: Listeners['ws'];
  if (websocket) {
    const path = websocket.path ?? '/gatesock';
    try {
      const listener = await wsListen({ host: websocket.host ?? tcp.host, port: websocket.port ?? 0, path }, take);
      ws = { listener, url: `ws://${listener.address}${path}` };
    } catch (error) {
      await tcpListener.close();
      throw error;
    }
  }
  const listeners: Listeners = {
    tcp: tcpListener,
    ws,
    close: async () => {
      await Promise.all([tcpListener.close(), ws?.listener.close()]);
    },
  };
  return {
    listeners,
    ready: (onStream) => {
      handler = onStream;
      for (const s of early.splice(0)) onStream(s);
    },
  };
}
