/**
 * One entry point for every datagram of both sessions: a control line
 * starts with an ASCII capital (`U`, `R`, `F`), a data packet with its
 * version nibble (`0x1?` for version 1), so one socket may carry both.
 */
import { decodeControl, type ControlMessage } from './control.js';
import { malformed } from './common.js';
import { decodePacket, type Packet } from './packet.js';

/** Any message of the updater's two sessions. @public */
export type WireMessage = ControlMessage | Packet;

/**
 * Decode a datagram of either session.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for anything that is
 * neither (`…_UNSAFE_NAME` for a control line with an unsafe name).
 * @public
 */
export function decodeDatagram(bytes: Uint8Array): WireMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw malformed('empty datagram');
  const first = bytes[0]!;
  return first >= 0x41 && first <= 0x5a ? decodeControl(bytes) : decodePacket(bytes);
}
