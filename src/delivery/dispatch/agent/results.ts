/**
 * Small pieces shared by the loader, both executors and the agent: results
 * for runs that produced no output of their own (refused, timed out,
 * crashed), reasons from errors, and the capture of a target's output.
 */
import { createHash, type Hash } from 'node:crypto';
import { DispatchError, GatesockError } from '../../../errors/index.js';
import type { BindingFields, OutputDigest, RunOutcome } from '../wire/index.js';
import type { LoaderResult } from './types.js';

/** `sha256:` + hex of SHA-256 over no bytes: the digest of output that never came. */
const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The digest and size of no output. */
export function emptyOutput(): OutputDigest {
  return { digest: EMPTY_SHA256, size: 0 };
}

/** Longest `reason` we put in a report. */
export const MAX_REASON_CHARS = 200;

/** What a target that ran left for the report. */
export interface TargetOutcome {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: OutputDigest;
  readonly stderr: OutputDigest;
}

/**
 * A run's result. Without `target` it carries only an outcome: nothing ran
 * (refused), or the run was stopped or lost before the loader reported
 * (timeout, crashed); the output digests are then those of no output.
 */
export function blankResult(
  fields: Pick<BindingFields, 'dispatchId' | 'run' | 'bundleDigest' | 'evidence'>,
  outcome: RunOutcome,
  reason: string | null,
  start: LoaderResult['start'],
  startedAt: number,
  endedAt: number,
  target?: TargetOutcome,
): LoaderResult {
  return {
    dispatchId: fields.dispatchId,
    run: fields.run,
    bundleDigest: fields.bundleDigest,
    evidence: fields.evidence,
    outcome,
    reason: reason === null ? null : clip(reason),
    start,
    exitCode: target?.exitCode ?? null,
    signal: target?.signal ?? null,
    stdout: target?.stdout ?? emptyOutput(),
    stderr: target?.stderr ?? emptyOutput(),
    startedAt,
    endedAt: Math.max(startedAt, endedAt),
  };
}

/** Cut a reason to {@link MAX_REASON_CHARS} printable ASCII characters, one line. */
export function clip(text: string): string {
  // Printable ASCII only, so the length in characters is the length in bytes (the report allows 256).
  const line = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return line.length <= MAX_REASON_CHARS ? line : `${line.slice(0, MAX_REASON_CHARS - 3)}...`;
}

/** The reason a report gives for an error: its gatesock code, or its message. */
export function reasonOf(error: unknown): string {
  if (error instanceof GatesockError) return error.code;
  if (error instanceof Error) return clip(error.message || error.name);
  return clip(String(error));
}

/** An error as a DispatchError, keeping a gatesock code when it has a dispatch one. */
export function asDispatchError(error: unknown, fallback: DispatchError['code'] = 'GS_ERR_DISPATCH_LOADER_FAILED'): DispatchError {
  if (error instanceof DispatchError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DispatchError(fallback, message, { cause: error });
}

/**
 * One output stream of a target: every byte is digested (SHA-256) and
 * counted, the first `cap` bytes are kept for the distributed code to read.
 */
export class OutputCapture {
  readonly #hash: Hash = createHash('sha256');
  readonly #cap: number;
  readonly #kept: Uint8Array[] = [];
  #keptBytes = 0;
  #size = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  push(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    const room = this.#cap - this.#keptBytes;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.#kept.push(Uint8Array.from(part));
      this.#keptBytes += part.length;
    }
  }

  /** True when more bytes came than were kept. */
  get truncated(): boolean {
    return this.#size > this.#keptBytes;
  }

  /** The kept bytes (at most `cap`). */
  bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.#kept));
  }

  /** Digest and size of everything pushed. Call once, at the end. */
  finish(): OutputDigest {
    return { digest: `sha256:${this.#hash.digest('hex')}`, size: this.#size };
  }
}
