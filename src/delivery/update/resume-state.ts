/**
 * A receiver's partial state on disk, so that a receiver stopped mid-transfer
 * (closed, killed, rebooted) resumes where it was instead of starting over.
 *
 * One working folder per transfer, inside the receiver's directory:
 *
 *     <dir>/.gatesock-partial/<fileId>-<name>/
 *         announcement   the signed announcement as received (checked again on resume)
 *         manifests      the verified block manifests: records u32 length | bytes
 *         spool          verified repair symbols of blocks not yet decoded:
 *                        records u32 fecInfo | symbolSize bytes
 *         data           the file being rebuilt: each verified source symbol
 *                        written at its place in the file (sbn · k + esi) ·
 *                        symbolSize, cut at the file's end; the rest of a
 *                        block once it is decoded
 *         state.0        two slots of the state, written in turn, each in
 *         state.1        place with one positioned write:
 *
 *                          0        4        8                       40
 *                          | length | seq    | SHA-256 of the JSON   | JSON (length bytes) |
 *
 *                        JSON: { version, fileId, name, blocksDone (base64
 *                        bitmap), sourceHeld (base64 bitmap, one bit per
 *                        source symbol (sbn · k + esi) that is in `data`),
 *                        spoolRecords, manifestRecords, requests, sender }.
 *                        The valid slot (length, digest) with the higher
 *                        `seq` is the state.
 *
 * Source symbols go straight to their place in `data`, not through the
 * spool, so every byte of the file is written once (the spool doubled the
 * writes; with many receivers on one disk that was a tenth of their CPU).
 * A decoded block writes only the source symbols not already there.
 *
 * Rules that make a resume safe:
 * - Only verified bytes are written (the receiver authenticates every symbol
 *   and manifest before it reaches this store).
 * - The state is written after the bytes it counts, so it never counts a
 *   record or a block that is not on disk. It goes to the older of two
 *   slots, so a write cut short (a crash in the middle) leaves the other,
 *   earlier state whole; the digest in the slot tells a torn one. (Until
 *   session 5 it was a temporary file renamed over `state.json`: ext4 pushes
 *   the new file out on such a rename, a few milliseconds each, and with
 *   sixteen receivers on one disk that was a tenth of their CPU.) Records
 *   appended after the last save are ignored on resume (the receiver asks
 *   for them again). Nothing is fsync'ed: after a power loss the state may
 *   lag (fewer records counted) — or, on file systems that write the slot
 *   before earlier data, run ahead of it; the whole-file digest check at
 *   the end catches that case (the file is then refused, never applied).
 * - The final file is moved into place by the receiver only after its
 *   SHA-256 matches the signed digest; then this folder is deleted.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Name of the folder, inside a receiver's directory, that holds partial
 * transfers (update names may not start with it).
 * @public
 */
export const PARTIAL_DIR = '.gatesock-partial';

const STATE_VERSION = 2;
/** Every file a working folder may hold. */
const FILES = ['announcement', 'manifests', 'spool', 'data', 'state.0', 'state.1'] as const;
/** The two state slots. */
const SLOTS = ['state.0', 'state.1'] as const;
/** Slot header: u32 length, u32 seq, SHA-256 of the JSON. */
const SLOT_HEAD = 40;

/** What a resumed store hands back. @internal */
export interface ResumedState {
  /** The announcement bytes saved at join. */
  readonly announcement: Uint8Array;
  /** Saved manifests, in the order saved. */
  readonly manifests: Uint8Array[];
  /** Source symbols held in `data` for blocks not done (by position), then spooled repair symbols (in the order saved). */
  readonly symbols: { fecInfo: number; symbol: Uint8Array }[];
  /** Blocks already decoded and written to `data`. */
  readonly blocksDone: number[];
  /** Requests this receiver had sent before it stopped. */
  readonly requests: number;
}

interface StateFile {
  version: number;
  fileId: number;
  name: string;
  blocksDone: string;
  sourceHeld: string;
  spoolRecords: number;
  manifestRecords: number;
  requests: number;
}

