/**
 * Per-connection receive-window accounting with autotuning, sans-I/O: time
 * and RTT are passed in.
 *
 * Credit: the peer may send as many payload bytes as we have granted and it
 * has not yet used. Every connection starts with {@link INITIAL_WINDOW}
 * granted. We grant more (WINDOW_UPDATE) once the application has consumed
 * at least half the window since the last grant, as yamux does, so buffered
 * but unread bytes never exceed the window and a reader that stops reading
 * stops only its own connection.
 *
 * Autotuning follows quic-go's `maybeAdjustWindowSize` (flowcontrol/
 * base_flow_controller.go): when granting, if the bytes consumed since the
 * last grant (a fraction f ≥ ½ of the window) took less than `4 · f · RTT`,
 * i.e. the window would be used up in under ~2 RTT at half a window, the
 * window is the bottleneck: double it, up to `maxWindow`. The growth is
 * granted along with the consumed bytes.
 *
 * RTT source: the session's smoothed PING round-trip time (one probe when the
 * session starts, then keepalive pings). We chose pings over "time from a
 * grant to the data it releases" because the latter measures the sender's
 * application as much as the path: a sender with nothing to send looks like
 * a long RTT. With no RTT sample yet the window does not grow.
 */
import { INITIAL_WINDOW } from '../frame.js';

/**
 * Receive side of one connection's flow control.
 * @public
 */
export class ReceiveWindow {
  /** Current window size: the most unread bytes the peer may have outstanding. */
  private size: number;
  /** Bytes the peer may still send before our next grant. */
  private remaining: number;
  /** Bytes the application consumed since our last grant. */
  private consumed = 0;
  /** When the current autotuning epoch (the time since the last grant) began. */
  private epochStart: number;

  constructor(
    private readonly maxWindow: number,
    now: number,
    initial = INITIAL_WINDOW,
  ) {
    this.size = initial;
    this.remaining = initial;
    this.epochStart = now;
  }

  /** Current window size in bytes. */
  get window(): number {
    return this.size;
  }

  /** Bytes the peer may still send without a new grant. */
  get credit(): number {
    return this.remaining;
  }

  /**
   * `n` payload bytes arrived. Returns false, and changes nothing, when they
   * exceed the credit: the peer broke flow control.
   */
  onReceive(n: number): boolean {
    if (n > this.remaining) return false;
    this.remaining -= n;
    return true;
  }

  /**
   * The application consumed `n` bytes at time `now`. Returns the credit to
   * grant now (0 = not yet), having autotuned the window with `rttMs`
   * (0 = unknown, no growth).
   */
  onConsume(n: number, now: number, rttMs: number): number {
    this.consumed += n;
    if (this.consumed < this.size / 2) return 0;
    let grant = this.consumed;
    if (rttMs > 0 && this.size < this.maxWindow) {
      const fraction = this.consumed / this.size;
      if (now - this.epochStart < 4 * fraction * rttMs) {
        const grown = Math.min(this.size * 2, this.maxWindow);
        grant += grown - this.size;
        this.size = grown;
      }
    }
    this.epochStart = now;
    this.consumed = 0;
    this.remaining += grant;
    return grant;
  }
}

/**
 * Smoothed round-trip time, as TCP's SRTT (RFC 6298 §2: α = 1/8).
 * @public
 */
export class RttEstimator {
  private srtt = 0;

  /** Smoothed RTT in milliseconds; 0 before the first sample. */
  get rttMs(): number {
    return this.srtt;
  }

  /** Add one round-trip sample, in milliseconds. */
  sample(ms: number): void {
    const s = Math.max(ms, 0.01);
    this.srtt = this.srtt === 0 ? s : this.srtt + (s - this.srtt) / 8;
  }
}
