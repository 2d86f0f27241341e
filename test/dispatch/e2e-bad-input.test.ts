/**
 * Every bad-input case of issue 7, end to end over the relay on loopback:
 * each gives a clear recorded outcome, nothing executes unverified (the
 * distributed code and the target leave marker files in the agent's work
 * directory; their absence proves nothing ran), and the center and the
 * other agents carry on.
 *
 * - The center side is the bad party (tampered bundle, wrong signer,
 *   expired and rolled-back metadata, a replayed order): orders crafted with
 *   the wire functions over a raw clientConnect + DispatchChannel to real
 *   agents (DispatchAgent with the ProcessExecutor of the built loader).
 * - The distributed code is bad (a loader that crashes, one that hangs): the
 *   real DispatchCenter records `crashed` and `timeout`.
 * - The agent side is the bad party (a replayed report, a report signed by
 *   another agent, evidence from another dispatch): scripted rogue agents,
 *   relay servers in this process, answer the real DispatchCenter, which
 *   records each failed verification with its reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DispatchAgent,
  DispatchCenter,
  DispatchChannel,
  ProcessExecutor,
  RelayAgentConnector,
  checkReport,
  createBundle,
  decodeBinding,
  decodeReport,
  newDispatchId,
  newEvidence,
  sha256Digest,
  signBinding,
  signReport,
  verifyEvidenceLog,
  type AgentRef,
  type Bundle,
  type ChannelMessage,
  type DispatchOptions,
  type SignedReport,
} from '../../src/delivery/index.js';
import { fromBase64url, newChannelChallenge, signChannelAuth, toBase64url } from '../../src/delivery/dispatch/wire/index.js';
import { createServerIdentity, generateIdentityKey, type Identity, type IdentityKey } from '../../src/session/index.js';
import { clientConnect, serverStart, type SockIo, type SockServer } from '../../src/socket/index.js';
import { startSystem, type TestSystem } from '../relay/system.js';
import { builtLoader, lines, markerCode, ranReport, sleep, tempDir, until } from './fixtures/e2e/harness.js';

const key = generateIdentityKey();
const otherKey = generateIdentityKey();
const closers: Array<() => Promise<unknown>> = [];
let work: string;
let system: TestSystem;
let relay: { controller: string; roots: TestSystem['pki']['root'][] };
let center: DispatchCenter;

/** An honest agent: a DispatchAgent with process loaders, online as a relay server. */
interface Honest {
  readonly agent: DispatchAgent;
  readonly msid: string;
  readonly pcid: string;
  readonly workDir: string;
  readonly refused: string[];
}
const honest: Honest[] = [];

/** The target of every bundle here: appends its first argument to `targets.log` in the work directory. */
const MARK_TARGET = new TextEncoder().encode('#!/bin/sh\necho "$1" >> targets.log\n');
const FAST: Partial<DispatchOptions> = { retries: 1, backoffMs: 100, maxBackoffMs: 200, connectTimeoutMs: 5_000, failureThreshold: 1 };

/** A bundle whose code leaves `code-<marker>` and whose target logs `<marker>`. */
function markBundle(marker: string, o: { name?: string; version?: number; signer?: IdentityKey; now?: number; ttlMs?: number; code?: string; timeoutMs?: number } = {}): Bundle {
  return createBundle(
    {
      name: o.name ?? marker,
      version: o.version ?? 1,
      code: o.code ?? markerCode(`code-${marker}`, 'const r = await ctx.spawnTarget(); if (r.exitCode !== 0) throw new Error("exit " + r.exitCode);'),
      target: { bytes: MARK_TARGET, path: 'mark.sh', args: [marker] },
      timeoutMs: o.timeoutMs ?? 10_000,
      ...(o.now !== undefined ? { now: o.now } : {}),
      ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
    },
    o.signer ?? key,
  );
}

/** What ran on an agent: code markers present, target lines logged. */
function ran(a: Honest, marker: string): { code: boolean; target: number } {
  return { code: fs.existsSync(path.join(a.workDir, `code-${marker}`)), target: lines(path.join(a.workDir, 'targets.log')).filter((l) => l === marker).length };
}

