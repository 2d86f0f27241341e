/**
 * The multicast update sender's state machine (DESIGN.md system 2; seed
 * §3.3.2, figures 4–6), over any {@link DatagramSocket}, every timer on
 * `socket.clock`, every datagram through one rate limiter.
 *
 * ```text
 *  state           event                                   → next            action
 *  announcing      start()                                 → collecting      multicast the signed UDATE, repeat every announceIntervalMs
 *  collecting      RECV                                    → collecting      list the host, sample the RTT
 *  collecting      all expected hosts listed, or the join  → sending         hosts never heard: dropped "never answered"
 *                  window (joinWindowMs) over
 *  collecting      window over, nobody listed              → done            nothing to send
 *  sending         round 1 queued and sent                 → repairing       announcement + round marker, wait for requests
 *  repairing       wait over, requests heard               → repairing       next round: fresh repair per block (max need), or the named
 *                                                                            source symbols where the pool is used up; marker, wait
 *  repairing       wait over, nothing asked, some missing  → repairing       marker again (not a counted round); drop the silent
 *  any sending     completion notice                       → (same)          mark completed, ack (again for a repeat; batched)
 *  any sending     FIN                                     → (same)          keep its status (counts as completion too)
 *  any sending     a completed host without FIN for a while → (same)         ack naming it: it sends its FIN again
 *  any sending     request past maxRequests                → (same)          drop that host "too many requests"
 *  repairing       every listed host completed or dropped  → collecting-fin  wait for FINs
 *  collecting-fin  every completed host's FIN, or finTimeoutMs → done        resolve the report
 *  any             close()                                 → closed          stop timers, drop the queue
 * ```
 *
 * Receivers are listed from `RECV` (and from a notice or FIN of a host whose
 * `RECV` was lost); a host that appears later (a restarted receiver, or one
 * that missed the join and heard the announcement repeated with a round
 * marker) is served too. A round is counted when the sender answers requests (round
 * 1 = the initial transmission); passes that only repeat the round marker
 * are not counted.
 */
