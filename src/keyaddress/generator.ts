/**
 * The key-address generator: a ratchet over the seed's two-dimensional
 * sequence of addresses (t, n) (seed paper 002 §4.3, figures 9 and 10).
 *
 * ```text
 *  passphrase ──NFKC, UTF-8──► scrypt(N=2^15, r=8, p=1, dkLen=32)
 *  salt = "gatesock/keyaddress/v1" ‖ 0x00 ‖ context    │
 *                                                      ▼
 *                                  master = root (used once, then wiped)
 *
 *  epoch tree, depth 32 (GGM); child(node, b) = HMAC-SHA256(node, "gs-ka tree" ‖ b)
 *
 *                          root                      ◎ the path to `from`
 *                   0 ╱            ╲ 1               ● kept in the frontier
 *                    ◎               ●               ○ dropped (only the past)
 *              0 ╱     ╲ 1
 *               ○       ◎                 the frontier for `from` = the right
 *                  0 ╱     ╲ 1            siblings along the path to it, plus
 *                   ◎       ●             its own leaf (≤ 32 keys): it derives
 *                  ...                    every epoch ≥ from and none before
 *   leaves: E_0 … E_t … E_(2^32−1), reached by the 32 bits of t, MSB first
 *
 *  within epoch t (the seed's time resync: a new t restarts n at 0):
 *
 *      E_t ──"gs-ka session chain"──► C(t,0) ──► C(t,1) ──► C(t,2) ──► …
 *                                        │    ▲     │    ▲     │        one step
 *                                        ▼    │     ▼    │     ▼        per session
 *                                     A(t,0) ─┘  A(t,1) ─┘  A(t,2)      end
 *
 *  IID(t,n)  = HMAC(C(t,n), "gs-ka address" ‖ u32be(k))[0..8], smallest k ≥ 0 not reserved
 *  A(t,n)    = prefix/64 OR IID(t,n)                      (16 bytes, canonical text)
 *  C(t,n+1)  = HMAC(C(t,n), "gs-ka next" ‖ A(t,n))        ("hashing the previous address", keyed)
 *  slot(t,n,label) = HMAC(C(t,n), "gs-ka slot " ‖ label)  (e.g. a secret relay PCID)
 * ```
 *
 * Where and why it departs from the seed (§4.3):
 *
 * - The seed hashes the passphrase with t for (t, 0) and then hashes the
 *   previous *address* for (t, n): an unkeyed hash (SHA-1 suggested) of a
 *   value that travels on the wire in the clear. Anyone who sees one address
 *   can compute every later one of that epoch. Here every step is keyed by
 *   the secret chain key C(t, n); the address is mixed in ("hashing the
 *   previous address", keyed) but knowing it predicts nothing.
 * - The seed keeps the passphrase, so a device captured later can recompute
 *   the whole past. Here the passphrase goes through a slow KDF once; the
 *   master key builds the epoch frontier and is wiped; a state keeps only
 *   the frontier (future epochs) and the current chain key (future positions
 *   of this epoch). HMAC is one-way, so a captured state cannot compute an
 *   address used before capture, while it still computes every future one.
 * - SHA-256 instead of SHA-1, and interface IDs that the prefix reserves
 *   (RFC 5453, RFC 2526) are skipped rather than produced.
 *
 * Every primitive is @noble/hashes (hmac, sha256, scrypt); nothing is
 * hand-written. The per-session chain step runs HMAC-SHA256 on node:crypto
 * instead (the same bytes, tested against noble's; see withKey).
 * Superseded keys are filled with zeros where this code owns them
 * (JavaScript gives no guarantee that no copy survives elsewhere).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { scrypt, scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { ConfigError, KeyAddressError } from '../errors/index.js';
import { nativeBackend } from '../session/index.js';
import { checkOption } from '../errors/check.js';
import { formatIpv6, isReservedIidAt, parsePrefix } from './address.js';

/**
 * Number of epochs the tree holds: t is a 32-bit unsigned integer.
 * @public
 */
