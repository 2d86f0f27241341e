/**
 * The secure framing layer: crypto backends, the Noise secure channel,
 * identities and X.509 certificates, the frame codec and multiplexed
 * sessions.
 *
 * @packageDocumentation
 */
export { getCryptoBackend, nativeBackend, nobleBackend, type Aead, type CryptoBackend, type CryptoBackendName } from './crypto/index.js';
export {
  DEFAULT_SECURE_CHANNEL_OPTIONS,
  MAX_RECORD_PLAINTEXT,
  SecureChannel,
  secureAccept,
  secureConnect,
  type ChannelIdentity,
  type PeerVerifier,
  type SecureChannelOptions,
  type VerifiedPeer,
} from './secure/channel.js';
export * from './identity/index.js';
