/**
 * The controller's memory (design, system 1): the gateway list and the
 * session table — which gateway holds which server's session — fed by the
 * gateways' registrations, keepalives and add/remove deltas. Nothing here is
 * stored on disk; after a controller restart the gateways register again and
 * send their full session lists.
 */
import type { GatewayLoad } from './balancing.js';

/** One registered gateway, as the controller tracks it. */
export interface GatewayRecord {
  readonly msid: string;
  readonly address: string;
  readonly capacity: number;
  /** Server MSIDs whose sessions it reported. */
  readonly servers: Set<string>;
  /** Servers sent to it whose attach is not reported yet → when that expectation lapses (ms, monotonic). */
  readonly pending: Map<string, number>;
  connections: number;
  bytesPerSecond: number;
  cpu: number;
  /** Monotonic ms of the last message from it. */
  lastSeen: number;
  draining: boolean;
  /** Closes the control link to it (called when it is dropped). */
  readonly drop: (why: string) => void;
  /** Asks it to close a server session that moved elsewhere. */
  readonly evict: (serverMsid: string) => void;
}

/** A server whose session moved from one gateway to another. */
export interface MovedServer {
  readonly server: string;
  readonly from: GatewayRecord;
}

export class Directory {
  readonly gateways = new Map<string, GatewayRecord>();
  /** Server MSID → gateway MSID. */
  private readonly table = new Map<string, string>();

  /** Server sessions in the table. */
  get sessionCount(): number {
    return this.table.size;
  }

  /** A gateway (re)registered. Returns the record it replaces, whose servers are forgotten. */
  addGateway(record: GatewayRecord): GatewayRecord | undefined {
    const old = this.gateways.get(record.msid);
    if (old) this.removeGateway(old.msid);
    this.gateways.set(record.msid, record);
    return old;
  }

  /** A gateway left or went silent: forget it and the sessions it held. Returns those servers. */
  removeGateway(msid: string): string[] {
    const g = this.gateways.get(msid);
    if (!g) return [];
    this.gateways.delete(msid);
    const lost: string[] = [];
    for (const server of g.servers) {
      if (this.table.get(server) === msid) {
        this.table.delete(server);
        lost.push(server);
      }
    }
    return lost;
  }

  /** The gateway holding `server`'s session, if any. */
  gatewayOf(server: string): GatewayRecord | undefined {
    const msid = this.table.get(server);
    return msid === undefined ? undefined : this.gateways.get(msid);
  }

  /**
   * A gateway reports sessions added. A server whose table entry named
   * another gateway has moved: the newer session wins (it was proven by the
   * same key, later), and the caller tells the old gateway to evict.
   */
  sessionsAdded(gateway: GatewayRecord, servers: readonly string[]): MovedServer[] {
    const moved: MovedServer[] = [];
    for (const server of servers) {
      gateway.servers.add(server);
      gateway.pending.delete(server);
      const previous = this.table.get(server);
      this.table.set(server, gateway.msid);
      if (previous !== undefined && previous !== gateway.msid) {
        const from = this.gateways.get(previous);
        if (from) {
          from.servers.delete(server);
          moved.push({ server, from });
        }
      }
    }
    return moved;
  }

  /** A gateway reports sessions gone. Only its own entries are removed: a server may already be elsewhere. */
  sessionsRemoved(gateway: GatewayRecord, servers: readonly string[]): void {
    for (const server of servers) {
      gateway.servers.delete(server);
      if (this.table.get(server) === gateway.msid) this.table.delete(server);
    }
  }

  /** A gateway's full list after it (re)registered: the delta from what we had. */
  replaceSessions(gateway: GatewayRecord, servers: readonly string[]): MovedServer[] {
    const now = new Set(servers);
    this.sessionsRemoved(gateway, [...gateway.servers].filter((s) => !now.has(s)));
    return this.sessionsAdded(gateway, servers);
  }

  /** Expect `server` to attach to `gateway` until `until` (counts toward its load meanwhile). */
  expect(gateway: GatewayRecord, server: string, until: number): void {
    gateway.pending.set(server, until);
  }

  /** Gateways that heard from within `silenceMs` and are not draining, as the strategy sees them. */
  candidates(now: number, silenceMs: number): GatewayLoad[] {
    const out: GatewayLoad[] = [];
    for (const g of this.gateways.values()) {
      if (g.draining || now - g.lastSeen > silenceMs) continue;
      for (const [server, until] of g.pending) if (until < now || g.servers.has(server)) g.pending.delete(server);
      out.push({ msid: g.msid, address: g.address, capacity: g.capacity, sessions: g.servers.size + g.pending.size, connections: g.connections, bytesPerSecond: g.bytesPerSecond, cpu: g.cpu });
    }
    return out;
  }

  /** Gateways silent for longer than `silenceMs`. */
  silent(now: number, silenceMs: number): GatewayRecord[] {
    return [...this.gateways.values()].filter((g) => now - g.lastSeen > silenceMs);
  }
}
