/**
 * A seeded, simulated lossy datagram network in one process, on virtual
 * time: hosts with a modelled link each (loss, delay with jitter, a rate
 * limit with a bounded queue), sockets that implement {@link DatagramSocket},
 * unicast and multicast. It exists so the multicast updater can be run with a
 * thousand receivers, thousands of times, deterministically and faster than
 * real time.
 *
 * Topology: every host hangs off one ideal switch by its own link, which has
 * two directions with separate models:
 *
 * ```text
 *   sender ──uplink──▶ ┌────────┐ ──downlink──▶ host 1   (own loss, delay, queue)
 *                      │ switch │ ──downlink──▶ host 2
 *                      └────────┘ ──downlink──▶ …
 * ```
 *
 * A datagram from host A to host B crosses A's uplink, then B's downlink.
 * A multicast datagram crosses the sender's uplink once (lost there, it is
 * lost for everyone), then the switch makes one copy per host with a member
 * socket, and each copy crosses that host's downlink independently: its own
 * loss draw, its own delay and jitter, its own queue. On the receiving host
 * every open socket bound to the port that joined the group gets it.
 * Datagrams between sockets of the same host skip the links (no loss, no
 * delay, delivered as an event at the current instant); a multicast sender's
 * own host gets the group's datagrams only when the sending socket has
 * multicast loopback on (the default, as on Linux).
 *
 * Each link direction:
 * 1. rate limit (`rateBps`, bits per second of payload; 0 = unlimited): the
 *    datagram joins the link's FIFO queue. When the bytes already waiting
 *    plus this one exceed `queueBytes`, it is dropped and counted as a queue
 *    drop (tail drop). Otherwise it leaves once the ones before it have been
 *    sent, after bytes·8/rate seconds of its own.
 * 2. loss (`loss`, a {@link LossModel}): independent or Gilbert–Elliott, with
 *    the link's own random stream and state. A lost datagram had used its
 *    share of the rate.
 * 3. delay: `delayMs` plus a uniform jitter in [0, `jitterMs`). Jitter can
 *    reorder datagrams, as a real network may.
 *
 * Determinism: every link direction draws from its own xoshiro128** stream,
 * split from the network's seed by `jump()` in the order hosts are added. The
 * same seed, the same hosts and the same sends at the same virtual times give
 * the same deliveries at the same times.
 *
 * Cost: a delivery is a reused record in the clock's event heap, not a
 * closure. By default each receiving socket gets its own copy of a multicast
 * payload, as the {@link DatagramSocket} contract says (listeners own
 * `data`); copies are views carved from 64 KiB slabs, which is much cheaper
 * than an ArrayBuffer per copy. With `sharePayloads: true` every member gets
 * the same read-only bytes instead: about 20% faster at 1,000 receivers, and
 * far less memory when receivers keep what they get — but then listeners
 * must not modify `data`, and a protocol that does breaks silently.
 * Measured (1,000 receivers × 3,000 datagrams of 1,200 bytes, 5% loss, 2.85
 * million deliveries): about 2.9 s copying, 2.3 s shared, on this machine.
 */
