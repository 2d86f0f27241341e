/**
 * One attempt of the center (one target, one connection): the channel
 * conversation with the agent, top to bottom:
 *
 * ```
 * connect ─▶ read hello (MSID = the target's; verify + ack every pending report)
 *        ─▶ [target already issued before: wait a grace time for its report]
 *        ─▶ fresh evidence stored ─▶ log `issued` (hash only) ─▶ send run/rerun
 *        ─▶ serve fetch ─▶ accepted ─▶ report ─▶ checkReport ─▶ record ─▶ ack ─▶ close
 * ```
 *
 * It changes a target only through its {@link AttemptHost} (the center's
 * state machine and store), and ends with an {@link AttemptEnd} that the
 * center's scheduling turns into a retry, a final state, or nothing.
 */
import { DispatchError, GatesockError } from '../../../errors/index.js';
import type { IdentityKey } from '../../../session/index.js';
import {
  DispatchChannel,
  checkReport,
  decodeReport,
  evidenceHash,
  fromBase64url,
  newEvidence,
  signBinding,
  signChannelAuth,
  type ChannelMessage,
  type Digest,
  type LogKind,
  type ReportExpectation,
  type ReportFields,
} from '../wire/index.js';
import { sameMsid, type AgentConnector } from './connector.js';
import { Inbox, isEnd, type InboxEnd } from './inbox.js';
import { DISPATCH_DEFAULTS } from './options.js';
import type { BundleRepository } from './repository.js';
import type { Runtime } from './run.js';
import type { VerificationFailureRecord } from './status.js';
import type { DispatchStore, StoredTarget, TargetKey, TargetPatch } from './store.js';
import { isFinalTargetState, nextTargetState, type TargetEvent, type TargetState } from './target.js';

/** The end of one attempt. @internal */
export type AttemptEnd =
  | { kind: 'verified' }
  | { kind: 'rejected'; reason: string }
  | { kind: 'lost'; reason: string }
  | { kind: 'gone' } // the target moved on without this attempt (final already) — nothing to do
  | { kind: 'aborted' };

/**
 * What an attempt uses of the center: its store and repository (read;
 * evidence issued and reinstated), the target rows and state machine it
 * keeps, the failure records and the evidence log. @internal
 */
export interface AttemptHost {
  readonly store: DispatchStore;
  readonly repository: BundleRepository;
  readonly connector: AgentConnector;
  readonly key: IdentityKey;
  readonly reissueGraceMs: number;
  now(): number;
  /** The bundle digest of a dispatch (from the running run when there is one), or undefined for an unknown dispatch. */
  bundleOf(dispatchId: string, run: number): Digest | undefined;
  /** A target's row (the run's copy while it runs). */
  row(key: TargetKey): StoredTarget | undefined;
  /** Keep a row just written to the store as the run's copy. */
  remember(row: StoredTarget): void;
  /** Drop the run's copy of a row (the store changed it in a way not mirrored). */
  forget(key: TargetKey): void;
  /** Move a target through the state machine; the new state, or undefined when the event does not apply. */
  transition(t: TargetKey & { state: TargetState }, event: TargetEvent, patch?: TargetPatch): TargetState | undefined;
  /** Store a verified report for `t`, count it, log it; false when `t` is final already. */
  acceptVerified(t: StoredTarget, encoded: string, certificate: string, fields: ReportFields): boolean;
  recordFailure(f: Omit<VerificationFailureRecord, 'at'>): void;
  append(kind: LogKind, data: Record<string, unknown>): void;
}

/**
 * What one connection may ask of the center beyond its hello: each report
 * is verified and recorded, each fetch sends the bundle, so both are
 * bounded (an honest agent needs one of each, a few more after a retry).
 * Reports that are accepted do not count: an agent back with more pending
 * reports than its hello holds sends the rest as `report` messages, and
 * each can be accepted only once.
 */
const ATTEMPT_BUDGET = Object.freeze({ reports: 16, fetches: 3 });
type AttemptBudget = { reports: number; fetches: number };

