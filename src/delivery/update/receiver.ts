/**
 * The multicast update receiver's state machine (DESIGN.md system 2; seed
 * §3.3.2, figures 4–6), over any {@link DatagramSocket}: real UDP multicast
 * or the simulated network, with every timer on `socket.clock`.
 *
 * ```text
 *  state        event                                   → next          action
 *  idle         UDATE verified, permitted               → joined        join data group, save announcement, send RECV
 *  idle         UDATE refused (signature, permission)   → idle          count it; never join
 *  idle         start() finds saved partial state       → receiving     re-verify, join, RECV, ask for what is missing
 *  joined       UDATE again                             → joined        RECV again (the first may be lost)
 *  joined       data / repair / manifest                → receiving     verify, decode, spool to disk
 *  receiving    round marker, or data stops             → receiving     arm request timer (suppressed if others asked)
 *  receiving    last block decoded                      → complete      send completion notice (repeat until ack)
 *  complete     completion ack (or retries spent)       → verified      SHA-256 of the file = signed digest, move into place
 *  complete     digest differs                          → fin-sent      FIN "failed: …", nothing applied
 *  verified     —                                       → applied       run the handler
 *  applied      handler returned / threw                → fin-sent      FIN with its status (3 times, then again whenever an
 *                                                                       ack naming this host asks for it, for 60 s)
 *  fin-sent     —                                       → idle          ready for the next update (the data group is left
 *                                                                       once no FIN is pending)
 *  any          close()                                 → closed        state flushed to disk, timers stopped
 *  receiving    nothing from the sender for inactivityTimeoutMs → idle  partial state kept for a later resume
 * ```
 *
 * Only one transfer is received at a time; announcements of other files
 * while one runs are ignored (the sender announces again). Junk, foreign
 * (other file ID) and duplicate datagrams are counted in
 * {@link UpdateReceiver.counters} and dropped; a datagram never throws out
 * of the message handler.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { DeliveryError, GatesockError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import type { ObjectDecoder } from '../../fec/index.js';
import type { DatagramAddress, DatagramSocket } from '../../transport/index.js';
import type { CryptoOption } from '../../session/index.js';
import { ReceiverWire, type AcceptedUpdate } from './receiver-wire.js';
import { FileDigest } from './file-digest.js';
import { ResumeStore } from './resume-state.js';
import { RequestScheduler, type Wants } from './suppression.js';
import {
  UpdateAuthenticator,
  blockSourceCount,
  resolveUpdatePath,
  symbolPayloadLength,
  symbolSeq,
  type BlockNeed,
  type PageRef,
  type ReceiverPolicy,
  type SymbolPacket,
  type UpdateHistory,
  type WireMessage,
} from './wire/index.js';

/**
 * States of an {@link UpdateReceiver} (see the table in receiver.ts).
 * @public
 */
export type ReceiverState = 'idle' | 'joined' | 'receiving' | 'complete' | 'verified' | 'applied' | 'fin-sent' | 'closed';

/**
 * The update handler: called with the path of the verified file (already in
 * place) and the announcement's name; returns a short status string for
 * `FIN` (or a promise of one). A throw or rejection is reported as
 * `failed: <message>`.
 * @public
 */
export type UpdateHandler = (file: string, update: { readonly name: string; readonly size: number; readonly fileId: number }) => string | Promise<string>;

/**
 * Options of {@link UpdateReceiver}.
 * @public
 */
export interface UpdateReceiverOptions {
  /** The bound socket (its port is the updater's port); its clock times everything. */
  readonly socket: DatagramSocket;
  /** What this receiver takes: allowed name patterns and pinned publisher keys (checked before joining). */
  readonly policy: ReceiverPolicy;
  /** Versions taken so far, so replays and rollbacks are refused (e.g. `FileUpdateHistory`). Default: in memory only. */
  readonly history?: UpdateHistory;
  /** Crypto backend for signature and hash checks. */
  readonly crypto?: CryptoOption['crypto'];
  /** Multicast group the sender announces on (joined at start). */
  readonly controlGroup: string;
  /** Multicast group of the data session (joined only for a permitted update). Default: `controlGroup`. */
  readonly dataGroup?: string;
  /** This host's name, as sent in `RECV`. */
  readonly host: string;
  /** Directory the update file lands in; partial state lives in a working folder inside. */
  readonly directory: string;
  /** The update handler. Default: none (status `ok`). */
  readonly handler?: UpdateHandler;
  /** Random source in [0, 1) for request backoff. Default `Math.random`. */
  readonly random?: () => number;
  /** Group round-trip time to assume until the sender's round marker says, ms. Default 50. */
  readonly rttMs?: number;
  /** Give up a transfer (keeping partial state) after this long without a datagram from the sender, ms. Default 60,000. */
  readonly inactivityTimeoutMs?: number;
  /**
   * Spool writes are batched: flush to disk once this many symbols are buffered, but at most every
   * 250 ms (at 100 Mbit/s ≈ 2,800 symbols, 3 MB), and on close; the resume state is saved at most
   * every second after decoded blocks, and at the last. Default 64.
   */
  readonly flushEvery?: number;
}

/**
 * What happened to one transfer at this receiver.
 * @public
 */
export interface ReceiverReport {
  /** Update name. */
  readonly name: string;
  /** File ID of the transfer. */
  readonly fileId: number;
  /** Where the file was put (when verified). */
  readonly file?: string;
  /** The status sent in `FIN`. */
  readonly status: string;
  /** True when the file was verified and applied and the handler succeeded. */
  readonly ok: boolean;
  /** Requests this receiver sent (including before a restart). */
  readonly requests: number;
  /** Requests it did not send because another receiver had asked. */
  readonly suppressed: number;
  /** True when it resumed from saved partial state. */
  readonly resumed: boolean;
}

