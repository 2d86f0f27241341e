/**
 * The report channel between a security agent and the security center: one
 * codec for its two messages, and the signed-report envelope.
 *
 * Reports travel outward only. The center listens as a relay server under a
 * PCID; an agent connects to it as a relay client (`clientConnect`) when it
 * joins and then periodically, sends one `report`, reads one `answer`, and
 * hangs up. The relay client end is anonymous, so the report itself says
 * who sent it: it is signed by the agent's identity key, with the agent's
 * certificate alongside, exactly as dispatch run reports are
 * (docs/dispatch.md, "Report"): a context string ending in a line feed,
 * then the signed bytes; the certificate's hash is the MSID, and the center
 * refuses a report whose `hostMsid` is not that MSID
 * (`GS_ERR_SECURITY_WRONG_HOST`).
 *
 * Framing (the dispatch channel's layout, docs/dispatch.md "Channel messages"):
 *
 * ```text
 *  0          4          6
 * +----------+----------+----------------------+---------------------+
 * | len u32  | h u16    | header (JSON, UTF-8) | body (len - 2 - h)  |
 * +----------+----------+----------------------+---------------------+
 *   BE         BE         keys in this order      report  : the configuration report (JSON)
 *                                                 answer  : nftables rule set text, or empty
 *
 * report  t host pcid device certificate signature                agent  → center
 * answer  t status seq expectSeqAbove code message firewall files   center → agent
 * ```
 *
 * `files` lists the configuration files the host's policy needs reported
 * (`{ path, content }`: hash only, or the content too for settings that must
 * hold); the agent adds them to what it collects.
 *
 * `len` counts everything after itself. The `report` signature is Ed25519
 * over
 *
 * ```text
 * "gatesock-security-report-v1\n" ‖ {"host":…,"pcid":…,"device":…} ‖ "\n" ‖ body
 * ```
 *
 * so the host name and the PCID the center will dispatch to are signed with
 * the report. Decoding is strict: an unknown `t`, a missing or extra key, a
 * key out of order, a wrong type or a size over the limit is
 * `GS_ERR_SECURITY_MALFORMED_REPORT`, and nothing is acted on.
 */
import { GatesockError, SecurityCenterError } from '../../../errors/index.js';
import { getCryptoBackend, msidOf, parseCertificate, type Identity } from '../../../session/index.js';
import { fromBase64url, toBase64url } from '../../dispatch/wire/index.js';
import { DEFAULT_REPORT_LIMITS, hostPathProblem } from '../report/index.js';

/** Context string of a report signature. @public */
export const SECURITY_REPORT_CONTEXT = 'gatesock-security-report-v1\n';
/** Most bytes of a message header. @public */
export const MAX_CHANNEL_HEADER_BYTES = 0xffff;
/** Most bytes of the agent certificate that travels with a report. @public */
export const MAX_AGENT_CERTIFICATE_BYTES = 16 * 1024;
/** Default most bytes of one message (`len`): the largest report plus its header. @public */
export const DEFAULT_MAX_CHANNEL_MESSAGE_BYTES = DEFAULT_REPORT_LIMITS.maxBytes + 2 + MAX_CHANNEL_HEADER_BYTES;
/** Most characters of an answer's `message`. @public */
export const MAX_ANSWER_MESSAGE_CHARS = 1024;

/** Most files one answer may ask for. @public */
export const MAX_REQUESTED_FILES = 256;

const SIGNATURE_LEN = 64;
const PREFIX = 6;
const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** The statuses a center's answer to a report can carry ({@link AnswerMessage}). @public */
export const ANSWER_STATUSES = ['accepted', 'stale', 'need-full', 'refused'] as const;

/** What kind of host the agent runs on: a server, or a network device that applies nftables rule sets. @public */
export type DeviceKind = 'server' | 'network-device';

/** How the agent names itself: the host ID (policy key), the PCID its dispatch agent serves, and its kind. @public */
export interface AgentHostInfo {
  /** Host ID, as the policy database names it: 1–128 of `[A-Za-z0-9._:-]`, starting with a letter or digit. */
  readonly host: string;
  /** The PCID its dispatch agent listens under (the center dispatches countermeasures there). */
  readonly pcid: string;
  /** What kind of host the agent runs on. */
  readonly device: DeviceKind;
}

