/**
 * The secure channel: a {@link ByteStream} whose bytes travel in Noise
 * transport messages after a `Noise_XX_25519_ChaChaPoly_SHA256` handshake in
 * which both sides prove an X.509 identity.
 *
 * Handshake (prologue `gatesock/1`):
 *
 * ```
 * initiator                                   responder
 *   -> e                       (empty payload)
 *   <- e, ee, s, es            identity payload (responder's chain + signature over its static key)
 *   -> s, se                   identity payload (initiator's chain + signature)
 * ```
 *
 * Each side checks the other's payload with its {@link PeerVerifier} (role,
 * root, or exact MSID) before it sends anything more; a failure closes the
 * underlying stream. After the handshake, every record is a Noise transport
 * message of at most 65535 bytes ({@link MAX_RECORD_PLAINTEXT} of plaintext),
 * framed by a 2-byte length (record-reader.ts). Both sides rekey (spec §11.3)
 * after every `rekeyInterval` records in each direction, so no key protects
 * more than that many messages and the 64-bit nonce can never run out.
 *
 * With the noble backend, large writes may be sealed on worker threads as
 * well as the calling thread (`parallelSeal`, parallel-seal.ts): the same
 * records under the same nonces, so the same bytes on the wire.
 *
 * Split records (record-reader.ts draws the layout): a writer that knows some
 * of its bytes are already end-to-end ciphertext (the multiplexed session,
 * for a relayed connection that carries the end-to-end layer) may send them
 * with {@link SecureChannel.writeWithClear}: each such run goes as one record
 * whose small header is sealed (with the lengths as associated data) and
 * whose body is not encrypted again. A channel accepts split records only
 * while its reader has set {@link SecureChannel.onSplitRecord}, and then
 * hands each header and body to it, never to `data`; without it, a split
 * record fails the channel. Both sides run the same code on both crypto
 * backends, so the bytes are the same either way.
 */
import { EventEmitter } from 'eventemitter3';
import { CryptoError, GatesockError, HandshakeError, TransportError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import type { ByteStream, ByteStreamEvents, TransportInfo } from '../../transport/index.js';
import { getCryptoBackend, type CryptoBackend, type CryptoBackendName } from '../crypto/index.js';
import type { CipherState } from '../noise/cipher-state.js';
import { HandshakeState, NOISE_MAX_MESSAGE, type KeyPair } from '../noise/handshake-state.js';
import { decodeIdentityPayload, encodeIdentityPayload, staticKeyMessage } from './identity-payload.js';
import { MAX_SPLIT_CLEAR, MAX_SPLIT_HEADER, RECORD_PREFIX_LEN, RecordReader, SPLIT_PREFIX_LEN, writeSplitPrefix } from './record-reader.js';
import { JOB_RECORDS, resolveParallelSeal, type ParallelSealOptions, type ParallelSealing, type SealJob } from './parallel-seal.js';

const TAG_LEN = 16;
/**
 * Largest plaintext one transport record carries (65535 − 16-byte tag).
 * @public
 */
export const MAX_RECORD_PLAINTEXT = NOISE_MAX_MESSAGE - TAG_LEN;
const MAX_RECORD_LEN = RECORD_PREFIX_LEN + NOISE_MAX_MESSAGE;
/**
 * With `parallelSeal`, writes of at least this many bytes (two full
 * records) go to the seal workers; a smaller one would give a worker at
 * most one record to take while this thread seals the other, for the cost
 * of copying both into a job.
 */
const PARALLEL_MIN_WRITE = 2 * MAX_RECORD_PLAINTEXT;
/**
 * With `parallelSeal`, `write()` returns false while this many bytes or
 * more wait in the outbox (for workers, or behind them): four 256 KiB
 * writes of the multiplexed session. Deep enough that this thread goes on
 * sealing later jobs while a worker that the scheduler has paused holds a
 * record of an earlier one (a time slice of a few milliseconds is a few
 * hundred kilobytes of sealing), and memory per channel stays bounded.
 */
const PARALLEL_QUEUE_LIMIT = 1024 * 1024;

// Every byte of these buffers is written before it is sent; skipping the
// zero-fill matters at gigabytes per second. Plain arrays where Buffer is absent.
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafe(n: number): Uint8Array } }).Buffer;
const allocUninitialized = (n: number): Uint8Array => (NodeBuffer ? NodeBuffer.allocUnsafe(n) : new Uint8Array(n));
const PROLOGUE = new TextEncoder().encode('gatesock/1');
/**
 * Where a received record that spans transport chunks is joined before it is
 * decrypted: one per process, as the mux's write batch, since a record is
 * opened into fresh memory (the Aead contract) before anything else runs.
 */
