/**
 * The control session: one ASCII text line per UDP datagram, fields separated
 * by one space, no line terminator (design, system 2; seed §3.3.3 1)).
 *
 * Grammar (ABNF, RFC 5234; SP is one space, and nothing else separates
 * fields; docs/delivery.md "Control session" has the same text):
 *
 *     control   = udate / recv / fin                      ; at most 1,024 bytes
 *
 *     udate     = "UDATE" SP name SP size SP file-id SP first-seq SP last-seq
 *                 SP digest                               ; the seed's 7 fields
 *                 SP code SP k SP m SP symbol-size SP hashes-per-page
 *                 SP version SP expires SP root SP key-id ; signed extensions
 *                 SP signature
 *     recv      = "RECV" SP name SP hostname
 *     fin       = "FIN" SP name SP status
 *
 *     name      = see names.ts: 1…200 bytes of "/"-separated segments of
 *                 ALPHA / DIGIT / "." / "_" / "-" / "+", never "." or ".."
 *     size      = dec                 ; file bytes, 1 … 2^53−1
 *     file-id   = dec                 ; 0 … 65,535 (the data header's file ID)
 *     first-seq = dec                 ; 0 … 2^32−1, sequence of the first source symbol
 *     last-seq  = dec                 ; = first-seq + ceil(size / symbol-size) − 1 ≤ 2^32−1
 *     digest    = 64HEXLC             ; SHA-256 of the whole file
 *     code      = "rs8" / "rs16"      ; Reed–Solomon over GF(2^8) (k + m ≤ 256)
 *                                     ; or GF(2^16) (k + m ≤ 65,536, even symbol-size)
 *     k         = dec                 ; source symbols per block, ≥ 1
 *     m         = dec                 ; repair pool per block, ≥ 1
 *     symbol-size = dec               ; bytes per symbol, 16 … 65,488
 *     hashes-per-page = dec           ; symbol hashes per manifest page, 1 … 2,048
 *     version   = dec                 ; 1 … 2^53−1, grows with every update of a name
 *     expires   = dec                 ; Unix time in seconds after which receivers refuse it
 *     root      = 32HEXLC             ; Merkle root over the manifest pages (manifest.ts)
 *     key-id    = 16HEXLC             ; the publisher key that signed (publisher.ts)
 *     signature = 86B64URL            ; Ed25519 over "gatesock-update-announcement-v1" LF
 *                                     ; followed by the line up to, not including, SP signature
 *     hostname  = 1*253 ( ALPHA / DIGIT / "." / "_" / "-" / ":" )
 *     status    = (VCHAR) *399 (VCHAR / SP)   ; free text; "ok" or "ok " … means success
 *     dec       = "0" / %x31-39 *15DIGIT       ; canonical: no leading zeros
 *     HEXLC     = DIGIT / %x61-66              ; lowercase hex only
 *     B64URL    = ALPHA / DIGIT / "-" / "_"    ; unpadded, canonical
 *
 * Decoding is canonical: `encodeControl(decodeControl(b))` equals `b` byte
 * for byte, and anything else throws `DeliveryError`
 * `GS_ERR_DELIVERY_MALFORMED` (`GS_ERR_DELIVERY_UNSAFE_NAME` for a name that
 * is well-formed text but could leave a receiver's directory). The decoder
 * checks each field's grammar and range and the relations between fields
 * (last-seq, the code's shard limit, the file's block count); whether the
 * signature is good, the key pinned and the version fresh is
 * {@link verifyAnnouncement}'s job (publisher.ts).
 */
import { FEC_INFO_MAX_BLOCKS } from '../../../fec/index.js';
import { ascii, checkHex, checkInt, fromBase64url, malformed, parseDecimal } from './common.js';
import { MAX_NAME_LENGTH, checkUpdateName } from './names.js';

/** Longest control line in bytes. @public */
export const MAX_CONTROL_LENGTH = 1024;
/** Longest receiver host name in a `RECV` line. @public */
export const MAX_HOSTNAME_LENGTH = 253;
/** Longest `FIN` status message. @public */
export const MAX_STATUS_LENGTH = 400;
/** Smallest and largest symbol size an announcement may name (12 + 65,488 + manifest room fits a UDP datagram). @public */
export const SYMBOL_SIZE_RANGE = Object.freeze({ min: 16, max: 65_488 });
/** Most symbol hashes one manifest page may carry. @public */
export const MAX_HASHES_PER_PAGE = 2048;
/** The signing context: the bytes signed are this, then the line up to (not including) " signature". @public */
export const ANNOUNCEMENT_CONTEXT = 'gatesock-update-announcement-v1\n';

