/**
 * The session frame codec: every frame a multiplexed session puts on the wire
 * (OPEN, DATA, WINDOW_UPDATE, CLOSE, RESET, PING, PONG, CONTROL, GO_AWAY),
 * and every wire constant of the session layer, in one module. A test pins
 * each number below, so a refactor cannot renumber the wire.
 *
 * ```text
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------+---------------+-------------------------------+
 * |  version (1)  |     type      |             flags             |
 * +---------------+---------------+-------------------------------+
 * |                        connection ID                          |
 * +---------------------------------------------------------------+
 * |                         body length                           |
 * +---------------------------------------------------------------+
 * |                     body (body length bytes)                  |
 * +---------------------------------------------------------------+
 *
 * All integers are big-endian. Bodies by type:
 *   OPEN           conn ID ≠ 0   opaque open metadata, ≤ 4 KiB
 *   DATA           conn ID ≠ 0   [u64 byte offset if flag OFFSET] payload
 *   WINDOW_UPDATE  conn ID ≠ 0   u32 credit increment, > 0 (exactly 4 bytes)
 *   CLOSE          conn ID ≠ 0   empty (half-close, "FIN")
 *   RESET          conn ID ≠ 0   u32 reset code, UTF-8 reason ≤ 256 bytes
 *   PING, PONG     conn ID = 0   8 opaque bytes (PONG echoes the PING's)
 *   CONTROL        conn ID = 0   opaque (messages of the relay layer)
 *   GO_AWAY        conn ID = 0   u32 go-away code, UTF-8 reason ≤ 256 bytes
 * ```
 *
 * Decoding is canonical (as noble-curves' DER): a flag not defined for the
 * type, a body length a type does not allow, a connection ID where none may
 * be (or none where one is required), a zero credit, invalid UTF-8 and
 * trailing bytes are all {@link FrameError}s, so `emitFrame(parseFrame(b))`
 * gives back `b` byte for byte.
 *
 * The prose spec for porting is `mux/spec.md` ("Framing", "Frame types").
 *
 * Two levels, as smoltcp's `wire` module: {@link FrameView} gives named field
 * accessors over a buffer and cannot fail once {@link FrameView.checkLen} has
 * passed; {@link Frame} is the meaning, with {@link parseFrame},
 * {@link emitFrame} and {@link frameLen}. Untrusted bytes go through the
 * checked constructor; emitting writes every field, so a reused buffer
 * holding an old frame cannot leak into the new one.
 */
import { FrameError } from '../errors/index.js';

// ---------------------------------------------------------------------------
// Header layout

const VERSION_SIZE = 1;
const TYPE_SIZE = 1;
const FLAGS_SIZE = 2;
const CONN_ID_SIZE = 4;
const BODY_LENGTH_SIZE = 4;

/** Bytes in a frame header. @public */
export const HEADER_LEN = VERSION_SIZE + TYPE_SIZE + FLAGS_SIZE + CONN_ID_SIZE + BODY_LENGTH_SIZE;

/** Byte offset of each header field. */
const FIELD = {
  VERSION: 0,
  TYPE: VERSION_SIZE,
  FLAGS: VERSION_SIZE + TYPE_SIZE,
  CONN_ID: VERSION_SIZE + TYPE_SIZE + FLAGS_SIZE,
  BODY_LENGTH: VERSION_SIZE + TYPE_SIZE + FLAGS_SIZE + CONN_ID_SIZE,
  BODY: HEADER_LEN,
} as const;

// ---------------------------------------------------------------------------
// Wire constants

/** The only frame version this codec speaks. @public */
export const FRAME_VERSION = 1;

/**
 * Frame type numbers. Pinned by a test: never renumber.
 * @public
 */
export const FrameType = Object.freeze({
  OPEN: 1,
  DATA: 2,
  WINDOW_UPDATE: 3,
  CLOSE: 4,
  RESET: 5,
  PING: 6,
  PONG: 7,
  CONTROL: 8,
  GO_AWAY: 9,
} as const);

/** Name of a frame type, e.g. `'DATA'`. @public */
export type FrameKind = keyof typeof FrameType;

/**
 * Flags of a DATA frame. No other type defines a flag.
 * @public
 */
export const DataFlag = Object.freeze({
  /** The body starts with a u64 connection-level byte offset of the payload's first byte. */
  OFFSET: 0x0001,
} as const);