/** A verified report of a superseded order of a target not final yet: neither recorded nor acked until its fate is known. */
interface HeldReport {
  readonly key: TargetKey;
  readonly evidence: string;
  readonly encoded: string;
  readonly certificate: string;
  readonly fields: ReportFields;
}

/** What became of one received report. */
interface ReportReceipt {
  readonly ok: boolean;
  /** It names the target of this attempt (or could not be read). */
  readonly mine: boolean;
  readonly reason?: string;
  readonly held?: HeldReport;
}

/** Reasons of a report that is true but not this attempt's answer: they never fail the attempt's target. */
const BENIGN_REPORT_REASONS: ReadonlySet<string> = new Set(['stale', 'late']);

/** How long an ack may wait for the agent to take it before the connection is given up. */
const ACK_SEND_MS = 10_000;

/**
 * Send with a time limit: an agent that stops reading must not hold a slot
 * for ever. On time-out or failure the channel is closed and false returned.
 */
async function sendWithin(channel: DispatchChannel, m: ChannelMessage, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sent = channel.send(m).then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const ok = await Promise.race([sent, late]);
  clearTimeout(timer);
  if (!ok) {
    // Disconnecting first makes the blocked send give up, so the close that waits for it can finish.
    void channel.sock.disconnect();
    void channel.close();
  }
  return ok;
}

/** After an agent's `error` answer to an order, how long to wait for the signed `refused` report that may follow. */
const REFUSED_REPORT_WAIT_MS = 2_000;

/**
 * Carries out attempts for one center (see the module comment).
 * @internal
 */
export class AttemptRunner {
  readonly #h: AttemptHost;

  constructor(host: AttemptHost) {
    this.#h = host;
  }

  /** One attempt for `target` of run `rt`: connect, converse, close. Never throws for anything the agent does. */
  async run(rt: Runtime, target: StoredTarget): Promise<AttemptEnd> {
    const o = rt.options;
    let sock;
    try {
      sock = await this.#h.connector.connect({ msid: target.msid, pcid: target.pcid }, { timeoutMs: o.connectTimeoutMs });
    } catch (err) {
      if (err instanceof DispatchError && err.code === 'GS_ERR_DISPATCH_WRONG_AGENT') return { kind: 'rejected', reason: 'wrong-agent' };
      return { kind: 'lost', reason: `offline: ${codeOf(err)}` };
    }
    if (rt.aborted) {
      void sock.disconnect();
      return { kind: 'aborted' };
    }
    const channel = new DispatchChannel(sock);
    rt.channels.add(channel);
    const inbox = new Inbox(channel);
    try {
      return await this.#converse(rt, target, channel, inbox);
    } finally {
      inbox.dispose();
      rt.channels.delete(channel);
      // Not awaited: a peer that never finishes its side would hold the slot for the socket's linger time.
      void channel.close();
    }
  }

