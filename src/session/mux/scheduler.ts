/**
 * The send scheduler: decides which frames go into the next write to the
 * transport, and writes them into one batch buffer (coalescing many small
 * frames into one transport write).
 *
 * Order within a batch:
 * 1. urgent frames, first in first out: OPEN, RESET, PING, PONG, CONTROL,
 *    GO_AWAY (small, and an OPEN must precede its connection's DATA);
 * 2. window updates owed to connections (one WINDOW_UPDATE per connection,
 *    credits accumulate while it waits);
 * 3. DATA, round-robin over connections that have data and credit: each gets
 *    up to `quantum` bytes per turn (a deficit-free round robin: a turn cut
 *    short by a full batch resumes first in the next batch), so busy
 *    connections share the link evenly and a small interactive write waits
 *    at most one quantum per busy connection. A connection's CLOSE goes out
 *    right after its last queued byte.
 *
 * Record alignment: over a transport that seals each write into records of
 * `align` bytes from the write's first byte (the secure channel), a DATA
 * frame is cut where a record ends, and a batch holds whole records, so no
 * frame spans two records and the receiver's decoder hands each body out as
 * a view of the decrypted record instead of gathering it into a fresh copy.
 *
 * Clear payload: with `split` (a transport that sends split records), the
 * DATA frames of a source's bytes past its `sealedLeft()` are listed in
 * {@link SendScheduler.clearSpans} (header sealed, payload clear, at most
 * 65,535 payload bytes each, not cut at record ends; a frame never spans the
 * switch); the transport starts a new record after each, so alignment
 * counts from there. A clear frame's payload is not copied into the batch:
 * its span carries views of the source's queued bytes (`data`), which the
 * transport copies once into what it sends; it still counts toward the
 * batch's capacity, so one write stays about a batch.
 *
 * Sans-I/O: it fills buffers; the session writes them and honours the
 * transport's backpressure.
 */
import { emitFrame, emitHeader, frameLen, FrameType, HEADER_LEN, type Frame } from '../frame.js';
import { MAX_SPLIT_CLEAR } from '../secure/record-reader.js';
import type { ClearSpan } from '../secure/channel.js';

/**
 * What the scheduler needs from a connection with data to send.
 * @internal
 */
export interface SendSource {
  readonly id: number;
  /** Payload bytes that may go now: queued bytes within the send credit. */
  sendable(): number;
  /** Copy the next `n` (≤ sendable()) payload bytes into `out` at `at`, consuming them and their credit. */
  take(out: Uint8Array, at: number, n: number): void;
  /** True when everything queued is sent and a CLOSE is due. */
  finDue(): boolean;
  /** The CLOSE was written into the batch. */
  finTaken(): void;
  /** Credit owed to the peer in a WINDOW_UPDATE, taken (and zeroed) by the scheduler. */
  takeGrant(): number;
  /** Bytes to send sealed before the rest go with their payload outside the hop encryption (≤ 0: clear now; Infinity or absent: never). */
  sealedLeft?(): number;
  /** The next `n` payload bytes as views (no copy), consuming them as `take()` does; for clear frames. */
  takeViews?(n: number): Uint8Array[];
  /** Scheduler bookkeeping: queued in the data ring. */
  inRing: boolean;
  /** Scheduler bookkeeping: queued for a window update. */
  grantQueued: boolean;
  /** Scheduler bookkeeping: bytes (or, with record alignment, records) left in the current turn (0 = a fresh turn). */
  turnLeft: number;
}

/**
 * Round-robin frame scheduler.
 * @internal
 */
export class SendScheduler {
  private urgent: Frame[] = [];
  private urgentHead = 0;
  private grants: SendSource[] = [];
  private ring: SendSource[] = [];
  private ringHead = 0;

  /**
   * With record alignment and a quantum of at least a record, turns are
   * counted in records (the quantum rounded to whole records), so a turn ends
   * where a record ends instead of cutting a record into a full frame and a
   * sliver; 0 otherwise (turns counted in payload bytes).
   */
  private readonly recordTurns: number;

  /** The clear DATA frames of the last {@link SendScheduler.fill}, in order (empty without `split`). */
  readonly clearSpans: ClearSpan[] = [];

  /**
   * @param align - record size of the transport (0: none); see the file comment.
   * @param split - the transport sends split records (clear payload; file comment).
   */
  constructor(
    private readonly quantum: number,
    private readonly maxPayload: number,
    private readonly align = 0,
    private readonly split = false,
  ) {
    this.recordTurns = align > 0 && quantum >= align - HEADER_LEN ? Math.max(1, Math.round(quantum / align)) : 0;
  }

  /** True when nothing is waiting. */
  get idle(): boolean {
    return this.urgentHead === this.urgent.length && this.grants.length === 0 && this.ringHead === this.ring.length;
  }

  /** Queue a frame that goes ahead of every DATA. */
  pushUrgent(frame: Frame): void {
    this.urgent.push(frame);
  }

  /** Urgent frames waiting (for bounding pongs to a peer that does not read). */
  get urgentCount(): number {
    return this.urgent.length - this.urgentHead;
  }