/**
 * Codes carried by RESET. Pinned by a test.
 * @public
 */
export const ResetCode = Object.freeze({
  /** The application aborted the connection (`destroy()`). */
  CANCEL: 0,
  /** The peer broke the connection's rules (sent beyond its window, data after FIN, bad offset). */
  PROTOCOL: 1,
  /** The OPEN was refused: the receiver is at its connection limit. */
  TOO_MANY_CONNECTIONS: 2,
  /** The peer did not confirm our CLOSE in time (the close timer). */
  CLOSE_TIMEOUT: 3,
  /** The OPEN was refused: nobody accepts connections, or the session is going away. */
  REFUSED: 4,
} as const);

/**
 * Codes carried by GO_AWAY. Pinned by a test.
 * @public
 */
export const GoAwayCode = Object.freeze({
  /** The sender is closing the session cleanly. */
  NORMAL: 0,
  /** The sender received a frame it could not accept; it closes the session. */
  PROTOCOL_ERROR: 1,
  /** The sender failed on its own side; it closes the session. */
  INTERNAL_ERROR: 2,
} as const);

/** Size of the optional DATA offset field. @public */
export const DATA_OFFSET_LEN = 8;
/** Size of a WINDOW_UPDATE body. @public */
export const WINDOW_UPDATE_BODY_LEN = 4;
/** Size of a PING or PONG body. @public */
export const PING_BODY_LEN = 8;
/** Size of the code in front of a RESET or GO_AWAY reason. @public */
export const CODE_LEN = 4;
/** Longest UTF-8 reason of a RESET or GO_AWAY, in bytes. @public */
export const MAX_REASON_LEN = 256;
/** Longest OPEN metadata, in bytes. @public */
export const MAX_OPEN_METADATA_LEN = 4 * 1024;
/** Default cap on a frame body, in bytes. @public */
export const DEFAULT_MAX_FRAME_BODY = 256 * 1024;
/** The largest cap a decoder may be configured with, in bytes. @public */
export const MAX_FRAME_BODY_LIMIT = 16 * 1024 * 1024;
/**
 * Receive window every connection starts with, in bytes, on both ends. Not
 * negotiated: both ends assume it, as yamux's 256 KiB initial window.
 * @public
 */
export const INITIAL_WINDOW = 256 * 1024;

const KIND_BY_TYPE: readonly (FrameKind | undefined)[] = (() => {
  const table: (FrameKind | undefined)[] = [];
  for (const [kind, type] of Object.entries(FrameType)) table[type] = kind as FrameKind;
  return table;
})();

// ---------------------------------------------------------------------------
// Repr

/**
 * The meaning of one frame, as a discriminated union on `kind`.
 * @public
 */
export type Frame =
  | { readonly kind: 'OPEN'; readonly connId: number; readonly metadata: Uint8Array }
  | {
      readonly kind: 'DATA';
      readonly connId: number;
      /** Connection-level offset of `payload[0]`; present iff the OFFSET flag is set. */
      readonly offset?: bigint | undefined;
      readonly payload: Uint8Array;
    }
  | { readonly kind: 'WINDOW_UPDATE'; readonly connId: number; readonly credit: number }
  | { readonly kind: 'CLOSE'; readonly connId: number }
  | { readonly kind: 'RESET'; readonly connId: number; readonly code: number; readonly reason: string }
  | { readonly kind: 'PING'; readonly opaque: Uint8Array }
  | { readonly kind: 'PONG'; readonly opaque: Uint8Array }
  | { readonly kind: 'CONTROL'; readonly body: Uint8Array }
  | { readonly kind: 'GO_AWAY'; readonly code: number; readonly reason: string };

/**
 * A checked frame header: what a streaming decoder knows before it buffers
 * the body.
 * @public
 */
export interface FrameHeader {
  /** The frame type, by name. */
  readonly kind: FrameKind;
  /** The flags field (only DATA defines a flag, {@link DataFlag}). */
  readonly flags: number;
  /** Connection ID; 0 for PING, PONG, CONTROL and GO_AWAY. */
  readonly connId: number;
  /** Bytes of body that follow the header. */
  readonly bodyLength: number;
}

// ---------------------------------------------------------------------------
// Byte helpers (no DataView per frame; the hot path reads a dozen bytes)

