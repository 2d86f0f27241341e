/**
 * The OPEN metadata of a relayed connection: what the gateway tells the
 * server (and the client) when it opens the connection on their sessions.
 *
 * ```
 *  0                 4        5                                  37
 *  +-----------------+--------+----------------------------------+
 *  | connection ID   | flags  | peer (32-byte MSID digest)       |
 *  +-----------------+--------+----------------------------------+
 *  connection ID  u32 BE, unique within the server session
 *  flags          bit 0: the client runs the end-to-end layer (an inner handshake follows)
 *                 bit 1: clear payload (pass-through): this hop carries the
 *                        connection's payload — end-to-end ciphertext — outside
 *                        the hop encryption, both ways. Only with bit 0, and only
 *                        to an endpoint that offered it (`clearPayload: true` in
 *                        its attach or connect), so older endpoints never see it.
 *  peer           to the server: the client's MSID; to the client: the server's MSID
 * ```
 */
import { SessionError } from '../errors/index.js';
import { msidDigest, msidFromDigest } from './token.js';

const LEN = 37;
const FLAG_END_TO_END = 1;
const FLAG_CLEAR_PAYLOAD = 2;

/** What a relayed connection's OPEN says. */
export interface RelayOpen {
  readonly connectionId: number;
  readonly endToEnd: boolean;
  /** This hop carries the payload outside its encryption (flags bit 1). */
  readonly clearPayload: boolean;
  readonly peer: string;
}

export function encodeRelayOpen(open: RelayOpen): Uint8Array {
  const out = new Uint8Array(LEN);
  new DataView(out.buffer).setUint32(0, open.connectionId);
  if (open.clearPayload && !open.endToEnd) throw new SessionError('GS_ERR_PROTOCOL', 'clear payload needs the end-to-end layer');
  out[4] = (open.endToEnd ? FLAG_END_TO_END : 0) | (open.clearPayload ? FLAG_CLEAR_PAYLOAD : 0);
  out.set(msidDigest(open.peer), 5);
  return out;
}

export function decodeRelayOpen(metadata: Uint8Array): RelayOpen {
  const flags = metadata[4];
  if (metadata.length !== LEN || (flags! & ~(FLAG_END_TO_END | FLAG_CLEAR_PAYLOAD)) !== 0 || flags === FLAG_CLEAR_PAYLOAD) {
    throw new SessionError('GS_ERR_PROTOCOL', `relayed connection metadata must be ${LEN} bytes with known flags (clear payload only with the end-to-end layer)`);
  }
  return {
    connectionId: new DataView(metadata.buffer, metadata.byteOffset, metadata.byteLength).getUint32(0),
    endToEnd: (flags! & FLAG_END_TO_END) !== 0,
    clearPayload: (flags! & FLAG_CLEAR_PAYLOAD) !== 0,
    peer: msidFromDigest(metadata.subarray(5)),
  };
}
