/**
 * Byte-stream transports (TCP, WebSocket, HTTP CONNECT proxy, in-memory pair)
 * behind one {@link ByteStream} contract.
 *
 * @packageDocumentation
 */
// The errors transports throw (and `close` carries), so that this entry point
// is self-contained.
export * from '../errors/index.js';
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
export { systemClock, type Clock } from './clock.js';
export type { DatagramAddress, DatagramSocket, DatagramSocketEvents } from './datagram.js';
export { SimEvent, VirtualClock, type RunOptions, type RunOutcome, type RunResult } from './virtual-clock.js';
export {
  averageLossOf,
  gilbertElliott,
  gilbertElliottLoss,
  independentLoss,
  type GilbertElliottLoss,
  type GilbertElliottTarget,
  type IndependentLoss,
  type LossModel,
} from './loss.js';
export {
  isMulticastAddress,
  MAX_DATAGRAM_BYTES,
  SimNetwork,
  type SimHost,
  type LinkModel,
  type SimBindOptions,
  type SimHostOptions,
  type SimNetworkOptions,
  type SimSocketInfo,
  type TrafficCounters,
} from './sim-network.js';
export { udpBind, type UdpBindOptions, type UdpSocketInfo } from './udp.js';
export { withLoss, type LossInjectorInfo, type LossInjectorOptions } from './lossy.js';
