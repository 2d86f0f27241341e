// Two security centers on ONE configuration store — a PostgreSQL database (a throwaway server
// from test/helpers/postgres.ts), one SQLite file, or one MemoryConfigurationStore object —
// take reports for the same host ID at the same moment. The race is forced, not left to
// timing: each center's store is wrapped in a decorator whose first write of a report or host
// (the conditional ones, and `putReport`/`putHost` too, for code that writes unchecked) waits at a shared gate until both
// centers have made their reads and got there, then lets them write one after the other in a
// chosen order. So both centers decided on the same stored state, and only the store's
// conditional write can keep the second from overwriting the first.
//   (a) two agents (different identities) reporting as one new host ID: one binding wins, the
//       other agent is refused with GS_ERR_SECURITY_WRONG_HOST, the store holds one binding and
//       the winner's report; also one agent reporting as two new host IDs at once.
//       Enrolments too: one agent enrolled as two host IDs at two centers at once gets one; an
//       agent reporting as a host ID an operator is enrolling for another agent is refused.
//   (b) one host's reports N and N+1 at two centers, the newer one written first: the stored
//       latest stays N+1 and N is answered `stale`; a duplicate N+2 at both: one accepted, one `stale`.
//   (c) after a host is re-enrolled to a new agent (the old one had reached report 50), the new
//       agent's first report 1 delivered to both at once: stored once (not `stale` against 50,
//       not refused), the other answered `stale` against the new agent's 1.
// The PostgreSQL case is skipped with the reason printed where no server can be started
// (GS_REQUIRE_POSTGRES=1 makes that a failure).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayError, SecurityCenterError } from '../../src/errors/index.js';
import type { AgentConnector } from '../../src/delivery/dispatch/index.js';
import { signReportMessage, type AnswerMessage } from '../../src/delivery/security/channel/index.js';
import {
  MemoryConfigurationStore,
  PostgresConfigurationStore,
  SecurityCenter,
  SqliteConfigurationStore,
  type ActionRecord,
  type ConfigurationStore,
  type HostEntry,
  type PolicyDocument,
  type ReportCommit,
} from '../../src/delivery/security/center/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import { encodeConfigurationReport, type FullReport } from '../../src/delivery/security/report/index.js';
import { createServerIdentity, generateIdentityKey, type Identity } from '../../src/session/index.js';
import { postgresForFile } from '../helpers/postgres.js';
import { collectFor, tempDir, writeRoot } from './fixtures/center/harness.js';

const { server, closers, dirs, skip } = await postgresForFile('two SecurityCenters taking reports on one PostgreSQL database');

/** No agent is reachable (no countermeasure is dispatched in these tests anyway). */
const offline: AgentConnector = {
  async connect(): Promise<never> {
    throw new RelayError('GS_ERR_SERVER_OFFLINE', 'agents are offline (test)');
  },
};

/**
 * Where two centers' first report writes meet. Armed for one race: the writers named in
 * `order` wait until all of them have arrived (bounded: after 5 s the gate opens for whoever
 * came, and the assertions say what went wrong), then go one at a time in that order, each
 * once the previous one's write has finished. Other writes (retries) pass straight through.
 */
class Gate {
  #order: string[] = [];
  readonly #waiting = new Map<string, () => void>();
  #queue: string[] = [];
  #armed = false;
  #timer: NodeJS.Timeout | undefined;
  /** Names in the order they were let through. */
  readonly passed: string[] = [];

  arm(order: string[]): void {
    this.#order = order;
    this.#waiting.clear();
    this.#armed = true;
    this.#timer = setTimeout(() => this.#release(), 5_000);
  }

