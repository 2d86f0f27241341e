/**
 * Byte-stream transports (TCP, WebSocket, HTTP CONNECT proxy, in-memory pair)
 * behind one {@link ByteStream} contract.
 *
 * @packageDocumentation
 */
export type { ByteStream, ByteStreamEvents, ByteStreamListener, TransportInfo } from './byte-stream.js';
export { memoryPair, type MemoryPairOptions } from './memory.js';
