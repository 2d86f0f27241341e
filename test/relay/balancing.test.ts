/**
 * Balancing strategies and the controller's directory (gateway list and
 * session table), without sockets.
 */
import { describe, expect, it } from 'vitest';
import { leastSessionsStrategy, weightedLoadStrategy, type GatewayLoad } from '../../src/relay/index.js';
import { Directory, type GatewayRecord } from '../../src/relay/directory.js';

const load = (msid: string, capacity: number, sessions: number, extra: Partial<GatewayLoad> = {}): GatewayLoad => ({
  msid,
  address: `${msid}:1`,
  capacity,
  sessions,
  connections: 0,
  bytesPerSecond: 0,
  cpu: 0,
  ...extra,
});

describe('balancing', () => {
  it('least-sessions picks the lowest sessions/capacity, ties to the lower MSID', () => {
    expect(leastSessionsStrategy.pick([load('B', 100, 10), load('A', 1000, 50), load('C', 10, 0)], 'x')!.msid).toBe('C');
    expect(leastSessionsStrategy.pick([load('B', 100, 10), load('A', 1000, 100)], 'x')!.msid).toBe('A');
  });

  it('least-sessions fills gateways in proportion to capacity', () => {
    const gws = [load('A', 100, 0), load('B', 300, 0), load('C', 600, 0)];
    const counts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const g = leastSessionsStrategy.pick(gws.map((g) => load(g.msid, g.capacity, counts.get(g.msid) ?? 0)), 'x')!;
      counts.set(g.msid, (counts.get(g.msid) ?? 0) + 1);
    }
    expect(counts.get('A')).toBeGreaterThanOrEqual(99);
    expect(counts.get('A')).toBeLessThanOrEqual(101);
    expect(counts.get('C')).toBeGreaterThanOrEqual(599);
  });

  it('weighted-load avoids a busy gateway that least-sessions would pick', () => {
    const busy = load('A', 1000, 10, { cpu: 0.95, bytesPerSecond: 100e6, connections: 5000 });
    const idle = load('B', 1000, 20);
    expect(leastSessionsStrategy.pick([busy, idle], 'x')!.msid).toBe('A');
    expect(weightedLoadStrategy().pick([busy, idle], 'x')!.msid).toBe('B');
  });
});

function record(msid: string, lastSeen = 0): GatewayRecord & { evicted: string[] } {
  const evicted: string[] = [];
  return { msid, address: `${msid}:1`, capacity: 10, servers: new Set(), pending: new Map(), connections: 0, bytesPerSecond: 0, cpu: 0, lastSeen, draining: false, drop: () => undefined, evict: (s) => evicted.push(s), evicted };
}

describe('directory', () => {
  it('a server seen on a second gateway moves there, and only the old gateway is told', () => {
    const d = new Directory();
    const a = record('A');
    const b = record('B');
    d.addGateway(a);
    d.addGateway(b);
    expect(d.sessionsAdded(a, ['s1', 's2'])).toEqual([]);
    const moved = d.sessionsAdded(b, ['s1']);
    expect(moved.map((m) => [m.server, m.from.msid])).toEqual([['s1', 'A']]);
    expect(d.gatewayOf('s1')?.msid).toBe('B');
    // A late removal from the old gateway does not remove the new entry.
    d.sessionsRemoved(a, ['s1']);
    expect(d.gatewayOf('s1')?.msid).toBe('B');
    expect(d.removeGateway('A')).toEqual(['s2']);
    expect(d.sessionCount).toBe(1);
  });

  it('pending attaches count toward load until they lapse or are reported', () => {
    const d = new Directory();
    const a = record('A', 0);
    d.addGateway(a);
    d.expect(a, 's1', 100);
    d.expect(a, 's2', 100);
    expect(d.candidates(50, 1000)[0]!.sessions).toBe(2);
    d.sessionsAdded(a, ['s1']);
    expect(d.candidates(60, 1000)[0]!.sessions).toBe(2);
    expect(d.candidates(150, 1000)[0]!.sessions).toBe(1);
  });

  it('silent and draining gateways are not candidates', () => {
    const d = new Directory();
    const a = record('A', 0);
    const b = record('B', 900);
    const c = record('C', 900);
    c.draining = true;
    [a, b, c].forEach((g) => d.addGateway(g));
    expect(d.candidates(1000, 500).map((g) => g.msid)).toEqual(['B']);
    expect(d.silent(1000, 500).map((g) => g.msid)).toEqual(['A']);
  });
});
