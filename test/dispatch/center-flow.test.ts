/**
 * DispatchCenter end to end over the in-memory connector, against a small
 * scripted agent written here on top of the wire (DispatchChannel,
 * signReport): a test double of the far side that can misbehave on
 * purpose. Real agent + center tests live elsewhere.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DirectoryBundleRepository,
  DispatchCenter,
  MemoryAgentConnector,
  RelayAgentConnector,
  SqliteDispatchStore,
  type DispatchCenterOptions,
  type DispatchProgress,
  type TargetResult,
  type VerificationFailureRecord,
  type WaveSummary,
} from '../../src/delivery/dispatch/center/index.js';
import {
  DispatchChannel,
  decodeBinding,
  encodeMessage,
  fromBase64url,
  newChannelChallenge,
  newDispatchId,
  newEvidence,
  sha256Digest,
  signReport,
  toBase64url,
  verifyBinding,
  verifyChannelAuth,
  verifyEvidenceLog,
  type BindingFields,
  type ChannelMessage,
  type ReportFields,
  type SignedReport,
} from '../../src/delivery/dispatch/wire/index.js';
import { createServerIdentity, generateIdentityKey, type Identity, type IdentityKey } from '../../src/session/index.js';
import { DispatchError } from '../../src/errors/index.js';
import { serverStart, type SockIo, type SockServer } from '../../src/socket/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';

const work = mkdtempSync(join(tmpdir(), 'gatesock-center-flow-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const EMPTY = sha256Digest(new Uint8Array(0));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wait (bounded) until the agents have processed the center's acks. */
async function settle(agents: readonly ScriptedAgent[]): Promise<void> {
  for (let i = 0; i < 100 && agents.some((a) => a.pending.size > 0); i++) await sleep(10);
}

/** What the scripted agent does with one order. */
interface OrderContext {
  agent: ScriptedAgent;
  channel: DispatchChannel;
  order: BindingFields;
  kind: 'run' | 'rerun';
  /** A report for this order, signed by this agent unless `by` is given. */
  report(overrides?: Partial<ReportFields>, by?: Identity): SignedReport;
  send(m: ChannelMessage): Promise<void>;
}
type Behaviour = (ctx: OrderContext) => Promise<'close' | void>;

