/**
 * Channel messages (docs/dispatch.md, "Channel messages"): one codec for
 * every message between center, repository and agent over one SockIo.
 */
import type { Digest } from './common.js';

/**
 * One message of the dispatch channel.
 * @public
 */
export type ChannelMessage =
  | { t: 'hello'; agentMsid: string; certificate: string; pending: { report: string }[] }
  | { t: 'run'; binding: string; inline: boolean; body?: Uint8Array }
  | { t: 'fetch'; digest: Digest }
  | { t: 'bundle'; digest: Digest; body: Uint8Array }
  | { t: 'rerun'; binding: string }
  | { t: 'accepted'; dispatchId: string; run: number }
  | { t: 'report'; report: string; certificate: string }
  | { t: 'ack'; dispatchId: string; run: number }
  | { t: 'cancel'; dispatchId: string }
  | { t: 'error'; code: string; message: string; dispatchId?: string; run?: number };
