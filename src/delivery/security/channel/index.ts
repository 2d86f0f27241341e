/**
 * The report channel of the security agents (agent → center only): the
 * message codec with its layout, the signed-report envelope, and the two
 * ends of one exchange over a SockIo.
 *
 * @packageDocumentation
 */
export {
  ANSWER_STATUSES,
  DEFAULT_MAX_CHANNEL_MESSAGE_BYTES,
  MAX_AGENT_CERTIFICATE_BYTES,
  MAX_ANSWER_MESSAGE_CHARS,
  MAX_CHANNEL_HEADER_BYTES,
  MAX_REQUESTED_FILES,
  SECURITY_REPORT_CONTEXT,
  FrameCollector,
  checkHostInfo,
  decodeChannelMessage,
  encodeChannelMessage,
  signReportMessage,
  verifyReportMessage,
  type AgentHostInfo,
  type AnswerMessage,
  type DeviceKind,
  type ReportMessage,
  type RequestedFile,
  type SecurityChannelMessage,
} from './codec.js';
export { DEFAULT_EXCHANGE_TIMEOUT_MS, exchangeReport, refusalAnswer, serveReportConnection } from './link.js';