import { EventEmitter } from 'eventemitter3';
import { TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { Clock } from './clock.js';
import type { DatagramAddress, DatagramSocket, DatagramSocketEvents } from './datagram.js';
import { checkLossModel, LossProcess, type LossModel } from './loss.js';
import { SeededRandom } from './random.js';
import { SimEvent, VirtualClock, type RunOptions, type RunResult } from './virtual-clock.js';

/**
 * Largest UDP payload any datagram transport sends (65 535 − 8 UDP − 20 IPv4
 * header bytes). Larger sends throw `GS_ERR_INVALID_OPTION`.
 * @public
 */
export const MAX_DATAGRAM_BYTES = 65_507;

/**
 * True for an IPv4 multicast address (224.0.0.0/4) or an IPv6 one
 * (ff00::/8), written as a literal without brackets.
 * @public
 */
export function isMulticastAddress(address: string): boolean {
  if (address.includes(':')) return /^ff[0-9a-f]{0,2}:/i.test(address);
  const m = /^(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(address);
  if (m === null) return false;
  const first = Number(m[1]);
  return first >= 224 && first <= 239;
}

/**
 * The model of one direction of a host's link. Every field defaults to "ideal"
 * (no loss, no delay, no rate limit).
 * @public
 */
export interface LinkModel {
  /** One-way delay in milliseconds. Default 0. */
  delayMs?: number;
  /** Extra delay, uniform in [0, jitterMs), per datagram, in ms. Default 0. */
  jitterMs?: number;
  /** Payload bits per second this direction carries; 0 means unlimited. Default 0. */
  rateBps?: number;
  /**
   * Bytes the rate-limit queue holds (including the datagram being sent);
   * a datagram that does not fit is dropped and counted. Only used with
   * `rateBps`. Default 1 MiB.
   */
  queueBytes?: number;
  /** Loss model ({@link independentLoss}, {@link gilbertElliottLoss}). Default none. */
  loss?: LossModel;
}

/**
 * Options of {@link SimNetwork.addHost}.
 * @public
 */
export interface SimHostOptions {
  /** The host's address on the network: any unique non-empty string that is not a multicast address (`sender`, `r17`, `fd00::17`). Default `host-N`, N counting from 0. */
  name?: string;
  /** Link from the switch to this host: what it receives crosses it. */
  downlink?: LinkModel;
  /** Link from this host to the switch: what it sends crosses it. */
  uplink?: LinkModel;
}

/**
 * Options of {@link SimHost.bind}.
 * @public
 */
export interface SimBindOptions {
  /** Let several sockets of this host bind the same port (like SO_REUSEADDR for UDP). Default false. */
  reuseAddr?: boolean;
  /** Deliver this socket's multicast sends to member sockets on its own host, itself included. Default true. */
  multicastLoopback?: boolean;
}

/**
 * Options of {@link SimNetwork}.
 * @public
 */
export interface SimNetworkOptions {
  /** Seed of every random decision (an integer in [0, 2^53)). Default 0. */
  seed?: number;
  /** The scheduler to run on; default a new {@link VirtualClock}. */
  clock?: VirtualClock;
  /**
   * Give every receiving socket the same read-only payload instead of its own
   * copy. Listeners must then not modify `data`. Default false.
   */
  sharePayloads?: boolean;
}

/**
 * Datagram counters, for one host or the whole network.
 * A multicast send counts once in `sent…` and once per receiving socket in `delivered…`.
 * @public
 */
export interface TrafficCounters {
  /** Datagrams sent by sockets (a multicast send counts once). */
  sentDatagrams: number;
  /** Bytes of those. */
  sentBytes: number;
  /** Datagrams handed to sockets' `message` listeners. */
  deliveredDatagrams: number;
  /** Bytes of those. */
  deliveredBytes: number;
  /** Datagrams (copies) dropped by a link's loss model: for a host, on its uplink or downlink. */
  lostDatagrams: number;
  /** Bytes of those. */
  lostBytes: number;
  /** Datagrams (copies) dropped because a rate-limit queue was full. */
  queueDroppedDatagrams: number;
  /** Bytes of those. */
  queueDroppedBytes: number;
  /** Datagrams that reached a host with no open socket for them (closed, left the group, unknown host). */
  discardedDatagrams: number;
  /** Bytes of those. */
  discardedBytes: number;
}

function zeroCounters(): TrafficCounters {
  return {
    sentDatagrams: 0,
    sentBytes: 0,
    deliveredDatagrams: 0,
    deliveredBytes: 0,
    lostDatagrams: 0,
    lostBytes: 0,
    queueDroppedDatagrams: 0,
    queueDroppedBytes: 0,
    discardedDatagrams: 0,
    discardedBytes: 0,
  };
}

const DEFAULT_QUEUE_BYTES = 1 << 20;
/** Link transit results below 0. */
const LOST = -1;
const QUEUE_FULL = -2;

function checkLink(model: LinkModel | undefined, name: string): Required<Omit<LinkModel, 'loss'>> & { loss: LossModel | undefined } {
  const m = model ?? {};
  checkOption(typeof m === 'object' && m !== null, name, 'must be an object');
  const num = (v: number | undefined, field: string, dflt: number): number => {
    const x = v ?? dflt;
    checkOption(typeof x === 'number' && Number.isFinite(x) && x >= 0, `${name}.${field}`, 'must be a finite number ≥ 0');
    return x;
  };
  const queueBytes = num(m.queueBytes, 'queueBytes', DEFAULT_QUEUE_BYTES);
  checkOption(queueBytes >= 1, `${name}.queueBytes`, 'must be at least 1');
  return {
    delayMs: num(m.delayMs, 'delayMs', 0),
    jitterMs: num(m.jitterMs, 'jitterMs', 0),
    rateBps: num(m.rateBps, 'rateBps', 0),
    queueBytes,
    loss: m.loss === undefined ? undefined : checkLossModel(m.loss, `${name}.loss`),
  };
}

/** One direction of a host's link: its model, random stream, loss state and queue. */
class LinkDirection {
  private delayMs = 0;
  private jitterMs = 0;
  /** Milliseconds per byte at the rate limit; 0 when unlimited. */
  private msPerByte = 0;
  /** Bytes per millisecond at the rate limit. */
  private bytesPerMs = 0;
  private queueBytes = DEFAULT_QUEUE_BYTES;
  private loss!: LossProcess;
  /** When the last queued datagram has left (virtual ms). */
  private busyUntil = 0;

  constructor(
    private readonly rng: SeededRandom,
    model: ReturnType<typeof checkLink>,
  ) {
    this.configure(model);
  }

  configure(model: ReturnType<typeof checkLink>): void {
    this.delayMs = model.delayMs;
    this.jitterMs = model.jitterMs;
    this.msPerByte = model.rateBps > 0 ? 8000 / model.rateBps : 0;
    this.bytesPerMs = model.rateBps / 8000;
    this.queueBytes = model.queueBytes;
    this.loss = new LossProcess(model.loss, this.rng);
  }

  /** Send `bytes` into this direction at `now`: the arrival time at the far end, or LOST / QUEUE_FULL. */
  transit(bytes: number, now: number): number {
    let t = now;
    if (this.msPerByte > 0) {
      const start = this.busyUntil > now ? this.busyUntil : now;
      // Bytes still waiting (or being sent) when this one arrives.
      if ((start - now) * this.bytesPerMs + bytes > this.queueBytes) return QUEUE_FULL;
      t = this.busyUntil = start + bytes * this.msPerByte;
    }
    if (this.loss.drop()) return LOST;
    t += this.delayMs;
    if (this.jitterMs > 0) t += this.rng.nextFloat() * this.jitterMs;
    return t;
  }
}

/** What a {@link Transit} does when it fires. */
const ARRIVE = 0;
const FAN_OUT = 1;
const ENTER_DOWNLINK = 2;

/**
 * A datagram in flight, as an event of the clock's heap. Records are pooled.
 * - ARRIVE: one copy reaches `host` (`group` set for a multicast copy);
 * - FAN_OUT: a multicast datagram leaves its sender `host`'s uplink, to be
 *   copied to every member host;
 * - ENTER_DOWNLINK: a unicast datagram leaves its sender's uplink and enters
 *   `host`'s downlink. Entering at the time it really gets there (rather
 *   than computing the downlink at send time) keeps each downlink's queue in
 *   arrival order when senders have different uplink delays.
 */
class Transit extends SimEvent {
  kind = ARRIVE;
  host: Host | undefined = undefined;
  group: string | undefined = undefined;
  port = 0;
  data: Uint8Array = EMPTY;
  from: DatagramAddress = NO_ADDRESS;
  constructor(private readonly fabric: Fabric) {
    super();
  }
  fire(): void {
    switch (this.kind) {
      case ARRIVE:
        return this.fabric.arrive(this);
      case FAN_OUT:
        return this.fabric.fanOut(this);
      default:
        return this.fabric.enterDownlink(this);
    }
  }
}

const EMPTY = new Uint8Array(0);
const NO_ADDRESS: DatagramAddress = Object.freeze({ address: '', port: 0 });
const FIRST_EPHEMERAL_PORT = 49_152;
const SLAB_BYTES = 64 * 1024;

/**
 * A host on a {@link SimNetwork}: its links and its sockets. Made by
 * {@link SimNetwork.addHost}.
 * @public
 */
export interface SimHost {
  /** The network this host is on. */
  readonly network: SimNetwork;
  /** This host's address. */
  readonly name: string;
  /** This host's counters (sends from it, deliveries to it, drops on its links). */
  readonly counters: Readonly<TrafficCounters>;
  /** This host's open sockets, by port (to close them all, e.g. to simulate a crash). */
  readonly ports: ReadonlyMap<number, readonly (DatagramSocket & SimSocketInfo)[]>;
  /**
   * Change this host's link models from now on (loss state and queues start
   * afresh; the random streams continue).
   */
  configure(options: Pick<SimHostOptions, 'downlink' | 'uplink'>): void;
  /**
   * Bind a socket on this host. Port 0 (the default) picks a free port from
   * 49152 up. A port already bound throws `GS_ERR_LISTEN_FAILED` unless
   * every socket on it used `reuseAddr`.
   */
  bind(port?: number, options?: SimBindOptions): DatagramSocket & SimSocketInfo;
}

/** A host: its links, sockets and counters. */
class Host implements Host {
  readonly counters: TrafficCounters = zeroCounters();
  readonly downlink: LinkDirection;
  readonly uplink: LinkDirection;
  /** Open sockets by port. */
  readonly ports = new Map<number, SimSocket[]>();
  private nextEphemeral = FIRST_EPHEMERAL_PORT;

  constructor(
    readonly fabric: Fabric,
    readonly network: SimNetwork,
    readonly name: string,
    downlinkRng: SeededRandom,
    uplinkRng: SeededRandom,
    options: SimHostOptions,
  ) {
    this.downlink = new LinkDirection(downlinkRng, checkLink(options.downlink, 'downlink'));
    this.uplink = new LinkDirection(uplinkRng, checkLink(options.uplink, 'uplink'));
  }

  configure(options: Pick<SimHostOptions, 'downlink' | 'uplink'>): void {
    if (options.downlink !== undefined) this.downlink.configure(checkLink(options.downlink, 'downlink'));
    if (options.uplink !== undefined) this.uplink.configure(checkLink(options.uplink, 'uplink'));
  }

  bind(port = 0, options: SimBindOptions = {}): DatagramSocket & SimSocketInfo {
    checkOption(Number.isInteger(port) && port >= 0 && port <= 65535, 'port', 'must be an integer from 0 to 65535');
    const reuse = options.reuseAddr ?? false;
    let p = port;
    if (p === 0) {
      for (let tries = 0; ; tries++) {
        if (tries > 16384) throw new TransportError('GS_ERR_LISTEN_FAILED', `no free port on simulated host ${this.name}`);
        p = this.nextEphemeral;
        this.nextEphemeral = p === 65535 ? FIRST_EPHEMERAL_PORT : p + 1;
        if (!this.ports.has(p)) break;
      }
    }
    const existing = this.ports.get(p);
    if (existing !== undefined && !(reuse && existing.every((s) => s.reuseAddr))) {
      throw new TransportError('GS_ERR_LISTEN_FAILED', `port ${p} is in use on simulated host ${this.name} (bind every socket with reuseAddr to share it)`);
    }
    const socket = new SimSocket(this, p, reuse, options.multicastLoopback ?? true);
    if (existing === undefined) this.ports.set(p, [socket]);
    else existing.push(socket);
    return socket;
  }
}

/**
 * What a simulated socket adds to {@link DatagramSocket}.
 * @public
 */
export interface SimSocketInfo {
  /** The host this socket is on. */
  readonly host: SimHost;
  /** True once closed. */
  readonly closed: boolean;
  /** Groups joined. */
  readonly groups: ReadonlySet<string>;
}

/** A socket on a simulated host. */
class SimSocket extends EventEmitter<DatagramSocketEvents> implements DatagramSocket, SimSocketInfo {
  readonly localAddress: DatagramAddress;
  readonly clock: Clock;
  readonly groups = new Set<string>();
  closed = false;

  constructor(
    readonly host: Host,
    readonly port: number,
    readonly reuseAddr: boolean,
    readonly multicastLoopback: boolean,
  ) {
    super();
    this.localAddress = Object.freeze({ address: host.name, port });
    this.clock = host.fabric.clock;
  }

  send(data: Uint8Array, to: DatagramAddress): void {
    if (this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `send on a closed simulated socket (${this.host.name}:${this.port})`);
    checkOption(data instanceof Uint8Array, 'data', 'must be a Uint8Array');
    checkOption(data.length <= MAX_DATAGRAM_BYTES, 'data', `must be at most ${MAX_DATAGRAM_BYTES} bytes (got ${data.length})`);
    checkOption(typeof to === 'object' && to !== null && typeof to.address === 'string', 'to.address', 'must be a string');
    checkOption(Number.isInteger(to.port) && to.port >= 1 && to.port <= 65535, 'to.port', 'must be an integer from 1 to 65535');
    this.host.fabric.send(this, data.slice(), to.address, to.port);
  }

  joinGroup(group: string): void {
    this.checkOpen('joinGroup');
    checkOption(typeof group === 'string' && isMulticastAddress(group), 'group', `must be a multicast address (ff00::/8 or 224.0.0.0/4), got ${String(group)}`);
    if (this.groups.has(group)) return;
    this.groups.add(group);
    this.host.fabric.addMember(group, this.port, this.host);
  }

  leaveGroup(group: string): void {
    this.checkOpen('leaveGroup');
    if (!this.groups.delete(group)) return;
    this.host.fabric.removeMember(group, this.port, this.host);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const g of this.groups) this.host.fabric.removeMember(g, this.port, this.host);
    this.groups.clear();
    const list = this.host.ports.get(this.port);
    if (list !== undefined) {
      const i = list.indexOf(this);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.host.ports.delete(this.port);
    }
    this.emit('close');
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `${what} on a closed simulated socket (${this.host.name}:${this.port})`);
  }
}