beforeAll(async () => {
  work = tempDir('bad');
  closers.push(async () => fs.rmSync(work, { recursive: true, force: true }));
  system = await startSystem({ gateways: 1 });
  closers.push(() => system.close());
  relay = { controller: system.controller.address, roots: [system.pki.root] };
  for (const i of [1, 2]) {
    const dir = path.join(work, `agent-${i}`);
    const agent = await DispatchAgent.open({
      identity: createServerIdentity(),
      centerKey: key.publicKey,
      stateDir: path.join(dir, 'state'),
      workDir: path.join(dir, 'work'),
      executor: new ProcessExecutor({ loaderPath: builtLoader }),
      syncState: false,
    });
    closers.push(() => agent.close());
    const pcid = `bad-agent-${i}`;
    const server = await agent.listen({ ...relay, pcid });
    closers.push(() => server.close());
    const h: Honest = { agent, msid: agent.msid, pcid, workDir: path.join(dir, 'work'), refused: [] };
    agent.on('refused', (r) => h.refused.push(r.code));
    honest.push(h);
  }
  center = await DispatchCenter.open({ key, connector: new RelayAgentConnector(relay), logPath: path.join(work, 'evidence.log'), reissueGraceMs: 300 });
  closers.push(() => center.close());
}, 60_000);

afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

/** The honest fleet still works: a fresh bundle dispatched by the real center verifies on every honest agent. */
async function fleetCarriesOn(marker: string): Promise<void> {
  const bundle = await center.createBundle({ name: marker, version: 1, code: markerCode(`code-${marker}`, 'await ctx.spawnTarget();'), target: { bytes: MARK_TARGET, path: 'mark.sh', args: [marker] }, timeoutMs: 10_000 });
  const summary = await center.dispatch({ ...FAST, bundle: bundle.digest, agents: honest.map((h) => ({ msid: h.msid, pcid: h.pcid })), waves: [2] }).done;
  expect(summary.counts.verified).toBe(2);
  for (const h of honest) {
    expect(summary.targets.find((t) => t.msid === h.msid)).toMatchObject({ outcome: 'ran', exitCode: 0 });
    expect(ran(h, marker)).toEqual({ code: true, target: 1 });
  }
}