/**
 * The erasure code an update uses: `rs8` is Reed–Solomon over GF(2^8)
 * (`createReedSolomon`, k + m ≤ 256), `rs16` over GF(2^16)
 * (`createReedSolomon16`, k + m ≤ 65,536, even symbol size).
 * @public
 */
export type UpdateCode = 'rs8' | 'rs16';

/**
 * Every field of a `UDATE` line but the signature: the seed's seven, then
 * the extensions the security needs. All of them are signed.
 * @public
 */
export interface AnnouncementFields {
  /** Update name: a relative path (names.ts grammar). */
  readonly name: string;
  /** File size in bytes, ≥ 1. */
  readonly size: number;
  /** File ID the data session's packets carry, 0 … 65,535. */
  readonly fileId: number;
  /** Sequence number of the first source symbol, 0 … 2^32−1. */
  readonly firstSeq: number;
  /** Sequence number of the last source symbol: `firstSeq + ceil(size / symbolSize) − 1`. */
  readonly lastSeq: number;
  /** SHA-256 of the whole file, 64 lowercase hex digits. */
  readonly digest: string;
  /** The erasure code. */
  readonly code: UpdateCode;
  /** Source symbols per block (`k`). */
  readonly sourceSymbols: number;
  /** Repair symbols per block the sender may ever send (`m`, the repair pool); each has a hash in the manifest. */
  readonly repairSymbols: number;
  /** Bytes per symbol (`T`): every data and repair payload, but a short last source symbol. */
  readonly symbolSize: number;
  /** Symbol hashes per manifest page. */
  readonly hashesPerPage: number;
  /** Version of this name, ≥ 1; receivers take only versions above the last one they took. */
  readonly version: number;
  /** Unix time in seconds after which receivers refuse the announcement. */
  readonly expires: number;
  /** Merkle root over the manifest pages, 32 lowercase hex digits (16 bytes). */
  readonly root: string;
  /** Key ID of the publisher key that signs, 16 lowercase hex digits. */
  readonly keyId: string;
}

/**
 * A complete, signed `UDATE` announcement (not yet verified: see
 * `verifyAnnouncement`).
 * @public
 */
export interface Announcement extends AnnouncementFields {
  /** Ed25519 signature, 86 characters of unpadded base64url. */
  readonly signature: string;
}

/** A decoded `UDATE` line. @public */
export interface UdateMessage {
  /** Discriminator. */
  readonly kind: 'udate';
  /** The announcement it carries. */
  readonly announcement: Announcement;
}

/** A decoded `RECV name hostname` line: a receiver takes the update and joins. @public */
export interface RecvMessage {
  /** Discriminator. */
  readonly kind: 'recv';
  /** Update name, as in the `UDATE` it answers. */
  readonly name: string;
  /** The receiver's host name. */
  readonly hostname: string;
}

/** A decoded `FIN name status` line: a receiver's update result. @public */
export interface FinMessage {
  /** Discriminator. */
  readonly kind: 'fin';
  /** Update name. */
  readonly name: string;
  /** Free-text status; `ok` or `ok …` means the update was applied. */
  readonly status: string;
}

/** Any control-session message. @public */
export type ControlMessage = UdateMessage | RecvMessage | FinMessage;

const HOSTNAME_RE = /^[A-Za-z0-9._:-]{1,253}$/;
const STATUS_RE = /^[\x21-\x7e][\x20-\x7e]{0,399}$/;
const NAME_TOKEN_RE = /^[\x21-\x7e]{1,200}$/;

/** True when a `FIN` status reports success: `ok`, or `ok` then a space and more. @public */
export function isOkStatus(status: string): boolean {
  return status === 'ok' || status.startsWith('ok ');
}

/** Source symbols of a file: `ceil(size / symbolSize)`. @internal */
export function sourceSymbolCount(size: number, symbolSize: number): number {
  return Math.ceil(size / symbolSize);
}