/**
 * The on-disk partial state of one transfer at one receiver.
 * @internal
 */
export class ResumeStore {
  /** The working folder. */
  readonly folder: string;
  readonly #symbolSize: number;
  readonly #blockBytes: number;
  readonly #fileId: number;
  readonly #name: string;
  readonly #doneBits: Uint8Array;
  /** Source symbols per block (k). */
  readonly #k: number;
  /** The file's length: a source symbol's bytes stop there. */
  readonly #size: number;
  /** One bit per source symbol (sbn · k + esi) written to `data` (what the saved state may count). */
  readonly #heldBits: Uint8Array;
  #dataFd: number | undefined;
  #spoolFd: number | undefined;
  #manifestFd: number | undefined;
  /** Open state slots. */
  #slotFds: (number | undefined)[] = [undefined, undefined];
  /** Reused by {@link ResumeStore.readBlock}. */
  #readBuffer: Buffer | undefined;
  /** Sequence number of the last state saved (the next goes to slot (seq + 1) mod 2). */
  #seq = 0;
  #spoolRecords = 0;
  #manifestRecords = 0;
  /** Records buffered in memory, not yet appended to the spool (head, symbol, head, symbol, …). */
  #pending: Uint8Array[] = [];
  /** Source symbols buffered in memory, not yet written to `data`. */
  #pendingSource = new Map<number, PendingSource[]>();
  /** How many source symbols `#pendingSource` holds. */
  #pendingSourceCount = 0;
  #dirty = false;
  #appends = 0;
  /** Extra fields saved with the state (the sender's address). */
  #extra: Record<string, unknown> = {};
  /** Requests count saved with the state (for the report after a resume). */
  requests = 0;

  /**
   * @param dir - the receiver's directory
   * @param fileId - transfer's file ID
   * @param name - file name (already checked safe by the wire layer)
   * @param blockBytes - k · symbolSize
   * @param size - the file's length (default: `blockCount` whole blocks)
   */
  constructor(dir: string, fileId: number, name: string, symbolSize: number, blockBytes: number, blockCount: number, size = blockBytes * blockCount) {
    this.folder = ResumeStore.folderFor(dir, fileId, name);
    this.#symbolSize = symbolSize;
    this.#blockBytes = blockBytes;
    this.#k = blockBytes / symbolSize;
    this.#size = size;
    this.#fileId = fileId;
    this.#name = name;
    this.#doneBits = new Uint8Array(Math.ceil(blockCount / 8));
    this.#heldBits = new Uint8Array(Math.ceil((blockCount * this.#k) / 8));
  }

  /** The working folder of transfer (`fileId`, `name`) under `dir`. */
  static folderFor(dir: string, fileId: number, name: string): string {
    return path.join(dir, PARTIAL_DIR, `${fileId}-${name}`);
  }

  /** Working folders of every partial transfer under `dir` (for a receiver that starts). */
  static list(dir: string): string[] {
    const root = path.join(dir, PARTIAL_DIR);
    try {
      return fs.readdirSync(root).map((f) => path.join(root, f));
    } catch {
      return [];
    }
  }

  /** The `extra` fields saved by {@link ResumeStore.begin} in a working folder, or undefined. */
  static extraOf(folder: string): Record<string, unknown> | undefined {
    return readState(folder)?.state;
  }

  /** Read the saved announcement of a working folder, or undefined. */
  static announcementOf(folder: string): Uint8Array | undefined {
    try {
      return new Uint8Array(fs.readFileSync(path.join(folder, 'announcement')));
    } catch {
      return undefined;
    }
  }