function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

function readU64(b: Uint8Array, o: number): bigint {
  return (BigInt(readU32(b, o)) << 32n) | BigInt(readU32(b, o + 4));
}

function writeU64(b: Uint8Array, o: number, v: bigint): void {
  writeU32(b, o, Number((v >> 32n) & 0xffffffffn));
  writeU32(b, o + 4, Number(v & 0xffffffffn));
}

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is malformed, not replaced; ignoreBOM: a leading
// U+FEFF is kept, so the decoded string encodes back to the same bytes.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------
// View

/**
 * Named field accessors over the bytes of one frame (smoltcp's `Packet`).
 * Build it with {@link FrameView.checked} for untrusted input; after that no
 * accessor can read out of bounds. {@link FrameView.unchecked} is for
 * emitting into a buffer the caller sized with {@link frameLen}.
 * @public
 */
export class FrameView {
  private constructor(
    /** The bytes of the frame, header first. */
    readonly buffer: Uint8Array,
  ) {}

  /** Wrap `buffer` and {@link FrameView.checkLen} it. */
  static checked(buffer: Uint8Array): FrameView {
    const view = new FrameView(buffer);
    view.checkLen();
    return view;
  }

  /** Wrap `buffer` without checking, for emitting. */
  static unchecked(buffer: Uint8Array): FrameView {
    return new FrameView(buffer);
  }

  /**
   * Throw `GS_ERR_FRAME_MALFORMED` unless the buffer holds a whole header and
   * the body its length field declares. Trailing bytes are allowed here
   * (a view may sit at the front of a larger buffer); {@link parseFrame}
   * refuses them.
   */
  checkLen(): void {
    const len = this.buffer.length;
    if (len < HEADER_LEN) throw new FrameError('GS_ERR_FRAME_MALFORMED', `frame truncated: ${len} of ${HEADER_LEN} header bytes`);
    const total = HEADER_LEN + this.bodyLength;
    if (len < total) throw new FrameError('GS_ERR_FRAME_MALFORMED', `frame truncated: ${len} of ${total} bytes`);
  }

  /** The version field (1 byte); {@link FRAME_VERSION} in every valid frame. */
  get version(): number {
    return this.buffer[FIELD.VERSION]!;
  }
  set version(v: number) {
    this.buffer[FIELD.VERSION] = v;
  }
  /** The type field (1 byte), a {@link FrameType} number. */
  get type(): number {
    return this.buffer[FIELD.TYPE]!;
  }
  set type(v: number) {
    this.buffer[FIELD.TYPE] = v;
  }
  /** The flags field (u16). */
  get flags(): number {
    return readU16(this.buffer, FIELD.FLAGS);
  }
  set flags(v: number) {
    writeU16(this.buffer, FIELD.FLAGS, v);
  }
  /** The connection ID field (u32). */
  get connId(): number {
    return readU32(this.buffer, FIELD.CONN_ID);
  }
  set connId(v: number) {
    writeU32(this.buffer, FIELD.CONN_ID, v);
  }
  /** The body length field (u32): bytes of body after the header. */
  get bodyLength(): number {
    return readU32(this.buffer, FIELD.BODY_LENGTH);
  }
  set bodyLength(v: number) {
    writeU32(this.buffer, FIELD.BODY_LENGTH, v);
  }
  /** The body bytes (a view, not a copy). */
  get body(): Uint8Array {
    return this.buffer.subarray(FIELD.BODY, FIELD.BODY + this.bodyLength);
  }
}

// ---------------------------------------------------------------------------
// Header: checked before the body is buffered

/**
 * Write a header at `offset` of `out` (the caller made room). Used by
 * {@link emitFrame} and by the send scheduler, which copies DATA payloads
 * straight behind it.
 * @internal
 */
export function emitHeader(out: Uint8Array, offset: number, type: number, flags: number, connId: number, bodyLength: number): void {
  out[offset + FIELD.VERSION] = FRAME_VERSION;
  out[offset + FIELD.TYPE] = type;
  writeU16(out, offset + FIELD.FLAGS, flags);
  writeU32(out, offset + FIELD.CONN_ID, connId);
  writeU32(out, offset + FIELD.BODY_LENGTH, bodyLength);
}

function malformed(message: string): FrameError {
  return new FrameError('GS_ERR_FRAME_MALFORMED', message);
}

