/**
 * gatesock/socket — the socket API developers use (DESIGN.md, src/socket):
 * {@link SockIo}, one connection with blocking-style and non-blocking send and
 * receive, readiness events to serve many connections from one loop
 * ({@link SockEvent}, {@link waitForMultiple}), and adapters to Node and
 * WHATWG streams and async iteration; {@link serverStart} and
 * {@link clientConnect}, which make SockIo connections through the gateway
 * system; and TCP port forwarding ({@link serveTcp}, {@link forwardTcp}).
 *
 * @packageDocumentation
 */
// The errors this layer throws (SocketError and the rest), so that this entry
// point is self-contained.
export * from '../errors/index.js';
export type { ByteStream, ByteStreamEvents, TransportInfo } from '../transport/byte-stream.js';
export { SockEvent, waitForMultiple } from './event.js';
export { SEND_PIECE_BYTES, SockIo, WOULD_BLOCK, type SockIoInfo, type SockIoOptions, type WouldBlock } from './sockio.js';
export { serverStart, type ServerStartOptions, type SockServer } from './server.js';
export { clientConnect, type ClientConnectOptions } from './client.js';
export { forwardTcp, serveTcp, type ForwardEvents, type ForwardTcpOptions, type TcpForwarder, type TcpTarget } from './forward.js';
// What the options and results above are made of.
export type { GatewayAddress, LinkOptions, RelayConnectionInfo, RelayEndpointOptions, ServerEndpoint, ServerEndpointEvents, ServerEndpointOptions, ServerInfo, BackoffOptions } from '../relay/index.js';