  /**
   * Load what a previous run saved, or undefined when there is nothing
   * usable (no folder, another transfer's folder, a damaged state file — then
   * the folder is cleared and the transfer starts over).
   */
  resume(): ResumedState | undefined {
    if (!fs.existsSync(this.folder)) return undefined;
    try {
      const saved = readState(this.folder);
      if (!saved) throw new Error('no valid state slot');
      const state = saved.state as unknown as StateFile;
      this.#seq = saved.seq;
      const announcement = new Uint8Array(fs.readFileSync(path.join(this.folder, 'announcement')));
      if (state.version !== STATE_VERSION || state.fileId !== this.#fileId || state.name !== this.#name) throw new Error('other transfer');
      const bits = Buffer.from(state.blocksDone, 'base64');
      if (bits.length !== this.#doneBits.length) throw new Error('block count differs');
      this.#doneBits.set(bits);
      const held = Buffer.from(state.sourceHeld, 'base64');
      if (held.length !== this.#heldBits.length) throw new Error('source symbol count differs');
      this.#heldBits.set(held);
      const manifests = readRecords(path.join(this.folder, 'manifests'), state.manifestRecords, (b, off) => {
        const len = b.readUInt32BE(off);
        return [b.subarray(off + 4, off + 4 + len), 4 + len];
      });
      const recordLen = 4 + this.#symbolSize;
      const symbols = readRecords<{ fecInfo: number; symbol: Uint8Array }>(path.join(this.folder, 'spool'), state.spoolRecords, (b, off) => [
        { fecInfo: b.readUInt32BE(off), symbol: new Uint8Array(b.subarray(off + 4, off + recordLen)) },
        recordLen,
      ]);
      // Records appended after the last save are not counted: cut them off, so new appends line up.
      truncateTo(path.join(this.folder, 'spool'), state.spoolRecords * recordLen);
      truncateTo(path.join(this.folder, 'manifests'), manifests.reduce((n, m) => n + 4 + m.length, 0));
      this.#spoolRecords = state.spoolRecords;
      this.#manifestRecords = state.manifestRecords;
      this.requests = state.requests;
      const { version: _v, fileId: _f, name: _n, blocksDone: _b, spoolRecords: _s, manifestRecords: _m, requests: _r, ...extra } = state as StateFile & Record<string, unknown>;
      this.#extra = extra;
      const blocksDone: number[] = [];
      for (let sbn = 0; sbn < this.#doneBits.length * 8; sbn++) if (this.#isDone(sbn)) blocksDone.push(sbn);
      return { announcement, manifests: manifests.map((m) => new Uint8Array(m)), symbols: [...this.#readHeldSource(), ...symbols], blocksDone, requests: state.requests };
    } catch {
      this.discard();
      this.#doneBits.fill(0);
      this.#heldBits.fill(0);
      this.#spoolRecords = 0;
      this.#manifestRecords = 0;
      return undefined;
    }
  }

  /**
   * Start a fresh transfer: create the folder, save the announcement and an
   * empty state carrying `extra` (kept as is across saves; read back with
   * {@link ResumeStore.extraOf}).
   */
  begin(announcement: Uint8Array, extra: Record<string, unknown> = {}): void {
    if (fs.existsSync(this.folder)) fs.rmSync(this.folder, { recursive: true, force: true });
    fs.mkdirSync(this.folder, { recursive: true });
    this.#extra = extra;
    fs.writeFileSync(path.join(this.folder, 'announcement'), announcement);
    this.#dirty = true;
    this.save();
  }

  /** Append a verified manifest (written at once: manifests are few). */
  addManifest(bytes: Uint8Array): void {
    const rec = Buffer.allocUnsafe(4 + bytes.length);
    rec.writeUInt32BE(bytes.length, 0);
    rec.set(bytes, 4);
    this.#manifestFd ??= fs.openSync(path.join(this.folder, 'manifests'), 'a');
    fs.writeSync(this.#manifestFd, rec);
    this.#manifestRecords++;
    this.#dirty = true;
  }

  /**
   * Queue a verified symbol: a source symbol for its place in `data`, a
   * repair symbol for the spool; written by {@link ResumeStore.flush}.
   * Keeps a reference to `symbol` (`symbolSize` bytes) until then: do not modify it.
   */
  addSymbol(fecInfo: number, symbol: Uint8Array): void {
    const sbn = fecInfo >>> 16;
    const esi = fecInfo & 0xffff;
    if (esi < this.#k) {
      const index = sbn * this.#k + esi;
      const position = index * this.#symbolSize;
      const length = Math.min(this.#symbolSize, this.#size - position);
      if (length > 0) {
        let list = this.#pendingSource.get(sbn);
        if (!list) this.#pendingSource.set(sbn, (list = []));
        list.push({ index, position, bytes: length === symbol.length ? symbol : symbol.subarray(0, length) });
        this.#pendingSourceCount++;
      }
      this.#dirty = true;
      return;
    }
    const head = new Uint8Array(4);
    head[0] = fecInfo >>> 24;
    head[1] = (fecInfo >>> 16) & 0xff;
    head[2] = (fecInfo >>> 8) & 0xff;
    head[3] = fecInfo & 0xff;
    this.#pending.push(head, symbol);
    this.#dirty = true;
  }

  /** Symbols buffered and not yet on disk. */
  get buffered(): number {
    return this.#pending.length / 2 + this.#pendingSourceCount;
  }

  /**
   * Write a decoded block into the data file at its offset and mark it
   * done: only the source symbols not already there (in one write per run
   * of them); buffered source symbols of the block are then not written again.
   */
  writeBlock(sbn: number, bytes: Uint8Array): void {
    const fd = this.#data();
    const t = this.#symbolSize;
    const base = sbn * this.#k;
    const count = Math.ceil(bytes.length / t);
    for (let esi = 0; esi < count; ) {
      if (this.#isHeld(base + esi)) {
        esi++;
        continue;
      }
      let end = esi + 1;
      while (end < count && !this.#isHeld(base + end)) end++;
      const from = esi * t;
      const to = Math.min(end * t, bytes.length);
      writeFully(fd, bytes.subarray(from, to), sbn * this.#blockBytes + from);
      esi = end;
    }
    this.#doneBits[sbn >>> 3]! |= 1 << (sbn & 7);
    this.#dirty = true;
    // Its buffered source symbols are in the block just written: let them go now, not at the next flush.
    const pending = this.#pendingSource.get(sbn);
    if (pending) {
      this.#pendingSourceCount -= pending.length;
      this.#pendingSource.delete(sbn);
    }
  }

  /**
   * Append buffered symbols to the spool; save the state that counts them
   * when `save` (default) — otherwise every fourth append. Appended records
   * the saved state does not count yet are cut off on resume.
   */
  flush(save = true): void {
    if (this.#pendingSourceCount === 0 && this.#pending.length === 0) {
      if (save) this.save();
      return;
    }
    if (this.#pendingSourceCount > 0) this.#writeSource();
    if (this.#pending.length > 0) {
      this.#spoolFd ??= fs.openSync(path.join(this.folder, 'spool'), 'a');
      writeAll(this.#spoolFd, this.#pending);
      this.#spoolRecords += this.#pending.length / 2;
      this.#pending = [];
    }
    this.#appends++;
    if (save || this.#appends % 4 === 0) this.save();
  }

  /** Save the state (into the older slot) if anything changed. */
  save(): void {
    if (!this.#dirty) return;
    const state: StateFile = {
      ...this.#extra,
      version: STATE_VERSION,
      fileId: this.#fileId,
      name: this.#name,
      blocksDone: Buffer.from(this.#doneBits).toString('base64'),
      sourceHeld: Buffer.from(this.#heldBits).toString('base64'),
      spoolRecords: this.#spoolRecords,
      manifestRecords: this.#manifestRecords,
      requests: this.requests,
    };
    const json = Buffer.from(JSON.stringify(state));
    const seq = ++this.#seq;
    const rec = Buffer.allocUnsafe(SLOT_HEAD + json.length);
    rec.writeUInt32BE(json.length, 0);
    rec.writeUInt32BE(seq >>> 0, 4);
    createHash('sha256').update(json).digest().copy(rec, 8);
    json.copy(rec, SLOT_HEAD);
    const slot = seq % 2;
    const fd = (this.#slotFds[slot] ??= fs.openSync(path.join(this.folder, SLOTS[slot]!), fs.existsSync(path.join(this.folder, SLOTS[slot]!)) ? 'r+' : 'w+'));
    let done = 0;
    while (done < rec.length) done += fs.writeSync(fd, rec, done, rec.length - done, done);
    this.#dirty = false;
  }

  /**
   * Read decoded block `sbn` back from `data` (its exact length; the last
   * block may be short). The view is into a buffer the next call reuses.
   */
  readBlock(sbn: number): Uint8Array {
    const from = sbn * this.#blockBytes;
    const length = Math.max(0, Math.min(this.#blockBytes, this.#size - from));
    const buf = (this.#readBuffer ??= Buffer.allocUnsafe(this.#blockBytes));
    const fd = this.#data();
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, from + done);
      if (n === 0) throw new Error(`data file ends inside block ${sbn}`);
      done += n;
    }
    return buf.subarray(0, length);
  }

  /** Path of the rebuilt data file. */
  get dataPath(): string {
    return path.join(this.folder, 'data');
  }

  /** Close the files (state saved first). */
  close(): void {
    try {
      this.flush();
    } finally {
      this.#closeFds();
    }
  }

  /** Close the files and delete the working folder (after the file moved into place, or to start over). */
  discard(): void {
    this.#closeFds();
    this.#pending = [];
    this.#pendingSource.clear();
    this.#pendingSourceCount = 0;
    // The files are known: unlink them one by one (much cheaper than a recursive rm), then the folder.
    for (const f of FILES) {
      try {
        fs.unlinkSync(path.join(this.folder, f));
      } catch {
        // not there
      }
    }
    try {
      fs.rmdirSync(this.folder);
    } catch {
      fs.rmSync(this.folder, { recursive: true, force: true }); // something else in it
    }
  }

  #closeFds(): void {
    for (const fd of [this.#dataFd, this.#spoolFd, this.#manifestFd, ...this.#slotFds]) if (fd !== undefined) fs.closeSync(fd);
    this.#dataFd = this.#spoolFd = this.#manifestFd = undefined;
    this.#slotFds = [undefined, undefined];
  }

  #isDone(sbn: number): boolean {
    return (this.#doneBits[sbn >>> 3]! & (1 << (sbn & 7))) !== 0;
  }

  #isHeld(index: number): boolean {
    return (this.#heldBits[index >>> 3]! & (1 << (index & 7))) !== 0;
  }

  #data(): number {
    return (this.#dataFd ??= fs.openSync(path.join(this.folder, 'data'), fs.existsSync(path.join(this.folder, 'data')) ? 'r+' : 'w+'));
  }

  /**
   * Write the buffered source symbols at their places in `data`, adjacent
   * ones in one write, and mark them held; those of blocks already written
   * whole are skipped.
   */
  #writeSource(): void {
    const fd = this.#data();
    const list: PendingSource[] = [];
    for (const [sbn, pending] of this.#pendingSource) if (!this.#isDone(sbn)) for (const p of pending) if (!this.#isHeld(p.index)) list.push(p);
    this.#pendingSource.clear();
    this.#pendingSourceCount = 0;
    list.sort((a, b) => a.position - b.position);
    for (let i = 0; i < list.length; ) {
      let j = i + 1;
      let end = list[i]!.position + list[i]!.bytes.length;
      while (j < list.length && j - i < 512 && list[j]!.position === end) end += list[j++]!.bytes.length;
      const run = list.slice(i, j);
      const n = fs.writevSync(fd, run.map((p) => p.bytes), list[i]!.position);
      if (n !== end - list[i]!.position) writeFully(fd, Buffer.concat(run.map((p) => p.bytes)).subarray(n), list[i]!.position + n);
      for (const p of run) this.#heldBits[p.index >>> 3]! |= 1 << (p.index & 7);
      i = j;
    }
  }

  /** The held source symbols of blocks not done, read back from `data` and padded to `symbolSize`. */
  #readHeldSource(): { fecInfo: number; symbol: Uint8Array }[] {
    const out: { fecInfo: number; symbol: Uint8Array }[] = [];
    const total = this.#heldBits.length * 8;
    let fd: number | undefined;
    try {
      for (let index = 0; index < total; index++) {
        if (!this.#isHeld(index)) continue;
        const sbn = Math.floor(index / this.#k);
        if (this.#isDone(sbn)) continue;
        fd ??= fs.openSync(path.join(this.folder, 'data'), 'r');
        const position = index * this.#symbolSize;
        const symbol = new Uint8Array(this.#symbolSize);
        const length = Math.min(this.#symbolSize, this.#size - position);
        if (length <= 0 || fs.readSync(fd, symbol, 0, length, position) !== length) throw new Error('short data file');
        out.push({ fecInfo: sbn * 0x10000 + (index - sbn * this.#k), symbol });
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return out;
  }
}

/** A verified source symbol waiting to be written at its place in `data`. */
interface PendingSource {
  /** sbn · k + esi. */
  readonly index: number;
  /** Byte offset in the file. */
  readonly position: number;
  /** Its bytes, cut at the file's end. */
  readonly bytes: Uint8Array;
}

/**
 * The newer valid state slot of a working folder: its JSON object and
 * sequence number, or undefined when neither slot holds a whole one.
 */
function readState(folder: string): { state: Record<string, unknown>; seq: number } | undefined {
  let best: { state: Record<string, unknown>; seq: number } | undefined;
  for (const name of SLOTS) {
    let b: Buffer;
    try {
      b = fs.readFileSync(path.join(folder, name));
    } catch {
      continue;
    }
    if (b.length < SLOT_HEAD) continue;
    const length = b.readUInt32BE(0);
    const seq = b.readUInt32BE(4);
    if (SLOT_HEAD + length > b.length) continue;
    const json = b.subarray(SLOT_HEAD, SLOT_HEAD + length);
    if (!createHash('sha256').update(json).digest().equals(b.subarray(8, SLOT_HEAD))) continue;
    let v: unknown;
    try {
      v = JSON.parse(json.toString('utf8'));
    } catch {
      continue;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    if (!best || seq > best.seq) best = { state: v as Record<string, unknown>, seq };
  }
  return best;
}

/** Write all of `bytes` at `position`. */
function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}

/** Read the first `count` records of a file with `parse(buffer, offset) → [record, length]`. */
function readRecords<T>(file: string, count: number, parse: (b: Buffer, off: number) => [T, number]): T[] {
  if (count === 0) return [];
  const b = fs.readFileSync(file);
  const out: T[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > b.length) throw new Error('short record file');
    const [rec, len] = parse(b, off);
    if (off + len > b.length) throw new Error('short record');
    out.push(rec);
    off += len;
  }
  return out;
}

/** Cut `file` to `length` bytes when it is longer (a missing file is fine when `length` is 0). */
function truncateTo(file: string, length: number): void {
  try {
    if (fs.statSync(file).size > length) fs.truncateSync(file, length);
  } catch (e) {
    if (length > 0) throw e;
  }
}

/** Write every buffer, in order, at the file's current position (writev, in chunks the OS accepts). */
function writeAll(fd: number, buffers: Uint8Array[]): void {
  for (let i = 0; i < buffers.length; i += 512) {
    const part = buffers.slice(i, i + 512);
    let want = 0;
    for (const b of part) want += b.length;
    const n = fs.writevSync(fd, part);
    if (n !== want) fs.writeSync(fd, Buffer.concat(part).subarray(n)); // a short write: the rest in one go
  }
}