/**
 * Read and check the 12 header bytes at `offset` of `bytes` (the caller made
 * sure they are there): version, type, flags, connection ID rule and every
 * body-length rule the type allows, including the `maxBody` cap. Everything
 * a frame can be refused for without its body is refused here, so a decoder
 * never buffers a body it would reject for its length.
 * @public
 */
export function parseHeader(bytes: Uint8Array, offset = 0, maxBody = DEFAULT_MAX_FRAME_BODY): FrameHeader {
  const version = bytes[offset + FIELD.VERSION]!;
  if (version !== FRAME_VERSION) throw new FrameError('GS_ERR_FRAME_VERSION', `frame version ${version}, expected ${FRAME_VERSION}`);
  const type = bytes[offset + FIELD.TYPE]!;
  const kind = KIND_BY_TYPE[type];
  if (kind === undefined) throw new FrameError('GS_ERR_FRAME_UNKNOWN_TYPE', `unknown frame type ${type}`);
  const flags = readU16(bytes, offset + FIELD.FLAGS);
  const connId = readU32(bytes, offset + FIELD.CONN_ID);
  const bodyLength = readU32(bytes, offset + FIELD.BODY_LENGTH);
  if (bodyLength > maxBody) throw new FrameError('GS_ERR_FRAME_TOO_LARGE', `${kind} body of ${bodyLength} bytes exceeds ${maxBody}`);

  const allowedFlags = kind === 'DATA' ? DataFlag.OFFSET : 0;
  if ((flags & ~allowedFlags) !== 0) throw malformed(`${kind} with undefined flags 0x${flags.toString(16)}`);

  const perConnection = kind === 'OPEN' || kind === 'DATA' || kind === 'WINDOW_UPDATE' || kind === 'CLOSE' || kind === 'RESET';
  if (perConnection && connId === 0) throw malformed(`${kind} needs a connection ID`);
  if (!perConnection && connId !== 0) throw malformed(`${kind} must have connection ID 0, got ${connId}`);

  switch (kind) {
    case 'OPEN':
      if (bodyLength > MAX_OPEN_METADATA_LEN) throw new FrameError('GS_ERR_FRAME_TOO_LARGE', `OPEN metadata of ${bodyLength} bytes exceeds ${MAX_OPEN_METADATA_LEN}`);
      break;
    case 'DATA':
      if ((flags & DataFlag.OFFSET) !== 0 && bodyLength < DATA_OFFSET_LEN) throw malformed(`DATA with OFFSET flag has a ${bodyLength}-byte body`);
      break;
    case 'WINDOW_UPDATE':
      if (bodyLength !== WINDOW_UPDATE_BODY_LEN) throw malformed(`WINDOW_UPDATE body must be ${WINDOW_UPDATE_BODY_LEN} bytes, got ${bodyLength}`);
      break;
    case 'CLOSE':
      if (bodyLength !== 0) throw malformed(`CLOSE body must be empty, got ${bodyLength} bytes`);
      break;
    case 'PING':
    case 'PONG':
      if (bodyLength !== PING_BODY_LEN) throw malformed(`${kind} body must be ${PING_BODY_LEN} bytes, got ${bodyLength}`);
      break;
    case 'RESET':
    case 'GO_AWAY':
      if (bodyLength < CODE_LEN) throw malformed(`${kind} body of ${bodyLength} bytes has no code`);
      if (bodyLength > CODE_LEN + MAX_REASON_LEN) throw new FrameError('GS_ERR_FRAME_TOO_LARGE', `${kind} reason exceeds ${MAX_REASON_LEN} bytes`);
      break;
    case 'CONTROL':
      break;
  }
  return { kind, flags, connId, bodyLength };
}

function decodeReason(body: Uint8Array, kind: string): string {
  try {
    return utf8Decoder.decode(body.subarray(CODE_LEN));
  } catch (cause) {
    throw new FrameError('GS_ERR_FRAME_MALFORMED', `${kind} reason is not valid UTF-8`, { cause });
  }
}

/**
 * Build the frame from a header {@link parseHeader} accepted and its body
 * (exactly `header.bodyLength` bytes). Byte arrays in the result are views
 * into `body`, not copies. Throws {@link FrameError} for what only the body
 * shows (a zero credit, invalid UTF-8).
 * @public
 */