/** Hosts that have at least one member socket of a group on a port, with a count per host. */
interface GroupMembers {
  hosts: Host[];
  counts: Map<Host, number>;
}

/** The network's machinery: hosts, groups, links, the event records. */
class Fabric {
  readonly clock: VirtualClock;
  readonly counters: TrafficCounters = zeroCounters();
  readonly hostsByName = new Map<string, Host>();
  readonly hostList: Host[] = [];
  private readonly groups = new Map<string, GroupMembers>();
  private readonly streams: SeededRandom;
  private readonly sharePayloads: boolean;
  private readonly pool: Transit[] = [];
  private slab = new ArrayBuffer(SLAB_BYTES);
  private slabUsed = 0;

  constructor(
    private readonly network: SimNetwork,
    options: SimNetworkOptions,
  ) {
    const seed = options.seed ?? 0;
    checkOption(Number.isSafeInteger(seed) && seed >= 0, 'seed', 'must be an integer in [0, 2^53)');
    checkOption(options.clock === undefined || options.clock instanceof VirtualClock, 'clock', 'must be a VirtualClock');
    this.clock = options.clock ?? new VirtualClock();
    this.streams = new SeededRandom(seed);
    this.sharePayloads = options.sharePayloads ?? false;
  }

  addHost(options: SimHostOptions): Host {
    const name = options.name ?? `host-${this.hostList.length}`;
    checkOption(typeof name === 'string' && name.length > 0, 'name', 'must be a non-empty string');
    checkOption(!isMulticastAddress(name), 'name', `must not be a multicast address (${name})`);
    checkOption(!this.hostsByName.has(name), 'name', `is already a host on this network (${name})`);
    const down = this.streams.jump().clone();
    const up = this.streams.jump().clone();
    const host = new Host(this, this.network, name, down, up, options);
    this.hostsByName.set(name, host);
    this.hostList.push(host);
    return host;
  }