export const EPOCH_COUNT = 2 ** 32;
/** Depth of the epoch tree. */
const TREE_DEPTH = 32;
/** Most memory scrypt may use (128 × N × r bytes): 1 GiB. */
const KDF_MAX_MEMORY = 2 ** 30;
/** Length of every key in the construction (SHA-256 output). */
const KEY_BYTES = 32;

/**
 * scrypt cost parameters.
 * @public
 */
export interface KdfParams {
  /** CPU/memory cost, a power of two from 2 to 2^24. Default 2^15. */
  readonly N: number;
  /** Block size. Default 8. */
  readonly r: number;
  /** Parallelism. Default 1. */
  readonly p: number;
}

/**
 * The default scrypt parameters (about 32 MiB and a fraction of a second per derivation).
 * @public
 */
export const KEYADDRESS_KDF_DEFAULTS: KdfParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

/**
 * The shared secret both ends derive the sequence from.
 * @public
 */
export interface KeyAddressSecret {
  /** The shared passphrase; normalised to NFKC, then UTF-8. Must not be empty. */
  readonly passphrase: string;
  /**
   * Optional label so one passphrase can serve several devices (each gets an
   * unrelated sequence). Default empty. UTF-8, not normalised.
   */
  readonly context?: string;
  /** scrypt parameters; missing fields take {@link KEYADDRESS_KDF_DEFAULTS}. Tests lower them. */
  readonly kdf?: Partial<KdfParams>;
}

/**
 * One position of the sequence: the address of session n in epoch t, with
 * the per-position secrets asked for.
 * @public
 */
export interface KeyAddressPosition {
  /** Epoch index (time resync). */
  readonly t: number;
  /** Session index within the epoch. */
  readonly n: number;
  /** Canonical text (RFC 5952), e.g. `2001:db8:1:2:9a1f:4c2:e07:1b3d`. */
  readonly address: string;
  /** The same address as 16 bytes. */
  readonly bytes: Uint8Array;
  /** `slot(t, n, label)` for every label asked for, 32 bytes each. */
  readonly slots: Readonly<Record<string, Uint8Array>>;
}

const utf8 = utf8ToBytes;
const concat = concatBytes;
const LABEL_TREE = utf8('gs-ka tree');
const LABEL_CHAIN = utf8('gs-ka session chain');
const LABEL_ADDRESS = utf8('gs-ka address');
const LABEL_NEXT = utf8('gs-ka next');
const LABEL_SLOT = utf8('gs-ka slot ');
const SALT_PREFIX = utf8('gatesock/keyaddress/v1');

function kdfInputs(secret: KeyAddressSecret): { password: Uint8Array; salt: Uint8Array; params: KdfParams } {
  checkOption(secret !== null && typeof secret === 'object', 'secret', 'must be an object { passphrase, context?, kdf? }');
  checkOption(typeof secret.passphrase === 'string' && secret.passphrase.length > 0, 'passphrase', 'must be a non-empty string');
  const context = secret.context ?? '';
  checkOption(typeof context === 'string', 'context', 'must be a string');
  const params = { ...KEYADDRESS_KDF_DEFAULTS, ...(secret.kdf ?? {}) };
  checkOption(Number.isInteger(params.N) && params.N > 1 && (params.N & (params.N - 1)) === 0 && params.N <= 2 ** 24, 'kdf.N', 'must be a power of two in 2..2^24');
  checkOption(Number.isInteger(params.r) && params.r >= 1 && params.r <= 64, 'kdf.r', 'must be an integer in 1..64');
  checkOption(Number.isInteger(params.p) && params.p >= 1 && params.p <= 16, 'kdf.p', 'must be an integer in 1..16');
  checkOption(128 * params.N * params.r <= KDF_MAX_MEMORY, 'kdf', `needs 128 × N × r bytes of memory, at most ${KDF_MAX_MEMORY} (1 GiB)`);
  return {
    password: utf8(secret.passphrase.normalize('NFKC')),
    salt: concat(SALT_PREFIX, new Uint8Array([0]), utf8(context)),
    params: { N: params.N, r: params.r, p: params.p },
  };
}

