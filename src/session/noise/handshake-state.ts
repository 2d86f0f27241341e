/**
 * Noise HandshakeState (spec §5.3): one engine written over the tokens, every
 * pattern is data (patterns.ts). Sans-I/O: `writeMessage` and `readMessage`
 * turn payloads into handshake messages and back; the caller moves bytes.
 *
 * States are named by role and message index — `initiator:sent-1`,
 * `responder:read-1`, … — and end in `split` once the last message has gone
 * through; transport messages are refused until then (the CipherStates only
 * exist after Split()).
 */
import { CryptoError, HandshakeError } from '../../errors/index.js';
import type { CryptoBackend } from '../crypto/backend.js';
import type { CipherState } from './cipher-state.js';
import { parsePattern, type HandshakePattern, type Token } from './patterns.js';
import { SymmetricState } from './symmetric-state.js';

const DHLEN = 32;
const TAGLEN = 16;
/** Noise messages are at most 65535 bytes (spec §3). */
export const NOISE_MAX_MESSAGE = 65535;

/** An X25519 key pair. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

/** Options of {@link HandshakeState}. */
export interface HandshakeOptions {
  /** Pattern name with modifiers, e.g. `XX` or `IKpsk2`. */
  pattern: string;
  initiator: boolean;
  backend: CryptoBackend;
  prologue?: Uint8Array;
  /** Local static key pair (s). */
  staticKey?: KeyPair;
  /** Local ephemeral private key — only for test vectors; normally generated. */
  ephemeralPrivateKey?: Uint8Array;
  /** Remote static public key known in advance (rs). */
  remoteStaticKey?: Uint8Array;
  /** Pre-shared keys (32 bytes each), used in order by `psk` tokens. */
  psks?: Uint8Array[];
}

/** The result of a completed handshake. */
export interface HandshakeResult {
  /** Encrypts what we send. */
  readonly send: CipherState;
  /** Decrypts what we receive. */
  readonly receive: CipherState;
  /** Final handshake hash, for channel binding. */
  readonly handshakeHash: Uint8Array;
  /** The peer's static public key, if the pattern carried or knew it. */
  readonly remoteStaticKey: Uint8Array | undefined;
}

/** A Noise HandshakeState. */
export class HandshakeState {
  readonly pattern: HandshakePattern;
  readonly initiator: boolean;
  private readonly backend: CryptoBackend;
  private readonly ss: SymmetricState;
  private s: KeyPair | undefined;
  private e: KeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private readonly psks: Uint8Array[];
  private presetEphemeral: Uint8Array | undefined;
  private index = 0;
  private result: HandshakeResult | undefined;
  private failed = false;