  /** Wait for this writer's turn; resolves with what to call once its write is done. */
  async pass(name: string): Promise<() => void> {
    if (!this.#armed || !this.#order.includes(name) || this.#waiting.has(name)) return () => undefined;
    await new Promise<void>((turn) => {
      this.#waiting.set(name, turn);
      if (this.#order.every((n) => this.#waiting.has(n))) this.#release();
    });
    return () => this.#next();
  }

  #release(): void {
    if (!this.#armed) return;
    this.#armed = false;
    clearTimeout(this.#timer);
    this.#queue = this.#order.filter((n) => this.#waiting.has(n));
    this.#next();
  }

  #next(): void {
    const name = this.#queue.shift();
    if (name === undefined) return;
    this.passed.push(name);
    this.#waiting.get(name)!();
  }
}

/** A configuration store that stops at `gate` before its first report write in a race. */
class GatedStore implements ConfigurationStore {
  constructor(
    readonly name: string,
    readonly inner: ConfigurationStore,
    readonly gate: Gate,
  ) {}
  async #gated<T>(write: () => Promise<T>): Promise<T> {
    const done = await this.gate.pass(this.name);
    try {
      return await write();
    } finally {
      done();
    }
  }
  commitReport(commit: ReportCommit): Promise<boolean> {
    return this.#gated(() => this.inner.commitReport(commit));
  }
  putReport(hostId: string, report: FullReport): Promise<void> {
    return this.#gated(() => this.inner.putReport(hostId, report));
  }
  getHost(hostId: string): Promise<HostEntry | undefined> {
    return this.inner.getHost(hostId);
  }
  hostByMsid(msid: string): Promise<HostEntry | undefined> {
    return this.inner.hostByMsid(msid);
  }
  putHost(entry: HostEntry): Promise<void> {
    return this.#gated(() => this.inner.putHost(entry));
  }
  replaceHost(expected: HostEntry | undefined, next: HostEntry): Promise<boolean> {
    return this.#gated(() => this.inner.replaceHost(expected, next));
  }
  hosts(): Promise<HostEntry[]> {
    return this.inner.hosts();
  }
  latest(hostId: string): Promise<FullReport | undefined> {
    return this.inner.latest(hostId);
  }
  previous(hostId: string): Promise<FullReport | undefined> {
    return this.inner.previous(hostId);
  }
  putAction(action: ActionRecord): Promise<void> {
    return this.inner.putAction(action);
  }
  claimAction(action: ActionRecord): Promise<ActionRecord | null> {
    return this.inner.claimAction(action);
  }
  replaceAction(expected: ActionRecord, next: ActionRecord): Promise<boolean> {
    return this.inner.replaceAction(expected, next);
  }
  getAction(id: string): Promise<ActionRecord | undefined> {
    return this.inner.getAction(id);
  }
  actions(hostId?: string): Promise<ActionRecord[]> {
    return this.inner.actions(hostId);
  }
  getPolicy(): Promise<PolicyDocument | undefined> {
    return this.inner.getPolicy();
  }
  setPolicy(doc: PolicyDocument): Promise<void> {
    return this.inner.setPolicy(doc);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Each center's own store object on the shared database, and a third view to check what is stored. */
type Stores = () => Promise<[ConfigurationStore, ConfigurationStore, ConfigurationStore]>;
const BACKENDS: [string, string | undefined, Stores][] = [
  [
    'one PostgreSQL database',
    skip,
    async () => {
      const url = await server.database();
      return [await PostgresConfigurationStore.open(url), await PostgresConfigurationStore.open(url), await PostgresConfigurationStore.open(url)];
    },
  ],
  [
    'one SQLite file',
    undefined,
    async () => {
      const d = tempDir('center-race-intake');
      dirs.push(d);
      const file = path.join(d, 'config.db');
      return [await SqliteConfigurationStore.open(file), await SqliteConfigurationStore.open(file), await SqliteConfigurationStore.open(file)];
    },
  ],
  [
    'one MemoryConfigurationStore',
    undefined,
    async () => {
      const s = new MemoryConfigurationStore();
      return [s, s, s];
    },
  ],
];

/** Two centers A and B on the stores, each behind a gate; `view` reads the shared database. */
async function twoCenters(stores: Stores) {
  const [sa, sb, view] = await stores();
  closers.push(() => view.close());
  const gate = new Gate();
  const key = generateIdentityKey();
  const open = async (name: string, store: ConfigurationStore) => {
    const center = await SecurityCenter.open({ key, connector: offline, configStore: new GatedStore(name, store, gate) });
    closers.push(() => center.close());
    const refused: string[] = [];
    center.on('refused', (r) => refused.push(r.code));
    return { center, refused };
  };
  return { a: await open('A', sa), b: await open('B', sb), gate, view };
}

const d = tempDir('center-race-intake-roots');
dirs.push(d);
/** A signed full report with sequence number `seq` from `identity`, for host `host`. */
async function message(host: string, identity: Identity, seq: number) {
  const root = writeRoot(path.join(d, `${host}-${identity.msid.slice(5, 13)}-${seq}`), [{ name: 'openssl', version: '3.0.9-1' }]);
  const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
  return signReportMessage({ host, pcid: `agent-${host}`, device: 'server' }, encodeConfigurationReport({ ...report, seq }), identity);
}

/** What a center made of a report: its answer status, or the refusal's code. */
async function outcome(answer: Promise<AnswerMessage>): Promise<string> {
  try {
    const a = await answer;
    return a.status === 'stale' ? `stale above ${a.expectSeqAbove}` : a.status;
  } catch (err) {
    return err instanceof SecurityCenterError ? err.code : `thrown ${String(err)}`;
  }
}

describe.each(BACKENDS)('two SecurityCenters taking reports on %s', (_name, unavailable, stores) => {
  it.skipIf(unavailable !== undefined)('bind a host ID to one agent when two agents report as it at both centers at once; the other is refused', async () => {
    const { a, b, gate, view } = await twoCenters(stores);
    const bound: [string, string][] = [];
    // both orders: whichever center writes first wins the binding
    for (const [host, order] of [
      ['hz-1', ['A', 'B']],
      ['hz-2', ['B', 'A']],
    ] as const) {
      const [x, y] = [createServerIdentity(), createServerIdentity()];
      const [winner, loser] = order[0] === 'A' ? [x, y] : [y, x];
      bound.push([host, winner.msid]);
      gate.arm([...order]);
      const [mx, my] = [await message(host, x, 1), await message(host, y, 1)];
      const results = await Promise.all([outcome(a.center.receiveReport(mx)), outcome(b.center.receiveReport(my))]);
      expect(gate.passed.slice(-2), host).toEqual(order);
      const [wins, loses] = order[0] === 'A' ? [0, 1] : [1, 0];
      expect([results[wins], results[loses]], host).toEqual(['accepted', 'GS_ERR_SECURITY_WRONG_HOST']);
      expect((await view.getHost(host))?.msid, host).toBe(winner.msid);
      expect((await view.latest(host))?.hostMsid, host).toBe(winner.msid);
      expect(await view.previous(host), host).toBeUndefined();
      expect(await view.hostByMsid(loser.msid), host).toBeUndefined();
    }
    expect(a.refused).toEqual(['GS_ERR_SECURITY_WRONG_HOST']);
    expect(b.refused).toEqual(['GS_ERR_SECURITY_WRONG_HOST']);
    expect((await view.hosts()).map((h) => [h.hostId, h.msid])).toEqual(bound);

    // One agent reporting as two new host IDs at once (one at each center): it gets one of them.
    const z = createServerIdentity();
    gate.arm(['B', 'A']);
    const results = await Promise.all([outcome(a.center.receiveReport(await message('hz-3', z, 1))), outcome(b.center.receiveReport(await message('hz-4', z, 1)))]);
    expect(results).toEqual(['GS_ERR_SECURITY_WRONG_HOST', 'accepted']);
    expect((await view.hostByMsid(z.msid))?.hostId).toBe('hz-4');
    expect(await view.getHost('hz-3')).toBeUndefined();
    expect(await view.latest('hz-3')).toBeUndefined();
  });

  it.skipIf(unavailable !== undefined)('bind an agent to one host when it is enrolled as two at once, or enrolled while another agent reports as that host', async () => {
    const { a, b, gate, view } = await twoCenters(stores);
    const x = createServerIdentity();
    gate.arm(['A', 'B']);
    const codes = await Promise.all([outcome(a.center.enrollHost('e-1', x.msid, 'agent-e-1').then(() => ({ status: 'accepted' }) as AnswerMessage)), outcome(b.center.enrollHost('e-2', x.msid, 'agent-e-2').then(() => ({ status: 'accepted' }) as AnswerMessage))]);
    expect(gate.passed.slice(-2)).toEqual(['A', 'B']);
    expect(codes).toEqual(['accepted', 'GS_ERR_SECURITY_WRONG_HOST']);
    expect((await view.hosts()).map((h) => [h.hostId, h.msid])).toEqual([['e-1', x.msid]]);
    // An operator enrols e-3 for agent y at A while agent z reports as e-3 at B: the enrolment is written first, z is refused.
    const [y, z] = [createServerIdentity(), createServerIdentity()];
    gate.arm(['A', 'B']);
    const both = await Promise.all([outcome(a.center.enrollHost('e-3', y.msid, 'agent-e-3').then(() => ({ status: 'accepted' }) as AnswerMessage)), outcome(b.center.receiveReport(await message('e-3', z, 1)))]);
    expect(both).toEqual(['accepted', 'GS_ERR_SECURITY_WRONG_HOST']);
    expect((await view.getHost('e-3'))?.msid).toBe(y.msid);
    expect(await view.latest('e-3')).toBeUndefined();
    expect(b.refused).toEqual(['GS_ERR_SECURITY_WRONG_HOST']);
  });

  it.skipIf(unavailable !== undefined)('keep the newest report when one host\'s reports reach both centers at once; an older or duplicate one is answered stale', async () => {
    const { a, b, gate, view } = await twoCenters(stores);
    const x = createServerIdentity();
    expect(await outcome(a.center.receiveReport(await message('h1', x, 1)))).toBe('accepted');
    // N = 2 at A, N + 1 = 3 at B; both read latest = 1, and B writes first.
    gate.arm(['B', 'A']);
    const [older, newer] = await Promise.all([outcome(a.center.receiveReport(await message('h1', x, 2))), outcome(b.center.receiveReport(await message('h1', x, 3)))]);
    expect(gate.passed.slice(-2)).toEqual(['B', 'A']);
    expect([older, newer]).toEqual(['stale above 3', 'accepted']);
    expect((await view.latest('h1'))?.seq).toBe(3);
    expect((await view.previous('h1'))?.seq).toBe(1);
    // The same report 4 delivered to both at once: stored once, the other answered stale.
    const dup = await message('h1', x, 4);
    gate.arm(['A', 'B']);
    const both = await Promise.all([outcome(a.center.receiveReport(dup)), outcome(b.center.receiveReport(dup))]);
    expect(both).toEqual(['accepted', 'stale above 4']);
    expect((await view.latest('h1'))?.seq).toBe(4);
    expect((await view.previous('h1'))?.seq).toBe(3);
    expect((await view.hosts()).map((h) => [h.hostId, h.msid])).toEqual([['h1', x.msid]]);
    expect([...a.refused, ...b.refused]).toEqual([]);
  });

  it.skipIf(unavailable !== undefined)('store a re-enrolled host\'s first report from its new agent once when it reaches both centers at once', async () => {
    const { a, b, gate, view } = await twoCenters(stores);
    const [y, x] = [createServerIdentity(), createServerIdentity()];
    await a.center.enrollHost('r1', y.msid, 'agent-r1');
    expect(await outcome(a.center.receiveReport(await message('r1', y, 50)))).toBe('accepted');
    await b.center.enrollHost('r1', x.msid, 'agent-r1');
    const first = await message('r1', x, 1);
    gate.arm(['A', 'B']);
    const both = await Promise.all([outcome(a.center.receiveReport(first)), outcome(b.center.receiveReport(first))]);
    expect(gate.passed.slice(-2)).toEqual(['A', 'B']);
    expect(both).toEqual(['accepted', 'stale above 1']);
    expect(await view.latest('r1')).toMatchObject({ hostMsid: x.msid, seq: 1 });
    expect(await view.previous('r1')).toMatchObject({ hostMsid: y.msid, seq: 50 });
    expect((await view.getHost('r1'))?.msid).toBe(x.msid);
    expect([...a.refused, ...b.refused]).toEqual([]);
  });
});
