/**
 * The wire of verifiable dispatch (docs/dispatch.md, "Formats"): one codec
 * per format — bundle, evidence binding, report, channel messages and their
 * per-connection authentication, evidence log and its offline verifier —
 * and the helpers they share. No I/O but the log file and the channel's
 * SockIo.
 *
 * @packageDocumentation
 */
export {
  DIGEST_PREFIX,
  MAX_TARGET_ARGS,
  MAX_TARGET_ARGS_TOTAL_BYTES,
  MAX_TARGET_ARG_BYTES,
  MAX_TARGET_PATH_BYTES,
  SIGNATURE_LEN,
  centerKeyId,
  checkTargetPath,
  evidenceHash,
  fromBase64url,
  isDigest,
  newDispatchId,
  newEvidence,
  parseCenterKey,
  sha256Digest,
  toBase64url,
  unsafeTargetPathReason,
  type Digest,
} from './common.js';
export {
  BUNDLE_CONTEXT,
  BUNDLE_FORMAT,
  BUNDLE_MAGIC,
  DEFAULT_BUNDLE_TIMEOUT_MS,
  DEFAULT_BUNDLE_TTL_MS,
  DEFAULT_MAX_BUNDLE_BYTES,
  MAX_BUNDLE_METADATA_BYTES,
  MAX_BUNDLE_TIMEOUT_MS,
  createBundle,
  decodeBundle,
  verifyBundle,
  type Bundle,
  type BundleInput,
  type BundleMetadata,
  type BundleTarget,
  type BundleTrust,
} from './bundle.js';
export {
  BINDING_CONTEXT,
  BINDING_FORMAT,
  MAX_BINDING_JSON_BYTES,
  MAX_RUN,
  decodeBinding,
  signBinding,
  verifyBinding,
  type BindingFields,
  type SignedBinding,
} from './binding.js';
export {
  MAX_CERTIFICATE_BYTES,
  MAX_REASON_BYTES,
  MAX_REPORT_JSON_BYTES,
  REPORT_CONTEXT,
  REPORT_FORMAT,
  RUN_OUTCOMES,
  checkReport,
  decodeReport,
  signReport,
  type OutputDigest,
  type ReportCheck,
  type ReportExpectation,
  type ReportFields,
  type RunOutcome,
  type SignedReport,
  type VerificationFailure,
} from './report.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_HEADER_BYTES,
  MAX_PENDING_REPORTS,
  MESSAGE_PREFIX_LEN,
  MessageReader,
  decodeMessage,
  encodeMessage,
  type ChannelMessage,
} from './messages.js';
export { CHANNEL_AUTH_CONTEXT, CHANNEL_CHALLENGE_HEX, newChannelChallenge, signChannelAuth, verifyChannelAuth, type ChannelAuthInput } from './auth.js';
export { DEFAULT_CHANNEL_BACKLOG, DispatchChannel, type DispatchChannelEvents, type DispatchChannelOptions } from './channel.js';
export {
  DEFAULT_LOG_HEAD_INTERVAL_MS,
  EvidenceLog,
  LOG_CONTEXT,
  LOG_FORMAT,
  LOG_GENESIS,
  LOG_HEAD_CONTEXT,
  LOG_HEAD_FORMAT,
  LOG_KINDS,
  MAX_LOG_LINE_BYTES,
  formatLogHead,
  parseLogHead,
  verifyEvidenceLog,
  verifyLogHead,
  type EvidenceLogOptions,
  type EvidenceLogVerification,
  type LogEntry,
  type LogHead,
  type LogKind,
  type SignedLogHead,
  type VerifyEvidenceLogOptions,
} from './log.js';