let joinScratch: Uint8Array | undefined;
const EMPTY = new Uint8Array(0);

/**
 * A run of a {@link SecureChannel.writeWithClear} write that goes as one
 * split record: `sealed` bytes at `offset`, sealed (1..64), then `clear`
 * bytes (1..65535) as they are — the next ones in the chunk, or, with
 * `data`, those pieces (the run then covers only its sealed bytes in the
 * chunk).
 * @public
 */
export interface ClearSpan {
  /** Where the run starts in the chunk. */
  readonly offset: number;
  /** Bytes sealed: the header of what follows. */
  readonly sealed: number;
  /** Bytes after them sent without the hop's encryption. */
  readonly clear: number;
  /** The clear bytes, when they are not in the chunk (their lengths add up to `clear`); copied before `writeWithClear` returns. */
  readonly data?: readonly Uint8Array[];
}

/**
 * Receives the split records of a channel: the opened header and the clear
 * bytes, in order, as views of the chunks they arrived in (no copy; the
 * receiver may keep them). See {@link SecureChannel.onSplitRecord}.
 * @public
 */
export type SplitRecordHandler = (header: Uint8Array, clear: readonly Uint8Array[]) => void;

/** Wire bytes of `n` plaintext bytes sealed in records from the first byte. */
function sealedLength(n: number): number {
  const full = Math.floor(n / MAX_RECORD_PLAINTEXT);
  const tail = n - full * MAX_RECORD_PLAINTEXT;
  return full * MAX_RECORD_LEN + (tail > 0 ? tail + RECORD_PREFIX_LEN + TAG_LEN : 0);
}

/**
 * What the channel needs to prove who we are: a certificate chain and the
 * leaf key's signing function. `Identity` objects from the identity module
 * satisfy it.
 * @public
 */