  async #converse(rt: Runtime, target: StoredTarget, channel: DispatchChannel, inbox: Inbox): Promise<AttemptEnd> {
    const o = rt.options;
    const key: TargetKey = { dispatchId: rt.dispatchId, run: rt.run, msid: target.msid };
    const hello = await inbox.take(o.connectTimeoutMs);
    if (rt.aborted) return { kind: 'aborted' };
    if (isEnd(hello)) {
      if (isMalformedEnd(hello)) return this.#protocolFailure(key, hello.error.message);
      return { kind: 'lost', reason: hello.end === 'timeout' ? 'no-hello' : 'disconnected' };
    }
    if (hello.t !== 'hello') return this.#protocolFailure(key, `expected hello, got ${hello.t}`);
    if (!sameMsid(hello.agentMsid, target.msid)) {
      this.#h.recordFailure({ dispatchId: key.dispatchId, run: key.run, msid: target.msid, reason: 'wrong-agent', message: `the agent said hello as ${String(hello.agentMsid)}` });
      return { kind: 'rejected', reason: 'wrong-agent' };
    }
    // First, prove the center key on this channel (docs/dispatch.md, "Channel authentication"): the agent obeys our acks and cancels only after it.
    const auth: ChannelMessage = { t: 'auth', signature: signChannelAuth({ challenge: hello.challenge, agentMsid: hello.agentMsid }, this.#h.key) };
    if (!(await sendWithin(channel, auth, o.connectTimeoutMs))) return { kind: 'lost', reason: 'disconnected' };
    // Reports the agent kept from connections that dropped (this dispatch or any other).
    const pending = Array.isArray(hello.pending) ? hello.pending.slice(0, 1024) : [];
    const held: { report?: HeldReport } = {};
    for (const p of pending) {
      const got = await this.#receiveReport(channel, (p as { report?: unknown } | null)?.report, hello.certificate, target.msid, key, false, held);
      if (rt.aborted) return { kind: 'aborted' };
      if (got.ok && got.mine) return { kind: 'verified' };
      if (got.held && got.mine) held.report = got.held;
      if (this.#isFinal(key)) return this.#endHeld(channel, held, finalEnd(this.#h.row(key)!));
    }
    const budget: AttemptBudget = { ...ATTEMPT_BUDGET };
    const cur = this.#h.row(key)!;
    if (cur.evidence !== null && this.#h.reissueGraceMs > 0) {
      // An order went out before and its report did not come with the hello:
      // give the agent a moment to send it before the order is replaced.
      const end = await this.#awaitReport(rt, channel, inbox, key, this.#h.reissueGraceMs, false, null, budget, held);
      if (end !== undefined) return this.#endHeld(channel, held, end);
    }
    if (rt.aborted) return { kind: 'aborted' };

    // Issue: fresh evidence, stored (and the old one superseded) before the order leaves.
    const before = this.#h.row(key)!;
    // Finished meanwhile (a report of this target verified on another connection): issue nothing.
    if (nextTargetState(before.state, { kind: 'issue' }) === undefined) return this.#endHeld(channel, held, finalEnd(before));
    const evidence = newEvidence();
    const issuedAt = this.#h.now();
    // The `issue` transition (checked just above) is written with the evidence, in one step.
    const patch: TargetPatch = before.evidence !== null ? { state: 'issued', reason: `reissued after ${before.reason ?? 'an unanswered order'}` } : { state: 'issued' };
    this.#h.store.issueEvidence(key, evidence, issuedAt, patch);
    this.#h.remember({ ...before, ...patch, evidence, issuedAt, updatedAt: issuedAt });
    this.#h.append('issued', { dispatch: key.dispatchId, run: key.run, agent: key.msid, evidence: evidenceHash(evidence) });
    const reportWait = o.timeoutMs ?? rt.bundle.timeoutMs + DISPATCH_DEFAULTS.reportMarginMs;
    const binding = signBinding(
      {
        dispatchId: key.dispatchId,
        run: key.run,
        agentMsid: key.msid,
        bundleDigest: rt.bundle.digest,
        evidence,
        args: rt.args === null ? null : [...rt.args],
        issuedAt,
        expiresAt: issuedAt + reportWait + 10 * 60_000,
      },
      this.#h.key,
    );
    const order: ChannelMessage =
      rt.run > 0
        ? { t: 'rerun', binding: binding.encoded }
        : rt.inline !== undefined
          ? { t: 'run', binding: binding.encoded, inline: true, body: rt.inline }
          : { t: 'run', binding: binding.encoded, inline: false };
    if (!(await sendWithin(channel, order, Math.max(o.connectTimeoutMs, reportWait)))) return { kind: 'lost', reason: 'disconnected' };
    return this.#endHeld(channel, held, (await this.#awaitReport(rt, channel, inbox, key, reportWait, true, before.evidence, budget, held)) ?? { kind: 'lost', reason: 'timeout' });
  }

  /**
   * The attempt ends with `end`. A report still held (see
   * `#receiveReport`) is recorded `stale` and acked
   * when its target finished otherwise; when the attempt was only lost it
   * stays with the agent (unacked), which brings it to the next hello.
   */
  async #endHeld(channel: DispatchChannel, held: { report?: HeldReport }, end: AttemptEnd): Promise<AttemptEnd> {
    const h = held.report;
    held.report = undefined;
    if (h !== undefined && !channel.closed && this.#isFinal(h.key)) await this.#discardHeld(channel, h);
    return end;
  }

  /**
   * Read messages until this target's report verifies or fails, the time
   * is up (`undefined`), or the connection ends. `ordered`: an order is out
   * on this connection, so a report that fails verification fails the target.
   * `previous`: the evidence this order replaced, if it is a re-issue.
   */
  async #awaitReport(
    rt: Runtime,
    channel: DispatchChannel,
    inbox: Inbox,
    key: TargetKey,
    waitMs: number,
    ordered: boolean,
    previous: string | null,
    budget: AttemptBudget,
    held: { report?: HeldReport },
  ): Promise<AttemptEnd | undefined> {
    let deadline = Date.now() + waitMs;
    /** An `error` the agent answered the order with: a signed `refused` report may follow it. */
    let refusal: string | undefined;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return refusal === undefined ? undefined : { kind: 'rejected', reason: refusal };
      const m = await inbox.take(left);
      if (rt.aborted) return { kind: 'aborted' };
      if (isEnd(m)) {
        if (refusal !== undefined) return { kind: 'rejected', reason: refusal };
        if (m.end === 'timeout') return undefined;
        if (m.end === 'overflow') return this.#protocolFailure(key, 'the agent sent too many messages');
        if (isMalformedEnd(m)) return this.#protocolFailure(key, m.error.message);
        return { kind: 'lost', reason: 'disconnected' };
      }
      switch (m.t) {
        case 'accepted': {
          if (m.dispatchId === key.dispatchId && m.run === key.run) this.#h.transition({ ...key, state: 'issued' }, { kind: 'accepted' });
          break;
        }
        case 'fetch': {
          // An agent fetches once per order; a loop of fetches would make the center send the bundle again and again.
          if (--budget.fetches < 0) return this.#protocolFailure(key, `the agent fetched more than ${ATTEMPT_BUDGET.fetches} times on one connection`);
          if (m.digest === rt.bundle.digest) {
            const body = rt.inline ?? (await this.#h.repository.get(m.digest));
            const answer: ChannelMessage = body !== undefined ? { t: 'bundle', digest: m.digest, body } : { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE', message: `no bundle ${m.digest}` };
            if (!(await sendWithin(channel, answer, Math.max(1, deadline - Date.now())))) return { kind: 'lost', reason: 'disconnected' };
          } else {
            await sendWithin(channel, { t: 'error', code: 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE', message: `this dispatch serves only ${rt.bundle.digest}` }, Math.max(1, deadline - Date.now()));
          }
          break;
        }
        case 'report': {
          const got = await this.#receiveReport(channel, m.report, m.certificate, key.msid, key, ordered, held);
          if (got.ok && got.mine) return { kind: 'verified' };
          // Reports accepted (for other targets: pending ones the agent sends after a full hello) are useful work,
          // each possible once; every other report costs a check for nothing, so those are bounded.
          if (!got.ok && --budget.reports < 0) return this.#protocolFailure(key, `the agent sent more than ${ATTEMPT_BUDGET.reports} reports that were not accepted on one connection`);
          if (got.held && got.mine) held.report = got.held;
          if (this.#isFinal(key)) return finalEnd(this.#h.row(key)!);
          // A report answering the order that fails verification fails the target. Not so a true report of something
          // else: a stale one (held: the wait goes on for what the agent does with the new order) or a verified one
          // for another target that is final already.
          if (!got.ok && ordered && !BENIGN_REPORT_REASONS.has(got.reason ?? '')) return { kind: 'rejected', reason: got.reason ?? 'malformed' };
          break;
        }
        case 'error': {
          if (!ordered || refusal !== undefined) break;
          if (m.dispatchId !== undefined && (m.dispatchId !== key.dispatchId || m.run !== key.run)) break;
          if (m.code === 'GS_ERR_DISPATCH_REPLAYED' && previous !== null) {
            // The agent acted on an earlier order of this run: that order stands.
            const h = held.report;
            if (h !== undefined) {
              // Its report already came (it crossed the re-issue): that is the result.
              held.report = undefined;
              return (await this.#acceptHeld(channel, h)) ? { kind: 'verified' } : finalEnd(this.#h.row(key)!);
            }
            // Its loader may still be running: its report will come with a later hello. Undo the re-issue and try again later.
            this.#h.store.reinstateEvidence(key, previous, this.#h.now());
            this.#h.forget(key);
            return { kind: 'lost', reason: 'the agent still holds the earlier order' };
          }
          // The agent refused the order. For some refusals a signed `refused` report follows: wait for it briefly.
          refusal = `agent-error: ${String(m.code).slice(0, 64)}`;
          deadline = Math.min(deadline, Date.now() + REFUSED_REPORT_WAIT_MS);
          break;
        }
        default:
          return this.#protocolFailure(key, `unexpected ${String((m as { t?: unknown }).t).slice(0, 32)} from the agent`);
      }
    }
  }

  /**
   * Verify one report from agent `msid` against the store, record the
   * result, and ack it once recorded. `mine`: the report names `current`
   * (or could not be read at all). A verified report of another target of
   * this center (a pending one from an earlier connection) completes that
   * target.
   *
   * A verified report carrying evidence a later order superseded, for a
   * target not final yet, is neither recorded nor acked: it comes back
   * `held` (the agent keeps it). Whether it is the true result depends on
   * what the agent does with the order that replaced it: refused as
   * replayed, the first order stands and the held report is accepted
   * (`#acceptHeld`); answered with its own report, the
   * held one is recorded `stale`.
   */
  async #receiveReport(channel: DispatchChannel, encoded: unknown, certificate: unknown, msid: string, current: TargetKey, ordered: boolean, held: { report?: HeldReport }): Promise<ReportReceipt> {
    let report;
    try {
      report = decodeReport(String(encoded), fromBase64url(certificate, 'certificate', 16 * 1024));
    } catch (err) {
      this.#h.recordFailure({ dispatchId: current.dispatchId, run: current.run, msid, reason: 'malformed', message: messageOf(err) });
      return { ok: false, mine: true, reason: 'malformed' };
    }
    const f = report.fields;
    const key: TargetKey = { dispatchId: f.dispatchId, run: f.run, msid };
    const mine = current.dispatchId === f.dispatchId && current.run === f.run && current.msid === msid;
    const target = this.#h.row(key);
    const bundle = target && this.#h.bundleOf(f.dispatchId, f.run);
    let expectation: ReportExpectation | undefined;
    let superseded = false;
    if (target && bundle !== undefined && target.evidence !== null) {
      let evidence = target.evidence;
      if (f.evidence !== target.evidence) {
        const old = this.#h.store.findEvidence(key, f.evidence);
        if (old?.status === 'superseded') {
          evidence = old.evidence;
          superseded = true;
        }
      }
      expectation = { dispatchId: f.dispatchId, run: f.run, agentMsid: msid, evidence, bundleDigest: bundle, accepted: !superseded && target.state === 'verified' };
    }
    const check = checkReport(report, expectation);
    const ack = () => sendWithin(channel, { t: 'ack', dispatchId: f.dispatchId, run: f.run }, ACK_SEND_MS);
    if (!check.ok && check.reason === 'replayed' && !ordered && target?.report === report.encoded) {
      // The very report we accepted, again in a hello: our ack was lost with the last connection. Not an attack; nothing to record.
      // (Sent in answer to an order instead, it is recorded as the replay it is.)
      await ack();
      return { ok: false, mine, reason: 'duplicate' };
    }
    if (!check.ok) {
      this.#h.recordFailure({ dispatchId: f.dispatchId, run: f.run, msid, reason: check.reason, message: check.message });
      await ack();
      return { ok: false, mine, reason: check.reason };
    }
    if (superseded) {
      const held: HeldReport = { key, evidence: f.evidence, encoded: report.encoded, certificate: certificate as string, fields: check.fields };
      // Not final: this may be the order that stands (see above). Kept by the agent until that is known.
      if (!isFinalTargetState(target!.state)) return { ok: false, mine, reason: 'stale', held };
      await this.#discardHeld(channel, held);
      return { ok: false, mine, reason: 'stale' };
    }
    // This attempt's target gets its result: a report held for it is not the result (recorded before the run can end).
    const stale = mine ? held.report : undefined;
    if (stale !== undefined) {
      held.report = undefined;
      this.#recordStale(stale);
    }
    const accepted = this.#h.acceptVerified(target!, report.encoded, certificate as string, check.fields);
    if (!accepted) this.#h.recordFailure({ dispatchId: f.dispatchId, run: f.run, msid, reason: 'late', message: `a verified report arrived after the target was ${target!.state}; not accepted` });
    await ack();
    if (stale !== undefined) await sendWithin(channel, { t: 'ack', dispatchId: stale.key.dispatchId, run: stale.key.run }, ACK_SEND_MS);
    return accepted ? { ok: true, mine } : { ok: false, mine, reason: 'late' };
  }

  /**
   * A held report (see `#receiveReport`) is the
   * result after all: the agent refused the order that replaced it as
   * replayed, so the order it answers stands. Its evidence is current again
   * (the later one superseded) and the report is accepted, then acked.
   * False when the target cannot take it (final meanwhile: recorded `late`).
   */
  async #acceptHeld(channel: DispatchChannel, held: HeldReport): Promise<boolean> {
    this.#h.store.reinstateEvidence(held.key, held.evidence, this.#h.now());
    this.#h.forget(held.key);
    const t = this.#h.row(held.key)!;
    const accepted = this.#h.acceptVerified(t, held.encoded, held.certificate, held.fields);
    if (!accepted) this.#h.recordFailure({ ...held.key, reason: 'late', message: `a verified report arrived after the target was ${t.state}; not accepted` });
    await sendWithin(channel, { t: 'ack', dispatchId: held.key.dispatchId, run: held.key.run }, ACK_SEND_MS);
    return accepted;
  }

  /** A held report that is not the result (its target finished otherwise): recorded `stale`, then acked so the agent drops it. */
  async #discardHeld(channel: DispatchChannel, held: HeldReport): Promise<void> {
    this.#recordStale(held);
    await sendWithin(channel, { t: 'ack', dispatchId: held.key.dispatchId, run: held.key.run }, ACK_SEND_MS);
  }

  #recordStale(held: HeldReport): void {
    this.#h.recordFailure({ ...held.key, reason: 'stale', message: 'the report carries evidence that a later order superseded; not accepted' });
  }


  #isFinal(key: TargetKey): boolean {
    const t = this.#h.row(key);
    return t !== undefined && isFinalTargetState(t.state);
  }

  #protocolFailure(key: TargetKey, message: string): AttemptEnd {
    this.#h.recordFailure({ dispatchId: key.dispatchId, run: key.run, msid: key.msid, reason: 'malformed', message });
    return { kind: 'rejected', reason: 'malformed' };
  }

}

/** The channel closed because the agent sent bytes that are not a message (bad input, not a network failure: not retried). */
function isMalformedEnd(e: InboxEnd): e is { end: 'closed'; error: DispatchError } {
  return e.end === 'closed' && e.error instanceof DispatchError && e.error.code === 'GS_ERR_DISPATCH_MALFORMED';
}

function finalEnd(t: StoredTarget): AttemptEnd {
  return t.state === 'verified' ? { kind: 'verified' } : { kind: 'gone' };
}

/** An error's message. @internal */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function codeOf(err: unknown): string {
  return err instanceof GatesockError ? err.code : messageOf(err).slice(0, 80);
}