/** Throws `GS_ERR_DELIVERY_MALFORMED` unless the fields are well-formed and consistent. */
function checkFields(f: AnnouncementFields): void {
  checkUpdateNameToken(f.name);
  checkInt(f.size, 'size', 1, Number.MAX_SAFE_INTEGER);
  checkInt(f.fileId, 'fileId', 0, 0xffff);
  checkInt(f.firstSeq, 'firstSeq', 0, 0xffffffff);
  checkInt(f.lastSeq, 'lastSeq', 0, 0xffffffff);
  checkHex(f.digest, 'digest', 64);
  if (f.code !== 'rs8' && f.code !== 'rs16') throw malformed(`code must be "rs8" or "rs16", got ${JSON.stringify(String(f.code).slice(0, 20))}`);
  checkInt(f.sourceSymbols, 'k', 1, 0xffff);
  checkInt(f.repairSymbols, 'm', 1, 0xffff);
  checkInt(f.symbolSize, 'symbolSize', SYMBOL_SIZE_RANGE.min, SYMBOL_SIZE_RANGE.max);
  checkInt(f.hashesPerPage, 'hashesPerPage', 1, MAX_HASHES_PER_PAGE);
  checkInt(f.version, 'version', 1, Number.MAX_SAFE_INTEGER);
  checkInt(f.expires, 'expires', 0, Number.MAX_SAFE_INTEGER);
  checkHex(f.root, 'root', 32);
  checkHex(f.keyId, 'keyId', 16);
  const shards = f.sourceSymbols + f.repairSymbols;
  if (f.code === 'rs8' && shards > 256) throw malformed(`rs8 allows k + m ≤ 256, got ${shards}`);
  if (f.code === 'rs16' && shards > 65_536) throw malformed(`rs16 allows k + m ≤ 65536, got ${shards}`);
  if (f.code === 'rs16' && f.symbolSize % 2 !== 0) throw malformed('rs16 needs an even symbol size');
  const symbols = sourceSymbolCount(f.size, f.symbolSize);
  if (f.lastSeq !== f.firstSeq + symbols - 1) {
    throw malformed(`lastSeq must be firstSeq + ceil(size / symbolSize) − 1 = ${f.firstSeq + symbols - 1}, got ${f.lastSeq}`);
  }
  const blocks = Math.ceil(symbols / f.sourceSymbols);
  if (blocks > FEC_INFO_MAX_BLOCKS) throw malformed(`the file needs ${blocks} blocks; the 16-bit block number allows ${FEC_INFO_MAX_BLOCKS}`);
}

/** Name grammar, with the safety check's own error for an unsafe name. */
function checkUpdateNameToken(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_TOKEN_RE.test(name)) {
    throw malformed(`name must be 1…${MAX_NAME_LENGTH} printable ASCII characters without spaces`);
  }
  checkUpdateName(name);
}

/**
 * The `UDATE` line of `fields` up to, not including, ` signature`.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` (or `…_UNSAFE_NAME`) for fields outside the grammar.
 * @public
 */
export function announcementBody(fields: AnnouncementFields): string {
  checkFields(fields);
  const f = fields;
  return [
    'UDATE',
    f.name,
    f.size,
    f.fileId,
    f.firstSeq,
    f.lastSeq,
    f.digest,
    f.code,
    f.sourceSymbols,
    f.repairSymbols,
    f.symbolSize,
    f.hashesPerPage,
    f.version,
    f.expires,
    f.root,
    f.keyId,
  ].join(' ');
}

/**
 * The exact bytes the publisher signs for `fields`:
 * {@link ANNOUNCEMENT_CONTEXT} then {@link announcementBody}.
 * @public
 */
export function announcementSigningBytes(fields: AnnouncementFields): Uint8Array {
  return ascii(ANNOUNCEMENT_CONTEXT + announcementBody(fields));
}

/**
 * Encode one control message as its datagram bytes.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` (or `…_UNSAFE_NAME`) for fields outside the grammar.
 * @public
 */
export function encodeControl(message: ControlMessage): Uint8Array {
  let line: string;
  switch (message.kind) {
    case 'udate': {
      const a = message.announcement;
      fromBase64url(a.signature, 'signature', 64);
      line = `${announcementBody(a)} ${a.signature}`;
      break;
    }
    case 'recv':
      checkUpdateNameToken(message.name);
      if (typeof message.hostname !== 'string' || !HOSTNAME_RE.test(message.hostname)) {
        throw malformed(`hostname must be 1…${MAX_HOSTNAME_LENGTH} of A-Z a-z 0-9 . _ - :`);
      }
      line = `RECV ${message.name} ${message.hostname}`;
      break;
    case 'fin':
      checkUpdateNameToken(message.name);
      if (typeof message.status !== 'string' || !STATUS_RE.test(message.status)) {
        throw malformed(`status must be 1…${MAX_STATUS_LENGTH} printable ASCII characters, not starting with a space`);
      }
      line = `FIN ${message.name} ${message.status}`;
      break;
    default:
      throw malformed(`unknown control message kind ${JSON.stringify((message as { kind?: unknown }).kind)}`);
  }
  if (line.length > MAX_CONTROL_LENGTH) throw malformed(`control line is ${line.length} bytes, at most ${MAX_CONTROL_LENGTH}`);
  return ascii(line);
}