/** An agent's report message. @public */
export interface ReportMessage extends AgentHostInfo {
  /** Always `report`. */
  readonly t: 'report';
  /** The agent's certificate, base64url DER. */
  readonly certificate: string;
  /** The signature, base64url (64 bytes). */
  readonly signature: string;
  /** The configuration report, as encoded by the agent. */
  readonly body: Uint8Array;
}

/** The center's answer. @public */
export interface AnswerMessage {
  /** Always `answer`. */
  readonly t: 'answer';
  /** `accepted`; `stale` (number above `expectSeqAbove`); `need-full` (send a full report); `refused` (`code`, `message`). */
  readonly status: (typeof ANSWER_STATUSES)[number];
  /** The accepted report's sequence number, else null. */
  readonly seq: number | null;
  /** With `stale`: the center's last sequence number; else null. */
  readonly expectSeqAbove: number | null;
  /** With `refused`: the error code; else null. */
  readonly code: string | null;
  /** A short reason, or null. */
  readonly message: string | null;
  /** True when `body` is the host's nftables rule set (network devices). */
  readonly firewall: boolean;
  /** Files the policy needs in this host's reports (content too when `content`). At most {@link MAX_REQUESTED_FILES}. */
  readonly files: readonly RequestedFile[];
  /** The rule set text (UTF-8) when `firewall`, else empty. */
  readonly body: Uint8Array;
}

/** A configuration file the center asks an agent to report. @public */
export interface RequestedFile {
  /** Absolute, normalised path on the host. */
  readonly path: string;
  /** Whether its content is needed (a setting is checked in it), or only its hash. */
  readonly content: boolean;
}

/** Any message of the report channel. @public */
export type SecurityChannelMessage = ReportMessage | AnswerMessage;

function bad(what: string): SecurityCenterError {
  return new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `report channel: ${what}`);
}

function isPcid(v: unknown): v is string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 31) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Check a host info object (host, pcid, device); returns it rebuilt. @public */
export function checkHostInfo(info: unknown): AgentHostInfo {
  if (typeof info !== 'object' || info === null) throw bad('host info must be an object');
  const o = info as Record<string, unknown>;
  if (typeof o.host !== 'string' || !HOST_RE.test(o.host)) throw bad('host must be 1–128 of A-Z a-z 0-9 . _ : - starting with a letter or digit');
  if (!isPcid(o.pcid)) throw bad('pcid must be 1–31 printable ASCII characters without spaces');
  if (o.device !== 'server' && o.device !== 'network-device') throw bad('device must be "server" or "network-device"');
  return { host: o.host, pcid: o.pcid, device: o.device };
}

function keysExactly(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  const got = Object.keys(o);
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) throw bad(`${what} header must have exactly the keys ${keys.join(', ')} in this order`);
}

function b64Text(v: unknown, what: string, maxBytes: number): asserts v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > Math.ceil((maxBytes * 4) / 3) || !B64URL_RE.test(v)) throw bad(`${what} must be base64url of at most ${maxBytes} bytes`);
}

function nullableInt(v: unknown, what: string): asserts v is number | null {
  if (v !== null && !(Number.isSafeInteger(v) && (v as number) >= 0)) throw bad(`${what} must be null or an integer ≥ 0`);
}

function header(m: SecurityChannelMessage): Record<string, unknown> {
  if (m.t === 'report') return { t: m.t, host: m.host, pcid: m.pcid, device: m.device, certificate: m.certificate, signature: m.signature };
  return { t: m.t, status: m.status, seq: m.seq, expectSeqAbove: m.expectSeqAbove, code: m.code, message: m.message, firewall: m.firewall, files: m.files.map((f) => ({ path: f.path, content: f.content })) };
}