/**
 * Counters of one receiver: what it took, and what it dropped and why.
 * @public
 */
export interface ReceiverCounters {
  /** Datagrams received. */
  datagrams: number;
  /** Symbols verified and used. */
  symbols: number;
  /** Datagrams that did not decode (junk). */
  junk: number;
  /** Datagrams of another transfer (foreign file ID) while one runs. */
  foreign: number;
  /** Symbols already had, or of blocks already decoded. */
  duplicates: number;
  /** Symbols or manifests that failed authentication. */
  forged: number;
  /** Announcements refused (bad signature, not permitted, unsafe name). */
  refused: number;
  /** Requests sent. */
  requests: number;
}

/**
 * Events of an {@link UpdateReceiver}.
 * @public
 */
export interface UpdateReceiverEvents {
  /** The state changed; `why` says which rule. */
  state: (state: ReceiverState, why: string) => void;
  /** Progress of the running transfer. */
  progress: (p: { readonly name: string; readonly blocksDone: number; readonly blocks: number }) => void;
  /** A transfer ended (FIN sent). */
  done: (report: ReceiverReport) => void;
  /** A datagram was dropped (junk, forged, refused); for logs. */
  dropped: (reason: string, error?: GatesockError) => void;
}

/** Per-transfer state. */
interface Transfer {
  readonly ann: AcceptedUpdate['layout'] & { readonly name: string; readonly digest: Uint8Array };
  readonly accepted: AcceptedUpdate;
  readonly gate: UpdateAuthenticator;
  readonly sender: DatagramAddress;
  readonly store: ResumeStore;
  readonly decoder: ObjectDecoder;
  readonly done: Uint8Array;
  blocksDone: number;
  /** SHA-256 of the data file, advanced as the decoded blocks from block 0 grow. */
  readonly digest: FileDigest;
  /** Symbols waiting for their manifest page, by `sbn · 65536 + page`. */
  readonly waiting: Map<number, SymbolPacket[]>;
  /** Authenticated symbols of blocks still open (references), for recovering a block whose page was lost. */
  readonly verified: Map<number, SymbolPacket[]>;
  /** Blocks whose recovery failed (a forged held symbol): their missing pages are asked for. */
  readonly askPages: Set<number>;
  /** Per open block, one byte per ESI: 1 once that symbol is in the decoder. */
  readonly have: Map<number, Uint8Array>;
  /** Blocks whose repair pool the sender has used up (it sent the last repair symbol, or source again). */
  readonly exhausted: Set<number>;
  readonly sched: RequestScheduler;
  /** Highest sequence number with every one before it received, within round 1's range. */
  inOrder: number | null;
  readonly seen: Uint8Array;
  grttMs: number;
  backoffMs: number;
  requests: number;
  resumed: boolean;
  lastHeard: number;
  /** Mean gap between the sender's datagrams, ms (0 before two). */
  gapMs: number;
  /** When the idle timer last asked (it asks at most once per idle period). */
  idleAsked: number;
  /** Idle requests in a row with nothing heard from the sender in between. */
  idleStreak: number;
  idleTimer: unknown;
  noticeTimer: unknown;
  noticeTries: number;
  finTimer: unknown;
  finTries: number;
  /** When the resume state was last saved after a decoded block (clock ms). */
  savedAt: number;
  /** When buffered symbols were last appended to the spool (clock ms). */
  flushedAt: number;
  status: string;
  ok: boolean;
  file?: string;
}

/** {@link ObjectDecoder.add} option: keep the given array (a datagram's own bytes) instead of a copy. */
const NO_COPY = { copy: false } as const;

/** Completion notices sent before going on without an ack (spaced 2 RTT, doubling up to 1 s: about 25 s in all). */
const NOTICE_TRIES = 30;

/** A FIN waiting for the sender's ack. */
interface FinPending {
  readonly gate: UpdateAuthenticator;
  timer: unknown;
  /** Send the FIN again. */
  readonly resend: () => void;
}
/** Times a FIN is sent on its own (2 RTT apart, doubling). */
const FIN_REPEATS = 3;

/** Least time between saves of the resume state after decoded blocks, ms (a crash loses at most this much progress). */
const SAVE_INTERVAL_MS = 1_000;

/** Least time between spool appends of `flushEvery` buffered symbols, ms (the store saves its state every fourth). */
const SPOOL_INTERVAL_MS = 250;

/**
 * How long after its FINs a receiver still answers the sender's request for
 * it (an ack naming the host, while FINs are missing), in ms. The sender also
 * counts a FIN as completion when every notice was lost.
 */
const FIN_LINGER_MS = 60_000;

/**
 * Receives signed multicast updates: checks permission before joining,
 * suppresses duplicate repair requests, keeps partial state on disk so a
 * restart resumes, verifies the whole file's digest before anything is
 * applied, runs the handler and reports its result in `FIN`.
 *
 * @example
 * ```ts
 * const rx = new UpdateReceiver({ socket, policy: { allow: ['app/**'], publisherKeys: [key] }, controlGroup: 'ff15::1',
 *   host: 'host-7', directory: '/var/lib/updates',
 *   handler: (file) => { install(file); return 'installed'; } });
 * rx.on('done', (r) => console.log(r.name, r.status));
 * rx.start();
 * ```
 * @public
 */
