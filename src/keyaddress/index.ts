/**
 * gatesock/keyaddress — key addresses (DESIGN.md system 3, seed paper 002
 * §4.2–4.3): a server listens on secret IPv6 addresses that change every
 * session, derived from a shared passphrase; a client that knows the
 * passphrase connects to the one address the server accepts next.
 *
 * - The generator (generator.ts) is a ratchet: scrypt once, a forward-secure
 *   tree of epoch keys, and a keyed chain of session positions (t, n) inside
 *   each epoch. The construction, with its diagram and where it departs from
 *   the seed, is documented there and in docs/keyaddress.md.
 * - {@link KeyAddressClient} hands out the next address to try (never the
 *   same one twice); {@link KeyAddressServer} keeps a look-ahead window of
 *   addresses it accepts, retires every address it sees, and rolls epochs on
 *   the clock with a skew allowance either side of a boundary.
 * - Both export their ratchet state (no passphrase, no past keys) so a
 *   restarted process resumes without the passphrase.
 * - On the network: {@link KeyAddressListener} admits a connection only at a
 *   valid key address (serial or parallel model, N lanes; one socket with
 *   admission by destination, or a socket per address), with host checks that
 *   name the `ip`/`sysctl` command to run; {@link createKeyAddressLookup} and
 *   {@link KeyAddressDnsResponder} are the seed's DNS masquerade; and
 *   {@link KeyAddressRelayServer} / {@link KeyAddressRelayClient} carry the
 *   idea over the relay as secret PCIDs where IPv6 end to end is missing.
 *
 * @packageDocumentation
 */
export {
  IPV6_BYTES,
  RESERVED_IID_RANGES,
  formatIpv6,
  iidOf,
  isReservedIid,
  parseIpv6,
  parsePrefix,
  type KeyAddressPrefix,
} from './address.js';
export {
  KEYADDRESS_KDF_DEFAULTS,
  advanceChain,
  EpochFrontier,
  EPOCH_COUNT,
  deriveMasterKey,
  deriveMasterKeyAsync,
  epochKey,
  frontierShape,
  keyAddressAt,
  openChain,
  positionAt,
  stepChain,
  type FrontierNode,
  type KdfParams,
  type KeyAddressPosition,
  type KeyAddressSecret,
} from './generator.js';
export {
  KEYADDRESS_DEFAULTS,
  epochOf,
  epochStart,
  type KeyAddressOptions,
  type KeyAddressServerOptions,
} from './options.js';
export { KeyAddressClient } from './client.js';
export { keyAddressChannels } from './diagnostics.js';
export {
  KeyAddressServer,
  type AdmitResult,
  type AdmitRefusal,
  type KeyAddressChange,
  type KeyAddressServerEvents,
} from './server.js';
export * from '../errors/index.js';
// The network half (listeners, host checks, resolver, DNS responder, relay variant).
export {
  KeyAddressListener,
  type AdmissionWindow,
  type KeyAddressConnectionInfo,
  type KeyAddressListenerEvents,
  type KeyAddressListenerOptions,
  type ListenerMode,
  type ListeningModel,
  type RefusalReason,
  type RefusedConnection,
} from './listener.js';
export { NONLOCAL_BIND_COMMAND, checkKeyAddressHost, hasLocalRoute, localRouteCommand, nonlocalBindEnabled } from './host.js';
export { createKeyAddressLookup, type AddressCursor, type KeyAddressLookupOptions, type LookupFunction } from './resolver.js';
export { DNS_RETRANSMIT_MS, KeyAddressDnsResponder, type KeyAddressDnsOptions, type KeyAddressDnsStats } from './dns.js';
export {
  DEFAULT_RELAY_LOOKAHEAD,
  KeyAddressRelayClient,
  KeyAddressRelayServer,
  RELAY_PCID_SLOT,
  SECRET_PCID_PREFIX,
  secretPcid,
  type KeyAddressRelayClientOptions,
  type KeyAddressRelayServerEvents,
  type KeyAddressRelayServerOptions,
  type RelayCursor,
  type RelayPosition,
  type RelayWindow,
} from './relay.js';
// What the relay variant's options and results are made of.
export type { ClientConnectOptions, SockEvent, SockIo, SockIoOptions } from '../socket/index.js';
// Named by the SockIo documentation above.
export { clientConnect, waitForMultiple, WOULD_BLOCK } from '../socket/index.js';
export type { ByteStream, ByteStreamEvents } from '../transport/index.js';
export type { RelayConnectionInfo, RelayEndpointOptions, ServerEndpoint, ServerEndpointEvents, ServerEndpointOptions } from '../relay/index.js';