/**
 * master = scrypt(NFKC(passphrase), "gatesock/keyaddress/v1" ‖ 0x00 ‖ context).
 * Blocks the thread for the whole derivation (a fraction of a second with
 * the defaults); servers prefer {@link deriveMasterKeyAsync}. The caller owns
 * the result and should wipe it (`fill(0)`) once it has built a state.
 * @throws ConfigError `GS_ERR_INVALID_OPTION` for an empty passphrase or bad parameters.
 * @public
 */
export function deriveMasterKey(secret: KeyAddressSecret): Uint8Array {
  const { password, salt, params } = kdfInputs(secret);
  try {
    return scrypt(password, salt, { ...params, dkLen: KEY_BYTES, maxmem: 2 * KDF_MAX_MEMORY });
  } finally {
    password.fill(0);
  }
}

/**
 * As {@link deriveMasterKey}, but yields to the event loop while it works. Same result.
 * @public
 */
export async function deriveMasterKeyAsync(secret: KeyAddressSecret): Promise<Uint8Array> {
  const { password, salt, params } = kdfInputs(secret);
  try {
    return await scryptAsync(password, salt, { ...params, dkLen: KEY_BYTES, maxmem: 2 * KDF_MAX_MEMORY, asyncTick: 10 });
  } finally {
    password.fill(0);
  }
}

/**
 * Derive the master key (off the event loop in slices), hand it to `build`,
 * and wipe it whatever happens: the one way the client and server
 * constructors use a passphrase.
 * @internal
 */
export async function withMasterKey<R>(secret: KeyAddressSecret, build: (master: Uint8Array) => R): Promise<R> {
  const master = await deriveMasterKeyAsync(secret);
  try {
    return build(master);
  } finally {
    master.fill(0);
  }
}

/** As {@link withMasterKey}, blocking the thread for the KDF. @internal */
export function withMasterKeySync<R>(secret: KeyAddressSecret, build: (master: Uint8Array) => R): R {
  const master = deriveMasterKey(secret);
  try {
    return build(master);
  } finally {
    master.fill(0);
  }
}

function treeChild(node: Uint8Array, bit: number): Uint8Array {
  return hmac(sha256, node, concat(LABEL_TREE, new Uint8Array([bit])));
}

function checkEpoch(t: number, name = 't'): void {
  if (!(Number.isInteger(t) && t >= 0 && t < EPOCH_COUNT)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `${name} must be an integer in 0..2^32-1, got ${t}`);
  }
}

/**
 * E_t straight from the master key (32 HMACs down the tree). For tools and
 * tests; a running state never holds the master key and uses
 * {@link EpochFrontier} instead.
 * @public
 */
export function epochKey(master: Uint8Array, t: number): Uint8Array {
  checkEpoch(t);
  if (!(master instanceof Uint8Array) || master.length !== KEY_BYTES) throw new RangeError('a master key is 32 bytes');
  let node = master;
  for (let d = TREE_DEPTH - 1; d >= 0; d--) {
    const next = treeChild(node, Math.floor(t / 2 ** d) % 2);
    if (node !== master) node.fill(0);
    node = next;
  }
  return node;
}

/**
 * One node of the frontier: the subtree at `depth` whose epochs start at `index × 2^(32 − depth)`.
 * @public
 */
export interface FrontierNode {
  /** Depth in the tree: 0 is the root, 32 a leaf (one epoch). */
  readonly depth: number;
  /** Index of the node among those of its depth (its epochs' common high bits). */
  readonly index: number;
  /** The node's 32-byte key. */
  readonly key: Uint8Array;
}

const span = (depth: number) => 2 ** (TREE_DEPTH - depth);

/**
 * The shape of the minimal cover of the epochs [from, 2^32) by aligned
 * subtrees, in increasing order: what a frontier starting at `from` holds.
 * At most 32 nodes.
 * @public
 */
export function frontierShape(from: number): { depth: number; index: number }[] {
  const out: { depth: number; index: number }[] = [];
  let x = from;
  while (x < EPOCH_COUNT) {
    let depth = 0;
    // The largest aligned block starting at x.
    while (x % span(depth) !== 0) depth++;
    out.push({ depth, index: x / span(depth) });
    x += span(depth);
  }
  return out;
}

/**
 * The forward-secure part of a state: keys for every epoch from `from` on,
 * none before. Holds the minimal cover of [from, 2^32) (the right siblings of
 * the path to `from`, at most 32 keys of 32 bytes).
 * @public
 */