  addMember(group: string, port: number, host: Host): void {
    const key = `${group}/${port}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { hosts: [], counts: new Map() };
      this.groups.set(key, g);
    }
    const n = g.counts.get(host) ?? 0;
    if (n === 0) g.hosts.push(host);
    g.counts.set(host, n + 1);
  }

  removeMember(group: string, port: number, host: Host): void {
    const key = `${group}/${port}`;
    const g = this.groups.get(key);
    const n = g?.counts.get(host);
    if (g === undefined || n === undefined) return;
    if (n > 1) {
      g.counts.set(host, n - 1);
      return;
    }
    g.counts.delete(host);
    g.hosts.splice(g.hosts.indexOf(host), 1);
    if (g.hosts.length === 0) this.groups.delete(key);
  }

  send(socket: SimSocket, data: Uint8Array, address: string, port: number): void {
    const from = socket.host;
    const bytes = data.length;
    from.counters.sentDatagrams++;
    from.counters.sentBytes += bytes;
    this.counters.sentDatagrams++;
    this.counters.sentBytes += bytes;
    const now = this.clock.now();
    const multicast = isMulticastAddress(address);
    if (multicast && socket.multicastLoopback && this.groups.get(`${address}/${port}`)?.counts.has(from) === true) {
      this.deliver(from, address, port, data, socket.localAddress, now);
    }
    const target = multicast ? undefined : this.hostsByName.get(address);
    if (target === from) {
      this.deliver(from, undefined, port, data, socket.localAddress, now);
      return;
    }
    // Unicast to an unknown address leaves the host and vanishes, as it would.
    const t = from.uplink.transit(bytes, now);
    if (t < 0) {
      this.countDrop(from, t, bytes);
      return;
    }
    if (!multicast) {
      if (target === undefined) {
        this.countDiscard(undefined, bytes);
        return;
      }
      const e = this.transit(ENTER_DOWNLINK, target, undefined, port, data, socket.localAddress);
      if (t === now) this.enterDownlink(e);
      else this.clock.schedule(e, t);
      return;
    }
    const f = this.transit(FAN_OUT, from, address, port, data, socket.localAddress);
    if (t === now) this.fanOut(f);
    else this.clock.schedule(f, t);
  }

  /** A unicast datagram left its sender's uplink: into the target's downlink. */
  enterDownlink(e: Transit): void {
    const { host, port, data, from } = e;
    this.release(e);
    const t = host!.downlink.transit(data.length, this.clock.now());
    if (t < 0) this.countDrop(host!, t, data.length);
    else this.deliver(host!, undefined, port, data, from, t);
  }

  /** A multicast datagram left the sender's uplink: one copy per member host, each through its downlink. */
  fanOut(f: Transit): void {
    const { host: sender, port, data, from } = f;
    const group = f.group!;
    this.release(f);
    const members = this.groups.get(`${group}/${port}`);
    if (members === undefined) return;
    const now = this.clock.now();
    const bytes = data.length;
    const hosts = members.hosts;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      if (h === sender) continue;
      const t = h.downlink.transit(bytes, now);
      if (t < 0) this.countDrop(h, t, bytes);
      else this.deliver(h, group, port, data, from, t);
    }
  }

  private deliver(host: Host, group: string | undefined, port: number, data: Uint8Array, from: DatagramAddress, at: number): void {
    this.clock.schedule(this.transit(ARRIVE, host, group, port, data, from), at);
  }

  private transit(kind: number, host: Host, group: string | undefined, port: number, data: Uint8Array, from: DatagramAddress): Transit {
    const t = this.pool.pop() ?? new Transit(this);
    t.kind = kind;
    t.host = host;
    t.group = group;
    t.port = port;
    t.data = data;
    t.from = from;
    return t;
  }

  /** Back to the pool, dropping its references so pooled records pin no payloads. */
  private release(t: Transit): void {
    t.host = undefined;
    t.data = EMPTY;
    t.from = NO_ADDRESS;
    this.pool.push(t);
  }

  /** A datagram reached a host: hand it to the sockets it is for. */
  arrive(d: Transit): void {
    const host = d.host!;
    const { group, port, data, from } = d;
    this.release(d);
    const sockets = host.ports.get(port);
    const bytes = data.length;
    if (sockets === undefined) {
      this.countDiscard(host, bytes);
      return;
    }
    if (group === undefined) {
      // Unicast: to the first socket bound to the port, as Linux does without SO_REUSEPORT.
      this.hand(host, sockets[0]!, data, from, true);
      return;
    }
    let handed = 0;
    // Copy: a listener may close or bind sockets of this port while we iterate.
    const list = sockets.length === 1 ? sockets : sockets.slice();
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.closed || !s.groups.has(group)) continue;
      this.hand(host, s, data, from, false);
      handed++;
    }
    if (handed === 0) this.countDiscard(host, bytes);
  }

  private hand(host: Host, socket: SimSocket, data: Uint8Array, from: DatagramAddress, owned: boolean): void {
    const bytes = data.length;
    host.counters.deliveredDatagrams++;
    host.counters.deliveredBytes += bytes;
    this.counters.deliveredDatagrams++;
    this.counters.deliveredBytes += bytes;
    // `send` made one private copy: a unicast datagram's one receiver may have
    // it; the copies of a multicast datagram share it, so each gets its own.
    const mine = this.sharePayloads || owned ? data : this.copy(data);
    socket.emit('message', mine, from);
  }

  /**
   * A private copy of `data`, carved from a 64 KiB slab: a view on a shared
   * ArrayBuffer costs far less than an ArrayBuffer of its own per copy
   * (measured: a million 1200-byte copies take about a third of the time).
   * A slab lives as long as any copy in it; listeners own their bytes, but
   * `data.buffer` may hold other copies around them.
   */
  private copy(data: Uint8Array): Uint8Array {
    const n = data.length;
    if (n > SLAB_BYTES / 4) return data.slice();
    if (this.slabUsed + n > SLAB_BYTES) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = new Uint8Array(this.slab, this.slabUsed, n);
    out.set(data);
    // Keep copies 8-byte aligned, so a listener may lay typed arrays over them.
    this.slabUsed += (n + 7) & ~7;
    return out;
  }

  private countDrop(host: Host, why: number, bytes: number): void {
    if (why === LOST) {
      host.counters.lostDatagrams++;
      host.counters.lostBytes += bytes;
      this.counters.lostDatagrams++;
      this.counters.lostBytes += bytes;
    } else {
      host.counters.queueDroppedDatagrams++;
      host.counters.queueDroppedBytes += bytes;
      this.counters.queueDroppedDatagrams++;
      this.counters.queueDroppedBytes += bytes;
    }
  }

  private countDiscard(host: Host | undefined, bytes: number): void {
    if (host !== undefined) {
      host.counters.discardedDatagrams++;
      host.counters.discardedBytes += bytes;
    }
    this.counters.discardedDatagrams++;
    this.counters.discardedBytes += bytes;
  }
}

/**
 * A simulated datagram network on virtual time (see the module comment for
 * the model).
 *
 * @example
 * ```ts
 * const net = new SimNetwork({ seed: 7 });
 * const sender = net.addHost({ name: 'sender', uplink: { rateBps: 100e6 } });
 * const receivers = Array.from({ length: 1000 }, () =>
 *   net.addHost({ downlink: { delayMs: 10, jitterMs: 2, loss: independentLoss(0.05) } }));
 * const sockets = receivers.map((h) => h.bind(7000));
 * let got = 0;
 * for (const s of sockets) { s.joinGroup('ff15::1'); s.on('message', () => got++); }
 * const out = sender.bind();
 * for (let i = 0; i < 100; i++) out.send(new Uint8Array(1200), { address: 'ff15::1', port: 7000 });
 * net.run({ maxTimeMs: 10_000 }); // { outcome: 'idle', ... }; got ≈ 95 000
 * ```
 * @public
 */
export class SimNetwork {
  private readonly fabric: Fabric;

  constructor(options: SimNetworkOptions = {}) {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    this.fabric = new Fabric(this, options);
  }

  /** The virtual clock every socket of this network uses. */
  get clock(): VirtualClock {
    return this.fabric.clock;
  }

  /** Counters summed over every host. */
  get counters(): Readonly<TrafficCounters> {
    return this.fabric.counters;
  }

  /** Every host, in the order added. */
  get hosts(): readonly SimHost[] {
    return this.fabric.hostList;
  }

  /** The host with this address, if any. */
  host(name: string): SimHost | undefined {
    return this.fabric.hostsByName.get(name);
  }

  /** Add a host with its own link models. Its name must be unique and not a multicast address. */
  addHost(options: SimHostOptions = {}): SimHost {
    return this.fabric.addHost(options);
  }

  /** Run the network's clock: see {@link VirtualClock.run}. */
  run(options?: RunOptions): RunResult {
    return this.fabric.clock.run(options);
  }

  /** Run the network's clock for handlers that await: see {@link VirtualClock.runAsync}. */
  runAsync(options?: RunOptions): Promise<RunResult> {
    return this.fabric.clock.runAsync(options);
  }
}