/** The honest agent: accepted, then the report (kept until acked). */
const honest: Behaviour = async (ctx) => {
  await ctx.send({ t: 'accepted', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
  const r = ctx.report();
  ctx.agent.keep(r);
  await ctx.send({ t: 'report', report: r.encoded, certificate: toBase64url(ctx.agent.identity.certificate.der) });
};

/** Send one report (any report), with this agent's certificate unless another is given. */
const sendReport = (ctx: OrderContext, r: SignedReport, cert: Uint8Array = r.certificate) => ctx.send({ t: 'report', report: r.encoded, certificate: toBase64url(cert) });

class ScriptedAgent {
  readonly identity = createServerIdentity();
  readonly msid = this.identity.msid;
  readonly pcid: string;
  /** Orders received, in order. */
  readonly orders: BindingFields[] = [];
  /** Reports kept until acked, by `dispatchId/run`. */
  readonly pending = new Map<string, string>();
  readonly acks: string[] = [];
  /** For each `auth` the center sent: did it verify against this connection's challenge and the center key? */
  readonly auths: boolean[] = [];
  /** The type of the center's first message on each connection. */
  readonly firsts: string[] = [];
  readonly fetched: string[] = [];
  behaviour: Behaviour = honest;

  constructor(
    readonly centerKey: Uint8Array,
    n: number,
  ) {
    this.pcid = `agent-${n}`;
  }

  get ref() {
    return { msid: this.msid, pcid: this.pcid };
  }

  keep(r: SignedReport): void {
    this.pending.set(`${r.fields.dispatchId}/${r.fields.run}`, r.encoded);
  }

  /** Serve one center connection. */
  async serve(sock: SockIo): Promise<void> {
    const channel = new DispatchChannel(sock);
    try {
      const challenge = newChannelChallenge();
      await channel.send({ t: 'hello', agentMsid: this.msid, certificate: toBase64url(this.identity.certificate.der), pending: [...this.pending.values()].map((report) => ({ report })), challenge });
      for (let first = true; ; first = false) {
        const m = await channel.next((x) => x.t !== 'bundle', 10_000);
        if (first) this.firsts.push(m.t);
        if (m.t === 'auth') {
          this.auths.push(verifyChannelAuth(m.signature, { challenge, agentMsid: this.msid }, this.centerKey));
        } else if (m.t === 'ack') {
          this.acks.push(`${m.dispatchId}/${m.run}`);
          this.pending.delete(`${m.dispatchId}/${m.run}`);
        } else if (m.t === 'run' || m.t === 'rerun') {
          const order = verifyBinding(decodeBinding(m.binding), { centerKey: this.centerKey, agentMsid: this.msid });
          if (m.t === 'run') {
            let body = m.inline ? m.body : undefined;
            if (!m.inline) {
              this.fetched.push(order.bundleDigest);
              await channel.send({ t: 'fetch', digest: order.bundleDigest });
              const b = await channel.next((x) => x.t === 'bundle' || x.t === 'error', 5_000);
              body = b.t === 'bundle' ? b.body : undefined;
            }
            if (body === undefined || sha256Digest(body) !== order.bundleDigest) throw new Error('scripted agent: bundle does not match the order');
          }
          this.orders.push(order);
          const ctx: OrderContext = {
            agent: this,
            channel,
            order,
            kind: m.t,
            report: (overrides = {}, by = this.identity) =>
              signReport(
                {
                  dispatchId: order.dispatchId,
                  run: order.run,
                  agentMsid: by.msid,
                  bundleDigest: order.bundleDigest,
                  evidence: order.evidence,
                  outcome: 'ran',
                  reason: null,
                  start: 'started',
                  exitCode: 0,
                  signal: null,
                  stdout: { digest: EMPTY, size: 0 },
                  stderr: { digest: EMPTY, size: 0 },
                  startedAt: 1,
                  endedAt: 2,
                  ...overrides,
                },
                by,
              ),
            send: (x) => channel.send(x),
          };
          if ((await this.behaviour(ctx)) === 'close') break;
        }
      }
    } catch {
      // the center went away
    } finally {
      await channel.close();
    }
  }
}

interface Fleet {
  key: IdentityKey;
  connector: MemoryAgentConnector;
  agents: ScriptedAgent[];
  online(a: ScriptedAgent): void;
}

function fleet(n: number): Fleet {
  const key = generateIdentityKey();
  const connector = new MemoryAgentConnector();
  const agents = Array.from({ length: n }, (_, i) => new ScriptedAgent(key.publicKey, i));
  const online = (a: ScriptedAgent) => connector.register(a.msid, (sock) => void a.serve(sock));
  for (const a of agents) online(a);
  return { key, connector, agents, online };
}

const FAST = { connectTimeoutMs: 2_000, timeoutMs: 3_000, backoffMs: 20, maxBackoffMs: 100 };
const open = (f: Fleet, extra: Partial<DispatchCenterOptions> = {}) => DispatchCenter.open({ key: f.key, connector: f.connector, reissueGraceMs: 150, ...extra });
const NOOP = { name: 'noop', version: 1, code: 'export default async () => {}' };

describe('DispatchCenter over scripted agents', () => {
  it.each(['memory', 'sqlite'] as const)('dispatches to every agent in waves, verifies each report, and logs it all (%s store)', async (kind) => {
    const f = fleet(6);
    const logPath = join(work, `all-verify-${kind}.log`);
    const center = await open(f, kind === 'memory' ? { logPath } : { logPath, store: join(work, 'all-verify', 'center.sqlite') });
    const bundle = await center.createBundle(NOOP);
    // Every order's evidence is in the store before the agent sees the order; at most 3 agents are worked on at once.
    let inFlight = 0;
    let most = 0;
    const storedFirst: boolean[] = [];
    for (const a of f.agents) {
      a.behaviour = async (ctx) => {
        storedFirst.push(center.store.findEvidence({ dispatchId: ctx.order.dispatchId, run: ctx.order.run, msid: ctx.agent.msid }, ctx.order.evidence)?.status === 'current');
        most = Math.max(most, ++inFlight);
        await sleep(40);
        inFlight--;
        await honest(ctx);
      };
    }
    const run = center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, concurrency: 3 });
    const results: TargetResult[] = [];
    const waves: WaveSummary[] = [];
    const progress: DispatchProgress[] = [];
    run.on('result', (r) => results.push(r));
    run.on('wave', (w) => waves.push(w));
    run.on('progress', (p) => progress.push(p));
    const summary = await run.done;
    // When `done` resolves, the evidence log already holds every line of the run.
    const headNow = readFileSync(logPath + '.head', 'utf8'); // the head first: the log is never behind it
    expect(verifyEvidenceLog(readFileSync(logPath, 'utf8'), f.key.publicKey, { head: headNow }).kinds).toMatchObject({ issued: 6, result: 6 });
    expect(summary.state).toBe('done');
    expect(summary.counts.verified).toBe(6);
    expect(results.map((r) => r.state)).toEqual(Array(6).fill('verified'));
    expect(waves.map((w) => [w.size, w.failures, w.stopped])).toEqual([
      [1, 0, false],
      [1, 0, false],
      [4, 0, false],
    ]);
    expect(progress.at(-1)).toMatchObject({ done: 6, total: 6, verified: 6 });
    expect(storedFirst).toEqual(Array(6).fill(true));
    expect(most).toBe(3);
    // One order each, each with its own evidence, all acked; the bundle went inline.
    const evidence = new Set(f.agents.map((a) => a.orders[0]!.evidence));
    await settle(f.agents);
    expect(evidence.size).toBe(6);
    for (const a of f.agents) {
      expect(a.orders).toHaveLength(1);
      expect(a.pending.size).toBe(0);
      expect(a.fetched).toEqual([]);
    }
    const status = center.status(run.dispatchId);
    expect(status.runs[0]!.targets.every((t) => t.outcome === 'ran' && t.exitCode === 0 && t.attempts === 1)).toBe(true);
    expect(center.store.getTarget({ dispatchId: run.dispatchId, run: 0, msid: f.agents[0]!.msid })!.report).toMatch(/^[A-Za-z0-9_-]+$/);
    await center.close();
    const log = readFileSync(logPath, 'utf8');
    const checked = verifyEvidenceLog(log, f.key.publicKey, { head: readFileSync(logPath + '.head', 'utf8') });
    expect(checked.kinds).toMatchObject({ log: 1, bundle: 1, dispatch: 1, issued: 6, result: 6, failure: 0 });
    // `issued` lines hold the evidence hash, never the value (it shows up only in the verified report).
    const issued = log.split('\n').filter((l) => l.includes('"kind":"issued"'));
    expect(issued).toHaveLength(6);
    for (const e of evidence) for (const l of issued) expect(l).not.toContain(e);
  });

  it('answers every hello first with an auth over that connection\'s challenge, signed by the center key', async () => {
    const f = fleet(2);
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const summary = await center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST }).done;
    expect(summary.counts.verified).toBe(2);
    for (const a of f.agents) {
      expect(a.firsts.length).toBeGreaterThan(0);
      expect(a.firsts.every((t) => t === 'auth')).toBe(true);
      expect(a.auths.length).toBe(a.firsts.length);
      expect(a.auths.every(Boolean)).toBe(true);
    }
    await center.close();
  });

  it('lets agents fetch a bundle larger than the inline limit, from the repository', async () => {
    const f = fleet(2);
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const summary = await center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, inlineMaxBytes: 16 }).done;
    expect(summary.counts.verified).toBe(2);
    for (const a of f.agents) expect(a.fetched).toEqual([bundle.digest]);
    await center.close();
  });

  it('records each bad report with its reason and leaves the other agents alone', async () => {
    const f = fleet(11);
    const [good, badSig, otherAgent, wrongEvidence, wrongBundle, garbage, unknownDispatch, slowGood, brokenFrame, fetcher] = f.agents;
    const stranger = createServerIdentity();
    badSig!.behaviour = async (ctx) => {
      // A genuine report with one bit of its signature flipped.
      const r = ctx.report();
      const raw = fromBase64url(r.encoded, 'report', 1 << 16);
      raw[raw.length - 5]! ^= 0x01;
      await ctx.send({ t: 'report', report: toBase64url(raw), certificate: toBase64url(r.certificate) });
    };
    otherAgent!.behaviour = async (ctx) => void (await sendReport(ctx, ctx.report({}, stranger))); // signed by another agent
    wrongEvidence!.behaviour = async (ctx) => void (await sendReport(ctx, ctx.report({ evidence: newEvidence() })));
    wrongBundle!.behaviour = async (ctx) => void (await sendReport(ctx, ctx.report({ bundleDigest: `sha256:${'ab'.repeat(32)}` })));
    garbage!.behaviour = async (ctx) => void (await ctx.send({ t: 'report', report: 'bm90IGEgcmVwb3J0', certificate: toBase64url(ctx.agent.identity.certificate.der) }));
    unknownDispatch!.behaviour = async (ctx) => void (await sendReport(ctx, ctx.report({ dispatchId: newDispatchId() })));
    // Bytes that are not a channel message at all: len 3, header length 1, header "{".
    brokenFrame!.behaviour = async (ctx) => void (await ctx.channel.sock.send(new Uint8Array([0, 0, 0, 3, 0, 1, 0x7b])));
    // Fetches the bundle again and again.
    fetcher!.behaviour = async (ctx) => {
      for (let i = 0; i < 10; i++) await ctx.send({ t: 'fetch', digest: ctx.order.bundleDigest });
    };
    slowGood!.behaviour = async (ctx) => {
      await sleep(100);
      await honest(ctx);
    };
    const center = await open(f);
    const failures: VerificationFailureRecord[] = [];
    center.on('failure', (x) => failures.push(x));
    const bundle = await center.createBundle(NOOP);
    const run = center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, waves: [], failureThreshold: 1 });
    const summary = await run.done;
    const byMsid = new Map(summary.targets.map((t) => [t.msid, t]));
    const expectTarget = (a: ScriptedAgent, state: string, reason: string | null) => expect(byMsid.get(a.msid), a.pcid).toMatchObject({ state, reason });
    expectTarget(good!, 'verified', null);
    expectTarget(slowGood!, 'verified', null);
    expectTarget(f.agents[10]!, 'verified', null);
    expectTarget(fetcher!, 'failed', 'malformed');
    expectTarget(brokenFrame!, 'failed', 'malformed');
    expectTarget(badSig!, 'failed', 'bad-signature');
    expectTarget(otherAgent!, 'failed', 'wrong-agent');
    expectTarget(wrongEvidence!, 'failed', 'wrong-evidence');
    expectTarget(wrongBundle!, 'failed', 'wrong-bundle');
    expectTarget(garbage!, 'failed', 'malformed');
    expectTarget(unknownDispatch!, 'failed', 'unknown-dispatch');
    // Each failure is recorded in the store (and was an event), with a message.
    const recorded = center.store.listFailures();
    expect(recorded.map((r) => r.reason).sort()).toEqual(['bad-signature', 'malformed', 'malformed', 'malformed', 'unknown-dispatch', 'wrong-agent', 'wrong-bundle', 'wrong-evidence']);
    expect(failures).toHaveLength(recorded.length);
    for (const r of recorded) expect(r.message.length).toBeGreaterThan(0);
    expect(center.status(run.dispatchId).failures.map((r) => r.msid).sort()).toEqual([badSig, otherAgent, wrongEvidence, wrongBundle, garbage, brokenFrame, fetcher].map((a) => a!.msid).sort());
    await center.close();
  });

  it('records a replayed report and evidence from another dispatch without touching the first dispatch', async () => {
    const f = fleet(2);
    const [a, b] = f.agents;
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const first = await center.dispatch({ bundle: bundle.digest, agents: [a!.ref, b!.ref], ...FAST, waves: [] }).done;
    expect(first.counts.verified).toBe(2);
    await settle(f.agents);
    const oldA = a!.orders[0]!;
    const oldReportOfA = a!.orders.length;
    // Re-run: agent a answers the new order with its old, already accepted report (a replay).
    let replayed: SignedReport | undefined;
    a!.behaviour = async (ctx) => {
      replayed = ctx.report({ dispatchId: oldA.dispatchId, run: oldA.run, evidence: oldA.evidence });
      await sendReport(ctx, replayed);
    };
    const rerun = await center.rerun(first.dispatchId, { args: ['--again'], agents: [a!.msid] }).done;
    expect(rerun.run).toBe(1);
    expect(rerun.targets[0]).toMatchObject({ state: 'failed', reason: 'replayed' });
    expect(a!.orders).toHaveLength(oldReportOfA + 1);
    expect(a!.orders.at(-1)).toMatchObject({ run: 1, args: ['--again'] });
    // A second dispatch: agent b reports with the evidence it got in the first one.
    const oldB = b!.orders[0]!;
    b!.behaviour = async (ctx) => void (await sendReport(ctx, ctx.report({ evidence: oldB.evidence })));
    const second = await center.dispatch({ bundle: bundle.digest, agents: [b!.ref], ...FAST }).done;
    expect(second.targets[0]).toMatchObject({ state: 'failed', reason: 'wrong-evidence' });
    // The first dispatch is as it was.
    const again = center.status(first.dispatchId).runs[0]!;
    expect(again.counts.verified).toBe(2);
    expect(again.targets.every((t) => t.state === 'verified' && t.reason === null)).toBe(true);
    expect(center.store.listFailures(first.dispatchId).map((x) => [x.run, x.reason])).toEqual([[0, 'replayed']]);
    await center.close();
  });

  it('re-runs with new arguments on the agents that ran, with fresh evidence and no fetch', async () => {
    const f = fleet(3);
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const first = await center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, waves: [] }).done;
    const r = await center.rerun(first.dispatchId, { args: ['--level', '2'] }).done;
    expect(r.counts.verified).toBe(3);
    for (const a of f.agents) {
      expect(a.orders.map((o) => o.run)).toEqual([0, 1]);
      expect(a.orders[1]!.args).toEqual(['--level', '2']);
      expect(a.orders[1]!.evidence).not.toBe(a.orders[0]!.evidence);
    }
    expect(center.status(first.dispatchId).runs.map((x) => x.state)).toEqual(['done', 'done']);
    expect(() => center.rerun(first.dispatchId, { args: [], agents: [f.agents[0]!.msid, f.agents[0]!.msid] })).toThrow(/once/);
    expect(() => center.rerun(first.dispatchId, { args: [], agents: [`MSID-${'0'.repeat(64)}`] })).toThrow(/not part of/);
    await center.close();
  });

  it('stops at a canary wave that fails and skips the rest', async () => {
    const f = fleet(10);
    f.agents[0]!.behaviour = async (ctx) => {
      const r = ctx.report({ exitCode: 3 });
      ctx.agent.keep(r);
      await sendReport(ctx, r);
    };
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const run = center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST });
    const waves: WaveSummary[] = [];
    run.on('wave', (w) => waves.push(w));
    const summary = await run.done;
    expect(summary.state).toBe('stopped');
    expect(waves).toEqual([{ dispatchId: run.dispatchId, run: 0, index: 0, size: 1, failures: 1, stopped: true }]);
    expect(summary.counts).toMatchObject({ verified: 1, skipped: 9 });
    expect(summary.targets[0]).toMatchObject({ state: 'verified', exitCode: 3 });
    expect(summary.targets.slice(1).every((t) => t.state === 'skipped' && t.reason === 'canary-stopped')).toBe(true);
    expect(f.agents.slice(1).every((a) => a.orders.length === 0)).toBe(true);
    await center.close();
  });

  it('retries an offline agent with backoff until it comes online, and gives up on one that never does', async () => {
    const f = fleet(3);
    const [late, never, dropper] = f.agents;
    f.connector.unregister(late!.msid);
    f.connector.unregister(never!.msid);
    setTimeout(() => f.online(late!), 150);
    // Drops the connection after `accepted` on the first order; keeps the report for the next hello.
    dropper!.behaviour = async (ctx) => {
      await ctx.send({ t: 'accepted', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
      ctx.agent.keep(ctx.report());
      ctx.agent.behaviour = honest;
      return 'close';
    };
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const summary = await center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, waves: [], retries: 4, backoffMs: 40, maxBackoffMs: 80 }).done;
    const byMsid = new Map(summary.targets.map((t) => [t.msid, t]));
    expect(byMsid.get(late!.msid)!.state).toBe('verified');
    expect(byMsid.get(late!.msid)!.attempts).toBeGreaterThan(1);
    expect(byMsid.get(never!.msid)).toMatchObject({ state: 'gave-up', attempts: 5 });
    expect(byMsid.get(never!.msid)!.reason).toMatch(/offline: GS_ERR_SERVER_OFFLINE/);
    // The dropper's report came with its second hello: it ran once, one evidence value.
    expect(byMsid.get(dropper!.msid)).toMatchObject({ state: 'verified', attempts: 2 });
    expect(dropper!.orders).toHaveLength(1);
    await settle([dropper!]);
    expect(dropper!.pending.size).toBe(0);
    await center.close();
  });

  it('keeps the refusal an agent signs, and fails an order refused without a report', async () => {
    const f = fleet(2);
    const [signs, bare] = f.agents;
    signs!.behaviour = async (ctx) => {
      await ctx.send({ t: 'error', code: 'GS_ERR_DISPATCH_ROLLBACK', message: 'version 1 < 2', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
      const r = ctx.report({ outcome: 'refused', reason: 'GS_ERR_DISPATCH_ROLLBACK', start: 'none', exitCode: null });
      ctx.agent.keep(r);
      await sendReport(ctx, r);
    };
    bare!.behaviour = async (ctx) => void (await ctx.send({ t: 'error', code: 'GS_ERR_DISPATCH_BAD_SIGNATURE', message: 'not our center', dispatchId: ctx.order.dispatchId, run: ctx.order.run }));
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const summary = await center.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, waves: [], failureThreshold: 1 }).done;
    const byMsid = new Map(summary.targets.map((t) => [t.msid, t]));
    expect(byMsid.get(signs!.msid)).toMatchObject({ state: 'verified', outcome: 'refused' });
    expect(byMsid.get(bare!.msid)).toMatchObject({ state: 'failed', reason: 'agent-error: GS_ERR_DISPATCH_BAD_SIGNATURE', attempts: 1 });
    await center.close();
  });

  /**
   * One agent whose first order is accepted and then left running (the
   * connection drops), so the center re-issues it; `then` answers the later
   * orders with the first order's context at hand.
   */
  async function reissuedOnce(then: (ctx: OrderContext, first: OrderContext) => Promise<'close' | void>) {
    const f = fleet(1);
    const agent = f.agents[0]!;
    let first: OrderContext | undefined;
    agent.behaviour = async (ctx) => {
      if (first !== undefined) return then(ctx, first);
      // Accept, then lose the connection while the loader runs on.
      first = ctx;
      await ctx.send({ t: 'accepted', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
      return 'close';
    };
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const run = center.dispatch({ bundle: bundle.digest, agents: [agent.ref], ...FAST });
    const summary = await run.done;
    const key = { dispatchId: run.dispatchId, run: 0, msid: agent.msid };
    return { agent, center, summary, key };
  }
  const replayed = (ctx: OrderContext) => ctx.send({ t: 'error', code: 'GS_ERR_DISPATCH_REPLAYED', message: 'already acted on', dispatchId: ctx.order.dispatchId, run: ctx.order.run });

  /** The first order stood: its evidence is the target's and accepted, every later one superseded, no failure recorded. */
  function expectFirstOrderStood(center: DispatchCenter, key: { dispatchId: string; run: number; msid: string }, agent: ScriptedAgent): void {
    expect(center.store.getTarget(key)!.evidence).toBe(agent.orders[0]!.evidence);
    expect(agent.orders.map((o) => center.store.findEvidence(key, o.evidence)!.status)).toEqual(['accepted', ...agent.orders.slice(1).map(() => 'superseded')]);
    expect(center.store.listFailures()).toEqual([]);
  }

  it('undoes a re-issue the agent refuses because it still runs the first order, and accepts that order\'s report later', async () => {
    const { agent, center, summary, key } = await reissuedOnce(async (ctx, first) => {
      // The center re-issued (no report came with the hello): refuse it, the first order stands; it finishes now.
      await replayed(ctx);
      ctx.agent.keep(first.report());
      return 'close';
    });
    expect(summary.targets[0]).toMatchObject({ state: 'verified', outcome: 'ran', attempts: 3 });
    expect(agent.orders).toHaveLength(2);
    expectFirstOrderStood(center, key, agent);
    await center.close();
  });

  it('accepts the report of the order that stands when it crosses the re-issue the agent then refuses as replayed', async () => {
    const { agent, center, summary, key } = await reissuedOnce(async (ctx, first) => {
      // The re-issue arrives just as the first run ends: its report goes out first, then the refusal.
      const r = first.report();
      ctx.agent.keep(r);
      await sendReport(ctx, r);
      await replayed(ctx);
    });
    expect(summary.targets[0]).toMatchObject({ state: 'verified', outcome: 'ran', attempts: 2 });
    expect(agent.orders).toHaveLength(2);
    expectFirstOrderStood(center, key, agent);
    await settle([agent]);
    expect(agent.pending.size).toBe(0); // acked once accepted
    await center.close();
  });

  it('keeps a superseded order\'s report unacked across a lost attempt and accepts it when the next re-issue is refused as replayed', async () => {
    const { agent, center, summary, key } = await reissuedOnce(async (ctx, first) => {
      if (ctx.agent.orders.length > 2) return replayed(ctx);
      // The first run ends while the re-issue is on its way; the connection drops before anything is answered.
      ctx.agent.keep(first.report());
      return 'close';
    });
    expect(summary.targets[0]).toMatchObject({ state: 'verified', outcome: 'ran', attempts: 3 });
    expect(agent.orders).toHaveLength(3);
    expectFirstOrderStood(center, key, agent);
    await center.close();
  });

  it('takes reports for other targets that an agent sends after its hello (more than a hello holds) without failing the order they precede', async () => {
    const f = fleet(1);
    const agent = f.agents[0]!;
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    // 18 dispatches whose orders the agent took and whose reports it still holds; their targets wait a long retry.
    const held: SignedReport[] = [];
    agent.behaviour = async (ctx) => {
      await ctx.send({ t: 'accepted', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
      held.push(ctx.report());
      return 'close';
    };
    const waiting = Array.from({ length: 18 }, () => center.dispatch({ bundle: bundle.digest, agents: [agent.ref], ...FAST, backoffMs: 60_000, maxBackoffMs: 60_000 }));
    for (let i = 0; i < 300 && held.length < 18; i++) await sleep(10);
    expect(held).toHaveLength(18);
    // The agent comes back: the hello could not hold them all, so they follow it as reports, before the new order is answered.
    agent.behaviour = async (ctx) => {
      for (const r of held) await sendReport(ctx, r);
      await honest(ctx);
    };
    const summary = await center.dispatch({ bundle: bundle.digest, agents: [agent.ref], ...FAST }).done;
    expect(summary.targets[0]).toMatchObject({ state: 'verified', outcome: 'ran', attempts: 1 });
    for (const w of await Promise.all(waiting.map((r) => r.done))) expect(w.targets[0]).toMatchObject({ state: 'verified', attempts: 1 });
    expect(center.store.listFailures()).toEqual([]);
    await center.close();
  });

  it('gives up on an agent that stops reading, instead of waiting on a blocked send', async () => {
    const f = fleet(1);
    const stuck = f.agents[0]!;
    // Says hello, then never reads: a 3 MiB inline bundle fills the pipe and the center's send blocks.
    f.connector.register(stuck.msid, (sock) => void sock.send(encodeMessage({ t: 'hello', agentMsid: stuck.msid, certificate: toBase64url(stuck.identity.certificate.der), pending: [], challenge: newChannelChallenge() })));
    const center = await open(f);
    const bundle = await center.createBundle({ ...NOOP, target: { bytes: new Uint8Array(3 << 20), path: 'bin/big' } });
    const started = Date.now();
    const summary = await center.dispatch({ bundle: bundle.digest, agents: [stuck.ref], retries: 0, connectTimeoutMs: 400, timeoutMs: 400, inlineMaxBytes: 8 << 20 }).done;
    expect(summary.targets[0]).toMatchObject({ state: 'gave-up', reason: 'disconnected', attempts: 1 });
    expect(Date.now() - started).toBeLessThan(5_000);
    await center.close();
  });

  it('refuses an agent that says hello as another machine', async () => {
    const f = fleet(2);
    const impostor = f.agents[1]!;
    f.connector.register(f.agents[0]!.msid, (sock) => void impostor.serve(sock));
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const summary = await center.dispatch({ bundle: bundle.digest, agents: [f.agents[0]!.ref], ...FAST }).done;
    expect(summary.targets[0]).toMatchObject({ state: 'failed', reason: 'wrong-agent' });
    expect(impostor.orders).toHaveLength(0);
    await center.close();
  });

  it('survives a restart mid-dispatch on a SQLite store: resume finishes every target, none runs twice without a recorded reason', async () => {
    const f = fleet(4);
    const [a1, a2, a3, a4] = f.agents;
    const file = join(work, 'restart', 'center.sqlite');
    // Phase 1: a1 and a2 accept and hold their reports; a3 and a4 wait their turn (concurrency 2).
    const held = new Map<ScriptedAgent, OrderContext>();
    for (const a of [a1!, a2!]) {
      a.behaviour = async (ctx) => {
        await ctx.send({ t: 'accepted', dispatchId: ctx.order.dispatchId, run: ctx.order.run });
        held.set(ctx.agent, ctx);
      };
    }
    const repository = new DirectoryBundleRepository(join(work, 'restart', 'bundles'));
    const logPath = join(work, 'restart', 'evidence.log');
    const centerA = await open(f, { store: file, repository, logPath });
    const bundle = await centerA.createBundle(NOOP);
    const run = centerA.dispatch({ bundle: bundle.digest, agents: f.agents.map((a) => a.ref), ...FAST, waves: [], concurrency: 2 });
    for (let i = 0; i < 200 && centerA.status(run.dispatchId).runs[0]!.counts.accepted < 2; i++) await sleep(10);
    expect(centerA.status(run.dispatchId).runs[0]!.counts).toMatchObject({ accepted: 2, pending: 2 });
    await centerA.close();
    expect((await run.done).state).toBe('running');

    // While no center runs: a1 finishes and keeps its report for the next hello;
    // a2's loader died: it has no report now, and sends a late one for the old order next time.
    const late = held.get(a2!)!.report();
    a1!.keep(held.get(a1!)!.report());
    a1!.behaviour = honest;
    a2!.behaviour = async (ctx) => {
      await sendReport(ctx, late); // stale: its evidence was superseded by this new order
      await honest(ctx);
    };

    const store = await SqliteDispatchStore.open(file);
    const centerB = await open(f, { store, repository: new DirectoryBundleRepository(join(work, 'restart', 'bundles')), logPath });
    centerB.on('error', (e) => console.error('centerB', e));
    const resumed = centerB.resume();
    expect(resumed.map((r) => r.dispatchId)).toEqual([run.dispatchId]);
    const summary = await resumed[0]!.done;
    expect(summary.state).toBe('done');
    expect(summary.counts.verified).toBe(4);
    expect(a1!.orders).toHaveLength(1); // verified from its pending report, not run again
    expect(a3!.orders).toHaveLength(1);
    expect(a4!.orders).toHaveLength(1);
    expect(a2!.orders).toHaveLength(2); // re-issued, with the reason recorded
    const t2 = centerB.store.getTarget({ dispatchId: run.dispatchId, run: 0, msid: a2!.msid })!;
    expect(t2.evidence).toBe(a2!.orders[1]!.evidence);
    expect(centerB.store.findEvidence(t2, a2!.orders[0]!.evidence)!.status).toBe('superseded');
    expect(summary.targets.find((t) => t.msid === a2!.msid)!.reason).toMatch(/reissued/);
    expect(centerB.store.listFailures(run.dispatchId).map((x) => [x.msid, x.reason])).toEqual([[a2!.msid, 'stale']]);
    for (const a of f.agents) {
      const t = summary.targets.find((x) => x.msid === a.msid)!;
      expect(a.orders.length === 1 || /reissued/.test(t.reason ?? '')).toBe(true);
    }
    expect(centerB.resume()).toEqual([]);
    await centerB.close();
    await store.close();
    // One evidence log across both centers: the chain continues and verifies; the re-issue and the stale report are in it.
    const logText = readFileSync(logPath, 'utf8');
    const checked = verifyEvidenceLog(logText, f.key.publicKey, { head: readFileSync(logPath + '.head', 'utf8') });
    expect(checked.kinds).toMatchObject({ log: 1, bundle: 1, dispatch: 1, issued: 5, result: 4, failure: 1 });
    // Lines cut off its end while no center runs: the next center refuses the log instead of forking its chain.
    const lines = logText.trimEnd().split('\n');
    writeFileSync(logPath, lines.slice(0, -2).join('\n') + '\n');
    await expect(open(f, { logPath })).rejects.toMatchObject({
      code: 'GS_ERR_DISPATCH_LOG_TRUNCATED',
      message: expect.stringContaining(`expected head ${lines.length}/`),
    });
  });

  it('close() closes the store even when the evidence log cannot write its last head (an error event; the log still verifies)', async () => {
    const f = fleet(1);
    const logPath = join(work, 'head-fails', 'evidence.log');
    mkdirSync(join(work, 'head-fails'), { recursive: true });
    const center = await open(f, { logPath, store: join(work, 'head-fails', 'center.sqlite') });
    const errors: Error[] = [];
    center.on('error', (e) => errors.push(e));
    mkdirSync(logPath + '.head.tmp'); // no head can be written from now on
    await center.createBundle(NOOP);
    await center.close();
    expect(errors.map((e) => (e as DispatchError).code)).toContain('GS_ERR_DISPATCH_LOG_WRITE_FAILED');
    // The store the center opened was closed; the log is past its head.
    expect(() => center.store.listDispatches()).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_CLOSED' }));
    const checked = verifyEvidenceLog(readFileSync(logPath, 'utf8'), f.key.publicKey, { head: readFileSync(logPath + '.head', 'utf8') });
    expect(checked).toMatchObject({ pastHead: 1, kinds: { log: 1, bundle: 1 } });
  });

  it('refuses bad dispatch options and unknown bundles by name', async () => {
    const f = fleet(1);
    const center = await open(f);
    const bundle = await center.createBundle(NOOP);
    const agents = [f.agents[0]!.ref];
    expect(() => center.dispatch({ bundle: `sha256:${'0'.repeat(64)}`, agents })).toThrow(/no bundle/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents: [] })).toThrow(/agents/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents: [{ msid: 'MSID-12', pcid: 'x' }] })).toThrow(/msid/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents: [...agents, ...agents] })).toThrow(/twice/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents, concurrency: 0 })).toThrow(/concurrency/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents, failureThreshold: 2 })).toThrow(/failureThreshold/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents, args: Array(300).fill('x') })).toThrow(/args/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents, args: ['a\0b'] })).toThrow(/NUL/);
    expect(() => center.dispatch({ bundle: bundle.digest, agents, waves: [0] })).toThrow(/waves/);
    expect(center.store.listDispatches()).toEqual([]);
    expect(() => center.rerun(newDispatchId(), { args: [] })).toThrow(/no dispatch/);
    // A dispatch nobody ran (the only agent is offline): nothing to re-run unless named.
    f.connector.unregister(f.agents[0]!.msid);
    const none = await center.dispatch({ bundle: bundle.digest, agents, ...FAST, retries: 0 }).done;
    expect(none.targets[0]!.state).toBe('gave-up');
    expect(() => center.rerun(none.dispatchId, { args: [] })).toThrow(/no agent/);
    // An expired bundle is not dispatched.
    const old = await center.createBundle({ ...NOOP, name: 'old', ttlMs: 1, now: Date.now() - 10 });
    expect(() => center.dispatch({ bundle: old.digest, agents })).toThrow(/expired/);
    expect(() => center.status(newDispatchId())).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_UNKNOWN_DISPATCH' }));
    await center.close();
    expect(() => center.dispatch({ bundle: bundle.digest, agents })).toThrow(expect.objectContaining({ code: 'GS_ERR_DISPATCH_CLOSED' }));
  });
});