  /** `source` owes a WINDOW_UPDATE. */
  scheduleGrant(source: SendSource): void {
    if (source.grantQueued) return;
    source.grantQueued = true;
    this.grants.push(source);
  }

  /** `source` may have data (or a CLOSE) to send. */
  scheduleData(source: SendSource): void {
    if (source.inRing) return;
    source.inRing = true;
    source.turnLeft = 0;
    this.ring.push(source);
  }

  /** Forget a source that was reset: its queued data and grant are void. */
  remove(source: SendSource): void {
    // Lazily: fill() skips sources whose sendable() is 0 and whose FIN is not due.
    source.takeGrant();
  }

  /** Drop everything (the session ended). */
  clear(): void {
    this.urgent = [];
    this.urgentHead = 0;
    for (const s of this.grants) s.grantQueued = false;
    this.grants = [];
    for (let i = this.ringHead; i < this.ring.length; i++) this.ring[i]!.inRing = false;
    this.ring = [];
    this.ringHead = 0;
  }

  /**
   * Write the next frames into `out` and return the bytes written (0 when
   * idle). An urgent frame too large for `out` is returned on its own,
   * encoded into a buffer of its own.
   */
  fill(out: Uint8Array): Uint8Array {
    let pos = 0;
    /** Where the transport's current record starts (after the last clear frame). */
    let base = 0;
    /** Clear payload taken as views (not in `out`), counted against the capacity all the same. */
    let outside = 0;
    this.clearSpans.length = 0;
    const align = this.align;
    // Whole records only (the last one would otherwise go out short).
    const cap = align > 0 && out.length >= align ? out.length - (out.length % align) : out.length;

    while (this.urgentHead < this.urgent.length) {
      const frame = this.urgent[this.urgentHead]!;
      const len = frameLen(frame);
      if (pos + len > cap) {
        if (pos > 0) return out.subarray(0, pos);
        this.urgentHead++;
        this.compactUrgent();
        const big = new Uint8Array(len);
        emitFrame(frame, big);
        return big;
      }
      this.urgentHead++;
      pos += emitFrame(frame, out.subarray(pos));
    }
    this.compactUrgent();

    while (this.grants.length > 0 && pos + HEADER_LEN + 4 <= cap) {
      const source = this.grants.pop()!;
      source.grantQueued = false;
      const credit = source.takeGrant();
      if (credit > 0) pos += emitFrame({ kind: 'WINDOW_UPDATE', connId: source.id, credit }, out.subarray(pos));
    }

    const recordTurns = this.recordTurns;
    while (this.ringHead < this.ring.length && pos + outside + HEADER_LEN < cap) {
      const source = this.ring[this.ringHead]!;
      if (source.turnLeft === 0) source.turnLeft = recordTurns || this.quantum;
      while (source.turnLeft > 0 && pos + outside + HEADER_LEN < cap) {
        const sealedLeft = this.split && source.sealedLeft ? source.sealedLeft() : Infinity;
        const clear = sealedLeft <= 0;
        let n = Math.min(source.sendable(), clear ? MAX_SPLIT_CLEAR : this.maxPayload, cap - pos - outside - HEADER_LEN);
        if (recordTurns === 0 && n > source.turnLeft) n = source.turnLeft;
        if (!clear && n > sealedLeft) n = sealedLeft; // the last sealed frame ends where the clear bytes start
        if (align > 0 && !clear) {
          // End the frame where its record ends; when not even the header
          // fits before that, where the next record ends.
          let room = align - ((pos - base) % align) - HEADER_LEN;
          if (room <= 0) room += align;
          if (n > room) n = room;
        }
        if (n <= 0) break;
        emitHeader(out, pos, FrameType.DATA, 0, source.id, n);
        if (clear && source.takeViews) {
          this.clearSpans.push({ offset: pos, sealed: HEADER_LEN, clear: n, data: source.takeViews(n) });
          pos += HEADER_LEN;
          outside += n;
        } else {
          source.take(out, pos + HEADER_LEN, n);
          if (clear) this.clearSpans.push({ offset: pos, sealed: HEADER_LEN, clear: n });
          pos += HEADER_LEN + n;
        }
        if (clear) base = pos;
        if (recordTurns === 0) source.turnLeft -= n;
        else if (clear || (pos - base) % align === 0) source.turnLeft--;
      }
      if (source.sendable() === 0 && source.finDue()) {
        if (pos + HEADER_LEN > cap) break; // the batch is full; the CLOSE goes first next time
        emitHeader(out, pos, FrameType.CLOSE, 0, source.id, 0);
        pos += HEADER_LEN;
        source.finTaken();
      }
      if (source.turnLeft > 0 && source.sendable() > 0) break; // batch full mid-turn: resume this turn next time
      this.ringHead++;
      source.turnLeft = 0;
      if (source.sendable() > 0) {
        this.ring.push(source); // back of the line
      } else {
        source.inRing = false;
      }
    }
    if (this.ringHead > 64 && this.ringHead * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.ringHead);
      this.ringHead = 0;
    }
    return out.subarray(0, pos);
  }

  private compactUrgent(): void {
    if (this.urgentHead === this.urgent.length) {
      this.urgent.length = 0;
      this.urgentHead = 0;
    }
  }
}
