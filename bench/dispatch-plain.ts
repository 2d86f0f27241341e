/**
 * The baseline of the dispatch figures: the same request/response round
 * trip per agent, over the same transport and with the same concurrency,
 * with nothing signed and nothing verified. The "center" sends one JSON line
 * `{"t":"run","id":N}` on a fresh connection; the "agent" answers
 * `{"t":"done","id":N,"msid":…}` and both sides close. The center checks
 * every answer names the round and agent it asked.
 */
import type { SockIo } from '../src/socket/index.js';

const NL = 0x0a;
/** Longest one send or receive of the plain exchange may wait. */
const IO_TIMEOUT_MS = 15_000;
const MAX_LINE = 4096;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Read one `\n`-terminated JSON line from `sock` (bounded); `undefined` at end of stream. */
async function readLine(sock: SockIo): Promise<unknown> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const chunk = await sock.recv(MAX_LINE);
    if (chunk.length === 0) return undefined;
    const at = chunk.indexOf(NL);
    if (at >= 0) {
      parts.push(chunk.subarray(0, at));
      return JSON.parse(dec.decode(Buffer.concat(parts)));
    }
    parts.push(chunk);
    size += chunk.length;
    if (size > MAX_LINE) throw new Error('plain exchange: line too long');
  }
}

async function writeLine(sock: SockIo, value: unknown): Promise<void> {
  let bytes = enc.encode(JSON.stringify(value) + '\n');
  while (bytes.length > 0) bytes = bytes.subarray(await sock.send(bytes));
}

/** The plain agent: answer each `run` with `done`, until the center closes. */
export async function plainServe(sock: SockIo, msid: string): Promise<void> {
  sock.setTimeout(IO_TIMEOUT_MS);
  try {
    for (;;) {
      const m = (await readLine(sock)) as { t?: string; id?: number } | undefined;
      if (m === undefined) break;
      if (m.t === 'run') await writeLine(sock, { t: 'done', id: m.id, msid });
    }
  } catch {
    // the center went away
  } finally {
    await sock.disconnect();
  }
}

/** One plain round on a connection: `run`, wait for `done`, check it, close. */
export async function plainRound(sock: SockIo, id: number, msid: string): Promise<void> {
  sock.setTimeout(IO_TIMEOUT_MS);
  try {
    await writeLine(sock, { t: 'run', id });
    const m = (await readLine(sock)) as { t?: string; id?: number; msid?: string } | undefined;
    if (m?.t !== 'done' || m.id !== id || m.msid !== msid) throw new Error(`plain exchange: agent ${msid} answered ${JSON.stringify(m)} to round ${id}`);
  } finally {
    await sock.disconnect();
  }
}

/** `promise`, or a rejection naming `what` after `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run `count` items through `concurrency` lanes (the center's concurrency
 * limit); `each(i)` does item i. Rejects with the first failure.
 */
export async function lanes(count: number, concurrency: number, each: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await each(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