/** Check a decoded header and body; return the message. */
function build(raw: unknown, body: Uint8Array): SecurityChannelMessage {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('header must be a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.t === 'report') {
    keysExactly(o, ['t', 'host', 'pcid', 'device', 'certificate', 'signature'], 'report');
    const info = checkHostInfo(o);
    b64Text(o.certificate, 'report certificate', MAX_AGENT_CERTIFICATE_BYTES);
    b64Text(o.signature, 'report signature', SIGNATURE_LEN);
    if (body.length === 0) throw bad('a report message carries the report as its body');
    return { t: 'report', ...info, certificate: o.certificate, signature: o.signature, body };
  }
  if (o.t === 'answer') {
    keysExactly(o, ['t', 'status', 'seq', 'expectSeqAbove', 'code', 'message', 'firewall', 'files'], 'answer');
    if (!ANSWER_STATUSES.includes(o.status as AnswerMessage['status'])) throw bad(`answer status must be one of ${ANSWER_STATUSES.join(', ')}`);
    nullableInt(o.seq, 'answer seq');
    nullableInt(o.expectSeqAbove, 'answer expectSeqAbove');
    if (o.code !== null && (typeof o.code !== 'string' || !CODE_RE.test(o.code))) throw bad('answer code must be null or an error code');
    if (o.message !== null && (typeof o.message !== 'string' || o.message.length > MAX_ANSWER_MESSAGE_CHARS)) throw bad(`answer message must be null or at most ${MAX_ANSWER_MESSAGE_CHARS} characters`);
    if (typeof o.firewall !== 'boolean') throw bad('answer firewall must be true or false');
    if (!o.firewall && body.length > 0) throw bad('an answer without a firewall rule set has no body');
    if (o.status === 'stale' && o.expectSeqAbove === null) throw bad('a stale answer names expectSeqAbove');
    if (o.status === 'refused' && o.code === null) throw bad('a refused answer names its code');
    if (!Array.isArray(o.files) || o.files.length > MAX_REQUESTED_FILES) throw bad(`answer files must be a list of at most ${MAX_REQUESTED_FILES}`);
    const files = o.files.map((f: unknown, i: number) => {
      if (typeof f !== 'object' || f === null || Array.isArray(f)) throw bad(`answer files[${i}] must be an object`);
      const e = f as Record<string, unknown>;
      keysExactly(e, ['path', 'content'], `answer files[${i}]`);
      const problem = hostPathProblem(e.path);
      if (problem !== undefined) throw bad(`answer files[${i}] path ${problem}`);
      if (typeof e.content !== 'boolean') throw bad(`answer files[${i}] content must be true or false`);
      return { path: e.path as string, content: e.content };
    });
    return {
      t: 'answer',
      status: o.status as AnswerMessage['status'],
      seq: o.seq,
      expectSeqAbove: o.expectSeqAbove,
      code: o.code as string | null,
      message: o.message as string | null,
      firewall: o.firewall,
      files,
      body,
    };
  }
  throw bad(`unknown message type ${JSON.stringify(String(o.t)).slice(0, 40)}`);
}

/** Encode one message (its header checked as decoding would check it). @public */
export function encodeChannelMessage(m: SecurityChannelMessage): Uint8Array {
  const h = Buffer.from(JSON.stringify(header(m)), 'utf8');
  if (h.length > MAX_CHANNEL_HEADER_BYTES) throw bad(`header is ${h.length} bytes, more than ${MAX_CHANNEL_HEADER_BYTES}`);
  build(JSON.parse(h.toString('utf8')), m.body);
  const out = Buffer.alloc(PREFIX + h.length + m.body.length);
  out.writeUInt32BE(2 + h.length + m.body.length, 0);
  out.writeUInt16BE(h.length, 4);
  h.copy(out, PREFIX);
  out.set(m.body, PREFIX + h.length);
  return out;
}

/**
 * Decode one whole frame (`len` included). The header must re-encode to the
 * same bytes (canonical), and nothing may follow the frame.
 * @public
 */