import { EventEmitter } from 'eventemitter3';
import { GatesockError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import { blockSourceSymbols, type ObjectEncoder } from '../../fec/index.js';
import type { DatagramAddress, DatagramSocket } from '../../transport/index.js';
import { decodeDatagram, type BlockNeed, type PageRef, type PreparedUpdate, type WireMessage } from './wire/index.js';
import { Pacer } from './pacer.js';
import { nextRate, proactiveRepair, requestLoss, roundRepair } from './rounds.js';

/**
 * States of an {@link UpdateSender} (see the table in sender.ts).
 * @public
 */
export type SenderState = 'announcing' | 'collecting' | 'sending' | 'repairing' | 'collecting-fin' | 'done' | 'closed';

/**
 * Options of {@link UpdateSender}. Times are milliseconds on the socket's clock.
 * @public
 */
export interface UpdateSenderOptions {
  /**
   * The bound socket; its clock times everything. Bind it to a port other
   * than the receivers' (port 0 will do): receivers then send their requests
   * to it by unicast as well as to the group, and it never hears its own
   * data. On the receivers' port it must join the data group to hear
   * requests, and multicast loopback then hands it back every datagram it
   * sends, a receive per datagram on the CPU that paces the transfer
   * ({@link SenderReport.echoes} counts them).
   */
  readonly socket: DatagramSocket;
  /** The signed update (`prepareUpdate`): announcement, encoder, manifest pages, signed markers and acks. */
  readonly update: PreparedUpdate;
  /** Group the announcement goes to. */
  readonly controlGroup: string;
  /** Group the data goes to (receivers' requests come to it too, on the receivers' port). Default `controlGroup`. */
  readonly dataGroup?: string;
  /** Port of the receivers. Default: the socket's own port. */
  readonly port?: number;
  /** Rate limit, bits per second of UDP payload; always in force. Default 100,000,000. */
  readonly rateBps?: number;
  /**
   * Burst allowance of the rate limit, ms of `rateBps`: sending time a late
   * timer (a busy machine) would otherwise lose is made up by up to this much
   * at once; the long-run rate never exceeds `rateBps`. Never less than 16
   * datagrams' worth. Default 20 (250,000 bytes at 100 Mbit/s).
   */
  readonly burstMs?: number;
  /** Hosts expected to answer: the join ends as soon as all have; the missing are reported. */
  readonly expectedHosts?: readonly string[];
  /** How long to collect `RECV`s: without expected hosts, the whole window; with them, at most this. Default 2,000. */
  readonly joinWindowMs?: number;
  /** Interval between repeated announcements while collecting. Default 250. */
  readonly announceIntervalMs?: number;
  /** Loss rate to plan proactive repair for (e.g. the previous transfer's {@link SenderReport.lossEstimate}). Default 0.02. */
  readonly expectedLoss?: number;
  /** Group round-trip time to assume before any is measured. Default 50. */
  readonly rttMs?: number;
  /** Receivers' longest request back-off, in group RTTs. Default 2. */
  readonly backoffRtts?: number;
  /** A listed host silent (no request, no notice) this long while others still run is dropped. Default 30,000. */
  readonly silentTimeoutMs?: number;
  /** A host that sends more requests than this is dropped. Default 100. */
  readonly maxRequests?: number;
  /** How long to wait for FINs once every host completed or was dropped. Default 60,000. */
  readonly finTimeoutMs?: number;
  /** Worst loss a round's requests may show before the rate halves. Default 0.25. */
  readonly heavyLossThreshold?: number;
  /** Blocks interleaved in round 1 (a loss burst spreads over them). Default 8. */
  readonly interleave?: number;
}

/**
 * What became of one receiver.
 * @public
 */
export interface ReceiverOutcome {
  /** Host name from its `RECV` (or the expected-hosts list). */
  readonly host: string;
  /** Its unicast address, once heard. */
  readonly address?: DatagramAddress;
  /** It answered the announcement. */
  readonly joined: boolean;
  /** It sent its completion notice (and was acked). */
  readonly completed: boolean;
  /** The round in which it completed. */
  readonly rounds?: number;
  /** Requests the sender heard from it. */
  readonly requests: number;
  /** Its `FIN` status. */
  readonly result?: string;
  /** Why it was dropped (never answered, too many requests, silent). */
  readonly dropped?: string;
}

/**
 * Sender bytes by kind of datagram.
 * @public
 */
export interface SenderBytes {
  /** `UDATE` announcements. */
  announce: number;
  /** Manifest pages. */
  manifest: number;
  /** Source symbols (first sends and plain retransmissions). */
  data: number;
  /** Repair symbols. */
  repair: number;
  /** Round-end markers. */
  round: number;
  /** Completion acks. */
  ack: number;
}

/**
 * The sender's final report.
 * @public
 */
export interface SenderReport {
  /** Update name. */
  readonly name: string;
  /** File ID of the transfer. */
  readonly fileId: number;
  /** File size in bytes. */
  readonly fileSize: number;
  /** Rounds: passes that answered requests, round 1 being the first transmission. */
  readonly rounds: number;
  /** Every datagram sent (announcements, manifests, data, repair, markers, acks). */
  readonly datagramsSent: number;
  /** Their bytes (UDP payload). */
  readonly bytesSent: number;
  /** `bytesSent` by kind of datagram. */
  readonly bytesByKind: SenderBytes;
  /** `bytesSent / fileSize`. */
  readonly overhead: number;
  /** Datagrams dropped as junk or foreign. */
  readonly junk: number;
  /**
   * This update's own data-session datagrams heard back (multicast loopback
   * to a sender socket bound to the receivers' port); 0 when the socket has a
   * port of its own, as {@link UpdateSenderOptions.socket} advises.
   */
  readonly echoes: number;
  /** Loss seen in round 1's requests (worst receiver): a good `expectedLoss` for the next transfer. */
  readonly lossEstimate: number;
  /** Rate in force at the end (after back-offs), bits/s. */
  readonly rateBps: number;
  /** Group RTT used, ms. */
  readonly grttMs: number;
  /** Time from start to done, ms (virtual on a simulated network). */
  readonly durationMs: number;
  /** Per receiver. */
  readonly receivers: readonly ReceiverOutcome[];
}

/**
 * Events of an {@link UpdateSender}.
 * @public
 */
export interface UpdateSenderEvents {
  /** The state changed; `why` says which rule. */
  state: (state: SenderState, why: string) => void;
  /** After each datagram batch and each completion: enough for a progress bar. */
  progress: (p: { readonly bytesSent: number; readonly receiversDone: number; readonly receiversTotal: number; readonly round: number }) => void;
  /** A receiver completed or was dropped. */
  receiver: (outcome: ReceiverOutcome) => void;
  /** The transfer ended: the final report. */
  done: (report: SenderReport) => void;
  /** A datagram was dropped (junk); for logs. */
  dropped: (reason: string, error?: GatesockError) => void;
}

interface Rx {
  host: string;
  address?: DatagramAddress;
  joined: boolean;
  completed: boolean;
  rounds?: number;
  requests: number;
  result?: string;
  dropped?: string;
  lastHeard: number;
  /** When its completion was heard. */
  completedAt?: number;
}

/** One symbol to send in a pass; `esi < 0` is manifest page `−esi − 1` of the block. */
interface Item {
  readonly sbn: number;
  readonly esi: number;
}

const DEFAULTS = Object.freeze({
  rateBps: 100_000_000,
  burstMs: 20,
  joinWindowMs: 2_000,
  announceIntervalMs: 250,
  expectedLoss: 0.02,
  rttMs: 50,
  backoffRtts: 2,
  silentTimeoutMs: 30_000,
  maxRequests: 100,
  finTimeoutMs: 60_000,
  heavyLossThreshold: 0.25,
  interleave: 8,
});

/** Completion notices arriving within this many ms share one ack datagram. */
const ACK_BATCH_MS = 5;

/** RTT samples are clamped to this range, ms. */
const RTT_RANGE = [1, 5_000] as const;

/**
 * Sends one signed update to every receiver that answers: FEC source and
 * proactive repair first, then rounds of fresh repair for what receivers
 * still lack, until each has confirmed completion or was dropped; then
 * collects every `FIN`.
 *
 * @example
 * ```ts
 * const update = prepareUpdate(file, { name: 'app.tar.gz', key, fileId: 7, version: 3 });
 * const tx = new UpdateSender({ socket, update, controlGroup: 'ff15::1' });
 * tx.on('progress', (p) => bar.update(p.receiversDone));
 * const report = await tx.start();
 * ```
 * @public
 */
export class UpdateSender extends EventEmitter<UpdateSenderEvents> {
  readonly #o: Required<Omit<UpdateSenderOptions, 'expectedHosts' | 'dataGroup' | 'port'>> & { dataGroup: string; port: number; expectedHosts?: readonly string[] | undefined };
  readonly #update: PreparedUpdate;
  readonly #encoder: ObjectEncoder;
  readonly #name: string;
  readonly #fileId: number;
  readonly #pacer: Pacer;
  readonly #rx = new Map<string, Rx>();
  /** Hosts by unicast address: several receivers may share one (processes on one host, one port). */
  readonly #byAddress = new Map<string, Rx[]>();
  readonly #k: number;
  readonly #m: number;
  readonly #blocks: number;
  /** Next fresh repair ESI per block (k … k+m−1, then plain retransmission cycles). */
  readonly #nextEsi: Int32Array;
  /** Symbols of each block sent so far. */
  readonly #sentPerBlock: Int32Array;
  /** 1 for a block whose repair pool was used up (retransmission from then on). */
  readonly #poolUsed: Uint8Array;
  #state: SenderState = 'announcing';
  #startedAt = 0;
  #timer: unknown;
  #finTimer: unknown;
  #lastAnnounceAt = -1;
  #grtt: number;
  #rttMeasured = false;
  /** Counted rounds; and the marker number on the wire (counts empty passes too). */
  #rounds = 0;
  #marker = 0;
  /** Largest need per block heard since the last plan, and whether its manifest was asked for. */
  readonly #needs = new Map<number, number>();
  /** Manifest pages (`sbn · 65536 + page`) asked for since the last plan, and those ever sent. */
  readonly #pagesAsked = new Set<number>();
  readonly #pagesSent = new Set<number>();
  /** Source symbols asked for by name (blocks whose pool is used up), since the last plan. */
  readonly #lacking = new Map<number, Set<number>>();
  #worstLoss = 0;
  /** True between a pass's end (marker sent) and the plan of the next. */
  #waiting = false;
  /** Hosts whose completion ack is due, and the timer that sends them in one batch. */
  readonly #ackQueue = new Set<string>();
  #ackTimer: unknown;
  #pokeTimer: unknown;
  /** Passes in a row that nobody answered. */
  #emptyPasses = 0;
  #lossEstimate = -1;
  #junk = 0;
  #echoes = 0;
  readonly #bytesBy: SenderBytes = { announce: 0, manifest: 0, data: 0, repair: 0, round: 0, ack: 0 };
  #resolve: ((r: SenderReport) => void) | undefined;
  #promise: Promise<SenderReport> | undefined;
  #report: SenderReport | undefined;
  readonly #onMessage = (data: Uint8Array, from: DatagramAddress): void => this.#message(data, from);

  constructor(options: UpdateSenderOptions) {
    super();
    checkOption(typeof options?.socket?.send === 'function', 'socket', 'must be a DatagramSocket');
    checkOption(typeof options.update?.symbolPacket === 'function', 'update', 'must be a PreparedUpdate (prepareUpdate)');
    checkOption(typeof options.controlGroup === 'string' && options.controlGroup !== '', 'controlGroup', 'must be a multicast address');
    const o = { ...DEFAULTS, ...stripUndefined(options) } as typeof DEFAULTS & UpdateSenderOptions;
    checkOption(Number.isFinite(o.rateBps) && o.rateBps >= 8_000, 'rateBps', 'must be ≥ 8000 bits/s (the rate limit is always on)');
    for (const key of ['joinWindowMs', 'announceIntervalMs', 'rttMs', 'silentTimeoutMs', 'finTimeoutMs', 'backoffRtts'] as const) {
      checkOption(Number.isFinite(o[key]) && o[key] > 0, key, 'must be > 0');
    }
    checkOption(Number.isFinite(o.burstMs) && o.burstMs >= 0 && o.burstMs <= 1_000, 'burstMs', 'must be in [0, 1000]');
    checkOption(o.expectedLoss >= 0 && o.expectedLoss < 1, 'expectedLoss', 'must be in [0, 1)');
    checkOption(o.heavyLossThreshold > 0 && o.heavyLossThreshold < 1, 'heavyLossThreshold', 'must be in (0, 1)');
    checkOption(Number.isInteger(o.maxRequests) && o.maxRequests >= 1, 'maxRequests', 'must be an integer ≥ 1');
    checkOption(Number.isInteger(o.interleave) && o.interleave >= 1, 'interleave', 'must be an integer ≥ 1');
    checkOption(options.expectedHosts === undefined || Array.isArray(options.expectedHosts), 'expectedHosts', 'must be an array of host names');
    this.#o = { ...o, dataGroup: options.dataGroup ?? options.controlGroup, port: options.port ?? options.socket.localAddress.port };
    this.#update = options.update;
    this.#encoder = options.update.encoder;
    this.#name = options.update.announcement.name;
    this.#fileId = options.update.announcement.fileId;
    const layout = this.#encoder.layout;
    this.#k = layout.sourceSymbols;
    this.#m = layout.repairSymbols;
    this.#blocks = layout.blockCount;
    this.#nextEsi = new Int32Array(this.#blocks);
    this.#sentPerBlock = new Int32Array(this.#blocks);
    this.#poolUsed = new Uint8Array(this.#blocks);
    this.#pacer = new Pacer(options.socket.clock, o.rateBps, 16 * 1500, o.burstMs);
    this.#grtt = o.rttMs;
    for (const host of options.expectedHosts ?? []) {
      this.#rx.set(host, { host, joined: false, completed: false, requests: 0, lastHeard: 0 });
    }
  }

  /** The current state. */
  get state(): SenderState {
    return this.#state;
  }

  /** The final report, once done. */
  get report(): SenderReport | undefined {
    return this.#report;
  }

  /** The report as it stands now (the final one once done). */
  snapshot(): SenderReport {
    return this.#report ?? this.#makeReport();
  }

  /** Counted rounds so far. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Bytes sent so far. */
  get bytesSent(): number {
    return this.#pacer.bytes;
  }

  /**
   * Run the transfer; resolves with the report when every receiver has
   * completed (or was dropped) and the FINs are in (or `finTimeoutMs` passed).
   */
  start(): Promise<SenderReport> {
    if (this.#promise) return this.#promise;
    this.#promise = new Promise((resolve) => (this.#resolve = resolve));
    const s = this.#o.socket;
    this.#startedAt = s.clock.now();
    s.on('message', this.#onMessage);
    // On a port of its own, requests come by unicast, and joining would gain nothing.
    if (this.#onReceiversPort) s.joinGroup(this.#o.dataGroup);
    this.#setState('collecting', 'announcement multicast');
    this.#announce(0);
    return this.#promise;
  }

  /** Stop at once: timers stopped, queued datagrams dropped. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#stopTimers();
    this.#pacer.close();
    this.#o.socket.off('message', this.#onMessage);
    if (this.#state !== 'done') this.#leaveGroup();
    const wasDone = this.#state === 'done';
    this.#setState('closed', 'close() called');
    if (!wasDone) this.#resolve?.(this.#makeReport());
  }

  /** The socket is bound to the receivers' port, where their requests to the data group go. */
  get #onReceiversPort(): boolean {
    return this.#o.port === this.#o.socket.localAddress.port;
  }

  /** Stop hearing the data group (requests); a socket already closed is fine. */
  #leaveGroup(): void {
    if (!this.#onReceiversPort) return;
    try {
      this.#o.socket.leaveGroup(this.#o.dataGroup);
    } catch {
      // closed by its owner already
    }
  }

  #setState(next: SenderState, why: string): void {
    this.#state = next;
    this.emit('state', next, why);
  }

  #stopTimers(): void {
    const clock = this.#o.socket.clock;
    for (const h of [this.#timer, this.#finTimer, this.#ackTimer, this.#pokeTimer]) if (h !== undefined) clock.clearTimer(h);
    this.#timer = this.#finTimer = this.#ackTimer = this.#pokeTimer = undefined;
  }

  #send(kind: keyof SenderBytes, bytes: Uint8Array, to: DatagramAddress, after?: () => void): void {
    const socket = this.#o.socket;
    this.#bytesBy[kind] += bytes.length;
    this.#pacer.push(bytes, () => {
      try {
        socket.send(bytes, to);
      } catch (e) {
        this.emit('dropped', 'send failed', e instanceof GatesockError ? e : undefined);
      }
      after?.();
    });
  }

  #group(which: 'control' | 'data'): DatagramAddress {
    return { address: which === 'control' ? this.#o.controlGroup : this.#o.dataGroup, port: this.#o.port };
  }

  #progress(): void {
    let done = 0;
    for (const r of this.#rx.values()) if (r.completed || r.dropped !== undefined) done++;
    this.emit('progress', { bytesSent: this.#pacer.bytes, receiversDone: done, receiversTotal: this.#rx.size, round: this.#rounds });
  }

  // --- announcing / collecting -------------------------------------------------

  #announce(n: number): void {
    this.#timer = undefined;
    if (this.#state !== 'collecting') return;
    const clock = this.#o.socket.clock;
    const elapsed = clock.now() - this.#startedAt;
    if (elapsed >= this.#o.joinWindowMs || this.#allExpectedJoined()) return this.#endJoin();
    this.#send('announce', this.#update.announcementDatagram(), this.#group('control'), () => (this.#lastAnnounceAt = clock.now()));
    const next = Math.min(this.#o.announceIntervalMs, this.#o.joinWindowMs - elapsed);
    this.#timer = clock.setTimer(() => this.#announce(n + 1), next);
  }

  #allExpectedJoined(): boolean {
    const expected = this.#o.expectedHosts;
    if (!expected || expected.length === 0) return false;
    return expected.every((h) => this.#rx.get(h)?.joined === true);
  }

  #endJoin(): void {
    for (const r of this.#rx.values()) {
      if (!r.joined && r.dropped === undefined) this.#drop(r, 'never answered the announcement');
    }
    if (![...this.#rx.values()].some((r) => r.joined && r.dropped === undefined)) {
      return this.#finish('no receiver answered');
    }
    this.#setState('sending', `${this.#rx.size} receivers listed`);
    this.#roundOne();
  }

  // --- sending / repairing ----------------------------------------------------------

  #roundOne(): void {
    this.#rounds = 1;
    const p = this.#o.expectedLoss;
    const items: Item[] = [];
    const w = this.#o.interleave;
    for (let first = 0; first < this.#blocks; first += w) {
      const last = Math.min(this.#blocks, first + w);
      let most = 0;
      const counts: number[] = [];
      for (let sbn = first; sbn < last; sbn++) {
        const kb = blockSourceSymbols(this.#encoder.layout, sbn);
        const r = proactiveRepair(kb, p, this.#m);
        this.#nextEsi[sbn] = this.#k + r;
        counts.push(kb + r);
        most = Math.max(most, kb + r);
      }
      // The blocks' symbols interleaved; each manifest page goes just before the first symbol it covers.
      for (let i = 0; i < most; i++) {
        for (let sbn = first; sbn < last; sbn++) {
          const kb = blockSourceSymbols(this.#encoder.layout, sbn);
          if (i >= counts[sbn - first]!) continue;
          items.push({ sbn, esi: i < kb ? i : this.#k + (i - kb) });
        }
      }
    }
    this.#pass(items);
  }

  /** Send `items` through the pacer, a batch at a time, then end the pass. */
  #pass(items: Item[]): void {
    // Each block's repair in this pass is then made in one block product, not symbol by symbol.
    this.#update.planRepair(items);
    let i = 0;
    const feed = (): void => {
      if (this.#state !== 'sending' && this.#state !== 'repairing') return;
      const end = Math.min(items.length, i + 64);
      for (; i < end; i++) this.#sendItem(items[i]!);
      this.#progress();
      if (i < items.length) this.#pacer.whenDrained(feed);
      else this.#pacer.whenDrained(() => this.#endPass());
    };
    feed();
  }

  #sendItem(item: Item): void {
    const { sbn, esi } = item;
    const u = this.#update;
    const to = this.#group('data');
    if (esi < 0) {
      this.#pagesSent.add(sbn * 0x10000 + (-esi - 1));
      this.#send('manifest', u.manifestPacket(sbn, -esi - 1), to);
      return;
    }
    const page = u.pageOfEsi(esi);
    if (!this.#pagesSent.has(sbn * 0x10000 + page)) {
      // A receiver verifies each symbol on arrival: its manifest page goes first.
      this.#pagesSent.add(sbn * 0x10000 + page);
      this.#send('manifest', u.manifestPacket(sbn, page), to);
    }
    this.#sentPerBlock[sbn]!++;
    this.#send(esi < this.#k ? 'data' : 'repair', u.symbolPacket(sbn, esi), to);
  }

  #endPass(): void {
    if (this.#state !== 'sending' && this.#state !== 'repairing') return;
    this.#marker++;
    if (this.#state === 'sending') this.#setState('repairing', 'round 1 sent');
    const backoff = Math.round(this.#o.backoffRtts * this.#grtt);
    // The announcement again, with every marker: a host that missed every one while the sender
    // collected answers (or that started late, or lost its saved state) can still join and ask.
    this.#send('announce', this.#update.announcementDatagram(), this.#group('control'));
    this.#send('round', this.#update.roundPacket(((this.#marker - 1) % 0xffff) + 1, Math.min(Math.round(this.#grtt), 0xffff), Math.min(backoff, 0xffff)), this.#group('data'));
    // Requests come within the back-off window plus a round trip; a little slack for jitter. After
    // passes nobody answered, wait longer each time (up to 1 s), so hosts that went silent cost few markers.
    const wait = (backoff + 2 * this.#grtt + 5) * 2 ** Math.min(this.#emptyPasses, 5);
    this.#waiting = true;
    const clock = this.#o.socket.clock;
    this.#timer = clock.setTimer(() => this.#pacer.whenDrained(() => this.#endWait()), wait);
  }

  #endWait(): void {
    this.#timer = undefined;
    if (this.#state !== 'repairing') return;
    this.#waiting = false;
    const now = this.#o.socket.clock.now();
    // Back off the rate when requests show heavy loss (docs/delivery.md, "Rate and loss back-off").
    if (this.#lossEstimate < 0 && this.#rounds === 1) this.#lossEstimate = this.#worstLoss;
    const rate = nextRate(this.#pacer.rateBps, this.#worstLoss, this.#o.heavyLossThreshold, this.#o.rateBps, this.#o.rateBps / 16);
    if (rate !== this.#pacer.rateBps) this.#pacer.setRate(rate);
    // The receiver with the largest need loses the next round's symbols at the mean rate, not at its
    // past worst: plan for the expected loss, or for half the worst seen when that is higher (the
    // expectation was too low).
    const planLoss = Math.min(0.5, Math.max(this.#o.expectedLoss, this.#worstLoss / 2));
    this.#worstLoss = 0;
    for (const r of this.#rx.values()) {
      if (r.joined && !r.completed && r.dropped === undefined && now - r.lastHeard > this.#o.silentTimeoutMs) {
        this.#drop(r, `silent for ${Math.round(now - r.lastHeard)} ms`);
      }
    }
    if (this.#pending() === 0) return this.#collectFins();
    if (this.#needs.size === 0 && this.#pagesAsked.size === 0 && this.#lacking.size === 0) {
      // Nothing asked (requests lost, or the missing hosts are silent): repeat the marker.
      this.#emptyPasses++;
      return this.#endPass();
    }
    this.#emptyPasses = 0;
    this.#rounds++;
    const items: Item[] = [];
    const perBlock: Item[][] = [];
    for (const pk of this.#pagesAsked) items.push({ sbn: Math.floor(pk / 0x10000), esi: -(pk % 0x10000) - 1 });
    for (const [sbn, esis] of this.#lacking) {
      // Plain retransmission where repair cannot serve: exactly the symbols receivers named.
      perBlock.push([...esis].sort((a, b) => a - b).map((esi) => ({ sbn, esi })));
    }
    const left = this.#pending();
    for (const [sbn, need] of this.#needs) {
      if (this.#lacking.has(sbn) && (this.#poolUsed[sbn] === 1 || this.#nextEsi[sbn]! >= this.#k + this.#m)) continue; // served above
      const n = roundRepair(need, planLoss, left);
      const list: Item[] = [];
      for (let j = 0; j < n; j++) list.push({ sbn, esi: this.#freshEsi(sbn) });
      perBlock.push(list);
    }
    this.#needs.clear();
    this.#pagesAsked.clear();
    this.#lacking.clear();
    // Interleave the blocks' repair so a loss burst spreads over them.
    for (let j = 0; perBlock.some((l) => j < l.length); j++) for (const l of perBlock) if (j < l.length) items.push(l[j]!);
    this.#pass(items);
  }

  /**
   * The next symbol to send for a block: a fresh repair symbol while the
   * pool lasts; then, where repair cannot serve any more, plain
   * retransmission, cycling through the block's source and repair symbols
   * (each one heals the receivers that lack it).
   */
  #freshEsi(sbn: number): number {
    const kb = blockSourceSymbols(this.#encoder.layout, sbn);
    let esi = this.#nextEsi[sbn]!;
    if (esi >= this.#k + this.#m) {
      esi = 0;
      this.#poolUsed[sbn] = 1;
    }
    const next = esi + 1;
    this.#nextEsi[sbn] = esi < kb - 1 || esi >= this.#k ? next : this.#k;
    return esi;
  }

  #pending(): number {
    let n = 0;
    for (const r of this.#rx.values()) if (r.joined && !r.completed && r.dropped === undefined) n++;
    return n;
  }

  // --- incoming -----------------------------------------------------------------

  #message(data: Uint8Array, from: DatagramAddress): void {
    if (this.#state === 'closed' || this.#state === 'done') return;
    let msg: WireMessage;
    try {
      msg = decodeDatagram(data);
    } catch (e) {
      this.#junk++;
      this.emit('dropped', 'junk', e instanceof GatesockError ? e : undefined);
      return;
    }
    const now = this.#o.socket.clock.now();
    switch (msg.kind) {
      case 'recv': {
        if (msg.name !== this.#name) return void this.#junk++;
        const r = this.#listed(msg.hostname, from);
        if (r.dropped !== undefined && !r.completed) return;
        if (!r.joined && this.#lastAnnounceAt >= 0 && this.#state === 'collecting') this.#sampleRtt(now - this.#lastAnnounceAt);
        r.joined = true;
        r.lastHeard = now;
        if (this.#state === 'collecting' && this.#allExpectedJoined()) {
          if (this.#timer !== undefined) this.#o.socket.clock.clearTimer(this.#timer);
          this.#timer = undefined;
          this.#endJoin();
        }
        return;
      }
      case 'request': {
        if (msg.fileId !== this.#fileId) return void this.#junk++;
        const at = this.#byAddress.get(key(from)) ?? [];
        const r = at.find((x) => !x.completed && x.dropped === undefined) ?? at[0];
        if (r) {
          if (r.dropped !== undefined) return;
          r.requests++;
          r.lastHeard = now;
          if (r.requests > this.#o.maxRequests) return this.#drop(r, `too many requests (${r.requests} > ${this.#o.maxRequests})`);
        }
        // Only requests that answer a finished pass count: one sent while a pass runs may already be served by it.
        if (!this.#waiting) return;
        this.#takeNeeds(msg.needs, msg.pages);
        if (msg.lacking) this.#takeLacking(msg.lacking.sbn, msg.lacking.esis, msg.needs.find((n) => n.sbn === msg.lacking?.sbn)?.need);
        return;
      }
      case 'notice': {
        if (msg.fileId !== this.#fileId) return void this.#junk++;
        const r = this.#listed(msg.host, from);
        r.joined = true;
        r.lastHeard = now;
        // Ack every notice (a repeated one means the ack was lost), in batches: one signed,
        // multicast ack names every host whose notice came in the last few milliseconds.
        this.#queueAck(r.host);
        this.#completed(r);
        return;
      }
      case 'fin': {
        if (msg.name !== this.#name) return void this.#junk++;
        // FIN names no host: it belongs to a host at that address still without a result (the one that
        // completed first); a repeat from a host already counted finds none, and every host there is acked.
        const at = this.#byAddress.get(key(from)) ?? [];
        if (at.length === 0) return void this.#junk++;
        const r = at.find((x) => x.completed && x.result === undefined) ?? at.find((x) => x.result === undefined);
        if (!r) return; // a repeat
        r.result = msg.status;
        r.lastHeard = now;
        // A FIN means it had the whole file, even if every completion notice was lost.
        this.#completed(r);
        if (this.#state === 'collecting-fin') this.#checkFins();
        return;
      }
      default:
        // Our own multicast looped back (data, manifests, markers, acks), or another sender's: not for us.
        if ('fileId' in msg && msg.fileId === this.#fileId) return void this.#echoes++;
        this.#junk++;
    }
  }

  /** `r` has the whole file: mark it (once); when it was the last one, skip the rest of the wait. */
  #completed(r: Rx): void {
    if (r.completed || r.dropped !== undefined) return;
    r.completed = true;
    r.completedAt = this.#o.socket.clock.now();
    r.rounds = this.#rounds;
    this.#pokeFins();
    this.emit('receiver', outcome(r));
    this.#progress();
    if (this.#state === 'repairing' && this.#pending() === 0) {
      if (this.#timer !== undefined) this.#o.socket.clock.clearTimer(this.#timer);
      this.#timer = undefined;
      this.#waiting = false;
      this.#collectFins();
    }
  }

  #queueAck(host: string): void {
    this.#ackQueue.add(host);
    if (this.#ackTimer !== undefined) return;
    const clock = this.#o.socket.clock;
    this.#ackTimer = clock.setTimer(() => this.#flushAcks(), ACK_BATCH_MS);
  }

  /** Send the acks due, as few signed multicast datagrams as hold their hosts. */
  #flushAcks(): void {
    if (this.#ackTimer !== undefined) this.#o.socket.clock.clearTimer(this.#ackTimer);
    this.#ackTimer = undefined;
    const hosts = [...this.#ackQueue];
    this.#ackQueue.clear();
    if (hosts.length > 0) for (const bytes of this.#update.ackPackets(hosts)) this.#send('ack', bytes, this.#group('data'));
  }

  /**
   * A receiver names the source symbols it lacks in a block whose pool is
   * used up: plain retransmission of the first `need` (plus the loss margin)
   * of them — any `need` distinct symbols decode the block.
   */
  #takeLacking(sbn: number, esis: readonly number[], need: number | undefined): void {
    if (!Number.isInteger(sbn) || sbn < 0 || sbn >= this.#blocks) return;
    const kb = blockSourceSymbols(this.#encoder.layout, sbn);
    const want = Math.min(esis.length, roundRepair(need ?? esis.length, Math.max(this.#o.expectedLoss, 0.01), this.#pending()));
    let set = this.#lacking.get(sbn);
    if (!set) this.#lacking.set(sbn, (set = new Set()));
    for (const esi of esis.slice(0, want)) if (Number.isInteger(esi) && esi >= 0 && esi < kb) set.add(esi);
  }

  #takeNeeds(needs: readonly BlockNeed[], pages: readonly PageRef[]): void {
    for (const p of pages) {
      if (Number.isInteger(p.sbn) && p.sbn >= 0 && p.sbn < this.#blocks && this.#pagesSent.has(p.sbn * 0x10000 + p.page)) {
        this.#pagesAsked.add(p.sbn * 0x10000 + p.page);
      }
    }
    for (const n of needs) {
      if (!Number.isInteger(n.sbn) || n.sbn < 0 || n.sbn >= this.#blocks) continue;
      const kb = blockSourceSymbols(this.#encoder.layout, n.sbn);
      const need = Math.min(n.need, kb);
      if (need > (this.#needs.get(n.sbn) ?? 0)) this.#needs.set(n.sbn, need);
      const loss = requestLoss(kb, this.#sentPerBlock[n.sbn]!, need);
      if (loss > this.#worstLoss) this.#worstLoss = loss;
    }
  }

  #listed(host: string, from: DatagramAddress): Rx {
    let r = this.#rx.get(host);
    if (!r) {
      r = { host, joined: false, completed: false, requests: 0, lastHeard: 0 };
      this.#rx.set(host, r);
    }
    if (r.address && key(r.address) !== key(from)) {
      const old = this.#byAddress.get(key(r.address))?.filter((x) => x !== r) ?? [];
      if (old.length > 0) this.#byAddress.set(key(r.address), old);
      else this.#byAddress.delete(key(r.address));
    }
    r.address = { address: from.address, port: from.port };
    const at = this.#byAddress.get(key(from));
    if (!at) this.#byAddress.set(key(from), [r]);
    else if (!at.includes(r)) at.push(r);
    return r;
  }

  #sampleRtt(ms: number): void {
    const v = Math.min(RTT_RANGE[1], Math.max(RTT_RANGE[0], ms));
    // The group RTT is the largest seen: the request window must cover the farthest receiver.
    this.#grtt = this.#rttMeasured ? Math.max(this.#grtt, v) : v;
    this.#rttMeasured = true;
  }

  #drop(r: Rx, reason: string): void {
    if (r.dropped !== undefined || r.completed) return;
    r.dropped = reason;
    this.emit('receiver', outcome(r));
    this.#progress();
  }

  // --- collecting FINs / done ------------------------------------------------------

  #collectFins(): void {
    if (this.#state === 'collecting-fin' || this.#state === 'done' || this.#state === 'closed') return;
    this.#setState('collecting-fin', 'every listed receiver completed or was dropped');
    const clock = this.#o.socket.clock;
    this.#finTimer = clock.setTimer(() => {
      this.#finTimer = undefined;
      this.#finish(`FIN timeout (${this.#o.finTimeoutMs} ms)`);
    }, this.#o.finTimeoutMs);
    this.#checkFins();
  }

  /**
   * Ask for missing FINs: an ack naming a host that completed a while ago
   * but whose FIN has not come makes it send the FIN again. Runs from the
   * first completion until done, every few RTTs, doubling up to 2 s.
   */
  #pokeFins(): void {
    if (this.#pokeTimer !== undefined) return;
    const clock = this.#o.socket.clock;
    let wait = Math.max(4 * this.#grtt, 20);
    const poke = (): void => {
      this.#pokeTimer = undefined;
      if (this.#state === 'done' || this.#state === 'closed') return;
      const now = clock.now();
      for (const r of this.#rx.values()) {
        if (r.completed && r.result === undefined && now - (r.completedAt ?? now) >= wait) this.#queueAck(r.host);
      }
      wait = Math.min(2_000, wait * 2);
      this.#pokeTimer = clock.setTimer(poke, wait);
    };
    this.#pokeTimer = clock.setTimer(poke, wait);
  }

  #checkFins(): void {
    for (const r of this.#rx.values()) if (r.completed && r.result === undefined) return;
    this.#finish('every FIN collected');
  }

  #finish(why: string): void {
    if (this.#state === 'done' || this.#state === 'closed') return;
    // Acks still due go out now (the pacer sends what is queued); then the socket is free.
    this.#flushAcks();
    this.#stopTimers();
    this.#report = this.#makeReport();
    this.#setState('done', why);
    this.#o.socket.off('message', this.#onMessage);
    this.#leaveGroup();
    this.emit('done', this.#report);
    this.#resolve?.(this.#report);
  }

  #makeReport(): SenderReport {
    const size = this.#encoder.layout.length;
    return {
      name: this.#name,
      fileId: this.#fileId,
      fileSize: size,
      rounds: this.#rounds,
      datagramsSent: this.#pacer.datagrams,
      bytesSent: this.#pacer.bytes,
      bytesByKind: { ...this.#bytesBy },
      overhead: size > 0 ? this.#pacer.bytes / size : 0,
      junk: this.#junk,
      echoes: this.#echoes,
      lossEstimate: Math.max(0, this.#lossEstimate),
      rateBps: this.#pacer.rateBps,
      grttMs: this.#grtt,
      durationMs: this.#o.socket.clock.now() - this.#startedAt,
      receivers: [...this.#rx.values()].map(outcome),
    };
  }
}

function outcome(r: Rx): ReceiverOutcome {
  return {
    host: r.host,
    ...(r.address ? { address: r.address } : {}),
    joined: r.joined,
    completed: r.completed,
    ...(r.rounds !== undefined ? { rounds: r.rounds } : {}),
    requests: r.requests,
    ...(r.result !== undefined ? { result: r.result } : {}),
    ...(r.dropped !== undefined ? { dropped: r.dropped } : {}),
  };
}

function key(a: DatagramAddress): string {
  return `${a.address}|${a.port}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
