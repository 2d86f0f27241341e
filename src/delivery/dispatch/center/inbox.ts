/**
 * A pull-style view of a {@link DispatchChannel}: messages are queued as
 * they arrive and taken one at a time with a time limit, so one attempt's
 * conversation with an agent reads top to bottom. Bounded: an agent that
 * floods the center with messages it does not read is cut off.
 */
import type { GatesockError } from '../../../errors/index.js';
import type { ChannelMessage, DispatchChannel } from '../wire/index.js';

/** Why {@link Inbox.take} gave nothing. @internal */
export type InboxEnd = { end: 'closed'; error?: GatesockError } | { end: 'timeout' } | { end: 'overflow' };

/** Most messages queued unread before the inbox gives up on the peer. */
const MAX_QUEUED = 256;

/** A queue of one channel's messages, taken with a time limit. @internal */
export class Inbox {
  readonly #queue: ChannelMessage[] = [];
  #head = 0;
  #ended: InboxEnd | undefined;
  #waiter: (() => void) | undefined;
  readonly #off: () => void;

  constructor(channel: DispatchChannel) {
    const onMessage = (m: ChannelMessage): void => {
      if (this.#ended) return;
      if (this.#queue.length - this.#head >= MAX_QUEUED) {
        this.#ended = { end: 'overflow' };
      } else this.#queue.push(m);
      this.#wake();
    };
    const onClose = (error?: GatesockError): void => {
      this.#ended ??= error === undefined ? { end: 'closed' } : { end: 'closed', error };
      this.#wake();
    };
    channel.on('message', onMessage);
    channel.on('close', onClose);
    if (channel.closed) onClose();
    this.#off = () => {
      channel.off('message', onMessage);
      channel.off('close', onClose);
    };
  }

  /** The next message, or why there is none within `timeoutMs`. Queued messages are delivered before a close. */
  async take(timeoutMs: number): Promise<ChannelMessage | InboxEnd> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#head < this.#queue.length && this.#ended?.end !== 'overflow') {
        const m = this.#queue[this.#head]!;
        this.#queue[this.#head++] = undefined as unknown as ChannelMessage;
        if (this.#head > 64 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        return m;
      }
      if (this.#ended) return this.#ended;
      const left = deadline - Date.now();
      if (left <= 0) return { end: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiter = undefined;
          resolve();
        }, left);
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** Stop listening. */
  dispose(): void {
    this.#off();
    this.#wake();
  }

  #wake(): void {
    this.#waiter?.();
  }
}

/** Whether `x` is an {@link InboxEnd} rather than a message. */
export function isEnd(x: ChannelMessage | InboxEnd): x is InboxEnd {
  return (x as InboxEnd).end !== undefined;
}
