/**
 * A receiver's partial state on disk, so that a receiver stopped mid-transfer
 * (closed, killed, rebooted) resumes where it was instead of starting over.
 *
 * One working folder per transfer, inside the receiver's directory:
 *
 *     <dir>/.gatesock-partial/<fileId>-<name>/
 *         announcement   the signed announcement as received (checked again on resume)
 *         manifests      the verified block manifests: records u32 length | bytes
 *         spool          verified symbols of blocks not yet decoded:
 *                        records u32 fecInfo | symbolSize bytes
 *         data           the file being rebuilt: each decoded block written at
 *                        its offset sbn · k · symbolSize
 *         state.json     { version, fileId, name, blocksDone (base64 bitmap),
 *                          spoolRecords, manifestRecords, requests, sender }
 *
 * Rules that make a resume safe:
 * - Only verified bytes are written (the receiver authenticates every symbol
 *   and manifest before it reaches this store).
 * - `state.json` is written to a temporary name and renamed over the old one,
 *   after the bytes it counts were written, so it never counts a record or
 *   a block that is not on disk. Records appended after the last save are
 *   ignored on resume (the receiver asks for them again). Nothing is
 *   fsync'ed: after a power loss the state may lag (fewer records counted),
 *   never run ahead of what the OS wrote — except on file systems that
 *   reorder a rename before data writes; the whole-file digest check at the
 *   end catches that case (the file is then refused, never applied).
 * - The final file is moved into place by the receiver only after its
 *   SHA-256 matches the signed digest; then this folder is deleted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Name of the folder, inside a receiver's directory, that holds partial
 * transfers (update names may not start with it).
 * @public
 */
export const PARTIAL_DIR = '.gatesock-partial';

const STATE_VERSION = 1;
/** Every file a working folder may hold. */
const FILES = ['announcement', 'manifests', 'spool', 'data', 'state.json', 'state.json.tmp'] as const;

/** What a resumed store hands back. @internal */
export interface ResumedState {
  /** The announcement bytes saved at join. */
  readonly announcement: Uint8Array;
  /** Saved manifests, in the order saved. */
  readonly manifests: Uint8Array[];
  /** Spooled symbols, in the order saved. */
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
  #dataFd: number | undefined;
  #spoolFd: number | undefined;
  #manifestFd: number | undefined;
  #spoolRecords = 0;
  #manifestRecords = 0;
  /** Records buffered in memory, not yet appended to the spool. */
  #pending: Uint8Array[] = [];
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
   */
  constructor(dir: string, fileId: number, name: string, symbolSize: number, blockBytes: number, blockCount: number) {
    this.folder = ResumeStore.folderFor(dir, fileId, name);
    this.#symbolSize = symbolSize;
    this.#blockBytes = blockBytes;
    this.#fileId = fileId;
    this.#name = name;
    this.#doneBits = new Uint8Array(Math.ceil(blockCount / 8));
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
    try {
      const v: unknown = JSON.parse(fs.readFileSync(path.join(folder, 'state.json'), 'utf8'));
      return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
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
      const state = JSON.parse(fs.readFileSync(path.join(this.folder, 'state.json'), 'utf8')) as StateFile;
      const announcement = new Uint8Array(fs.readFileSync(path.join(this.folder, 'announcement')));
      if (state.version !== STATE_VERSION || state.fileId !== this.#fileId || state.name !== this.#name) throw new Error('other transfer');
      const bits = Buffer.from(state.blocksDone, 'base64');
      if (bits.length !== this.#doneBits.length) throw new Error('block count differs');
      this.#doneBits.set(bits);
      const manifests = readRecords(path.join(this.folder, 'manifests'), state.manifestRecords, (b, off) => {
        const len = b.readUInt32BE(off);
        return [b.subarray(off + 4, off + 4 + len), 4 + len];
      });
      const recordLen = 4 + this.#symbolSize;
      const symbols = readRecords(path.join(this.folder, 'spool'), state.spoolRecords, (b, off) => [
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
      return { announcement, manifests: manifests.map((m) => new Uint8Array(m)), symbols, blocksDone, requests: state.requests };
    } catch {
      this.discard();
      this.#doneBits.fill(0);
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
   * Queue a verified symbol for the spool; written by {@link ResumeStore.flush}.
   * Keeps a reference to `symbol` (`symbolSize` bytes) until then: do not modify it.
   */
  addSymbol(fecInfo: number, symbol: Uint8Array): void {
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
    return this.#pending.length / 2;
  }

  /** Write a decoded block into the data file at its offset and mark it done. */
  writeBlock(sbn: number, bytes: Uint8Array): void {
    this.#dataFd ??= fs.openSync(path.join(this.folder, 'data'), fs.existsSync(path.join(this.folder, 'data')) ? 'r+' : 'w+');
    fs.writeSync(this.#dataFd, bytes, 0, bytes.length, sbn * this.#blockBytes);
    this.#doneBits[sbn >>> 3]! |= 1 << (sbn & 7);
    this.#dirty = true;
  }

  /**
   * Append buffered symbols to the spool; save the state that counts them
   * when `save` (default) — otherwise every fourth append. Appended records
   * the saved state does not count yet are cut off on resume.
   */
  flush(save = true): void {
    if (this.#pending.length > 0) {
      this.#spoolFd ??= fs.openSync(path.join(this.folder, 'spool'), 'a');
      writeAll(this.#spoolFd, this.#pending);
      this.#spoolRecords += this.#pending.length / 2;
      this.#pending = [];
      this.#appends++;
    }
    if (save || this.#appends % 4 === 0) this.save();
  }

  /** Save `state.json` (temporary file, then rename) if anything changed. */
  save(): void {
    if (!this.#dirty) return;
    const state: StateFile = {
      ...this.#extra,
      version: STATE_VERSION,
      fileId: this.#fileId,
      name: this.#name,
      blocksDone: Buffer.from(this.#doneBits).toString('base64'),
      spoolRecords: this.#spoolRecords,
      manifestRecords: this.#manifestRecords,
      requests: this.requests,
    };
    const tmp = path.join(this.folder, 'state.json.tmp');
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, path.join(this.folder, 'state.json'));
    this.#dirty = false;
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
    for (const fd of [this.#dataFd, this.#spoolFd, this.#manifestFd]) if (fd !== undefined) fs.closeSync(fd);
    this.#dataFd = this.#spoolFd = this.#manifestFd = undefined;
  }

  #isDone(sbn: number): boolean {
    return (this.#doneBits[sbn >>> 3]! & (1 << (sbn & 7))) !== 0;
  }
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