/**
 * Decode one control datagram. Canonical: anything `encodeControl` would not
 * produce byte for byte is refused.
 * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for anything outside the
 * grammar; `GS_ERR_DELIVERY_UNSAFE_NAME` for a name that could leave a directory.
 * @public
 */
export function decodeControl(bytes: Uint8Array): ControlMessage {
  if (!(bytes instanceof Uint8Array)) throw malformed('a control message must be bytes');
  if (bytes.length === 0) throw malformed('empty control message');
  if (bytes.length > MAX_CONTROL_LENGTH) throw malformed(`control line is ${bytes.length} bytes, at most ${MAX_CONTROL_LENGTH}`);
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c > 0x7e) throw malformed(`control line byte ${i} is 0x${c.toString(16).padStart(2, '0')}, not printable ASCII`);
  }
  const line = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const sp1 = line.indexOf(' ');
  const command = sp1 < 0 ? line : line.slice(0, sp1);
  switch (command) {
    case 'UDATE':
      return { kind: 'udate', announcement: parseUdate(line) };
    case 'RECV': {
      const parts = line.split(' ');
      if (parts.length !== 3) throw malformed(`RECV has ${parts.length - 1} fields, expected 2 (name hostname)`);
      checkUpdateNameToken(parts[1]);
      if (!HOSTNAME_RE.test(parts[2]!)) throw malformed(`hostname must be 1…${MAX_HOSTNAME_LENGTH} of A-Z a-z 0-9 . _ - :`);
      return { kind: 'recv', name: parts[1]!, hostname: parts[2]! };
    }
    case 'FIN': {
      const sp2 = line.indexOf(' ', sp1 + 1);
      if (sp1 < 0 || sp2 < 0) throw malformed('FIN needs a name and a status');
      const name = line.slice(sp1 + 1, sp2);
      const status = line.slice(sp2 + 1);
      checkUpdateNameToken(name);
      if (!STATUS_RE.test(status)) throw malformed(`status must be 1…${MAX_STATUS_LENGTH} printable ASCII characters, not starting with a space`);
      return { kind: 'fin', name, status };
    }
    default:
      throw malformed(`unknown control command ${JSON.stringify(command.slice(0, 16))}`);
  }
}

function parseUdate(line: string): Announcement {
  const p = line.split(' ');
  if (p.length !== 17) throw malformed(`UDATE has ${p.length - 1} fields, expected 16`);
  const code = p[7];
  if (code !== 'rs8' && code !== 'rs16') throw malformed(`code must be "rs8" or "rs16", got ${JSON.stringify(code!.slice(0, 20))}`);
  const fields: AnnouncementFields = {
    name: p[1]!,
    size: parseDecimal(p[2]!, 'size', 1, Number.MAX_SAFE_INTEGER),
    fileId: parseDecimal(p[3]!, 'fileId', 0, 0xffff),
    firstSeq: parseDecimal(p[4]!, 'firstSeq', 0, 0xffffffff),
    lastSeq: parseDecimal(p[5]!, 'lastSeq', 0, 0xffffffff),
    digest: p[6]!,
    code,
    sourceSymbols: parseDecimal(p[8]!, 'k', 1, 0xffff),
    repairSymbols: parseDecimal(p[9]!, 'm', 1, 0xffff),
    symbolSize: parseDecimal(p[10]!, 'symbolSize', SYMBOL_SIZE_RANGE.min, SYMBOL_SIZE_RANGE.max),
    hashesPerPage: parseDecimal(p[11]!, 'hashesPerPage', 1, MAX_HASHES_PER_PAGE),
    version: parseDecimal(p[12]!, 'version', 1, Number.MAX_SAFE_INTEGER),
    expires: parseDecimal(p[13]!, 'expires', 0, Number.MAX_SAFE_INTEGER),
    root: p[14]!,
    keyId: p[15]!,
  };
  checkFields(fields);
  const signature = p[16]!;
  fromBase64url(signature, 'signature', 64);
  return { ...fields, signature };
}
