/**
 * The reliable multicast updater (design, system 2): the wire (codecs,
 * signatures, manifest, names, permissions — ./wire) and the sender and
 * receiver engines.
 *
 * @packageDocumentation
 */
export * from './wire/index.js';
export {
  UpdateSender,
  type ReceiverOutcome,
  type SenderBytes,
  type SenderReport,
  type SenderState,
  type UpdateSenderEvents,
  type UpdateSenderOptions,
} from './sender.js';
export {
  UpdateReceiver,
  type ReceiverCounters,
  type ReceiverReport,
  type ReceiverState,
  type UpdateHandler,
  type UpdateReceiverEvents,
  type UpdateReceiverOptions,
} from './receiver.js';
export { PARTIAL_DIR } from './resume-state.js';