describe('DispatchCenter over the relay (loopback gateway system)', () => {
  it('reaches scripted agents by PCID, checks their MSID end to end, and refuses a PCID that names another machine', async () => {
    const system: TestSystem = await startSystem({ gateways: 1 });
    const servers: SockServer[] = [];
    try {
      const f = fleet(0);
      const agents = [new ScriptedAgent(f.key.publicKey, 1), new ScriptedAgent(f.key.publicKey, 2)];
      const common = { controller: system.controller.address, roots: [system.pki.root] };
      for (const a of agents) servers.push(await serverStart({ ...common, identity: a.identity, pcid: a.pcid, startTimeoutMs: 10_000 }, (sock) => a.serve(sock)));
      const connector = new RelayAgentConnector(common);
      // The PCID of agent 2 with the MSID of agent 1: the connector refuses before anything is sent.
      const err = await connector.connect({ msid: agents[0]!.msid, pcid: agents[1]!.pcid }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DispatchError);
      expect((err as DispatchError).code).toBe('GS_ERR_DISPATCH_WRONG_AGENT');
      const center = await DispatchCenter.open({ key: f.key, connector });
      const bundle = await center.createBundle(NOOP);
      const summary = await center
        .dispatch({ bundle: bundle.digest, agents: agents.map((a) => a.ref), waves: [], connectTimeoutMs: 10_000, timeoutMs: 10_000 })
        .done;
      expect(summary.counts.verified).toBe(2);
      for (const a of agents) expect(a.orders).toHaveLength(1);
      const wrong = await center.dispatch({ bundle: bundle.digest, agents: [{ msid: agents[0]!.msid, pcid: agents[1]!.pcid }], connectTimeoutMs: 10_000 }).done;
      expect(wrong.targets[0]).toMatchObject({ state: 'failed', reason: 'wrong-agent', attempts: 1 });
      expect(agents[1]!.orders).toHaveLength(1);
      await center.close();
    } finally {
      for (const sv of servers) await sv.close();
      await system.close();
    }
  });
});
