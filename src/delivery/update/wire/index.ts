/**
 * Everything on the multicast updater's wire: the control-session text codec
 * (`UDATE`, `RECV`, `FIN`), the data-session binary codec (the seed's
 * 12-byte header and its packet types), publisher keys and signatures, the
 * manifest (per-symbol hashes under a signed Merkle root), the sender's
 * prepared update and the receiver's authenticator, safe names, and the
 * receiver's permission policy. docs/delivery.md is the specification.
 *
 * @packageDocumentation
 */
export {
  ANNOUNCEMENT_CONTEXT,
  MAX_CONTROL_LENGTH,
  MAX_HASHES_PER_PAGE,
  MAX_HOSTNAME_LENGTH,
  MAX_STATUS_LENGTH,
  SYMBOL_SIZE_RANGE,
  announcementBody,
  announcementSigningBytes,
  decodeControl,
  encodeControl,
  isOkStatus,
  type Announcement,
  type AnnouncementFields,
  type ControlMessage,
  type FinMessage,
  type RecvMessage,
  type UdateMessage,
  type UpdateCode,
} from './control.js';
export {
  DATA_HEADER_LEN,
  DATA_HEADER_WORDS,
  DATA_VERSION,
  DEFAULT_MAX_REQUEST_PAYLOAD,
  MAX_DATAGRAM_LEN,
  PacketType,
  SIGNATURE_LEN,
  SYMBOL_HASH_LEN,
  ackPayloadLength,
  decodePacket,
  emitDataHeader,
  encodePacket,
  parseDataHeader,
  splitRetransmissionRequest,
  type AckPacket,
  type BlockNeed,
  type DataHeader,
  type DataPacket,
  type ManifestPacket,
  type NoticePacket,
  type Packet,
  type PacketTypeNumber,
  type PageRef,
  type RepairPacket,
  type RetransmissionRequest,
  type RoundPacket,
  type SymbolPacket,
} from './packet.js';
export { decodeDatagram, type WireMessage } from './datagram.js';
export { withReplySocket } from './reply-socket.js';
export {
  BLOCK_HASH_LEN,
  MERKLE_NODE_LEN,
  MerkleTree,
  blockHash,
  blockSourceCount,
  choosePageSize,
  manifestPayloadLength,
  merkleProofLength,
  pageHashCount,
  pageLeaf,
  pageOfEsi,
  symbolHash,
  symbolPayloadLength,
  symbolSeq,
  updateLayout,
  verifyMerkleProof,
  type UpdateLayout,
} from './manifest.js';
export {
  ACK_CONTEXT,
  PUBLIC_KEY_LEN,
  PUBLIC_KEY_PREFIX,
  ROUND_CONTEXT,
  ackSigningBytes,
  formatPublicKey,
  generatePublisherKey,
  parsePublicKey,
  publicKeyToPem,
  publisherKeyId,
  roundSigningBytes,
  signAnnouncement,
  verifyAnnouncement,
  type TrustOptions,
  type VerifiedAnnouncement,
} from './publisher.js';
export {
  DEFAULT_UPDATE_OPTIONS,
  PreparedUpdate,
  SYMBOL_CACHE_BLOCKS,
  UpdateAuthenticator,
  coderFor,
  prepareUpdate,
  prepareUpdateAsync,
  type PrepareUpdateOptions,
  type SymbolCheck,
} from './update.js';
export { MAX_NAME_LENGTH, MAX_NAME_SEGMENT_LENGTH, RESERVED_PREFIX, checkUpdateName, isSafeUpdateName, resolveUpdatePath, unsafeNameReason } from './names.js';
export {
  FileUpdateHistory,
  MAX_PATTERN_LENGTH,
  MemoryUpdateHistory,
  assertPermitted,
  checkPermission,
  compileNamePattern,
  verifyReceiverPolicy,
  type PermissionDecision,
  type ReceiverPolicy,
  type UpdateHistory,
} from './permission.js';
