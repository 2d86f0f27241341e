/**
 * Diagnostics channels of key addresses, named `gatesock:keyaddress:<event>`
 * (STYLE.md, undici), so experiment scripts can count admissions, refusals
 * and epoch changes without patching code. Messages carry positions, never
 * addresses or keys (an address is the session's key until it is retired).
 * Publishing is skipped when nobody subscribes.
 *
 * | channel                          | message                                           |
 * | -------------------------------- | ------------------------------------------------- |
 * | `gatesock:keyaddress:next`       | `{ t, n }` — a client handed out position (t, n)   |
 * | `gatesock:keyaddress:admit`      | `{ ok, reason?, t?, n? }` — a server's decision    |
 * | `gatesock:keyaddress:epoch`      | `{ t, event: 'open' \| 'close' }` — a server epoch |
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The key-address channels, by event.
 * @public
 */
export const keyAddressChannels = Object.freeze({
  next: diagnosticsChannel.channel('gatesock:keyaddress:next'),
  admit: diagnosticsChannel.channel('gatesock:keyaddress:admit'),
  epoch: diagnosticsChannel.channel('gatesock:keyaddress:epoch'),
});

/** Publish `message` on `channel` if anyone listens; the message is built only then. @internal */
export function publish(channel: diagnosticsChannel.Channel, message: () => unknown): void {
  if (channel.hasSubscribers) channel.publish(message());
}