export function decodeChannelMessage(frame: Uint8Array, maxBytes = DEFAULT_MAX_CHANNEL_MESSAGE_BYTES): SecurityChannelMessage {
  if (!(frame instanceof Uint8Array) || frame.length < PREFIX) throw bad('a message is at least 6 bytes');
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const len = buf.readUInt32BE(0);
  if (len > maxBytes) throw bad(`message length ${len} is more than the limit ${maxBytes}`);
  if (len + 4 !== frame.length) throw bad(`message length ${len} does not match the ${frame.length - 4} bytes that follow it`);
  const h = buf.readUInt16BE(4);
  if (PREFIX + h > frame.length) throw bad(`header length ${h} runs past the message`);
  const headerBytes = buf.subarray(PREFIX, PREFIX + h);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    throw bad('header is not UTF-8 JSON');
  }
  const m = build(raw, frame.slice(PREFIX + h));
  if (!Buffer.from(JSON.stringify(header(m)), 'utf8').equals(headerBytes)) throw bad('header is not in canonical form');
  return m;
}

/**
 * Collects one frame from a byte stream: `push` chunks until it returns the
 * frame. Refuses a `len` over the limit before buffering it.
 * @public
 */
export class FrameCollector {
  readonly #max: number;
  readonly #chunks: Buffer[] = [];
  #have = 0;
  #need: number | undefined;

  /** @param maxBytes - largest `len` accepted. */
  constructor(maxBytes = DEFAULT_MAX_CHANNEL_MESSAGE_BYTES) {
    this.#max = maxBytes;
  }

  /** Take a chunk; the whole frame once complete (bytes past it are an error), else undefined. */
  push(chunk: Uint8Array): Uint8Array | undefined {
    this.#chunks.push(Buffer.from(chunk));
    this.#have += chunk.length;
    if (this.#need === undefined && this.#have >= 4) {
      const len = Buffer.concat(this.#chunks).readUInt32BE(0);
      if (len > this.#max) throw bad(`message length ${len} is more than the limit ${this.#max}`);
      this.#need = len + 4;
    }
    if (this.#need === undefined || this.#have < this.#need) return undefined;
    if (this.#have > this.#need) throw bad('bytes follow the message; one message each way per connection');
    return Buffer.concat(this.#chunks);
  }
}

function signedBytes(info: AgentHostInfo, body: Uint8Array): Buffer {
  const meta = JSON.stringify({ host: info.host, pcid: info.pcid, device: info.device });
  return Buffer.concat([Buffer.from(SECURITY_REPORT_CONTEXT, 'utf8'), Buffer.from(meta, 'utf8'), Buffer.from('\n'), body]);
}

/**
 * Make a report message: `body` (an encoded configuration report) signed by
 * the agent's identity, its certificate alongside.
 * @public
 */
export function signReportMessage(info: AgentHostInfo, body: Uint8Array, identity: Identity): ReportMessage {
  const checked = checkHostInfo(info);
  const signature = identity.sign(signedBytes(checked, body));
  return { t: 'report', ...checked, certificate: toBase64url(identity.certificate.der), signature: toBase64url(signature), body };
}

/**
 * Check a report message's signature: the certificate parses, its key made
 * the signature. Returns the signer's MSID (the hash of the certificate):
 * the only host this report may speak for.
 * @throws SecurityCenterError `GS_ERR_SECURITY_MALFORMED_REPORT` (bad certificate or signature).
 * @public
 */
export function verifyReportMessage(m: ReportMessage): { msid: string; certificate: Uint8Array } {
  let der: Uint8Array;
  let signature: Uint8Array;
  try {
    der = fromBase64url(m.certificate, 'report certificate', MAX_AGENT_CERTIFICATE_BYTES);
    signature = fromBase64url(m.signature, 'report signature', SIGNATURE_LEN);
  } catch (err) {
    throw bad(err instanceof Error ? err.message : String(err));
  }
  let cert;
  try {
    cert = parseCertificate(der);
  } catch (err) {
    if (err instanceof GatesockError) throw bad(`report certificate: ${err.message}`);
    throw err;
  }
  let ok = false;
  try {
    ok = signature.length === SIGNATURE_LEN && getCryptoBackend().ed25519.verify(signature, signedBytes(m, m.body), cert.publicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw bad(`the report's signature does not verify under its certificate's key (${msidOf(cert)})`);
  return { msid: msidOf(cert), certificate: der };
}
