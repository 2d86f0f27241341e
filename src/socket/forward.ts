/**
 * TCP port forwarding over the gateway system:
 *
 * - {@link serveTcp}: a server whose every relayed connection is joined to a
 *   new TCP connection to a local target (`gatesock serve --forward`);
 * - {@link forwardTcp}: a local TCP listener whose every accepted connection
 *   is joined to a new relayed connection to a PCID (`gatesock connect
 *   --listen`).
 *
 * Both join a `net.Socket` and a relayed byte stream directly (not through a
 * SockIo), with backpressure each way and half-close carried across.
 */
import * as net from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { TransportError, type GatesockError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import { relayConnect, ServerEndpoint, type RelayConnectionInfo, type ServerEndpointOptions } from '../relay/index.js';
import type { ByteStream } from '../transport/byte-stream.js';
import type { ClientConnectOptions } from './client.js';
import { sockServerOf, type SockServer } from './server.js';

/**
 * Join a TCP socket and a byte stream both ways; resolves when both are
 * closed. A reset on one side destroys the other.
 */
export function joinSocket(socket: net.Socket, stream: ByteStream): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    const done = (): void => {
      if (--open === 0) resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      if (stream.closed) return;
      if (!stream.write(chunk)) {
        socket.pause();
        stream.once('drain', () => socket.resume());
      }
    });
    socket.on('end', () => {
      if (!stream.closed) stream.end();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', (hadError) => {
      if (hadError && !stream.closed) stream.destroy(new TransportError('GS_ERR_TRANSPORT_CLOSED', 'the local TCP connection failed'));
      done();
    });
    stream.on('data', (chunk) => {
      if (socket.destroyed) return;
      if (!socket.write(chunk)) {
        stream.pause();
        socket.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => socket.end());
    stream.on('close', (error?: GatesockError) => {
      if (error) socket.destroy();
      else if (!socket.writableEnded) socket.end();
      done();
    });
    stream.resume();
  });
}

/**
 * A TCP target: where `serveTcp` connects each relayed connection.
 * @public
 */
export interface TcpTarget {
  /** Host name or address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/**
 * Events of a forwarder ({@link serveTcp} and {@link forwardTcp}).
 * @public
 */
export interface ForwardEvents {
  /** A forwarded connection started. */
  open: (id: number, peer: string) => void;
  /** A forwarded connection ended; `bytesIn`/`bytesOut` as seen from the local TCP side. */
  close: (id: number, bytesIn: number, bytesOut: number) => void;
  /** A forwarded connection could not be made (the other connections are unaffected). */
  failed: (error: Error, peer: string) => void;
}

/**
 * Serve a local TCP target through the relay: every client connection to
 * this server's PCID becomes a TCP connection to `target`.
 * @public
 */
export async function serveTcp(target: TcpTarget, options: ServerEndpointOptions): Promise<SockServer & { readonly events: EventEmitter<ForwardEvents> }> {
  checkOption(typeof target?.host === 'string' && Number.isInteger(target.port) && target.port > 0 && target.port < 65536, 'target', 'must be { host, port }');
  const endpoint = new ServerEndpoint(options);
  const events = new EventEmitter<ForwardEvents>();
  endpoint.on('connection', (stream: ByteStream, info: RelayConnectionInfo) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const failed = (error: Error): void => {
      stream.destroy(new TransportError('GS_ERR_CONNECT_FAILED', `cannot reach ${target.host}:${target.port}: ${error.message}`, { cause: error }));
      events.emit('failed', error, info.peerMsid);
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.off('error', failed);
      events.emit('open', info.connectionId, info.peerMsid);
      void joinSocket(socket, stream).then(() => events.emit('close', info.connectionId, socket.bytesRead, socket.bytesWritten));
    });
  });
  await endpoint.online();
  // defineProperty, not Object.assign: assign would freeze the live getters into values.
  return Object.defineProperty(sockServerOf(endpoint), 'events', { value: events, enumerable: true }) as SockServer & { readonly events: EventEmitter<ForwardEvents> };
}

/**
 * Options of {@link forwardTcp}.
 * @public
 */
export interface ForwardTcpOptions extends ClientConnectOptions {
  /** The server to reach. */
  pcid: string;
  /** Local address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Local port; 0 picks one. */
  port: number;
}

/**
 * A local listener forwarding to a PCID.
 * @public
 */
export interface TcpForwarder {
  /** The address listened on, e.g. `127.0.0.1:2222`. */
  readonly address: string;
  /** The port listened on. */
  readonly port: number;
  /** A line per forwarded connection, for logs. */
  readonly events: EventEmitter<ForwardEvents>;
  /** Stop listening and reset forwarded connections. */
  close(): Promise<void>;
}

/**
 * Listen on a local TCP port and forward each accepted connection to the
 * server `pcid` through the relay (one relayed connection each).
 * @public
 */
export async function forwardTcp(options: ForwardTcpOptions): Promise<TcpForwarder> {
  checkOption(typeof options?.pcid === 'string', 'pcid', 'must name the server');
  checkOption(Number.isInteger(options.port) && options.port >= 0 && options.port < 65536, 'port', 'must be 0..65535');
  const events = new EventEmitter<ForwardEvents>();
  const sockets = new Set<net.Socket>();
  let next = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    socket.pause();
    const id = ++next;
    relayConnect(options.pcid, options).then(
      ({ stream }) => {
        if (socket.destroyed) return stream.destroy();
        events.emit('open', id, options.pcid);
        socket.resume();
        void joinSocket(socket, stream).then(() => events.emit('close', id, socket.bytesRead, socket.bytesWritten));
      },
      (error: Error) => {
        socket.destroy();
        events.emit('failed', error, options.pcid);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new TransportError('GS_ERR_LISTEN_FAILED', `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port}: ${e.message}`, { cause: e })));
    server.listen(options.port, options.host ?? '127.0.0.1', resolve);
  });
  const addr = server.address() as net.AddressInfo;
  return {
    address: addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`,
    port: addr.port,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
