/**
 * A client's side of the gateway system: look the PCID up at the
 * controller, open a client session to the gateway holding that server,
 * present the ticket, take the one connection the gateway opens, and —
 * unless turned off — run the end-to-end handshake through it, in which the
 * server must prove the certificate whose hash is the MSID the controller
 * gave. The result is a byte stream to the server application.
 */
import { SessionError } from '../errors/index.js';
import { certificateVerifier, secureConnect, type ByteStream, type Identity, type MuxConnection, type VerifiedCertificate } from '../session/index.js';
import { checkEndpointOptions, endpointIdentity, type RelayEndpointOptions } from './endpoint-options.js';
import { dialLink, type Link } from './link.js';
import { METHOD, parseConnectReply, parseLookupReply, type GatewayAddress, type LookupReply } from './messages.js';
import { decodeRelayOpen } from './relay-open.js';
import type { RelayConnectionInfo } from './server-endpoint.js';
import { checkPcid } from './store/index.js';

/**
 * A connection made by {@link relayConnect}.
 * @public
 */
export interface RelayConnection {
  /** Bytes to and from the server application. */
  readonly stream: ByteStream;
  /** Connection ID, the server's MSID, the gateway, and the PCID asked for. */
  readonly info: RelayConnectionInfo & { readonly pcid: string };
}

/**
 * Where the server named `pcid` is now: its MSID and the gateway holding
 * its session. Asks the controller only (nothing reaches the server), so it
 * is the cheap way to check a name; rejects with `GS_ERR_UNKNOWN_PCID` or
 * `GS_ERR_SERVER_OFFLINE` like {@link relayConnect}.
 * @public
 */
export async function relayLookup(pcid: string, options: RelayEndpointOptions): Promise<{ readonly msid: string; readonly gateway: GatewayAddress }> {
  checkEndpointOptions(options);
  checkPcid(pcid);
  const { msid, gateway } = await lookup(pcid, endpointIdentity(options), options);
  return { msid, gateway };
}

async function lookup(pcid: string, identity: Identity, options: RelayEndpointOptions): Promise<LookupReply> {
  const verifyController = certificateVerifier({ roots: options.roots, role: 'controller', crypto: options.link?.backend });
  const ctl = await dialLink(options.controller, identity, verifyController, options.link);
  try {
    return parseLookupReply(await ctl.rpc.request(METHOD.lookup, { pcid }));
  } finally {
    void ctl.session.close();
  }
}

/**
 * Connect to the server named `pcid` through the gateway system.
 * Rejects with `GS_ERR_UNKNOWN_PCID` or `GS_ERR_SERVER_OFFLINE` from the
 * controller, a token error from the gateway, or a certificate error if the
 * server fails the end-to-end check. `socket`'s `clientConnect` is built on it.
 * @public
 */
export async function relayConnect(pcid: string, options: RelayEndpointOptions): Promise<RelayConnection> {
  checkEndpointOptions(options);
  checkPcid(pcid);
  const identity = endpointIdentity(options);
  const endToEnd = options.endToEnd ?? true;
  const passThrough = endToEnd && options.passThrough !== false;
  const crypto = options.link?.backend;
  const found = await lookup(pcid, identity, options);
  const verifyGateway = certificateVerifier({ roots: options.roots, role: 'gateway', expectMsid: found.gateway.msid, crypto });
  // The gateway opens the connection before it replies, so it is here by the time the reply is.
  const opened = new Map<number, { conn: MuxConnection; clearPayload: boolean }>();
  const gw: Link<VerifiedCertificate> = await dialLink(found.gateway.address, identity, verifyGateway, options.link, (l) =>
    l.session.on('connection', (conn, metadata) => {
      try {
        const open = decodeRelayOpen(metadata);
        if (open.clearPayload) {
          if (!passThrough) throw new SessionError('GS_ERR_PROTOCOL', `the gateway opened connection ${open.connectionId} with pass-through, which this client did not offer`);
          // Before any of its DATA can arrive: the OPEN is being handled.
          conn.enableClearPayload();
        }
        opened.set(open.connectionId, { conn, clearPayload: open.clearPayload });
      } catch (error) {
        conn.destroy(error as Error);
      }
    }),
  );
  try {
    const { connectionId } = parseConnectReply(
      // Offer pass-through (a gateway that predates it ignores the field).
      await gw.rpc.request(METHOD.connect, { msid: found.msid, ticket: Buffer.from(found.ticket).toString('base64url'), endToEnd, ...(passThrough ? { clearPayload: true } : {}) }),
    );
    const { conn, clearPayload } = opened.get(connectionId) ?? {};
    if (!conn) throw new SessionError('GS_ERR_PROTOCOL', `the gateway replied with connection ${connectionId} but opened no such connection`);
    // One client session carries one connection: when it is done, so is the session.
    conn.on('close', () => void gw.session.close());
    const info = { connectionId, peerMsid: found.msid, endToEnd, passThrough: clearPayload === true, gateway: found.gateway.msid, pcid };
    if (!endToEnd) return { stream: conn, info };
    const stream = await secureConnect(conn, {
      identity,
      verifyPeer: certificateVerifier({ role: 'server', expectMsid: found.msid, allowSelfSignedServer: true, crypto }),
      backend: crypto,
      handshakeTimeoutMs: options.link?.handshakeTimeoutMs,
    });
    // The inner handshake went sealed on the hop; from here on the connection
    // carries only end-to-end transport ciphertext, which may go as it is.
    if (clearPayload) conn.startClearPayload();
    return { stream, info };
  } catch (error) {
    gw.session.destroy();
    throw error;
  }
}