describe('a bad center side: crafted orders over a raw relay connection', () => {
  /** Send `order` on a fresh connection to `a`; collect what comes back until `enough` holds (then `settleMs` more). */
  async function send(
    a: Honest,
    order: ChannelMessage,
    enough: (got: ChannelMessage[]) => boolean,
    settleMs = 0,
    answer?: (m: ChannelMessage) => ChannelMessage | undefined,
  ): Promise<ChannelMessage[]> {
    const sock = await clientConnect(a.pcid, { ...relay, timeoutMs: 10_000 });
    expect(sock.info.peerMsid).toBe(a.msid);
    const ch = new DispatchChannel(sock);
    const got: ChannelMessage[] = [];
    ch.on('message', (m) => {
      got.push(m);
      const reply = answer?.(m);
      if (reply) void ch.send(reply).catch(() => undefined);
      if (m.t === 'report') void ch.send({ t: 'ack', dispatchId: decodeReport(m.report, fromBase64url(m.certificate, 'certificate', 16 * 1024)).fields.dispatchId, run: 0 }).catch(() => undefined);
    });
    try {
      await until(() => got.some((m) => m.t === 'hello'), 'hello', 10_000);
      // Like a real center, prove the key on this channel (the agent obeys `ack` only after that); the bad part is the order.
      const hello = got.find((m): m is Extract<ChannelMessage, { t: 'hello' }> => m.t === 'hello')!;
      await ch.send({ t: 'auth', signature: signChannelAuth({ challenge: hello.challenge, agentMsid: a.msid }, key) });
      await ch.send(order);
      await until(() => enough(got), `an answer to ${order.t}`, 15_000);
      if (settleMs > 0) await sleep(settleMs);
      return got;
    } finally {
      await ch.close();
    }
  }

  /** A binding signed by `signer` for `a` and `bundle`. */
  function bind(a: Honest, digest: string, signer: IdentityKey = key) {
    const now = Date.now();
    const fields = { dispatchId: newDispatchId(), run: 0, agentMsid: a.msid, bundleDigest: digest, evidence: newEvidence(), args: null, issuedAt: now, expiresAt: now + 60_000 };
    return { fields, binding: signBinding(fields, signer) };
  }

  const hasReport = (got: ChannelMessage[]) => got.some((m) => m.t === 'report');

  /** The one error answer and the signed `refused` report; the report verifies and names the code. */
  function refusedWith(a: Honest, got: ChannelMessage[], fields: ReturnType<typeof bind>['fields'], code: string): SignedReport {
    const errors = got.filter((m): m is Extract<ChannelMessage, { t: 'error' }> => m.t === 'error');
    expect(errors.map((e) => e.code)).toEqual([code]);
    expect(got.some((m) => m.t === 'accepted')).toBe(false);
    const m = got.find((x): x is Extract<ChannelMessage, { t: 'report' }> => x.t === 'report')!;
    const report = decodeReport(m.report, fromBase64url(m.certificate, 'certificate', 16 * 1024));
    expect(checkReport(report, { ...fields, agentMsid: a.msid, accepted: false })).toMatchObject({ ok: true });
    expect(report.fields).toMatchObject({ outcome: 'refused', reason: code, start: 'none', exitCode: null });
    return report;
  }

  it('a tampered bundle (target bytes inline or from the fetch, or signed metadata) is refused with a signed report; nothing runs', async () => {
    const a = honest[0]!;
    const good = markBundle('tamper-target');
    const bytes = good.bytes.slice();
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01; // the last byte of the target program
    const t1 = bind(a, sha256Digest(bytes));
    refusedWith(a, await send(a, { t: 'run', binding: t1.binding.encoded, inline: true, body: bytes }, hasReport), t1.fields, 'GS_ERR_DISPATCH_DIGEST_MISMATCH');
    expect(ran(a, 'tamper-target')).toEqual({ code: false, target: 0 });
    expect(fs.existsSync(path.join(a.workDir, 'mark.sh'))).toBe(false);

    // The order names the good bundle, but what the repository serves on the agent's fetch was tampered with.
    const t0 = bind(a, good.digest);
    const fetched = await send(a, { t: 'run', binding: t0.binding.encoded, inline: false }, hasReport, 0, (m) =>
      m.t === 'fetch' && m.digest === good.digest ? { t: 'bundle', digest: good.digest, body: bytes } : undefined,
    );
    expect(fetched.some((m) => m.t === 'fetch')).toBe(true);
    refusedWith(a, fetched, t0.fields, 'GS_ERR_DISPATCH_DIGEST_MISMATCH');
    expect(ran(a, 'tamper-target')).toEqual({ code: false, target: 0 });

    // Metadata edited after signing (same length, still canonical): the signature no longer holds.
    const meta = markBundle('tampermeta');
    const text = Buffer.from(meta.bytes);
    const at = text.indexOf('"name":"tampermeta"');
    expect(at).toBeGreaterThan(0);
    text.write('"name":"tampermetb"', at);
    const t2 = bind(a, sha256Digest(text));
    refusedWith(a, await send(a, { t: 'run', binding: t2.binding.encoded, inline: true, body: new Uint8Array(text) }, hasReport), t2.fields, 'GS_ERR_DISPATCH_BAD_SIGNATURE');
    expect(ran(a, 'tampermeta')).toEqual({ code: false, target: 0 });
  });

  it('a wrong signer: a bundle signed by another key is refused with a report; a binding signed by another key gets only an error', async () => {
    const a = honest[0]!;
    const foreign = markBundle('foreign', { signer: otherKey });
    const t1 = bind(a, foreign.digest);
    refusedWith(a, await send(a, { t: 'run', binding: t1.binding.encoded, inline: true, body: foreign.bytes }, hasReport), t1.fields, 'GS_ERR_DISPATCH_BAD_SIGNATURE');

    const mine = markBundle('foreign-binding');
    const t2 = bind(a, mine.digest, otherKey);
    const got = await send(a, { t: 'run', binding: t2.binding.encoded, inline: true, body: mine.bytes }, (g) => g.some((m) => m.t === 'error'), 300);
    // The agent cannot tell whom to report to for an order not from its center: an error, no report, nothing run.
    expect(got.filter((m) => m.t !== 'hello').map((m) => (m.t === 'error' ? m.code : m.t))).toEqual(['GS_ERR_DISPATCH_BAD_SIGNATURE']);
    expect(ran(a, 'foreign')).toEqual({ code: false, target: 0 });
    expect(ran(a, 'foreign-binding')).toEqual({ code: false, target: 0 });
  });

  it('expired metadata and rolled-back versions are refused; a replayed order is refused without a second run', async () => {
    const a = honest[1]!;
    const expired = markBundle('expired', { now: Date.now() - 2 * 3_600_000, ttlMs: 3_600_000 });
    const t1 = bind(a, expired.digest);
    refusedWith(a, await send(a, { t: 'run', binding: t1.binding.encoded, inline: true, body: expired.bytes }, hasReport), t1.fields, 'GS_ERR_DISPATCH_EXPIRED');
    expect(ran(a, 'expired')).toEqual({ code: false, target: 0 });

    // Version 2 of "rb" runs (the honest order) ...
    const v2 = markBundle('rb-v2', { name: 'rb', version: 2 });
    const t2 = bind(a, v2.digest);
    const ok = await send(a, { t: 'run', binding: t2.binding.encoded, inline: true, body: v2.bytes }, hasReport);
    expect(ok.some((m) => m.t === 'accepted')).toBe(true);
    expect(ran(a, 'rb-v2')).toEqual({ code: true, target: 1 });
    // ... then version 1 of the same name is a rollback.
    const v1 = markBundle('rb-v1', { name: 'rb', version: 1 });
    const t3 = bind(a, v1.digest);
    refusedWith(a, await send(a, { t: 'run', binding: t3.binding.encoded, inline: true, body: v1.bytes }, hasReport), t3.fields, 'GS_ERR_DISPATCH_ROLLBACK');
    expect(ran(a, 'rb-v1')).toEqual({ code: false, target: 0 });

    // The version-2 order once more, word for word: refused, and the target did not run again.
    const again = await send(a, { t: 'run', binding: t2.binding.encoded, inline: true, body: v2.bytes }, (g) => g.some((m) => m.t === 'error'), 300);
    expect(again.filter((m) => m.t !== 'hello').map((m) => (m.t === 'error' ? m.code : m.t))).toEqual(['GS_ERR_DISPATCH_REPLAYED']);
    expect(ran(a, 'rb-v2')).toEqual({ code: true, target: 1 });
    expect(a.refused).toEqual(expect.arrayContaining(['GS_ERR_DISPATCH_EXPIRED', 'GS_ERR_DISPATCH_ROLLBACK', 'GS_ERR_DISPATCH_REPLAYED']));
  });

  it('a party without the center key can neither cancel a run nor ack away its report: error, and the run verifies', async () => {
    const a = honest[0]!;
    const bundle = await center.createBundle({
      name: 'uncancelled',
      version: 1,
      code: markerCode('code-uncancelled', 'await new Promise((r) => setTimeout(r, 1500)); await ctx.spawnTarget();'),
      target: { bytes: MARK_TARGET, path: 'mark.sh', args: ['uncancelled'] },
      timeoutMs: 10_000,
    });
    const run = center.dispatch({ ...FAST, bundle: bundle.digest, agents: [{ msid: a.msid, pcid: a.pcid }] });
    await until(() => fs.existsSync(path.join(a.workDir, 'code-uncancelled')), 'the code to start');
    // A connection that never proves the center key (no `auth`), then the control messages.
    const sock = await clientConnect(a.pcid, { ...relay, timeoutMs: 10_000 });
    const ch = new DispatchChannel(sock);
    const got: ChannelMessage[] = [];
    ch.on('message', (m) => got.push(m));
    try {
      await until(() => got.some((m) => m.t === 'hello'), 'hello', 10_000);
      await ch.send({ t: 'cancel', dispatchId: run.dispatchId });
      await ch.send({ t: 'ack', dispatchId: run.dispatchId, run: 0 });
      await until(() => got.filter((m) => m.t === 'error').length >= 2, 'two refusals', 10_000);
    } finally {
      await ch.close();
    }
    expect(got.filter((m) => m.t === 'error').map((m) => (m.t === 'error' ? m.code : ''))).toEqual(['GS_ERR_DISPATCH_BAD_SIGNATURE', 'GS_ERR_DISPATCH_BAD_SIGNATURE']);
    const summary = await run.done;
    expect(summary.targets[0]).toMatchObject({ state: 'verified', outcome: 'ran', exitCode: 0 });
    expect(ran(a, 'uncancelled')).toEqual({ code: true, target: 1 });
  });

  it('the center and the agents carry on after those orders', async () => {
    await fleetCarriesOn('after-bad-orders');
  });
});