  /** Initialize(…) — spec §5.3. */
  constructor(options: HandshakeOptions) {
    this.pattern = parsePattern(options.pattern);
    this.initiator = options.initiator;
    this.backend = options.backend;
    this.s = options.staticKey;
    this.rs = options.remoteStaticKey?.slice();
    this.psks = (options.psks ?? []).map((p) => p.slice());
    this.presetEphemeral = options.ephemeralPrivateKey?.slice();
    for (const p of this.psks) {
      if (p.length !== 32) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'a Noise PSK must be 32 bytes');
    }
    this.ss = new SymmetricState(this.backend, `Noise_${this.pattern.name}_25519_ChaChaPoly_SHA256`);
    this.ss.mixHash(options.prologue ?? new Uint8Array(0));
    // Pre-messages: the initiator's first, then the responder's (spec §5.3).
    for (const [tokens, ours] of [
      [this.pattern.initiatorPre, this.initiator],
      [this.pattern.responderPre, !this.initiator],
    ] as const) {
      for (const t of tokens) {
        if (t !== 's') throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `pre-message token ${t} is not supported`);
        const key = ours ? this.s?.publicKey : this.rs;
        if (!key) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `pattern ${this.pattern.name} needs ${ours ? 'our' : 'the remote'} static key in advance`);
        this.ss.mixHash(key);
      }
    }
  }

  /** The named state, e.g. `initiator:sent-1`, `responder:read-2`, `split`. */
  get state(): string {
    if (this.failed) return 'failed';
    if (this.result) return 'split';
    const role = this.initiator ? 'initiator' : 'responder';
    if (this.index === 0) return `${role}:start`;
    return `${role}:${this.lastWasOurs() ? 'sent' : 'read'}-${this.index}`;
  }

  /** True once the last handshake message has been written or read. */
  get complete(): boolean {
    return this.result !== undefined;
  }

  /** True when the next handshake message is ours to write. */
  get isMyTurn(): boolean {
    return !this.complete && (this.index % 2 === 0) === this.initiator;
  }

  /** The peer's static public key once known. */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.rs?.slice();
  }

  /** The running handshake hash. */
  get handshakeHash(): Uint8Array {
    return this.result?.handshakeHash ?? this.ss.handshakeHash;
  }

  /** The result after the last message. */
  get split(): HandshakeResult {
    if (!this.result) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `handshake not complete (state ${this.state})`);
    return this.result;
  }

  /** WriteMessage(payload) — returns the handshake message. */
  writeMessage(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    this.checkTurn(true);
    return this.guard(() => {
      const parts: Uint8Array[] = [];
      for (const token of this.pattern.messages[this.index]!) {
        switch (token) {
          case 'e': {
            this.e = this.generateEphemeral();
            parts.push(this.e.publicKey);
            this.ss.mixHash(this.e.publicKey);
            if (this.pattern.psk) this.ss.mixKey(this.e.publicKey); // spec §9.2
            break;
          }
          case 's': {
            if (!this.s) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'pattern sends s but no static key was given');
            parts.push(this.ss.encryptAndHash(this.s.publicKey));
            break;
          }
          case 'psk':
            this.ss.mixKeyAndHash(this.nextPsk());
            break;
          default:
            this.mixDh(token);
        }
      }
      parts.push(this.ss.encryptAndHash(payload));
      const out = concatAll(parts);
      if (out.length > NOISE_MAX_MESSAGE) {
        throw new CryptoError('GS_ERR_MESSAGE_TOO_LARGE', `handshake message of ${out.length} bytes exceeds ${NOISE_MAX_MESSAGE}`);
      }
      this.advance();
      return out;
    });
  }

  /** ReadMessage(message) — returns the payload. */
  readMessage(message: Uint8Array): Uint8Array {
    this.checkTurn(false);
    return this.guard(() => {
      if (message.length > NOISE_MAX_MESSAGE) {
        throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `handshake message of ${message.length} bytes exceeds ${NOISE_MAX_MESSAGE}`);
      }
      let off = 0;
      const take = (n: number): Uint8Array => {
        if (off + n > message.length) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `handshake message ${this.index + 1} is truncated`);
        const b = message.subarray(off, off + n);
        off += n;
        return b;
      };
      for (const token of this.pattern.messages[this.index]!) {
        switch (token) {
          case 'e': {
            this.re = take(DHLEN).slice();
            this.ss.mixHash(this.re);
            if (this.pattern.psk) this.ss.mixKey(this.re);
            break;
          }
          case 's': {
            const len = this.ss.cipher.hasKey() ? DHLEN + TAGLEN : DHLEN;
            this.rs = this.ss.decryptAndHash(take(len)).slice();
            break;
          }
          case 'psk':
            this.ss.mixKeyAndHash(this.nextPsk());
            break;
          default:
            this.mixDh(token);
        }
      }
      const payload = this.ss.decryptAndHash(message.subarray(off)).slice();
      this.advance();
      return payload;
    });
  }

  private lastWasOurs(): boolean {
    return ((this.index - 1) % 2 === 0) === this.initiator;
  }

  private checkTurn(writing: boolean): void {
    if (this.failed) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'handshake already failed');
    if (this.complete) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'handshake already complete');
    if (this.isMyTurn !== writing) {
      throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `cannot ${writing ? 'write' : 'read'} in state ${this.state}`);
    }
  }

  // Any failure leaves the state unusable: a half-mixed transcript must not be reused.
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.failed = true;
      this.wipe();
      if (err instanceof CryptoError && err.code === 'GS_ERR_DECRYPT_FAILED') {
        throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `handshake message ${this.index + 1} failed authentication`, { cause: err });
      }
      throw err;
    }
  }

  private advance(): void {
    this.index++;
    if (this.index === this.pattern.messages.length) {
      const [c1, c2] = this.ss.split();
      this.result = {
        send: this.initiator ? c1 : c2,
        receive: this.initiator ? c2 : c1,
        handshakeHash: this.ss.handshakeHash,
        remoteStaticKey: this.rs?.slice(),
      };
      this.wipe();
    }
  }

  private mixDh(token: Exclude<Token, 'e' | 's' | 'psk'>): void {
    // Token names say whose keys meet, from the initiator's side (spec §7.1):
    // `es` is the initiator's e with the responder's s, whoever sends it.
    const [mine, theirs] = ((): [KeyPair | undefined, Uint8Array | undefined] => {
      switch (token) {
        case 'ee':
          return [this.e, this.re];
        case 'ss':
          return [this.s, this.rs];
        case 'es':
          return this.initiator ? [this.e, this.rs] : [this.s, this.re];
        case 'se':
          return this.initiator ? [this.s, this.re] : [this.e, this.rs];
      }
    })();
    if (!mine || !theirs) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', `token ${token} lacks a key`);
    const secret = this.backend.x25519.sharedSecret(mine.privateKey, theirs);
    this.ss.mixKey(secret);
    secret.fill(0);
  }

  private nextPsk(): Uint8Array {
    const psk = this.psks.shift();
    if (!psk) throw new HandshakeError('GS_ERR_HANDSHAKE_FAILED', 'pattern needs a PSK that was not given');
    return psk;
  }

  private generateEphemeral(): KeyPair {
    const privateKey = this.presetEphemeral ?? this.backend.randomBytes(32);
    this.presetEphemeral = undefined;
    return { privateKey, publicKey: this.backend.x25519.publicKey(privateKey) };
  }

  // Ephemeral secret and PSKs are of no use after Split() or failure.
  private wipe(): void {
    this.e?.privateKey.fill(0);
    for (const p of this.psks) p.fill(0);
  }

  /** True when the ephemeral private key has been wiped (for tests). */
  get ephemeralWiped(): boolean {
    return this.e === undefined || this.e.privateKey.every((b) => b === 0);
  }

  /** True when the symmetric state is wiped after Split() (for tests). */
  get symmetricWiped(): boolean {
    return this.ss.wiped;
  }
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