export class UpdateReceiver extends EventEmitter<UpdateReceiverEvents> {
  readonly #socket: DatagramSocket;
  readonly #wire: ReceiverWire;
  readonly #crypto: CryptoOption;
  readonly #control: string;
  readonly #data: string;
  readonly #host: string;
  readonly #dir: string;
  readonly #handler: UpdateHandler | undefined;
  readonly #random: () => number;
  readonly #rttMs: number;
  readonly #inactivityMs: number;
  readonly #flushEvery: number;
  #state: ReceiverState = 'idle';
  #t: Transfer | undefined;
  #started = false;
  /** File IDs (with digests) finished lately, so a repeated announcement is not taken twice. */
  readonly #finished = new Set<string>();
  /** FINs sent and not yet acknowledged, by file ID. */
  readonly #finPending = new Map<number, FinPending>();
  readonly #onMessage = (data: Uint8Array, from: DatagramAddress): void => this.#message(data, from);
  /** Counters (live). */
  readonly counters: ReceiverCounters = { datagrams: 0, symbols: 0, junk: 0, foreign: 0, duplicates: 0, forged: 0, refused: 0, requests: 0 };
  /** Reports of finished transfers, in order. */
  readonly reports: ReceiverReport[] = [];

  constructor(options: UpdateReceiverOptions) {
    super();
    checkOption(typeof options?.socket?.send === 'function', 'socket', 'must be a DatagramSocket');
    checkOption(typeof options.controlGroup === 'string' && options.controlGroup !== '', 'controlGroup', 'must be a multicast address');
    checkOption(typeof options.host === 'string' && options.host !== '', 'host', 'must be a non-empty string');
    checkOption(typeof options.directory === 'string' && options.directory !== '', 'directory', 'must be a directory path');
    checkOption(options.handler === undefined || typeof options.handler === 'function', 'handler', 'must be a function');
    const rtt = options.rttMs ?? 50;
    checkOption(Number.isFinite(rtt) && rtt > 0, 'rttMs', 'must be > 0');
    const inactivity = options.inactivityTimeoutMs ?? 60_000;
    checkOption(Number.isFinite(inactivity) && inactivity > 0, 'inactivityTimeoutMs', 'must be > 0');
    const flushEvery = options.flushEvery ?? 64;
    checkOption(Number.isInteger(flushEvery) && flushEvery >= 1, 'flushEvery', 'must be an integer ≥ 1');
    this.#socket = options.socket;
    this.#crypto = options.crypto ? { crypto: options.crypto } : {};
    this.#wire = new ReceiverWire(options.policy, options.history, options.crypto ? { crypto: options.crypto } : {});
    this.#control = options.controlGroup;
    this.#data = options.dataGroup ?? options.controlGroup;
    this.#host = options.host;
    this.#dir = options.directory;
    this.#handler = options.handler;
    this.#random = options.random ?? Math.random;
    this.#rttMs = rtt;
    this.#inactivityMs = inactivity;
    this.#flushEvery = flushEvery;
  }

  /** The current state. */
  get state(): ReceiverState {
    return this.#state;
  }

  /** Requests sent in the running (or last) transfer, including before a restart. */
  get requests(): number {
    return this.#t?.requests ?? this.reports.at(-1)?.requests ?? 0;
  }