describe('a fleet file that is wrong', () => {
  it('a PCID that is now another agent is refused as wrong-agent (not retried); an unknown PCID gives up as offline', async () => {
    const [a1, a2] = honest as [Honest, Honest];
    const bundle = await center.createBundle({ name: 'misaddressed', version: 1, code: markerCode('code-misaddressed', 'await ctx.spawnTarget();'), target: { bytes: MARK_TARGET, path: 'mark.sh', args: ['misaddressed'] }, timeoutMs: 10_000 });
    const summary = await center.dispatch({
      ...FAST,
      bundle: bundle.digest,
      agents: [
        { msid: a1.msid, pcid: a2.pcid }, // a1's MSID, but a2 answers that PCID
        { msid: createServerIdentity().msid, pcid: 'no-such-agent' },
      ],
      waves: [2],
    }).done;
    expect(summary.targets[0]).toMatchObject({ state: 'failed', reason: 'wrong-agent', attempts: 1 });
    expect(summary.targets[1]).toMatchObject({ state: 'gave-up', attempts: 2 });
    expect(summary.targets[1]!.reason).toMatch(/^offline: GS_ERR_/);
    expect(ran(a1, 'misaddressed')).toEqual({ code: false, target: 0 });
    expect(ran(a2, 'misaddressed')).toEqual({ code: false, target: 0 });
  });
});

