/**
 * The evidence log (docs/dispatch.md, "Evidence log"): append-only JSON
 * lines, hash-chained and signed by the center.
 */

/**
 * What a log line records.
 * @public
 */
export type LogKind = 'bundle' | 'dispatch' | 'issued' | 'result' | 'failure';

/**
 * One line of the evidence log.
 * @public
 */
export interface LogEntry {
  /** 0 for the first line, then one more per line. */
  seq: number;
  /** SHA-256 of the previous line's bytes, 64 lowercase hex (64 zeros for the first line). */
  prev: string;
  /** When it was appended, ms since the epoch. */
  at: number;
  kind: LogKind;
  data: Record<string, unknown>;
  /** The center's signature, base64url. */
  sig: string;
}
