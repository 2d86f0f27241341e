/**
 * Diagnostics channels of the multiplexed session, named
 * `gatesock:session:<event>` (STYLE.md, undici). Publishing is skipped when
 * nobody subscribes, so they cost one property read on the paths that use
 * them.
 *
 * | channel                         | message                                         |
 * | ------------------------------- | ----------------------------------------------- |
 * | `gatesock:session:open`         | `{ session, role }`                             |
 * | `gatesock:session:close`        | `{ session, error }`                            |
 * | `gatesock:session:dead`         | `{ session, idleMs }`                           |
 * | `gatesock:session:go-away`      | `{ session, direction, code, reason }`          |
 * | `gatesock:session:conn-state`   | `{ session, connId, from, to, why }`            |
 * | `gatesock:session:window`       | `{ session, connId, window, rttMs }` (autotune) |
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The session's channels, by event.
 * @public
 */
export const sessionChannels = Object.freeze({
  open: diagnosticsChannel.channel('gatesock:session:open'),
  close: diagnosticsChannel.channel('gatesock:session:close'),
  dead: diagnosticsChannel.channel('gatesock:session:dead'),
  goAway: diagnosticsChannel.channel('gatesock:session:go-away'),
  connState: diagnosticsChannel.channel('gatesock:session:conn-state'),
  window: diagnosticsChannel.channel('gatesock:session:window'),
});

/** Publish `message` on `channel` if anyone listens; the message is built only then. */
export function publish(channel: diagnosticsChannel.Channel, message: () => unknown): void {
  if (channel.hasSubscribers) channel.publish(message());
}
