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
 *  peer           to the server: the client's MSID; to the client: the server's MSID
 * ```
 */
import { SessionError } from '../errors/index.js';
import { msidDigest, msidFromDigest } from './token.js';

const LEN = 37;
const FLAG_END_TO_END = 1;

/** What a relayed connection's OPEN says. */
export interface RelayOpen {
  readonly connectionId: number;
  readonly endToEnd: boolean;
  readonly peer: string;
}

export function encodeRelayOpen(open: RelayOpen): Uint8Array {
  const out = new Uint8Array(LEN);
  new DataView(out.buffer).setUint32(0, open.connectionId);
  out[4] = open.endToEnd ? FLAG_END_TO_END : 0;
  out.set(msidDigest(open.peer), 5);
  return out;
}

export function decodeRelayOpen(metadata: Uint8Array): RelayOpen {
  if (metadata.length !== LEN || (metadata[4]! & ~FLAG_END_TO_END) !== 0) {
    throw new SessionError('GS_ERR_PROTOCOL', `relayed connection metadata must be ${LEN} bytes with known flags`);
  }
  return {
    connectionId: new DataView(metadata.buffer, metadata.byteOffset, metadata.byteLength).getUint32(0),
    endToEnd: (metadata[4]! & FLAG_END_TO_END) !== 0,
    peer: msidFromDigest(metadata.subarray(5)),
  };
}
