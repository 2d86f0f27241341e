/**
 * A link: one hop of the gateway system, ready to use. A byte stream
 * (TCP, or WebSocket for `ws://` and `wss://` addresses) carries a secure
 * channel in which both ends proved a certificate, which carries a
 * multiplexed session, whose CONTROL frames carry requests ({@link RpcPeer})
 * and whose connections carry relayed bytes.
 */
import { ConfigError } from '../errors/index.js';
import {
  MuxSession,
  secureAccept,
  secureConnect,
  type ChannelIdentity,
  type CryptoBackend,
  type CryptoBackendName,
  type MuxOptions,
  type PeerVerifier,
  type SecureChannel,
  type VerifiedPeer,
} from '../session/index.js';
import { httpConnect, tcpConnect, wsConnect, type ByteStream } from '../transport/index.js';
import { RpcPeer } from './rpc.js';

/**
 * Options every link takes.
 * @public
 */
export interface LinkOptions {
  /** Crypto backend: `auto` (default), `native` or `noble`. */
  backend?: CryptoBackendName | CryptoBackend;
  /** Milliseconds to connect and finish the handshake. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Tunables of the multiplexed session (keepalive, windows). */
  mux?: Partial<MuxOptions>;
  /** Milliseconds to wait for the reply to a request. Default 15000. */
  requestTimeoutMs?: number;
  /**
   * Reach `host:port` addresses through this HTTP CONNECT proxy (optional
   * Basic auth), for machines that may only leave through one. `ws://`
   * addresses are dialled directly.
   */
  proxy?: { host: string; port: number; auth?: { username: string; password: string } };
}

/** One hop, ready: channel, session and requests. */
export interface Link<P extends VerifiedPeer = VerifiedPeer> {
  readonly channel: SecureChannel<P>;
  readonly session: MuxSession;
  readonly rpc: RpcPeer;
  /** What the handshake proved about the other end. */
  readonly peer: P;
}

/** `host:port`, `[v6]:port`, or a `ws://` / `wss://` URL, split for connecting. */
export interface ParsedAddress {
  readonly host: string;
  readonly port: number;
  readonly url?: string;
}

/** Parse a gateway or controller address. Throws `GS_ERR_INVALID_OPTION` naming `what`. */
export function parseAddress(address: string, what = 'address'): ParsedAddress {
  if (typeof address === 'string' && /^wss?:\/\//.test(address)) {
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `${what} "${address}" is not a valid URL`);
    }
    return { host: url.hostname, port: Number(url.port || (url.protocol === 'wss:' ? 443 : 80)), url: address };
  }
  const m = typeof address === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address) : null;
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `${what} must be "host:port", "[ipv6]:port" or a ws:// URL, got ${JSON.stringify(address)}`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** Connect a byte stream to an address: WebSocket for a URL, else TCP, through `proxy` when given. */
export function connectStream(address: string, timeoutMs?: number, proxy?: LinkOptions['proxy']): Promise<ByteStream> {
  const a = parseAddress(address);
  if (a.url) return wsConnect(a.url, { timeoutMs });
  if (proxy) return httpConnect({ proxy, target: { host: a.host, port: a.port }, timeoutMs });
  return tcpConnect({ host: a.host, port: a.port, timeoutMs });
}

/**
 * Attaches handlers to a new link. It runs before the session reads its
 * first frame, so nothing the peer sent right after the handshake (a
 * request, an OPEN) arrives before its handler.
 */
export type LinkSetup<P extends VerifiedPeer> = (link: Link<P>) => void;

function makeLink<P extends VerifiedPeer>(channel: SecureChannel<P>, role: 'initiator' | 'responder', options: LinkOptions, setup?: LinkSetup<P>): Link<P> {
  const session = new MuxSession(channel, { ...options.mux, role });
  const link = { channel, session, rpc: new RpcPeer(session, options.requestTimeoutMs), peer: channel.peer };
  setup?.(link);
  return link;
}

/** Dial `address`, prove `identity`, check the far end with `verifyPeer`. */
export async function dialLink<P extends VerifiedPeer>(
  address: string,
  identity: ChannelIdentity,
  verifyPeer: PeerVerifier<P>,
  options: LinkOptions = {},
  setup?: LinkSetup<P>,
): Promise<Link<P>> {
  const stream = await connectStream(address, options.handshakeTimeoutMs, options.proxy);
  const channel = await secureConnect(stream, { identity, verifyPeer, backend: options.backend, handshakeTimeoutMs: options.handshakeTimeoutMs });
  return makeLink(channel, 'initiator', options, setup);
}

/** Take an accepted stream through the handshake into a link. */
export async function acceptLink<P extends VerifiedPeer>(
  stream: ByteStream,
  identity: ChannelIdentity,
  verifyPeer: PeerVerifier<P>,
  options: LinkOptions = {},
  setup?: LinkSetup<P>,
): Promise<Link<P>> {
  const channel = await secureAccept(stream, { identity, verifyPeer, backend: options.backend, handshakeTimeoutMs: options.handshakeTimeoutMs });
  return makeLink(channel, 'responder', options, setup);
}