export class EpochFrontier {
  #from: number;
  #nodes: FrontierNode[];

  private constructor(from: number, nodes: FrontierNode[]) {
    this.#from = from;
    this.#nodes = nodes;
  }

  /** Build the frontier for epochs ≥ `from` from the master key (does not wipe `master`). */
  static fromMaster(master: Uint8Array, from: number): EpochFrontier {
    checkEpoch(from, 'from');
    if (!(master instanceof Uint8Array) || master.length !== KEY_BYTES) throw new RangeError('a master key is 32 bytes');
    const f = new EpochFrontier(0, [{ depth: 0, index: 0, key: new Uint8Array(master) }]); // a copy even of a Buffer (whose slice() is a view)
    f.advanceTo(from);
    return f;
  }

  /**
   * Rebuild a frontier from stored nodes. The nodes must be exactly the
   * shape {@link frontierShape}(from) gives.
   * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` otherwise.
   */
  static fromNodes(from: number, nodes: readonly FrontierNode[]): EpochFrontier {
    const bad = (why: string) => new KeyAddressError('GS_ERR_KEYADDR_STATE', `key-address state: frontier ${why}`);
    if (!(Number.isInteger(from) && from >= 0 && from <= EPOCH_COUNT)) throw bad(`start ${from} out of range`);
    const shape = frontierShape(from);
    if (shape.length !== nodes.length) throw bad(`has ${nodes.length} nodes, ${shape.length} expected`);
    shape.forEach((s, i) => {
      const n = nodes[i]!;
      if (n.depth !== s.depth || n.index !== s.index) throw bad(`node ${i} is not where epoch ${from} puts it`);
      if (!(n.key instanceof Uint8Array) || n.key.length !== KEY_BYTES) throw bad(`node ${i} key is not 32 bytes`);
    });
    return new EpochFrontier(from, nodes.map((n) => ({ depth: n.depth, index: n.index, key: new Uint8Array(n.key) })));
  }

  /** The first epoch this frontier can still derive (2^32 once exhausted). */
  get from(): number {
    return this.#from;
  }

  /** Copies of the stored nodes, for serialisation. */
  nodes(): FrontierNode[] {
    return this.#nodes.map((n) => ({ depth: n.depth, index: n.index, key: n.key.slice() }));
  }