export function parseBody(header: FrameHeader, body: Uint8Array): Frame {
  const { connId } = header;
  switch (header.kind) {
    case 'OPEN':
      return { kind: 'OPEN', connId, metadata: body };
    case 'DATA':
      if ((header.flags & DataFlag.OFFSET) !== 0) {
        return { kind: 'DATA', connId, offset: readU64(body, 0), payload: body.subarray(DATA_OFFSET_LEN) };
      }
      return { kind: 'DATA', connId, payload: body };
    case 'WINDOW_UPDATE': {
      const credit = readU32(body, 0);
      if (credit === 0) throw malformed('WINDOW_UPDATE with zero credit');
      return { kind: 'WINDOW_UPDATE', connId, credit };
    }
    case 'CLOSE':
      return { kind: 'CLOSE', connId };
    case 'RESET':
      return { kind: 'RESET', connId, code: readU32(body, 0), reason: decodeReason(body, 'RESET') };
    case 'PING':
      return { kind: 'PING', opaque: body };
    case 'PONG':
      return { kind: 'PONG', opaque: body };
    case 'CONTROL':
      return { kind: 'CONTROL', body };
    case 'GO_AWAY':
      return { kind: 'GO_AWAY', code: readU32(body, 0), reason: decodeReason(body, 'GO_AWAY') };
  }
}

/**
 * Parse exactly one frame from `bytes` (no trailing bytes). Byte arrays in
 * the result are views into `bytes`.
 * @throws {@link FrameError} `GS_ERR_FRAME_MALFORMED` (truncated, trailing
 *   bytes, bad flags/length/connection ID/credit/UTF-8),
 *   `GS_ERR_FRAME_TOO_LARGE`, `GS_ERR_FRAME_VERSION`,
 *   `GS_ERR_FRAME_UNKNOWN_TYPE`.
 * @public
 */
export function parseFrame(bytes: Uint8Array, maxBody = DEFAULT_MAX_FRAME_BODY): Frame {
  const view = FrameView.checked(bytes);
  const header = parseHeader(bytes, 0, maxBody);
  const total = HEADER_LEN + header.bodyLength;
  if (bytes.length !== total) throw malformed(`${bytes.length - total} trailing bytes after frame`);
  return parseBody(header, view.body);
}

// ---------------------------------------------------------------------------
// Emit

