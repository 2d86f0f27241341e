/**
 * Options of a {@link MuxSession}: one interface with a doc per field (unit,
 * meaning of 0), one frozen defaults object, and one verify function every
 * constructor calls (yamux's `Config` / `DefaultConfig` / `VerifyConfig`).
 *
 * Derived, not configured (DESIGN.md, stream relay "Closing"): a session is
 * declared dead after `2 × keepaliveMs` without any traffic from the peer.
 */
import { checkOption } from '../../errors/check.js';
import { systemClock, type Clock } from '../../transport/index.js';
import { DATA_OFFSET_LEN, INITIAL_WINDOW, MAX_FRAME_BODY_LIMIT } from '../frame.js';

/**
 * Time source and timers of a session: the transport layer's {@link Clock}.
 * The default reads `performance.now()` and uses unref'd Node timers; tests
 * pass a manual clock to run keepalive and close timers deterministically.
 * @public
 */
export type MuxClock = Clock;

export { systemClock };

/**
 * Tunables of a multiplexed session. Both ends may use different values:
 * nothing here is negotiated, except that a peer's DATA frames must fit our
 * `maxFrameBody` (we send at most {@link MAX_DATA_PAYLOAD} payload bytes
 * per frame, which every allowed `maxFrameBody` accepts).
 * @public
 */
export interface MuxOptions {
  /**
   * Idle time before we PING the peer, in milliseconds. The session is
   * declared dead (`GS_ERR_SESSION_DEAD`) after `2 × keepaliveMs` without a
   * single byte from the peer. Must be greater than 0. Default 15 000.
   */
  keepaliveMs: number;
  /**
   * Most live connections at once, counting both directions. An incoming
   * OPEN beyond it is refused with RESET `TOO_MANY_CONNECTIONS`; a local
   * `open()` beyond it throws `GS_ERR_TOO_MANY_CONNECTIONS`. Must be ≥ 1.
   * Default 8192.
   */
  maxConnections: number;
  /**
   * Largest receive window a connection may autotune to, in bytes. Every
   * connection starts at {@link INITIAL_WINDOW} (256 KiB); set this to 256 KiB to
   * switch autotuning off. Must be in [256 KiB, 1 GiB]. Default 16 MiB.
   */
  maxWindow: number;
  /**
   * Largest frame body accepted from the peer, in bytes; a larger header
   * closes the session with `GS_ERR_FRAME_TOO_LARGE` before the body is
   * buffered. Also the largest `sendControl()` body. Must be in
   * [64 KiB + 8, 16 MiB]. Default 256 KiB.
   */
  maxFrameBody: number;
  /**
   * After we half-close a connection (our CLOSE is sent), how long the peer
   * may stay silent on that connection, in milliseconds, before we reset it
   * (RESET `CLOSE_TIMEOUT`), so a peer that never closes cannot leak
   * connection IDs. Any frame from the peer on that connection restarts the
   * wait. 0 means never. Default 60 000.
   */
  closeTimeoutMs: number;
  /**
   * Bytes a connection may have queued for sending before its `write()`
   * returns false; `drain` follows once the queue is below it. Must be
   * greater than 0. Default 256 KiB.
   */
  connectionHighWaterMark: number;
  /**
   * Bytes a busy connection may send in one round-robin turn before the next
   * busy connection gets the link. Over a secure channel a quantum of at
   * least one record is rounded to whole records (64 KiB: one record), so a
   * turn ends where a record ends rather than leaving a sliver of a frame.
   * Must be in [1 KiB, 1 MiB]. Default 64 KiB.
   */
  sendQuantum: number;
  /** Time source and timers; the process clock unless a test passes one. */
  clock: MuxClock;
}

/**
 * Largest DATA payload we put in one frame, in bytes. Peers must accept a
 * body of this plus the optional offset, hence the floor on `maxFrameBody`.
 * @public
 */
export const MAX_DATA_PAYLOAD = 64 * 1024;

/**
 * Defaults of every {@link MuxOptions} field.
 * @public
 */
export const DEFAULT_MUX_OPTIONS: Readonly<MuxOptions> = Object.freeze({
  keepaliveMs: 15_000,
  maxConnections: 8192,
  maxWindow: 16 * 1024 * 1024,
  maxFrameBody: 256 * 1024,
  closeTimeoutMs: 60_000,
  connectionHighWaterMark: 256 * 1024,
  sendQuantum: 64 * 1024,
  clock: systemClock,
});

const MIN_FRAME_BODY = MAX_DATA_PAYLOAD + DATA_OFFSET_LEN;
const MAX_WINDOW_LIMIT = 1024 * 1024 * 1024;

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/**
 * Throw a {@link ConfigError} (`GS_ERR_INVALID_OPTION`) naming the first
 * option out of range.
 * @public
 */
export function verifyMuxOptions(options: Readonly<MuxOptions>): void {
  const o = options;
  checkOption(isInt(o.keepaliveMs) && o.keepaliveMs > 0, 'keepaliveMs', 'must be > 0');
  checkOption(isInt(o.maxConnections) && o.maxConnections >= 1, 'maxConnections', 'must be ≥ 1');
  checkOption(
    isInt(o.maxWindow) && o.maxWindow >= INITIAL_WINDOW && o.maxWindow <= MAX_WINDOW_LIMIT,
    'maxWindow',
    `must be an integer in [${INITIAL_WINDOW}, ${MAX_WINDOW_LIMIT}]`,
  );
  checkOption(
    isInt(o.maxFrameBody) && o.maxFrameBody >= MIN_FRAME_BODY && o.maxFrameBody <= MAX_FRAME_BODY_LIMIT,
    'maxFrameBody',
    `must be an integer in [${MIN_FRAME_BODY}, ${MAX_FRAME_BODY_LIMIT}]`,
  );
  checkOption(isInt(o.closeTimeoutMs) && o.closeTimeoutMs >= 0, 'closeTimeoutMs', 'must be ≥ 0');
  checkOption(isInt(o.connectionHighWaterMark) && o.connectionHighWaterMark > 0, 'connectionHighWaterMark', 'must be > 0');
  checkOption(isInt(o.sendQuantum) && o.sendQuantum >= 1024 && o.sendQuantum <= 1024 * 1024, 'sendQuantum', 'must be an integer in [1024, 1048576]');
  const c = o.clock as Partial<MuxClock> | undefined;
  checkOption(
    typeof c === 'object' && c !== null && typeof c.now === 'function' && typeof c.setTimer === 'function' && typeof c.clearTimer === 'function',
    'clock',
    'must have now(), setTimer() and clearTimer()',
  );
}

/**
 * Defaults filled in and verified.
 * @internal
 */
export function resolveMuxOptions(options: Partial<MuxOptions>, extraKeys: readonly string[] = []): Readonly<MuxOptions> {
  const resolved: MuxOptions = { ...DEFAULT_MUX_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (extraKeys.includes(key)) continue;
    checkOption(Object.hasOwn(DEFAULT_MUX_OPTIONS, key), key, 'is not a MuxSession option');
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  verifyMuxOptions(resolved);
  return Object.freeze(resolved);
}