  /**
   * Start listening: join the control group, and resume a partial transfer
   * saved in the directory by an earlier run (its announcement checked again).
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    fs.mkdirSync(this.#dir, { recursive: true });
    this.#socket.on('message', this.#onMessage);
    this.#socket.joinGroup(this.#control);
    for (const folder of ResumeStore.list(this.#dir)) {
      if (this.#t) break;
      const raw = ResumeStore.announcementOf(folder);
      const sender = readSender(folder);
      if (!raw || !sender) {
        fs.rmSync(folder, { recursive: true, force: true });
        continue;
      }
      try {
        this.#begin(this.#wire.accept(raw), sender, true);
      } catch (e) {
        // Saved state that no longer checks out (key rotated, permission withdrawn): drop it.
        this.emit('dropped', 'saved announcement refused', asGatesock(e));
        fs.rmSync(folder, { recursive: true, force: true });
      }
    }
  }

  /** Stop: flush partial state to disk, leave the groups, stop every timer. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    const t = this.#t;
    if (t) {
      this.#stopTimers(t);
      if (this.#state === 'joined' || this.#state === 'receiving') t.store.close();
    }
    for (const p of this.#finPending.values()) if (p.timer !== undefined) this.#socket.clock.clearTimer(p.timer);
    this.#finPending.clear();
    this.#socket.off('message', this.#onMessage);
    if (this.#started) {
      for (const g of new Set([this.#control, this.#data])) {
        try {
          this.#socket.leaveGroup(g);
        } catch {
          // the socket's owner closed it already, or it was never joined
        }
      }
    }
    this.#setState('closed', 'close() called');
  }

  #setState(next: ReceiverState, why: string): void {
    this.#state = next;
    this.emit('state', next, why);
  }

  #send(bytes: Uint8Array, to: DatagramAddress): void {
    try {
      this.#socket.send(bytes, to);
    } catch (e) {
      this.emit('dropped', 'send failed', asGatesock(e));
    }
  }

  #message(data: Uint8Array, from: DatagramAddress): void {
    if (this.#state === 'closed') return;
    this.counters.datagrams++;
    let msg: WireMessage;
    try {
      msg = this.#wire.parse(data);
    } catch (e) {
      this.counters.junk++;
      this.emit('dropped', 'junk', asGatesock(e));
      return;
    }
    try {
      this.#dispatch(msg, from, data);
    } catch (e) {
      // A forged or out-of-range packet (the authenticator's DeliveryError), or a disk error:
      // count it and go on — one bad datagram never ends the transfer.
      const code = e instanceof GatesockError ? e.code : '';
      if (code === 'GS_ERR_DELIVERY_BAD_SIGNATURE') this.counters.forged++;
      else if (code === 'GS_ERR_DELIVERY_FOREIGN_FILE') this.counters.foreign++;
      else this.counters.junk++;
      this.emit('dropped', `${msg.kind} refused`, asGatesock(e));
    }
  }

  #dispatch(msg: WireMessage, from: DatagramAddress, data: Uint8Array): void {
    const t = this.#t;
    switch (msg.kind) {
      case 'udate':
        return this.#onAnnounce(data, msg.announcement.fileId, from);
      case 'data':
      case 'repair':
        if (!t || msg.fileId !== t.ann.fileId) return void this.counters.foreign++;
        return this.#onSymbol(t, msg);
      case 'manifest':
        if (!t || msg.fileId !== t.ann.fileId) return void this.counters.foreign++;
        return this.#onManifest(t, msg, data);
      case 'round':
        if (!t || msg.fileId !== t.ann.fileId) return void this.counters.foreign++;
        if (this.#state !== 'joined' && this.#state !== 'receiving') return;
        t.gate.verifyRound(msg); // throws for a forged marker: counted as forged by #message
        return this.#onRound(t, msg.round, msg.grttMs, msg.backoffMs);
      case 'request': {
        if (!t || msg.fileId !== t.ann.fileId) return void this.counters.foreign++;
        const own = this.#socket.localAddress;
        if (from.address !== own.address || from.port !== own.port) t.sched.heard(msg.round, msg.needs, msg.pages);
        return;
      }
      case 'ack': {
        const fin = this.#finPending.get(msg.fileId);
        if (fin && msg.hosts.includes(this.#host)) {
          // After our FIN, an ack naming us is the sender asking for it again (it has not got it).
          fin.gate.verifyAck(msg, this.#host);
          return fin.resend();
        }
        if (!t || msg.fileId !== t.ann.fileId || !msg.hosts.includes(this.#host)) return void this.counters.foreign++;
        t.gate.verifyAck(msg, this.#host);
        if (this.#state === 'complete') this.#verifyAndApply(t, 'completion acknowledged');
        return;
      }
      default:
        // RECV, FIN, notices of other receivers: not for a receiver.
        this.counters.foreign++;
    }
  }

  // --- idle → joined ------------------------------------------------------

  #onAnnounce(raw: Uint8Array, fileId: number, from: DatagramAddress): void {
    const t = this.#t;
    if (t) {
      if (fileId === t.ann.fileId) {
        t.lastHeard = this.#socket.clock.now();
        if (this.#state === 'joined') this.#send(this.#wire.recv(t.ann.name, this.#host), t.sender);
        else if (this.#state === 'receiving') this.#heardSender(t);
      } else this.counters.foreign++;
      return;
    }
    let ann: AcceptedUpdate;
    try {
      ann = this.#wire.accept(raw);
    } catch (e) {
      // Not permitted, badly signed, unsafe name: never join (seed figure 4, "no → 終了").
      this.counters.refused++;
      this.emit('dropped', 'announcement refused', asGatesock(e));
      return;
    }
    if (this.#finished.has(finishedKey(ann.layout.fileId, ann.digest))) return;
    this.#begin(ann, from, false);
  }

  #begin(accepted: AcceptedUpdate, sender: DatagramAddress, resuming: boolean): void {
    const l = accepted.layout;
    const ann = { ...l, name: accepted.verified.name, digest: accepted.digest };
    const blockBytes = l.sourceSymbols * l.symbolSize;
    const store = new ResumeStore(this.#dir, l.fileId, ann.name, l.symbolSize, blockBytes, l.blockCount, l.size);
    const decoder = this.#wire.decoder(accepted, (sbn, bytes) => this.#blockDecoded(sbn, bytes));
    const span = Math.max(0, l.lastSeq - l.firstSeq + 1);
    const t: Transfer = {
      ann,
      accepted,
      gate: new UpdateAuthenticator(accepted.verified, this.#crypto),
      sender,
      store,
      decoder,
      done: new Uint8Array(Math.ceil(l.blockCount / 8)),
      blocksDone: 0,
      digest: new FileDigest(l.blockCount, (sbn) => store.readBlock(sbn)),
      waiting: new Map(),
      verified: new Map(),
      askPages: new Set(),
      have: new Map(),
      exhausted: new Set(),
      sched: new RequestScheduler(this.#socket.clock, this.#random),
      inOrder: null,
      seen: new Uint8Array(Math.ceil(Math.min(span, 1 << 24) / 8)),
      grttMs: this.#rttMs,
      backoffMs: 2 * this.#rttMs,
      requests: 0,
      resumed: false,
      lastHeard: this.#socket.clock.now(),
      idleAsked: -Infinity,
      idleStreak: 0,
      gapMs: 0,
      idleTimer: undefined,
      noticeTimer: undefined,
      noticeTries: 0,
      finTimer: undefined,
      finTries: 0,
      savedAt: -Infinity,
      flushedAt: -Infinity,
      status: '',
      ok: false,
    };
    this.#t = t;
    const saved = resuming ? store.resume() : undefined;
    if (saved) {
      t.resumed = true;
      t.requests = saved.requests;
      for (const sbn of saved.blocksDone) {
        markDone(t, sbn);
        t.gate.forgetBlock(sbn);
      }
      t.digest.advance((sbn) => isDone(t, sbn));
      for (const m of saved.manifests) {
        try {
          const page = this.#wire.parse(m);
          if (page.kind === 'manifest') t.gate.addPage(page);
        } catch {
          // a damaged record: that page is asked for again
        }
      }
      this.#replaying = true;
      try {
        for (const s of saved.symbols) {
          const sbn = s.fecInfo >>> 16;
          const esi = s.fecInfo & 0xffff;
          if (isDone(t, sbn) || !decoder.add(s.fecInfo, s.symbol, NO_COPY).accepted || isDone(t, sbn)) continue;
          // Keep it as the packet it came in, for a block recovery later (see #tryRecover).
          this.#had(t, sbn, esi);
          let list = t.verified.get(sbn);
          if (!list) t.verified.set(sbn, (list = []));
          const payload = s.symbol.subarray(0, symbolPayloadLength(l, sbn, esi));
          list.push({ kind: esi < l.sourceSymbols ? 'data' : 'repair', fileId: l.fileId, seq: symbolSeq(l, sbn, esi), sbn, esi, payload });
        }
      } finally {
        this.#replaying = false;
      }
    } else {
      store.begin(accepted.raw, { sender: { address: sender.address, port: sender.port } });
    }
    this.#socket.joinGroup(this.#data);
    this.#setState(resuming ? 'receiving' : 'joined', resuming ? 'resumed from saved state' : 'permitted: joined the data session');
    this.#send(this.#wire.recv(ann.name, this.#host), sender);
    if (t.blocksDone === l.blockCount) return this.#complete(t);
    this.#armIdle(t);
  }

  #replaying = false;

  // --- receiving ------------------------------------------------------------

  #onManifest(t: Transfer, page: Extract<WireMessage, { kind: 'manifest' }>, raw: Uint8Array): void {
    if (this.#state !== 'joined' && this.#state !== 'receiving') return void this.counters.duplicates++;
    this.#heardSender(t);
    if (this.#state === 'joined') this.#setState('receiving', 'first manifest page');
    if (t.gate.addPage(page) === 'duplicate') return void this.counters.duplicates++; // throws when forged
    t.store.addManifest(raw);
    const pk = page.sbn * 0x10000 + page.page;
    const waiting = t.waiting.get(pk);
    if (waiting) {
      t.waiting.delete(pk);
      for (const m of waiting) {
        if (isDone(t, m.sbn)) break;
        try {
          this.#takeSymbol(t, m);
        } catch (e) {
          this.counters.forged++;
          this.emit('dropped', 'held symbol refused', asGatesock(e));
        }
      }
    }
  }

  #onSymbol(t: Transfer, m: SymbolPacket): void {
    if (this.#state !== 'joined' && this.#state !== 'receiving') return void this.counters.duplicates++;
    if (m.sbn >= t.ann.blockCount) return void this.counters.junk++;
    this.#heardSender(t);
    if (this.#state === 'joined') this.#setState('receiving', 'first data');
    if (isDone(t, m.sbn)) return void this.counters.duplicates++;
    this.#takeSymbol(t, m);
  }

  /** Authenticate (throws when forged), then decode and spool; hold it while its manifest page is missing. */
  #takeSymbol(t: Transfer, m: SymbolPacket): void {
    const check = t.gate.checkSymbol(m);
    if (check.status === 'no-manifest') {
      // Its manifest page is not here yet (lost, or still coming): keep a copy (the socket's buffer is
      // the caller's), bounded by the block's symbol count.
      const pk = m.sbn * 0x10000 + check.page;
      let list = t.waiting.get(pk);
      if (!list) t.waiting.set(pk, (list = []));
      if (list.length < t.ann.sourceSymbols + t.ann.repairSymbols) list.push({ ...m, payload: m.payload.slice() });
      this.#tryRecover(t, m.sbn);
      return;
    }
    if (m.kind === 'data') this.#markSeq(t, m.seq);
    // The sender sends source symbols again, or the pool's last repair symbol, only once the block's
    // pool is used up: from then on this receiver names the source symbols it lacks. (A source symbol
    // after the second round end is a resend; one just after the first may be a late, reordered one.)
    if ((m.kind === 'data' && t.sched.round >= 2) || m.esi === t.ann.sourceSymbols + t.ann.repairSymbols - 1) t.exhausted.add(m.sbn);
    const fecInfo = m.sbn * 0x10000 + m.esi;
    // The datagram is ours (the socket contract) and nothing writes to it: the decoder keeps it, no copy.
    const r = t.decoder.add(fecInfo, check.symbol, NO_COPY);
    if (!r.accepted) return void this.counters.duplicates++;
    this.counters.symbols++;
    if (!r.blockComplete) this.#had(t, m.sbn, m.esi);
    // onBlock has already written a decoded block; a symbol of a still-open block goes to the spool.
    if (!r.blockComplete) {
      t.store.addSymbol(fecInfo, check.symbol);
      // Appends at most every SPOOL_INTERVAL_MS: the store saves its state (a file written and
      // renamed: milliseconds on ext4, which forces the new file out on a rename over an old one)
      // on every fourth append, so appends per `flushEvery` symbols alone cost a third of the CPU.
      if (t.store.buffered >= this.#flushEvery) {
        const now = this.#socket.clock.now();
        if (now - t.flushedAt >= SPOOL_INTERVAL_MS) {
          t.flushedAt = now;
          t.store.flush(false);
        }
      }
      let list = t.verified.get(m.sbn);
      if (!list) t.verified.set(m.sbn, (list = []));
      list.push(m);
      this.#tryRecover(t, m.sbn);
    }
  }

  /** Note that symbol `esi` of open block `sbn` is in the decoder. */
  #had(t: Transfer, sbn: number, esi: number): void {
    let have = t.have.get(sbn);
    if (!have) t.have.set(sbn, (have = new Uint8Array(t.ann.sourceSymbols + t.ann.repairSymbols)));
    have[esi] = 1;
  }

  /** Symbols of block `sbn` held for missing manifest pages. */
  #held(t: Transfer, sbn: number): number {
    let n = 0;
    for (const [pk, list] of t.waiting) if (Math.floor(pk / 0x10000) === sbn) n += list.length;
    return n;
  }

  /**
   * A block with symbols held for a lost manifest page, but enough symbols in
   * all, is decoded from all of them and kept only if it matches the block
   * hash an authentic page of it carried (the wire layer's `recoverBlock`):
   * the lost page need not be sent again. A mismatch (a forged held symbol)
   * drops the held ones, and the missing pages are asked for.
   */
  #tryRecover(t: Transfer, sbn: number): void {
    if (isDone(t, sbn) || t.askPages.has(sbn) || !t.gate.hasBlockHash(sbn)) return;
    const held = this.#held(t, sbn);
    const verified = t.verified.get(sbn) ?? [];
    if (held === 0 || held + verified.length < blockSourceCount(t.ann, sbn)) return;
    const packets: SymbolPacket[] = [...verified];
    for (const [pk, list] of t.waiting) if (Math.floor(pk / 0x10000) === sbn) packets.push(...list);
    let source: Uint8Array[] | undefined;
    try {
      source = t.gate.recoverBlock(sbn, packets);
    } catch {
      source = undefined;
    }
    for (const pk of [...t.waiting.keys()]) if (Math.floor(pk / 0x10000) === sbn) t.waiting.delete(pk);
    if (!source) {
      this.counters.forged += held;
      t.askPages.add(sbn);
      return;
    }
    // The block is decoded and checked against its hash: hand it over whole (the decoder would otherwise
    // decode it again from the repair symbols it holds: a quarter of a receiver's CPU at 5 % loss).
    const T = t.ann.symbolSize;
    const bytes = new Uint8Array(Math.min(t.ann.sourceSymbols * T, t.ann.size - sbn * t.ann.sourceSymbols * T));
    for (let esi = 0; esi < source.length; esi++) bytes.set(source[esi]!.subarray(0, Math.min(T, bytes.length - esi * T)), esi * T);
    t.decoder.setBlock(sbn, bytes);
  }

  #blockDecoded(sbn: number, bytes: Uint8Array): void {
    const t = this.#t!;
    t.store.writeBlock(sbn, bytes);
    markDone(t, sbn);
    t.digest.advance((b) => isDone(t, b));
    t.gate.forgetBlock(sbn);
    for (const pk of [...t.waiting.keys()]) if (Math.floor(pk / 0x10000) === sbn) t.waiting.delete(pk);
    t.verified.delete(sbn);
    t.askPages.delete(sbn);
    t.have.delete(sbn);
    t.exhausted.delete(sbn);
    if (this.#replaying) return;
    // Saving the state (a file written, then renamed over the old one, which ext4 forces out) costs
    // 1–10 ms: once per block it was a third of a receiver's CPU. So at most every SAVE_INTERVAL_MS —
    // a crash loses at most that much progress (the data is on disk; only the state that counts it is
    // older) — and always for the last block.
    const now = this.#socket.clock.now();
    if (now - t.savedAt >= SAVE_INTERVAL_MS || t.blocksDone === t.ann.blockCount) {
      t.savedAt = now;
      t.flushedAt = now;
      t.store.flush();
    }
    this.emit('progress', { name: t.ann.name, blocksDone: t.blocksDone, blocks: t.ann.blockCount });
    if (t.blocksDone === t.ann.blockCount) this.#complete(t);
  }

  /** Track the highest source sequence received in order (the seed's request field). */
  #markSeq(t: Transfer, seq: number): void {
    const first = t.ann.firstSeq;
    const i = seq - first;
    if (i < 0 || i >= t.seen.length * 8) return;
    t.seen[i >>> 3]! |= 1 << (i & 7);
    let j = t.inOrder === null ? 0 : t.inOrder - first + 1;
    while (j < t.seen.length * 8 && (t.seen[j >>> 3]! & (1 << (j & 7))) !== 0) j++;
    if (j > 0) t.inOrder = first + j - 1;
  }

  #heardSender(t: Transfer): void {
    const now = this.#socket.clock.now();
    // Mean gap between datagrams from the sender (EWMA, gaps over 1 s ignored): at a low rate the idle
    // detector must wait longer than a few RTTs, or it would ask in the middle of a pass.
    const gap = now - t.lastHeard;
    if (gap > 0 && gap < 1_000) t.gapMs = t.gapMs === 0 ? gap : 0.9 * t.gapMs + 0.1 * gap;
    t.lastHeard = now;
    if (t.idleTimer === undefined) this.#armIdle(t);
  }

  /**
   * The fallback end-of-pass detector: when no datagram of this transfer has
   * come for a few group RTTs (the round marker lost, or the sender waiting
   * for requests nobody sent), ask anyway. Also bounds the whole transfer:
   * past `inactivityTimeoutMs` of silence the receiver gives up (state kept).
   * One timer; a datagram only moves `lastHeard`, and the timer, when it
   * fires early, sleeps again for the rest.
   */
  #armIdle(t: Transfer): void {
    const clock = this.#socket.clock;
    const idle = Math.max(4 * t.grttMs, 2 * t.backoffMs, 8 * t.gapMs);
    // Asking again and again into silence: wait twice as long each time (up to 64×, ~3 s at a 12 ms RTT).
    const again = t.idleAsked > t.lastHeard ? idle * 2 ** Math.min(6, t.idleStreak) : idle;
    const due = Math.max(t.lastHeard + idle, t.idleAsked + again);
    t.idleTimer = clock.setTimer(() => {
      t.idleTimer = undefined;
      if (this.#t !== t || (this.#state !== 'joined' && this.#state !== 'receiving')) return;
      const now = clock.now();
      if (now - t.lastHeard >= this.#inactivityMs) return this.#abandon(t);
      // Before any data or marker the sender is still collecting RECVs: nothing to ask yet.
      if (this.#state === 'receiving' && now >= t.lastHeard + idle && now >= t.idleAsked + again) {
        t.idleStreak = t.idleAsked > t.lastHeard ? t.idleStreak + 1 : 0;
        t.idleAsked = now;
        this.#scheduleRequest(t);
      }
      this.#armIdle(t);
    }, Math.max(1, due - clock.now()));
  }

  #onRound(t: Transfer, round: number, grttMs: number, backoffMs: number): void {
    if (this.#state !== 'joined' && this.#state !== 'receiving') return;
    if (this.#state === 'joined') this.#setState('receiving', 'round marker (all of round 1 lost)');
    t.grttMs = Math.max(1, grttMs);
    t.backoffMs = Math.max(1, backoffMs);
    t.sched.newRound(round);
    this.#heardSender(t);
    this.#scheduleRequest(t);
  }

  #wants(t: Transfer): Wants {
    // Symbols held for a missing manifest page count as had: the page is asked for, and comes back
    // before the next round's symbols, so the block needs only the rest.
    const held = new Map<number, number>();
    const pages: PageRef[] = [];
    for (const [pk, list] of t.waiting) {
      if (list.length === 0) continue;
      const sbn = Math.floor(pk / 0x10000);
      held.set(sbn, (held.get(sbn) ?? 0) + list.length);
      // A lost page is asked for only when the block cannot be recovered without it.
      if (!t.gate.hasBlockHash(sbn)) pages.push({ sbn, page: pk % 0x10000 });
    }
    for (const sbn of t.askPages) for (const page of t.gate.missingPages(sbn)) pages.push({ sbn, page });
    const needs: BlockNeed[] = [];
    for (let sbn = 0; sbn < t.ann.blockCount; sbn++) {
      if (isDone(t, sbn)) continue;
      const h = held.get(sbn) ?? 0;
      const need = t.decoder.needed(sbn) - h;
      if (need > 0) needs.push({ sbn, need });
      else if (h > 0 && !t.askPages.has(sbn) && h + (t.verified.get(sbn)?.length ?? 0) < blockSourceCount(t.ann, sbn)) {
        // Enough symbols, but not enough known as packets to recover the block: ask for the pages after all.
        for (const [pk, list] of t.waiting) if (list.length > 0 && Math.floor(pk / 0x10000) === sbn) pages.push({ sbn, page: pk % 0x10000 });
      }
    }
    pages.sort((a, b) => a.sbn - b.sbn || a.page - b.page);
    // One block whose pool is used up: the source symbols it lacks, for plain retransmission.
    let lacking: Wants['lacking'] = null;
    for (const n of needs) {
      if (!t.exhausted.has(n.sbn)) continue;
      const have = t.have.get(n.sbn);
      const esis: number[] = [];
      for (let esi = 0; esi < blockSourceCount(t.ann, n.sbn); esi++) if (!have?.[esi]) esis.push(esi);
      lacking = { sbn: n.sbn, esis };
      break;
    }
    return { needs, pages, lacking };
  }

  #scheduleRequest(t: Transfer): void {
    if (t.blocksDone === t.ann.blockCount) return;
    t.sched.arm(
      t.backoffMs,
      () => this.#wants(t),
      (uncovered) => {
        if (this.#t !== t || (this.#state !== 'joined' && this.#state !== 'receiving')) return;
        if (uncovered.needs.length === 0 && uncovered.pages.length === 0 && !uncovered.lacking) return;
        t.requests++;
        t.store.requests = t.requests;
        this.counters.requests++;
        const round = Math.max(0, t.sched.round);
        // To the data group on our port, so the other receivers hear it and hold back theirs (and the
        // sender, bound to the same updater port); straight to the sender too when it uses another port.
        const own = this.#socket.localAddress.port;
        for (const bytes of this.#wire.request(t.ann.fileId, t.inOrder, round, uncovered.needs, uncovered.pages, uncovered.lacking)) {
          this.#send(bytes, { address: this.#data, port: own });
          if (t.sender.port !== own) this.#send(bytes, t.sender);
        }
      },
    );
  }

  #abandon(t: Transfer): void {
    this.#stopTimers(t);
    t.store.close();
    this.#socket.leaveGroup(this.#data);
    this.#t = undefined;
    this.emit('dropped', 'sender silent: transfer abandoned, partial state kept', new DeliveryError('GS_ERR_DELIVERY_TIMEOUT', `no datagram from the sender of ${t.ann.name} for ${this.#inactivityMs} ms`));
    this.#setState('idle', 'sender silent past inactivityTimeoutMs');
  }

  // --- complete → verified → applied → fin-sent ------------------------------

  #complete(t: Transfer): void {
    t.store.close();
    t.sched.cancel();
    if (t.idleTimer !== undefined) this.#socket.clock.clearTimer(t.idleTimer);
    t.idleTimer = undefined;
    this.#setState('complete', 'every block decoded: completion notice sent');
    const notice = (): void => {
      t.noticeTimer = undefined;
      if (this.#t !== t || this.#state !== 'complete') return;
      if (t.noticeTries >= NOTICE_TRIES) return this.#verifyAndApply(t, `no completion ack after ${NOTICE_TRIES} notices`);
      t.noticeTries++;
      this.#send(this.#wire.notice(t.ann.fileId, this.#host, t.requests), t.sender);
      t.noticeTimer = this.#socket.clock.setTimer(notice, Math.min(1_000, Math.max(2 * t.grttMs, 10) * 2 ** (t.noticeTries - 1)));
    };
    notice();
  }

  #verifyAndApply(t: Transfer, why: string): void {
    if (t.noticeTimer !== undefined) this.#socket.clock.clearTimer(t.noticeTimer);
    t.noticeTimer = undefined;
    // Ready unless a block could not be read back: then one pass over the whole file.
    const digest = t.digest.result() ?? fileDigest(t.store.dataPath);
    if (digest === undefined || !bytesEqual(digest, t.ann.digest)) {
      // Never applied: the rebuilt file is not what the publisher signed.
      t.store.discard();
      return this.#finish(t, 'failed: digest mismatch (nothing applied)', false);
    }
    const target = resolveUpdatePath(this.#dir, t.ann.name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(t.store.dataPath, target);
    this.#wire.record(t.accepted);
    t.store.discard();
    t.file = target;
    this.#setState('verified', `${why}; SHA-256 matches the signed digest`);
    const handler = this.#handler;
    if (!handler) {
      this.#setState('applied', 'no handler');
      return this.#finish(t, 'ok', true);
    }
    let result: string | Promise<string>;
    try {
      result = handler(target, { name: t.ann.name, size: t.ann.size, fileId: t.ann.fileId });
    } catch (e) {
      this.#setState('applied', 'handler threw');
      return this.#finish(t, `failed: ${errorText(e)}`, false);
    }
    if (typeof result === 'string') {
      this.#setState('applied', 'handler returned');
      return this.#finish(t, result, true);
    }
    Promise.resolve(result).then(
      (status) => {
        if (this.#t !== t || this.#state === 'closed') return;
        this.#setState('applied', 'handler resolved');
        this.#finish(t, String(status), true);
      },
      (e: unknown) => {
        if (this.#t !== t || this.#state === 'closed') return;
        this.#setState('applied', 'handler rejected');
        this.#finish(t, `failed: ${errorText(e)}`, false);
      },
    );
  }

  #finish(t: Transfer, status: string, ok: boolean): void {
    t.status = status;
    t.ok = ok;
    // FIN goes a few times (spaced 2 RTT, doubling); then the receiver stays in the data group for a
    // while, and sends it again whenever the sender's ack names it (the sender asks for missing FINs).
    const fin = this.#wire.fin(t.ann.name, status);
    const clock = this.#socket.clock;
    const pending: FinPending = {
      gate: t.gate,
      timer: undefined,
      resend: () => this.#send(fin, t.sender),
    };
    this.#finPending.set(t.ann.fileId, pending);
    const repeat = (): void => {
      pending.timer = undefined;
      if (this.#state === 'closed' || this.#finPending.get(t.ann.fileId) !== pending) return;
      if (t.finTries >= FIN_REPEATS) {
        pending.timer = clock.setTimer(() => this.#finDone(t.ann.fileId), FIN_LINGER_MS);
        return;
      }
      pending.resend();
      t.finTries++;
      pending.timer = clock.setTimer(repeat, Math.min(1_000, Math.max(2 * t.grttMs, 10) * 2 ** (t.finTries - 1)));
    };
    repeat();
    const report: ReceiverReport = {
      name: t.ann.name,
      fileId: t.ann.fileId,
      ...(t.file !== undefined ? { file: t.file } : {}),
      status,
      ok,
      requests: t.requests,
      suppressed: t.sched.suppressed,
      resumed: t.resumed,
    };
    this.#finished.add(finishedKey(t.ann.fileId, t.ann.digest));
    this.reports.push(report);
    this.#setState('fin-sent', `FIN ${status}`);
    this.emit('done', report);
    // Ready for the next update; the FIN repeats keep running on their own timer.
    this.#t = undefined;
    this.#state = 'idle';
  }

  /** Done answering for a FIN: stop, and leave the data group if no transfer runs. */
  #finDone(fileId: number): void {
    const p = this.#finPending.get(fileId);
    if (!p) return;
    if (p.timer !== undefined) this.#socket.clock.clearTimer(p.timer);
    this.#finPending.delete(fileId);
    if (!this.#t && this.#finPending.size === 0 && this.#state !== 'closed') this.#socket.leaveGroup(this.#data);
  }

  #stopTimers(t: Transfer): void {
    const clock = this.#socket.clock;
    t.sched.cancel();
    for (const h of [t.idleTimer, t.noticeTimer, t.finTimer]) if (h !== undefined) clock.clearTimer(h);
    t.idleTimer = t.noticeTimer = t.finTimer = undefined;
  }
}

function isDone(t: Transfer, sbn: number): boolean {
  return (t.done[sbn >>> 3]! & (1 << (sbn & 7))) !== 0;
}

function markDone(t: Transfer, sbn: number): void {
  if (isDone(t, sbn)) return;
  t.done[sbn >>> 3]! |= 1 << (sbn & 7);
  t.blocksDone++;
}

function finishedKey(fileId: number, digest: Uint8Array): string {
  return `${fileId}:${Buffer.from(digest).toString('hex')}`;
}

function fileDigest(file: string): Uint8Array | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return new Uint8Array(h.digest());
  } finally {
    fs.closeSync(fd);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function readSender(folder: string): DatagramAddress | undefined {
  const s = (ResumeStore.extraOf(folder)?.['sender'] ?? undefined) as { address?: unknown; port?: unknown } | undefined;
  if (s && typeof s.address === 'string' && Number.isInteger(s.port)) return { address: s.address, port: s.port as number };
  return undefined;
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').slice(0, 200);
}

function asGatesock(e: unknown): GatesockError | undefined {
  return e instanceof GatesockError ? e : undefined;
}