export interface ChannelIdentity {
  /** DER certificates, leaf first. */
  readonly certificateChain: readonly Uint8Array[];
  /** Ed25519 signature by the leaf certificate's key. */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * What a verifier learned about the peer. `publicKey` is the Ed25519 key of
 * the peer's leaf certificate; the channel checks the static-key signature
 * against it.
 * @public
 */
export interface VerifiedPeer {
  /** Ed25519 public key of the leaf certificate (32 bytes). */
  readonly publicKey: Uint8Array;
  /** `MSID-…` of the leaf certificate. */
  readonly msid: string;
  /** The role named in the certificate. */
  readonly role: string;
}

/**
 * Checks the peer's certificate chain (DER, leaf first); throws a
 * `CertificateError` to refuse it.
 * @public
 */
export type PeerVerifier<P extends VerifiedPeer = VerifiedPeer> = (chain: Uint8Array[]) => P | Promise<P>;

/**
 * Options of {@link secureConnect} and {@link secureAccept}.
 * @public
 */
export interface SecureChannelOptions<P extends VerifiedPeer = VerifiedPeer> {
  /** Our certificate chain and signing key. */
  identity: ChannelIdentity;
  /** Decides whether the peer is who we expect. */
  verifyPeer: PeerVerifier<P>;
  /** Crypto backend: `auto` (default; native when present), `native` or `noble`. */
  backend?: CryptoBackendName | CryptoBackend;
  /** Milliseconds the whole handshake may take before the stream is dropped. Default 10000; must be greater than 0. */
  handshakeTimeoutMs?: number;
  /** Records per direction between rekeys. Default 2^20; must be ≥ 1. */
  rekeyInterval?: number;
  /**
   * Seal the records of large writes (two records, 131,038 bytes, or more)
   * on worker threads as well as on the calling thread. Default off. Only
   * with the noble backend, whose sealing runs at about 200 MB/s per core;
   * with the native backend (about ten times faster, and already off the
   * JavaScript thread) the option is ignored. `true` uses the defaults of
   * {@link ParallelSealOptions}. The bytes on the wire are the same either
   * way, so the peer needs no option. Bytes waiting for workers count
   * toward `write()` returning false.
   */
  parallelSeal?: boolean | ParallelSealOptions;
}

/**
 * Defaults of {@link SecureChannelOptions}.
 * @public
 */
export const DEFAULT_SECURE_CHANNEL_OPTIONS = Object.freeze({
  backend: 'auto' as CryptoBackendName,
  handshakeTimeoutMs: 10_000,
  rekeyInterval: 2 ** 20,
});

/** The Noise static key and signed identity payload of one identity, made once per backend. */
interface PreparedIdentity {
  readonly staticKey: KeyPair;
  readonly payload: Uint8Array;
}
const prepared = new WeakMap<ChannelIdentity, Map<string, PreparedIdentity>>();

function prepare(identity: ChannelIdentity, backend: CryptoBackend): PreparedIdentity {
  let byBackend = prepared.get(identity);
  if (!byBackend) prepared.set(identity, (byBackend = new Map()));
  let p = byBackend.get(backend.name);
  if (!p) {
    // One static key per identity per process: the identity signature over it
    // is made once, not per handshake. Forward secrecy comes from `ee`.
    const privateKey = backend.randomBytes(32);
    const staticKey = { privateKey, publicKey: backend.x25519.publicKey(privateKey) };
    const signature = identity.sign(staticKeyMessage(staticKey.publicKey));
    p = { staticKey, payload: encodeIdentityPayload({ chain: identity.certificateChain, signature }) };
    byBackend.set(backend.name, p);
  }
  return p;
}

// A peer keeps one Noise static key per identity and process (see prepare()),
// so the same signature over the same key arrives on every handshake from it.
// Remembering signatures that verified — keyed by a hash of exactly the bytes
// checked — saves an Ed25519 verification per handshake and is sound: the same
// (key, message, signature) verifies the same way every time. Bounded; the
// oldest entry goes first.
const SIGNATURE_MEMO_MAX = 4096;
const verifiedSignatures = new Set<string>();

function verifyStaticKeySignature(backend: CryptoBackend, signature: Uint8Array, noiseStaticKey: Uint8Array, publicKey: Uint8Array): boolean {
  const key = String.fromCharCode(...backend.sha256(publicKey, signature, noiseStaticKey));
  if (verifiedSignatures.has(key)) return true;
  if (!backend.ed25519.verify(signature, staticKeyMessage(noiseStaticKey), publicKey)) return false;
  if (verifiedSignatures.size >= SIGNATURE_MEMO_MAX) verifiedSignatures.delete(verifiedSignatures.values().next().value!);
  verifiedSignatures.add(key);
  return true;
}

function verifyOptions(
  o: SecureChannelOptions<VerifiedPeer>,
): Required<Pick<SecureChannelOptions, 'handshakeTimeoutMs' | 'rekeyInterval'>> & { backend: CryptoBackend; parallel: ParallelSealing | undefined } {
  checkOption(typeof o === 'object' && o !== null, 'options', 'must be an object');
  checkOption(typeof o.identity?.sign === 'function' && Array.isArray(o.identity?.certificateChain), 'identity', 'must have certificateChain and sign()');
  checkOption(typeof o.verifyPeer === 'function', 'verifyPeer', 'must be a function');
  const handshakeTimeoutMs = o.handshakeTimeoutMs ?? DEFAULT_SECURE_CHANNEL_OPTIONS.handshakeTimeoutMs;
  checkOption(Number.isFinite(handshakeTimeoutMs) && handshakeTimeoutMs > 0, 'handshakeTimeoutMs', 'must be > 0');
  const rekeyInterval = o.rekeyInterval ?? DEFAULT_SECURE_CHANNEL_OPTIONS.rekeyInterval;
  checkOption(Number.isInteger(rekeyInterval) && rekeyInterval >= 1, 'rekeyInterval', 'must be an integer ≥ 1');
  const backend = getCryptoBackend(o.backend ?? DEFAULT_SECURE_CHANNEL_OPTIONS.backend);
  return { handshakeTimeoutMs, rekeyInterval, backend, parallel: resolveParallelSeal(o.parallelSeal, backend.name) };
}

/**
 * Run the handshake as initiator over `stream` and return the secure channel.
 * Rejects with a `HandshakeError` (or the verifier's `CertificateError`) and
 * destroys `stream` on any failure.
 * @public
 */
export function secureConnect<P extends VerifiedPeer>(stream: ByteStream, options: SecureChannelOptions<P>): Promise<SecureChannel<P>> {
  return handshake(stream, options, true);
}

/**
 * Run the handshake as responder over `stream` and return the secure channel.
 * @public
 */
export function secureAccept<P extends VerifiedPeer>(stream: ByteStream, options: SecureChannelOptions<P>): Promise<SecureChannel<P>> {
  return handshake(stream, options, false);
}

async function handshake<P extends VerifiedPeer>(stream: ByteStream, options: SecureChannelOptions<P>, initiator: boolean): Promise<SecureChannel<P>> {
  const opts = verifyOptions(options as SecureChannelOptions<VerifiedPeer>);
  const me = prepare(options.identity, opts.backend);
  const hs = new HandshakeState({ pattern: 'XX', initiator, backend: opts.backend, prologue: PROLOGUE, staticKey: me.staticKey });
  const io = new HandshakeIo(stream, opts.handshakeTimeoutMs);
  try {
    let peer: P | undefined;
    const checkPeer = async (payload: Uint8Array): Promise<P> => {
      const id = decodeIdentityPayload(payload);
      const verified = await options.verifyPeer(id.chain.map((c) => c.slice()));
      const rs = hs.remoteStaticKey!;
      if (!verifyStaticKeySignature(opts.backend, id.signature, rs, verified.publicKey)) {
        throw new HandshakeError('GS_ERR_PEER_REJECTED', `peer ${verified.msid} did not sign its Noise static key with its certificate key`);
      }
      return verified;
    };
    if (initiator) {
      io.send(hs.writeMessage(EMPTY));
      peer = await checkPeer(hs.readMessage(await io.receive()));
      io.send(hs.writeMessage(me.payload));
    } else {
      const first = hs.readMessage(await io.receive());
      if (first.length !== 0) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'first handshake message must have an empty payload');
      io.send(hs.writeMessage(me.payload));
      peer = await checkPeer(hs.readMessage(await io.receive()));
    }
    const { send, receive, handshakeHash } = hs.split;
    const { leftover, peerEnded } = io.handOver();
    if (stream.closed) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'stream closed while the peer was being verified');
    return new SecureChannel<P>(stream, leftover, peerEnded, send, receive, peer, handshakeHash, opts.rekeyInterval, opts.parallel);
  } catch (err) {
    io.fail();
    stream.destroy(err as Error);
    if (err instanceof GatesockError) throw err;
    throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `handshake failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/** Moves handshake messages over the stream, with the overall timeout. */
class HandshakeIo {
  private readonly reader = new RecordReader();
  private waiter: { resolve: (m: Uint8Array) => void; reject: (e: Error) => void } | undefined;
  private error: GatesockError | undefined;
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly onData = (chunk: Uint8Array) => {
    this.reader.push(chunk);
    this.wake();
  };
  /**
   * The peer may send its first records and end its side right behind its
   * last handshake message, while we still verify it: then the end belongs
   * to the channel, not to the handshake. So an end is remembered, and fails
   * the handshake only when a handshake message is still missing.
   */
  private peerEnded = false;
  private readonly onEnd = () => {
    this.peerEnded = true;
    this.wake();
  };
  private readonly onClose = (e?: GatesockError) =>
    this.abort(new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `stream closed during the handshake${e ? `: ${e.message}` : ''}`, { cause: e }));

  constructor(
    private readonly stream: ByteStream,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.abort(new HandshakeError('GS_ERR_HANDSHAKE_TIMEOUT', `handshake did not complete within ${timeoutMs} ms`));
      stream.destroy(this.error);
    }, timeoutMs);
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onClose);
    stream.resume();
  }

  send(message: Uint8Array): void {
    const rec = new Uint8Array(RECORD_PREFIX_LEN + message.length);
    rec[0] = message.length >> 8;
    rec[1] = message.length & 0xff;
    rec.set(message, RECORD_PREFIX_LEN);
    this.stream.write(rec);
  }

  receive(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  /** Stop reading and return the bytes that arrived after the handshake, and whether the peer already ended. */
  handOver(): { leftover: Uint8Array[]; peerEnded: boolean } {
    this.detach();
    return { leftover: this.reader.drain(), peerEnded: this.peerEnded };
  }

  fail(): void {
    this.detach();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.error) {
      this.waiter = undefined;
      w.reject(this.error);
      return;
    }
    let rec: Uint8Array | undefined;
    try {
      rec = this.reader.next();
    } catch (err) {
      this.abort(new HandshakeError('GS_ERR_HANDSHAKE_FAILED', (err as Error).message, { cause: err }));
      return;
    }
    if (rec) {
      this.waiter = undefined;
      w.resolve(rec);
    } else if (this.peerEnded) {
      this.abort(new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'peer closed the stream during the handshake'));
    }
  }

  private abort(err: GatesockError): void {
    this.error ??= err;
    this.wake();
  }

  private detach(): void {
    clearTimeout(this.timer);
    this.stream.pause();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onClose);
  }
}

/**
 * An established secure channel. It is itself a {@link ByteStream} (kind
 * `secure`), starts paused like every ByteStream, and knows who the peer is.
 * @public
 */
export class SecureChannel<P extends VerifiedPeer = VerifiedPeer> extends EventEmitter<ByteStreamEvents> implements ByteStream {
  /** What the verifier learned about the peer. */
  readonly peer: P;
  /** The Noise handshake hash, identical on both ends (channel binding). */
  readonly handshakeHash: Uint8Array;
  /** Endpoint description: kind `secure`, with the underlying stream's local and remote endpoints. */
  readonly info: TransportInfo;
  /** True once the channel has closed (set just before `close` is emitted). */
  closed = false;
  /**
   * Plaintext bytes of a full record. A write of at least this many bytes
   * starts a new record at its first byte, so a writer that cuts its frames
   * at multiples of it from the start of each such write (the multiplexed
   * session does) has every frame arrive inside one record.
   */
  readonly recordSize = MAX_RECORD_PLAINTEXT;
  /**
   * Who takes split records (file comment). Undefined (the default): a split
   * record from the peer fails the channel with `GS_ERR_FRAME_MALFORMED`, as
   * before split records existed. The multiplexed session sets it and checks
   * each one against the connection it names.
   */
  onSplitRecord: SplitRecordHandler | undefined;
  private readonly reader = new RecordReader();
  private paused = true;
  private ended = false;
  private peerEnded = false;
  private endEmitted = false;
  /**
   * Plaintext waiting to fill a record. Allocated when needed and dropped when
   * the channel goes quiet, so thousands of idle channels hold no 64 KiB each.
   */
  private stage: Uint8Array | undefined;
  private stageLen = 0;
  private flushQueued = false;
  private innerFull = false;
  private owedDrain = false;
  private sentRecords = 0;
  private receivedRecords = 0;
  /**
   * With parallel sealing: what waits to go out behind a job that is still
   * being sealed, in order — jobs, and records sealed here meanwhile (a
   * small write after a large one). Empty whenever no job is pending, and
   * then records go straight to the underlying stream as without it.
   */
  private outbox: (SealJob | Uint8Array)[] = [];
  /** Bytes in {@link SecureChannel.outbox}; they count toward `write()` returning false. */
  private queuedBytes = 0;
  /** `end()` was called while the outbox held something: end the underlying stream once it is empty. */
  private endWhenSent = false;

  /** @internal */
  constructor(
    private readonly inner: ByteStream,
    leftover: Uint8Array[],
    peerEnded: boolean,
    private readonly sendCipher: CipherState,
    private readonly receiveCipher: CipherState,
    peer: P,
    handshakeHash: Uint8Array,
    private readonly rekeyInterval: number,
    private readonly parallel?: ParallelSealing,
  ) {
    super();
    this.peer = peer;
    this.handshakeHash = handshakeHash;
    this.info = { kind: 'secure', local: inner.info.local, remote: inner.info.remote };
    for (const c of leftover) this.reader.push(c);
    this.peerEnded = peerEnded;
    inner.on('data', (chunk) => {
      this.reader.push(chunk);
      this.pump();
    });
    inner.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    inner.on('drain', () => {
      this.innerFull = false;
      this.maybeDrain();
    });
    inner.on('close', (error) => this.finish(error));
  }

  /**
   * Encrypt `chunk` for the peer. A write of at least a record goes out at
   * once, in records from its first byte (see {@link SecureChannel.recordSize});
   * smaller writes are staged and sealed together on the next microtask, or
   * as soon as they fill a record, so small writes share one. The caller may reuse
   * `chunk` after this returns. Returns false while the underlying stream is
   * full, or (with `parallelSeal`) while 1 MiB or more wait for seal
   * workers or behind them (wait for `drain`); throws
   * `GS_ERR_TRANSPORT_CLOSED` after `end()` or close.
   */
  write(chunk: Uint8Array): boolean {
    if (this.ended || this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', 'write after end or close of the secure channel');
    // The caller may reuse `chunk` once write() returns (ByteStream contract),
    // so bytes are either sealed now, copied into a job, or copied into the
    // staging record.
    if (this.parallel && chunk.length >= PARALLEL_MIN_WRITE) {
      this.writeParallel(chunk, this.parallel);
    } else if (chunk.length >= MAX_RECORD_PLAINTEXT) {
      this.writeBulk(chunk);
    } else {
      const off = this.stageLen > 0 ? this.stageBytes(chunk, 0) : 0;
      if (this.stageLen === MAX_RECORD_PLAINTEXT) this.flushStage();
      if (off < chunk.length) this.stageBytes(chunk, off);
      // A partial record waits a microtask so that small writes in the same
      // tick share one record.
      if (this.stageLen > 0 && !this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(() => {
          this.flushQueued = false;
          if (!this.closed) this.flushStage();
          this.stage = undefined;
        });
      }
    }
    return this.writeResult();
  }

  /** What `write()` returns once the bytes are handed on. */
  private writeResult(): boolean {
    // Closed by this write (a failed worker pool, a failed transport write): no drain will come.
    if (this.closed) return false;
    if (this.innerFull || this.queuedBytes >= PARALLEL_QUEUE_LIMIT) {
      this.owedDrain = true;
      return false;
    }
    return true;
  }

  /**
   * As {@link SecureChannel.write}, except that each of `spans` (in order,
   * not overlapping) goes as a split record: its `sealed` bytes sealed, its
   * `clear` bytes as they are. Bytes outside the spans are sealed in records
   * as usual, each run from its first byte. Staged bytes go first. The peer
   * must have said it takes split records (the relay layer negotiates it);
   * the caller promises the clear bytes are end-to-end ciphertext.
   * @throws {@link TransportError} `GS_ERR_TRANSPORT_CLOSED` after `end()` or close;
   *   `RangeError` for spans outside the chunk, out of order or too long.
   */
  writeWithClear(chunk: Uint8Array, spans: readonly ClearSpan[]): boolean {
    if (this.ended || this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', 'write after end or close of the secure channel');
    let size = 0;
    let at = 0;
    for (const span of spans) {
      const inChunk = span.data === undefined ? span.clear : 0;
      let given = inChunk;
      for (const piece of span.data ?? []) given += piece.length;
      if (
        !(span.offset >= at && span.sealed >= 1 && span.sealed <= MAX_SPLIT_HEADER && span.clear >= 1 && span.clear <= MAX_SPLIT_CLEAR) ||
        span.offset + span.sealed + inChunk > chunk.length ||
        given !== span.clear
      ) {
        throw new RangeError(`clear span ${span.offset}+${span.sealed}+${span.clear} is out of order, too long, outside the ${chunk.length}-byte chunk or short of data`);
      }
      size += sealedLength(span.offset - at) + SPLIT_PREFIX_LEN + span.sealed + TAG_LEN + span.clear;
      at = span.offset + span.sealed + inChunk;
    }
    size += sealedLength(chunk.length - at);
    this.flushStage();
    const batch = allocUninitialized(size);
    let pos = 0;
    at = 0;
    const sealRun = (from: number, to: number): void => {
      for (let a = from; a < to; a += MAX_RECORD_PLAINTEXT) pos += this.sealRecordInto(chunk.subarray(a, Math.min(a + MAX_RECORD_PLAINTEXT, to)), batch, pos);
    };
    for (const span of spans) {
      sealRun(at, span.offset);
      const sealedLen = span.sealed + TAG_LEN;
      writeSplitPrefix(batch, pos, sealedLen, span.clear);
      this.sealInto(batch.subarray(pos, pos + SPLIT_PREFIX_LEN), chunk.subarray(span.offset, span.offset + span.sealed), batch, pos + SPLIT_PREFIX_LEN);
      pos += SPLIT_PREFIX_LEN + sealedLen;
      at = span.offset + span.sealed;
      if (span.data === undefined) {
        batch.set(chunk.subarray(at, at + span.clear), pos);
        pos += span.clear;
        at += span.clear;
      } else {
        for (const piece of span.data) {
          batch.set(piece, pos);
          pos += piece.length;
        }
      }
    }
    sealRun(at, chunk.length);
    this.send(batch);
    return this.writeResult();
  }

  /**
   * A large write with parallel sealing: the same records as
   * {@link SecureChannel.writeBulk} (staged bytes in a record of their own,
   * then full records from the chunk's first byte, then its tail), cut into
   * jobs of at most 8 records (`JOB_RECORDS`) that never span a rekey,
   * each with its run of nonces reserved here, in order. All jobs are posted
   * before this thread seals its share of each, so the workers never wait
   * for the next. Jobs join the outbox in order; finished ones leave at once.
   */
  private writeParallel(chunk: Uint8Array, parallel: ParallelSealing): void {
    const pieces: Uint8Array[] = [];
    if (this.stageLen > 0) pieces.push(this.stage!.subarray(0, this.stageLen));
    for (let at = 0; at < chunk.length; at += MAX_RECORD_PLAINTEXT) pieces.push(chunk.subarray(at, Math.min(at + MAX_RECORD_PLAINTEXT, chunk.length)));
    const jobs: SealJob[] = [];
    const reserve = (count: number, keyOut: Uint8Array) => this.sendCipher.reserve(count, keyOut);
    const onSettled = (error?: GatesockError) => (error ? this.fail(error) : this.flushOutbox());
    try {
      for (let i = 0; i < pieces.length; ) {
        // Never across a rekey: the next job takes the new key.
        const untilRekey = this.rekeyInterval - (this.sentRecords % this.rekeyInterval);
        const n = Math.min(pieces.length - i, untilRekey, JOB_RECORDS);
        const job = parallel.pool.submit(pieces.slice(i, i + n), reserve, onSettled);
        // The staged bytes are in the first job now.
        this.stageLen = 0;
        jobs.push(job);
        this.outbox.push(job);
        this.queuedBytes += job.wireBytes;
        this.sentRecords += n;
        if (this.sentRecords % this.rekeyInterval === 0) this.sendCipher.rekey();
        i += n;
      }
    } catch (err) {
      // A pool whose workers cannot start, or nonce exhaustion: what was
      // reserved can no longer go out in order, so the channel fails.
      this.fail(err);
      return;
    }
    if (parallel.callerSeals) for (const job of jobs) job.runHere();
    this.flushOutbox();
  }

  /**
   * Send what leads the outbox while it is ready: sealed records as they
   * are, finished jobs copied out in wire layout; stop at the first job still
   * being sealed. Then end the underlying stream if `end()` is waiting for
   * the outbox, and emit `drain` if one is owed.
   */
  private flushOutbox(): void {
    while (this.outbox.length > 0 && !this.closed) {
      const head = this.outbox[0]!;
      let records: Uint8Array;
      if (head instanceof Uint8Array) {
        records = head;
      } else if (head.complete) {
        records = head.takeOutput();
      } else {
        break;
      }
      this.outbox.shift();
      this.queuedBytes -= records.length;
      this.writeInner(records);
    }
    if (this.closed) return;
    if (this.outbox.length === 0 && this.endWhenSent) {
      this.endWhenSent = false;
      this.inner.end();
    }
    this.maybeDrain();
  }

  /** Emit an owed `drain` once the underlying stream has drained and the outbox is below its limit. */
  private maybeDrain(): void {
    if (!this.owedDrain || this.innerFull || this.queuedBytes >= PARALLEL_QUEUE_LIMIT || this.closed) return;
    this.owedDrain = false;
    this.emit('drain');
  }

  /**
   * A write of at least a record: staged bytes go first in a record of their
   * own, then `chunk` in full records from its first byte and its short tail
   * in one more, all in one transport write. Records thus start where bulk
   * writes start (what {@link SecureChannel.recordSize} promises), and a
   * tail is not held for a microtask, which would cost a second transport
   * write and a second wakeup of a peer that cannot use the last bytes
   * before the tail.
   */
  private writeBulk(chunk: Uint8Array): void {
    const staged = this.stageLen;
    const full = Math.floor(chunk.length / MAX_RECORD_PLAINTEXT);
    const tail = chunk.length - full * MAX_RECORD_PLAINTEXT;
    const overhead = RECORD_PREFIX_LEN + TAG_LEN;
    const batch = allocUninitialized((staged > 0 ? staged + overhead : 0) + full * MAX_RECORD_LEN + (tail > 0 ? tail + overhead : 0));
    let pos = 0;
    if (staged > 0) {
      pos += this.sealRecordInto(this.stage!.subarray(0, staged), batch, pos);
      this.stageLen = 0;
    }
    for (let at = 0; at < chunk.length; at += MAX_RECORD_PLAINTEXT) {
      pos += this.sealRecordInto(chunk.subarray(at, Math.min(at + MAX_RECORD_PLAINTEXT, chunk.length)), batch, pos);
    }
    this.send(batch);
  }

  /** Copy from `chunk` at `off` into the staging record; returns the new offset. */
  private stageBytes(chunk: Uint8Array, off: number): number {
    const n = Math.min(MAX_RECORD_PLAINTEXT - this.stageLen, chunk.length - off);
    this.stage ??= new Uint8Array(MAX_RECORD_PLAINTEXT);
    this.stage.set(chunk.subarray(off, off + n), this.stageLen);
    this.stageLen += n;
    return off + n;
  }

  /**
   * Half-close: seal any staged bytes, then end the underlying stream — at
   * once, or (with `parallelSeal`) once every pending job has been sent.
   */
  end(): void {
    if (this.ended || this.closed) return;
    this.ended = true;
    this.flushStage();
    if (this.outbox.length > 0) this.endWhenSent = true;
    else this.inner.end();
  }

  /**
   * Abort both directions: destroy the underlying stream; `close` is emitted
   * before this returns, with `error` as a GatesockError. Records still
   * being sealed on workers are dropped.
   */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.inner.destroy(error);
    this.finish(error);
  }

  /** Stop emitting `data` and pause the underlying stream. */
  pause(): void {
    this.paused = true;
    this.inner.pause();
  }

  /** Deliver records already received, then resume the underlying stream. */
  resume(): void {
    this.paused = false;
    this.pump();
    if (!this.paused && !this.closed) this.inner.resume();
  }

  /** Seal whatever is staged as one record and send it. */
  private flushStage(): void {
    if (this.stageLen === 0 || !this.stage) return;
    const plaintext = this.stage.subarray(0, this.stageLen);
    this.stageLen = 0;
    const rec = allocUninitialized(RECORD_PREFIX_LEN + plaintext.length + TAG_LEN);
    this.sealRecordInto(plaintext, rec, 0);
    this.send(rec);
  }

  /** Frame and encrypt one record into `out` at `pos`; returns its length. */
  private sealRecordInto(plaintext: Uint8Array, out: Uint8Array, pos: number): number {
    const len = plaintext.length + TAG_LEN;
    out[pos] = len >> 8;
    out[pos + 1] = len & 0xff;
    this.sealInto(EMPTY, plaintext, out, pos + RECORD_PREFIX_LEN);
    return RECORD_PREFIX_LEN + len;
  }

  /** Encrypt one message under the next nonce (every record, split or not, takes one), rekeying on schedule. */
  private sealInto(ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, pos: number): void {
    this.sendCipher.encryptInto(ad, plaintext, out, pos);
    if (++this.sentRecords % this.rekeyInterval === 0) this.sendCipher.rekey();
  }

  /** Send sealed records: behind the outbox when a job is pending there, else at once. */
  private send(records: Uint8Array): void {
    if (this.closed) return;
    if (this.outbox.length > 0) {
      this.outbox.push(records);
      this.queuedBytes += records.length;
      return;
    }
    this.writeInner(records);
  }

  private writeInner(records: Uint8Array): void {
    try {
      // Sealed records are fresh buffers nobody else holds: hand them over.
      const accepted = this.inner.writeOwned ? this.inner.writeOwned(records) : this.inner.write(records);
      if (!accepted) this.innerFull = true;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Decrypt whole records and deliver them while not paused. */
  private pump(): void {
    try {
      while (!this.paused && !this.closed) {
        const split = this.onSplitRecord;
        const rec = this.reader.next((joinScratch ??= new Uint8Array(NOISE_MAX_MESSAGE)), split !== undefined);
        if (!rec) break;
        if (rec instanceof Uint8Array) {
          const pt = this.receiveCipher.decryptWithAd(EMPTY, rec);
          if (++this.receivedRecords % this.rekeyInterval === 0) this.receiveCipher.rekey();
          this.emit('data', pt);
        } else {
          const header = this.receiveCipher.decryptWithAd(rec.ad, rec.sealed);
          if (++this.receivedRecords % this.rekeyInterval === 0) this.receiveCipher.rekey();
          split!(header, rec.clear);
        }
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.paused) this.inner.pause();
    if (!this.peerEnded || this.endEmitted || this.closed || this.paused) return;
    if (this.reader.pending > 0) {
      // The peer ended mid-record: a truncated stream must not pass for a clean end.
      this.fail(new TransportError('GS_ERR_TRANSPORT_CLOSED', 'peer ended the secure channel in the middle of a record'));
      return;
    }
    this.endEmitted = true;
    this.emit('end');
  }

  private fail(err: unknown): void {
    const e =
      err instanceof GatesockError
        ? err
        : new CryptoError('GS_ERR_DECRYPT_FAILED', `secure channel failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    this.destroy(e);
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.stageLen = 0;
    for (const item of this.outbox) if (!(item instanceof Uint8Array)) item.cancel();
    this.outbox = [];
    this.queuedBytes = 0;
    const e =
      error === undefined || error instanceof GatesockError
        ? (error as GatesockError | undefined)
        : new TransportError('GS_ERR_TRANSPORT_CLOSED', error.message, { cause: error });
    this.emit('close', e);
  }
}