  /**
   * Forget every epoch before `from` (wiping the keys), keeping the minimal
   * cover of [from, 2^32). Computes only the children it keeps or descends
   * through: at most 2 HMACs per level.
   */
  advanceTo(from: number): void {
    if (!(Number.isInteger(from) && from >= 0 && from <= EPOCH_COUNT)) throw new RangeError(`from must be in 0..2^32, got ${from}`);
    if (from <= this.#from) return;
    const kept: FrontierNode[] = [];
    for (const node of this.#nodes) {
      const start = node.index * span(node.depth);
      const end = start + span(node.depth);
      if (end <= from) {
        node.key.fill(0);
        continue;
      }
      if (start >= from) {
        kept.push(node);
        continue;
      }
      // The node straddles `from`: descend towards it, keeping right children
      // that lie wholly at or after `from`.
      const rights: FrontierNode[] = [];
      let { depth, index, key } = node;
      for (;;) {
        const s = index * span(depth);
        if (s === from) {
          kept.push({ depth, index, key });
          break;
        }
        const mid = s + span(depth + 1);
        if (from >= mid) {
          const next = treeChild(key, 1);
          key.fill(0);
          ({ depth, index, key } = { depth: depth + 1, index: 2 * index + 1, key: next });
        } else {
          rights.push({ depth: depth + 1, index: 2 * index + 1, key: treeChild(key, 1) });
          const next = treeChild(key, 0);
          key.fill(0);
          ({ depth, index, key } = { depth: depth + 1, index: 2 * index, key: next });
        }
      }
      kept.push(...rights.reverse());
    }
    kept.sort((a, b) => a.index * span(a.depth) - b.index * span(b.depth));
    this.#nodes = kept;
    this.#from = from;
  }

  /**
   * Take E_t for an epoch t ≥ {@link EpochFrontier.from} and forget every epoch ≤ t: the
   * caller owns (and should wipe) the returned key.
   * @throws KeyAddressError `GS_ERR_KEYADDR_STATE` if t is before `from` (the past is gone).
   */
  open(t: number): Uint8Array {
    checkEpoch(t);
    if (t < this.#from) {
      throw new KeyAddressError('GS_ERR_KEYADDR_STATE', `epoch ${t} is before this state's first epoch ${this.#from}; its keys are gone`);
    }
    this.advanceTo(t);
    // The first node now starts at t: descend its left edge to the leaf.
    const first = this.#nodes[0]!;
    let key: Uint8Array = first.key.slice();
    for (let d = first.depth; d < TREE_DEPTH; d++) {
      const next = treeChild(key, 0);
      key.fill(0);
      key = next;
    }
    this.advanceTo(t + 1);
    return key;
  }

  /** Fill every key with zeros; the frontier derives nothing afterwards. */
  wipe(): void {
    for (const n of this.#nodes) n.key.fill(0);
    this.#nodes = [];
    this.#from = EPOCH_COUNT;
  }
}

/**
 * C(t, 0) = HMAC-SHA256(E_t, "gs-ka session chain"). Does not wipe `epochKeyT`.
 * @public
 */
export function openChain(epochKeyT: Uint8Array): Uint8Array {
  return hmac(sha256, epochKeyT, LABEL_CHAIN);
}

/**
 * The first candidate IID (first 8 bytes of `candidate(k)`, k = 0, 1, 2, …)
 * that is not reserved. Candidates are wiped once read. A reserved IID has
 * probability about 2^-39 per try with HMAC output, so k = 0 nearly always
 * ends it. The search stops after 64 candidates: with HMAC output that many
 * reserved IIDs in a row cannot happen, so a broken MAC fails here instead
 * of spinning through the u32 counter. The IID is written to `into` at
 * `at` (by default a new 8-byte array), which is returned.
 * @internal
 */
export function firstUnreservedIid(candidate: (k: number) => Uint8Array, into: Uint8Array = new Uint8Array(8), at = 0): Uint8Array {
  for (let k = 0; k < 64; k++) {
    const mac = candidate(k);
    // Read in place (no 8-byte copy to test), copied out only once accepted.
    const reserved = isReservedIidAt(mac, 0);
    if (!reserved) for (let i = 0; i < 8; i++) into[at + i] = mac[i]!;
    mac.fill(0);
    if (!reserved) return into;
  }
  throw new KeyAddressError('GS_ERR_KEYADDR_STATE', 'no unreserved interface ID (cannot happen with HMAC-SHA256)');
}

/** HMAC-SHA256 under one key for several messages; `more`, if given, is appended to `message` (no concatenated copy). */
type KeyedMac = (message: Uint8Array, more?: Uint8Array) => Uint8Array;

/**
 * The keyed MAC of a chain step: the native crypto backend's HMAC-SHA256
 * (OpenSSL) where the runtime has one, byte for byte the same as noble's
 * (tested against {@link withKeyNoble}, and the published vectors); a
 * chain step costs about a third less (no hash objects and DataViews per
 * message). Elsewhere (browsers, runtimes without `node:crypto`) it is
 * noble's. OpenSSL's copy of the key lives in the HMAC context, which Node
 * frees (and OpenSSL cleanses) at digest().
 */
function withKey<R>(key: Uint8Array, use: (mac: KeyedMac) => R): R {
  const native = nativeBackend();
  if (!native) return withKeyNoble(key, use);
  // The backend returns a plain Uint8Array over the digest (never a Buffer,
  // whose slice() would alias), so callers may wipe after slicing.
  return use((message, more) => (more === undefined ? native.hmacSha256(key, message) : native.hmacSha256(key, message, more)));
}

/**
 * The pure-TypeScript twin of {@link withKey} (@noble/hashes): the reference
 * the native path is tested against.
 * @internal
 */
export function withKeyNoble<R>(key: Uint8Array, use: (mac: KeyedMac) => R): R {
  const keyed = hmac.create(sha256, key);
  // Each message runs on a copy of the keyed state; one copy object is
  // reused (noble's `_cloneInto(to)`), so a message allocates only its digest.
  const scratch = keyed.clone();
  try {
    return use((message, more) => {
      const h = keyed._cloneInto(scratch).update(message);
      return (more === undefined ? h : h.update(more)).digest();
    });
  } finally {
    keyed.destroy();
    scratch.destroy();
  }
}

/**
 * "gs-ka address" ‖ u32be(k): one buffer for every candidate message (the
 * MAC reads it synchronously; k is rewritten per try).
 */
const ADDRESS_MESSAGE = new Uint8Array(LABEL_ADDRESS.length + 4);
ADDRESS_MESSAGE.set(LABEL_ADDRESS);
/** The slots of a position when no labels are asked for (shared, frozen). */
const NO_SLOTS: Readonly<Record<string, Uint8Array>> = Object.freeze({});

function position(mac: KeyedMac, prefixBytes: Uint8Array, t: number, n: number, labels: readonly string[]): KeyAddressPosition {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) bytes[i] = prefixBytes[i]!;
  const at = LABEL_ADDRESS.length;
  firstUnreservedIid(
    (k) => {
      // u32be(k)
      ADDRESS_MESSAGE[at] = k >>> 24;
      ADDRESS_MESSAGE[at + 1] = (k >>> 16) & 0xff;
      ADDRESS_MESSAGE[at + 2] = (k >>> 8) & 0xff;
      ADDRESS_MESSAGE[at + 3] = k & 0xff;
      return mac(ADDRESS_MESSAGE);
    },
    bytes,
    8,
  );
  let slots = NO_SLOTS;
  if (labels.length > 0) {
    const own: Record<string, Uint8Array> = {};
    for (const label of labels) own[label] = mac(LABEL_SLOT, utf8(label));
    slots = own;
  }
  return { t, n, address: formatIpv6(bytes), bytes, slots };
}

/**
 * The position derived from chain key C(t, n): the address (prefix OR the
 * first non-reserved IID) and the slots for `labels`.
 * @public
 */
export function positionAt(chainKey: Uint8Array, prefixBytes: Uint8Array, t: number, n: number, labels: readonly string[] = []): KeyAddressPosition {
  return withKey(chainKey, (mac) => position(mac, prefixBytes, t, n, labels));
}

/**
 * C(t, n+1) = HMAC-SHA256(C(t, n), "gs-ka next" ‖ A(t, n)). Does not wipe `chainKey`.
 * @public
 */
export function stepChain(chainKey: Uint8Array, address: Uint8Array): Uint8Array {
  return hmac(sha256, chainKey, concat(LABEL_NEXT, address));
}

/**
 * {@link positionAt} and {@link stepChain} in one: the position of C(t, n)
 * and C(t, n+1), sharing the keyed HMAC. Does not wipe `chainKey`.
 * @public
 */
export function advanceChain(
  chainKey: Uint8Array,
  prefixBytes: Uint8Array,
  t: number,
  n: number,
  labels: readonly string[] = [],
): { readonly position: KeyAddressPosition; readonly next: Uint8Array } {
  return withKey(chainKey, (mac) => {
    const p = position(mac, prefixBytes, t, n, labels);
    return { position: p, next: mac(LABEL_NEXT, p.bytes) };
  });
}

/**
 * A(t, n) (and its slots) straight from the master key: E_t, then n chain
 * steps. For test vectors and tools; running code uses the client and server.
 * @public
 */
export function keyAddressAt(master: Uint8Array, prefix: string, t: number, n: number, labels: readonly string[] = []): KeyAddressPosition {
  const p = parsePrefix(prefix);
  checkEpoch(t);
  if (!(Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff)) throw new ConfigError('GS_ERR_INVALID_OPTION', `n must be an integer in 0..2^32-1, got ${n}`);
  const e = epochKey(master, t);
  let c = openChain(e);
  e.fill(0);
  for (let i = 0; i < n; i++) {
    const { next } = advanceChain(c, p.bytes, t, i);
    c.fill(0);
    c = next;
  }
  const out = positionAt(c, p.bytes, t, n, labels);
  c.fill(0);
  return out;
}
