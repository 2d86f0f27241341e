/**
 * The secure framing layer: crypto backends, the Noise secure channel,
 * identities and X.509 certificates, the frame codec and multiplexed
 * sessions.
 *
 * @packageDocumentation
 */
// The errors this layer throws and the stream contract it consumes and
// implements, so that this entry point is self-contained.
export * from '../errors/index.js';
export type { ByteStream, ByteStreamEvents, ByteStreamListener, Clock, TransportInfo } from '../transport/index.js';
export { getCryptoBackend, nativeBackend, nobleBackend, type Aead, type CryptoBackend, type CryptoBackendName } from './crypto/index.js';
export {
  DEFAULT_SECURE_CHANNEL_OPTIONS,
  MAX_RECORD_PLAINTEXT,
  SecureChannel,
  secureAccept,
  secureConnect,
  type ChannelIdentity,
  type ClearSpan,
  type SplitRecordHandler,
  type PeerVerifier,
  type SecureChannelOptions,
  type VerifiedPeer,
} from './secure/channel.js';
export type { ParallelSealOptions } from './secure/parallel-seal.js';
export * from './identity/index.js';
export {
  CODE_LEN,
  DATA_OFFSET_LEN,
  DEFAULT_MAX_FRAME_BODY,
  DataFlag,
  FRAME_VERSION,
  FrameType,
  FrameView,
  GoAwayCode,
  HEADER_LEN,
  INITIAL_WINDOW,
  MAX_FRAME_BODY_LIMIT,
  MAX_OPEN_METADATA_LEN,
  MAX_REASON_LEN,
  PING_BODY_LEN,
  ResetCode,
  WINDOW_UPDATE_BODY_LEN,
  emitFrame,
  encodeFrame,
  frameLen,
  parseBody,
  parseFrame,
  parseHeader,
  type Frame,
  type FrameHeader,
  type FrameKind,
} from './frame.js';
export { FrameDecoder, type FrameDecoderOptions, type FrameDecoderState } from './frame-decoder.js';
export {
  ConnState,
  DEFAULT_MUX_OPTIONS,
  MAX_DATA_PAYLOAD,
  MuxConnection,
  MuxSession,
  sessionChannels,
  systemClock,
  verifyMuxOptions,
  type MuxClock,
  type MuxConnectionStats,
  type MuxOptions,
  type MuxRole,
  type MuxSessionEvents,
  type MuxSessionOptions,
  type MuxSessionStats,
} from './mux/index.js';