describe('bad distributed code, dispatched by the real center', () => {
  it('a loader that crashes is recorded as crashed, one that hangs as timeout (and is killed); the agents carry on', async () => {
    const [a1, a2] = honest as [Honest, Honest];
    const crash = await center.createBundle({ name: 'crash', version: 1, code: markerCode('code-crash', 'process.exit(7);'), target: { bytes: MARK_TARGET, path: 'mark.sh', args: ['crash'] }, timeoutMs: 10_000 });
    const hang = await center.createBundle({ name: 'hang', version: 1, code: markerCode('code-hang', 'for (;;) {}'), target: { bytes: MARK_TARGET, path: 'mark.sh', args: ['hang'] }, timeoutMs: 1_500 });
    const began = Date.now();
    const [c, h] = await Promise.all([
      center.dispatch({ ...FAST, bundle: crash.digest, agents: [{ msid: a1.msid, pcid: a1.pcid }] }).done,
      center.dispatch({ ...FAST, bundle: hang.digest, agents: [{ msid: a2.msid, pcid: a2.pcid }] }).done,
    ]);
    expect(c.targets[0]).toMatchObject({ state: 'verified', outcome: 'crashed', exitCode: null });
    expect(h.targets[0]).toMatchObject({ state: 'verified', outcome: 'timeout', exitCode: null });
    // The reports say why (the recorded report is signed by the agent).
    const crashReport = decodeReport(center.store.getTarget({ dispatchId: c.dispatchId, run: 0, msid: a1.msid })!.report!, fromBase64url(center.store.getTarget({ dispatchId: c.dispatchId, run: 0, msid: a1.msid })!.certificate!, 'certificate', 16 * 1024));
    expect(crashReport.fields.reason).toMatch(/GS_ERR_DISPATCH_LOADER_FAILED.*code 7/);
    const hangRow = center.store.getTarget({ dispatchId: h.dispatchId, run: 0, msid: a2.msid })!;
    expect(decodeReport(hangRow.report!, fromBase64url(hangRow.certificate!, 'certificate', 16 * 1024)).fields.reason).toBe('GS_ERR_DISPATCH_TIMEOUT');
    expect(Date.now() - began).toBeLessThan(10_000);
    // The code ran up to its fault; the targets never started.
    expect(ran(a1, 'crash')).toEqual({ code: true, target: 0 });
    expect(ran(a2, 'hang')).toEqual({ code: true, target: 0 });
    // The hung loader process is gone (its pid is in the marker).
    const pid = Number(fs.readFileSync(path.join(a2.workDir, 'code-hang'), 'utf8'));
    await until(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, `loader ${pid} to be gone`, 5_000);
    await fleetCarriesOn('after-bad-code');
  }, 30_000);
});