function checkU32(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${value}`);
}

function checkConnId(connId: number, kind: string): void {
  checkU32(connId, `${kind} connId`);
  if (connId === 0) throw new RangeError(`${kind} needs a non-zero connId`);
}

function reasonBytes(reason: string, kind: string): Uint8Array {
  const bytes = utf8Encoder.encode(reason);
  if (bytes.length > MAX_REASON_LEN) throw new RangeError(`${kind} reason is ${bytes.length} bytes, max ${MAX_REASON_LEN}`);
  return bytes;
}

/**
 * Body bytes of `frame` and what goes in its header. Checks the repr: an
 * invalid repr is a programming error, so it throws `RangeError`.
 */
function layout(frame: Frame): { type: number; flags: number; connId: number; bodyLength: number; fill: (out: Uint8Array, at: number) => void } {
  switch (frame.kind) {
    case 'OPEN':
      checkConnId(frame.connId, 'OPEN');
      if (frame.metadata.length > MAX_OPEN_METADATA_LEN) throw new RangeError(`OPEN metadata is ${frame.metadata.length} bytes, max ${MAX_OPEN_METADATA_LEN}`);
      return { type: FrameType.OPEN, flags: 0, connId: frame.connId, bodyLength: frame.metadata.length, fill: (out, at) => out.set(frame.metadata, at) };
    case 'DATA': {
      checkConnId(frame.connId, 'DATA');
      const { offset, payload } = frame;
      if (offset === undefined) {
        return { type: FrameType.DATA, flags: 0, connId: frame.connId, bodyLength: payload.length, fill: (out, at) => out.set(payload, at) };
      }
      if (offset < 0n || offset > 0xffffffffffffffffn) throw new RangeError(`DATA offset must be a u64, got ${offset}`);
      return {
        type: FrameType.DATA,
        flags: DataFlag.OFFSET,
        connId: frame.connId,
        bodyLength: DATA_OFFSET_LEN + payload.length,
        fill: (out, at) => {
          writeU64(out, at, offset);
          out.set(payload, at + DATA_OFFSET_LEN);
        },
      };
    }
    case 'WINDOW_UPDATE':
      checkConnId(frame.connId, 'WINDOW_UPDATE');
      checkU32(frame.credit, 'WINDOW_UPDATE credit');
      if (frame.credit === 0) throw new RangeError('WINDOW_UPDATE credit must be > 0');
      return { type: FrameType.WINDOW_UPDATE, flags: 0, connId: frame.connId, bodyLength: WINDOW_UPDATE_BODY_LEN, fill: (out, at) => writeU32(out, at, frame.credit) };
    case 'CLOSE':
      checkConnId(frame.connId, 'CLOSE');
      return { type: FrameType.CLOSE, flags: 0, connId: frame.connId, bodyLength: 0, fill: () => {} };
    case 'RESET':
    case 'GO_AWAY': {
      if (frame.kind === 'RESET') checkConnId(frame.connId, 'RESET');
      checkU32(frame.code, `${frame.kind} code`);
      const reason = reasonBytes(frame.reason, frame.kind);
      return {
        type: FrameType[frame.kind],
        flags: 0,
        connId: frame.kind === 'RESET' ? frame.connId : 0,
        bodyLength: CODE_LEN + reason.length,
        fill: (out, at) => {
          writeU32(out, at, frame.code);
          out.set(reason, at + CODE_LEN);
        },
      };
    }
    case 'PING':
    case 'PONG':
      if (frame.opaque.length !== PING_BODY_LEN) throw new RangeError(`${frame.kind} opaque must be ${PING_BODY_LEN} bytes`);
      return { type: FrameType[frame.kind], flags: 0, connId: 0, bodyLength: PING_BODY_LEN, fill: (out, at) => out.set(frame.opaque, at) };
    case 'CONTROL':
      if (frame.body.length > MAX_FRAME_BODY_LIMIT) throw new RangeError(`CONTROL body is ${frame.body.length} bytes, max ${MAX_FRAME_BODY_LIMIT}`);
      return { type: FrameType.CONTROL, flags: 0, connId: 0, bodyLength: frame.body.length, fill: (out, at) => out.set(frame.body, at) };
  }
}

/**
 * Bytes `frame` takes on the wire, header included (smoltcp's `buffer_len`).
 * @public
 */
export function frameLen(frame: Frame): number {
  switch (frame.kind) {
    case 'OPEN':
      return HEADER_LEN + frame.metadata.length;
    case 'DATA':
      return HEADER_LEN + (frame.offset === undefined ? 0 : DATA_OFFSET_LEN) + frame.payload.length;
    case 'WINDOW_UPDATE':
      return HEADER_LEN + WINDOW_UPDATE_BODY_LEN;
    case 'CLOSE':
      return HEADER_LEN;
    case 'RESET':
    case 'GO_AWAY':
      return HEADER_LEN + CODE_LEN + utf8Encoder.encode(frame.reason).length;
    case 'PING':
    case 'PONG':
      return HEADER_LEN + PING_BODY_LEN;
    case 'CONTROL':
      return HEADER_LEN + frame.body.length;
  }
}

/**
 * Write `frame` at the start of `out`, every header and body byte of it, and
 * return the bytes written (= {@link frameLen}). `out` may be longer.
 * @throws RangeError when the repr is invalid (a zero connId where one is
 *   needed, a zero credit, a reason over 256 bytes…) or `out` is too short.
 * @public
 */
export function emitFrame(frame: Frame, out: Uint8Array): number {
  const { type, flags, connId, bodyLength, fill } = layout(frame);
  const total = HEADER_LEN + bodyLength;
  if (out.length < total) throw new RangeError(`emitFrame: buffer of ${out.length} bytes, frame needs ${total}`);
  emitHeader(out, 0, type, flags, connId, bodyLength);
  fill(out, FIELD.BODY);
  return total;
}

/**
 * Encode `frame` into a new buffer of exactly {@link frameLen} bytes.
 * @public
 */
export function encodeFrame(frame: Frame): Uint8Array {
  const { type, flags, connId, bodyLength, fill } = layout(frame);
  const out = new Uint8Array(HEADER_LEN + bodyLength);
  emitHeader(out, 0, type, flags, connId, bodyLength);
  fill(out, FIELD.BODY);
  return out;
}
