/**
 * The two ends of one report exchange over a SockIo: the agent sends one
 * `report` and reads one `answer`; the center reads one `report`, answers,
 * and hangs up. Each end bounds what it reads and how long it waits.
 */
import { GatesockError, SecurityCenterError } from '../../../errors/index.js';
import type { SockIo } from '../../../socket/index.js';
import {
  DEFAULT_MAX_CHANNEL_MESSAGE_BYTES,
  FrameCollector,
  MAX_ANSWER_MESSAGE_CHARS,
  decodeChannelMessage,
  encodeChannelMessage,
  type AnswerMessage,
  type ReportMessage,
  type SecurityChannelMessage,
} from './codec.js';

/** Default wait for the other end's message, ms. @public */
export const DEFAULT_EXCHANGE_TIMEOUT_MS = 30_000;

async function writeAll(sock: SockIo, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length; ) off += await sock.send(bytes.subarray(off));
}

/** Read exactly one message, or fail on timeout, a closed connection, or bad bytes. */
async function readOne(sock: SockIo, maxBytes: number, timeoutMs: number): Promise<SecurityChannelMessage> {
  const collector = new FrameCollector(maxBytes);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void sock.disconnect().catch(() => undefined);
      reject(new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report channel: no whole message within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const read = (async () => {
    for await (const chunk of sock) {
      const frame = collector.push(chunk);
      if (frame) return decodeChannelMessage(frame, maxBytes);
    }
    throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', 'report channel: the connection closed before a whole message arrived');
  })();
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
    read.catch(() => undefined);
  }
}

/**
 * Agent side: send `report`, wait for the center's `answer`, close.
 * @throws SecurityCenterError on a malformed answer or none in time; the socket's own errors.
 * @public
 */
export async function exchangeReport(sock: SockIo, report: ReportMessage, options: { timeoutMs?: number } = {}): Promise<AnswerMessage> {
  try {
    await writeAll(sock, encodeChannelMessage(report));
    const m = await readOne(sock, DEFAULT_MAX_CHANNEL_MESSAGE_BYTES, options.timeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS);
    if (m.t !== 'answer') throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report channel: expected an answer, got ${m.t}`);
    return m;
  } finally {
    await sock.disconnect().catch(() => undefined);
  }
}

/** A `refused` answer for an error (its code when it is one of ours). @public */
export function refusalAnswer(err: unknown): AnswerMessage {
  const code = err instanceof GatesockError ? err.code : 'GS_ERR_SECURITY_MALFORMED_REPORT';
  const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ANSWER_MESSAGE_CHARS);
  return { t: 'answer', status: 'refused', seq: null, expectSeqAbove: null, code, message, firewall: false, files: [], body: new Uint8Array(0) };
}

/**
 * Center side: read one `report`, hand it to `handle`, send its answer (a
 * thrown error becomes a `refused` answer with the error's code), close.
 * Never rejects.
 * @public
 */
export async function serveReportConnection(
  sock: SockIo,
  handle: (m: ReportMessage) => Promise<AnswerMessage>,
  options: { timeoutMs?: number; maxBytes?: number } = {},
): Promise<void> {
  try {
    let answer: AnswerMessage;
    try {
      const m = await readOne(sock, options.maxBytes ?? DEFAULT_MAX_CHANNEL_MESSAGE_BYTES, options.timeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS);
      if (m.t !== 'report') throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report channel: expected a report, got ${m.t}`);
      answer = await handle(m);
    } catch (err) {
      answer = refusalAnswer(err);
    }
    await writeAll(sock, encodeChannelMessage(answer)).catch(() => undefined);
  } finally {
    await sock.disconnect().catch(() => undefined);
  }
}