describe('a bad agent side: rogue agents answer the real center', () => {
  type Mode = 'honest' | 'replay' | 'wrong-agent' | 'bad-signature' | 'old-evidence';

  /** A scripted agent: says hello as itself, accepts every order without running anything, and answers with the report its mode says. */
  class Rogue {
    readonly identity: Identity = createServerIdentity();
    /** Another agent whose key the rogue holds. */
    readonly other: Identity = createServerIdentity();
    mode: Mode = 'honest';
    saved: { report: string; certificate: string } | undefined;
    oldEvidence: string | undefined;
    server!: SockServer;

    constructor(readonly pcid: string) {}

    async start(): Promise<this> {
      this.server = await serverStart({ ...relay, identity: this.identity, pcid: this.pcid }, (sock) => this.serve(sock));
      closers.push(() => this.server.close());
      return this;
    }

    get ref(): AgentRef {
      return { msid: this.identity.msid, pcid: this.pcid };
    }

    async serve(sock: SockIo): Promise<void> {
      const ch = new DispatchChannel(sock);
      ch.on('message', (m) => void this.onMessage(ch, m).catch(() => undefined));
      await ch.send({ t: 'hello', agentMsid: this.identity.msid, certificate: toBase64url(this.identity.certificate.der), pending: [], challenge: newChannelChallenge() });
    }

    async onMessage(ch: DispatchChannel, m: ChannelMessage): Promise<void> {
      if (m.t !== 'run' && m.t !== 'rerun') return;
      const b = decodeBinding(m.binding).fields;
      await ch.send({ t: 'accepted', dispatchId: b.dispatchId, run: b.run });
      const fields = ranReport(b, this.identity.msid);
      const own = toBase64url(this.identity.certificate.der);
      let out: { report: string; certificate: string };
      switch (this.mode) {
        case 'honest':
          out = { report: signReport(fields, this.identity).encoded, certificate: own };
          this.saved = out;
          this.oldEvidence = b.evidence;
          break;
        case 'replay':
          out = this.saved!;
          break;
        case 'wrong-agent':
          // Honestly signed — by another agent, under its own name.
          out = { report: signReport({ ...fields, agentMsid: this.other.msid }, this.other).encoded, certificate: toBase64url(this.other.certificate.der) };
          break;
        case 'bad-signature': {
          // In this agent's name and with its certificate, signed with another agent's key.
          const forged = { msid: this.identity.msid, certificate: this.identity.certificate, sign: (msg: Uint8Array) => this.other.sign(msg) } as unknown as Identity;
          out = { report: signReport(fields, forged).encoded, certificate: own };
          break;
        }
        case 'old-evidence':
          out = { report: signReport({ ...fields, evidence: this.oldEvidence! }, this.identity).encoded, certificate: own };
          break;
      }
      await ch.send({ t: 'report', ...out });
    }
  }

  it('a replayed report, a report signed by another agent, and evidence from another dispatch are each recorded as a failed verification with its reason', async () => {
    const [replayer, impostor, forger] = await Promise.all([new Rogue('rogue-replay').start(), new Rogue('rogue-impostor').start(), new Rogue('rogue-forger').start()]);
    const honestRefs = honest.map((h) => ({ msid: h.msid, pcid: h.pcid }));
    const bundle = await center.createBundle({ name: 'rogue-round', version: 1, code: markerCode('code-rogue-round', 'await ctx.spawnTarget();'), target: { bytes: MARK_TARGET, path: 'mark.sh', args: ['rogue-round'] }, timeoutMs: 10_000 });

    // Round 1: the replayer behaves, so it has a verified report and an evidence value to misuse later.
    const d1 = await center.dispatch({ ...FAST, bundle: bundle.digest, agents: [...honestRefs, replayer.ref], waves: [3] }).done;
    expect(d1.counts.verified).toBe(3);

    // A re-run of round 1: the replayer sends its round-1 report again.
    replayer.mode = 'replay';
    const r1 = await center.rerun(d1.dispatchId, { args: ['again'], agents: [replayer.ref.msid] }).done;
    expect(r1.targets[0]).toMatchObject({ msid: replayer.ref.msid, state: 'failed', reason: 'replayed' });

    // Round 2: one rogue reports under another agent's signature and name, one forges a signature,
    // the replayer brings round 1's evidence; the honest agents in the same dispatch verify.
    impostor.mode = 'wrong-agent';
    forger.mode = 'bad-signature';
    replayer.mode = 'old-evidence';
    const failures: string[] = [];
    const run2 = center.dispatch({ ...FAST, bundle: bundle.digest, agents: [...honestRefs, impostor.ref, forger.ref, replayer.ref], waves: [5] });
    run2.on('failure', (f) => failures.push(`${f.msid} ${f.reason}`));
    const d2 = await run2.done;
    expect(d2.state).toBe('done');
    const state = (msid: string) => d2.targets.find((t) => t.msid === msid)!;
    for (const h of honest) expect(state(h.msid)).toMatchObject({ state: 'verified', outcome: 'ran' });
    expect(state(impostor.ref.msid)).toMatchObject({ state: 'failed', reason: 'wrong-agent' });
    expect(state(forger.ref.msid)).toMatchObject({ state: 'failed', reason: 'bad-signature' });
    expect(state(replayer.ref.msid)).toMatchObject({ state: 'failed', reason: 'wrong-evidence' });
    expect(failures.sort()).toEqual([`${impostor.ref.msid} wrong-agent`, `${forger.ref.msid} bad-signature`, `${replayer.ref.msid} wrong-evidence`].sort());

    // The store keeps each failure with its reason and a message; status shows them.
    const reasons = (id: string) => center.status(id).failures.map((f) => [f.msid, f.reason, f.run]);
    expect(reasons(d1.dispatchId)).toEqual([[replayer.ref.msid, 'replayed', 0]]);
    expect(reasons(d2.dispatchId).sort()).toEqual(
      [
        [impostor.ref.msid, 'wrong-agent', 0],
        [forger.ref.msid, 'bad-signature', 0],
        [replayer.ref.msid, 'wrong-evidence', 0],
      ].sort(),
    );
    for (const f of center.status(d2.dispatchId).failures) expect(f.message.length).toBeGreaterThan(10);
    // Only the verified reports became results in the evidence log; every failure is there too; the chain verifies.
    // (The log is written behind the run: `done` can resolve before its last lines are on disk.)
    const logFile = path.join(work, 'evidence.log');
    const logged = (kind: string) => lines(logFile).filter((l) => l.includes(`"kind":"${kind}"`) && l.includes(d2.dispatchId));
    await until(() => logged('result').length >= 2 && logged('failure').length >= 3, 'the evidence log to catch up', 5_000);
    expect(logged('result')).toHaveLength(2);
    expect(logged('failure')).toHaveLength(3);
    const head = fs.readFileSync(logFile + '.head', 'utf8'); // the head first: the log is never behind it
    const log = verifyEvidenceLog(fs.readFileSync(logFile, 'utf8'), key.publicKey, { head });
    expect(log.kinds.failure).toBe(4);
    await fleetCarriesOn('after-rogues');
  }, 30_000);
});
