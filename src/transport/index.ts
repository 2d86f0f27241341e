/**
 * Byte-stream transports (TCP, WebSocket, HTTP CONNECT proxy, in-memory pair)
 * behind one {@link ByteStream} contract.
 *
 * @packageDocumentation
 */
export type { ByteStream, ByteStreamEvents, ByteStreamListener, TransportInfo } from './byte-stream.js';
export { httpConnect, type HttpConnectOptions } from './http-connect.js';
export { memoryPair, type MemoryPairOptions } from './memory.js';
export { tcpConnect, tcpListen, type TcpConnectOptions, type TcpListenOptions } from './tcp.js';
export {
  WS_MAX_SEND_MESSAGE_BYTES,
  wsConnect,
  wsListen,
  type WsConnectOptions,
  type WsListenOptions,
  type WsStreamOptions,
} from './websocket.js';
