/**
 * The checks an order passes before anything runs (the table in agent.ts):
 * its binding (decodes, signed by the pinned key, names this agent, not
 * expired, not acted on before), then its bundle (inline or fetched on the
 * order's channel; decodes, is the binding's, signed, not expired, not a
 * rollback) or, for a re-run, the loaded bundle. A refused order is
 * answered here: `error` to the sender and, once the binding verified, a
 * signed `refused` report.
 */
import { ERROR_CODES, DispatchError, type DispatchErrorCode } from '../../../errors/index.js';
import {
  decodeBinding,
  decodeBundle,
  verifyBinding,
  verifyBundle,
  type BindingFields,
  type Bundle,
  type ChannelMessage,
  type DispatchChannel,
  type SignedBinding,
} from '../wire/index.js';
import type { AgentHost } from './host.js';
import type { AgentReports } from './reports.js';
import { asDispatchError, blankResult, clip } from './results.js';

/** An order being prepared (its bundle being fetched), which `cancel` can stop. */
interface Preparing {
  readonly dispatchId: string;
  cancel(): void;
}

/** Thrown into a fetch by `cancel`. */
class Cancelled extends Error {}

const DISPATCH_CODES: readonly string[] = ERROR_CODES.dispatch;

/** Checks orders and answers the refused ones. @internal */
export class OrderChecks {
  readonly #host: AgentHost;
  readonly #reports: AgentReports;
  #preparing: Preparing | undefined;

  constructor(host: AgentHost, reports: AgentReports) {
    this.#host = host;
    this.#reports = reports;
  }

  /** Decode and verify a binding; undefined (after answering `error`) when it does not verify or was acted on. */
  async binding(ch: DispatchChannel, encoded: string): Promise<{ signed: SignedBinding; fields: BindingFields } | undefined> {
    const { centerKey, msid, now } = this.#host.settings;
    let signed: SignedBinding;
    try {
      signed = decodeBinding(encoded);
    } catch (e) {
      await this.refuse(ch, e);
      return undefined;
    }
    let fields: BindingFields;
    try {
      fields = verifyBinding(signed, { centerKey, agentMsid: msid, now: now() });
    } catch (e) {
      await this.refuse(ch, e, signed.fields);
      return undefined;
    }
    if (this.#host.state().isTaken(fields.dispatchId, fields.run)) {
      await this.refuse(ch, new DispatchError('GS_ERR_DISPATCH_REPLAYED', `dispatch ${fields.dispatchId} run ${fields.run} was already acted on here`), fields);
      return undefined;
    }
    return { signed, fields };
  }

  /**
   * The bundle of a `run` order whose binding verified: inline, or fetched
   * on `ch`; undefined (after a refused report) when it does not arrive,
   * decode, match the binding or verify.
   */
  async bundle(ch: DispatchChannel, m: Extract<ChannelMessage, { t: 'run' }>, fields: BindingFields): Promise<Bundle | undefined> {
    const { centerKey, maxBundleBytes, now } = this.#host.settings;
    try {
      let bytes: Uint8Array;
      if (m.inline) {
        if (!(m.body instanceof Uint8Array)) throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', 'an inline run carries no bundle');
        bytes = m.body;
      } else {
        bytes = await this.#fetch(ch, fields);
      }
      const bundle = decodeBundle(bytes, { maxBytes: maxBundleBytes });
      if (bundle.digest !== fields.bundleDigest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the bundle is ${bundle.digest}; the binding names ${fields.bundleDigest}`);
      }
      verifyBundle(bundle, { centerKey, now: now(), minVersion: this.#host.state().floor(bundle.metadata.name) });
      return bundle;
    } catch (e) {
      await this.refuse(ch, e, fields, { report: true, reason: e instanceof Cancelled ? 'cancelled' : undefined });
      return undefined;
    }
  }

  /**
   * For a `rerun` order whose binding verified: true when a live loader
   * holds the binding's bundle and it has not expired; otherwise false
   * (after a refused report).
   */
  async loaded(ch: DispatchChannel, loaded: Bundle | undefined, fields: BindingFields): Promise<boolean> {
    try {
      if (loaded === undefined) throw new DispatchError('GS_ERR_DISPATCH_UNKNOWN_BUNDLE', `no bundle is loaded here to re-run (dispatch ${fields.dispatchId})`);
      if (loaded.digest !== fields.bundleDigest) {
        throw new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the binding names bundle ${fields.bundleDigest}; ${loaded.digest} is loaded`);
      }
      verifyBundle(loaded, { centerKey: this.#host.settings.centerKey, now: this.#host.settings.now() });
      return true;
    } catch (e) {
      await this.refuse(ch, e, fields, { report: true });
      return false;
    }
  }

  /** Stop the fetch of `dispatchId`'s bundle (any dispatch's when undefined); true when one was in progress. */
  cancel(dispatchId?: string): boolean {
    const preparing = this.#preparing;
    if (preparing === undefined || (dispatchId !== undefined && preparing.dispatchId !== dispatchId)) return false;
    preparing.cancel();
    return true;
  }

  /**
   * Answer a refused order: `error` to the sender, and — when the binding
   * verified — a signed report with outcome `refused`, so the center records
   * a clear outcome.
   */
  async refuse(ch: DispatchChannel, e: unknown, fields?: Pick<BindingFields, 'dispatchId' | 'run'> & Partial<BindingFields>, opts: { report?: boolean; reason?: string | undefined } = {}): Promise<void> {
    const err = e instanceof Cancelled ? new DispatchError('GS_ERR_DISPATCH_TIMEOUT', 'cancelled by the center') : asDispatchError(e, 'GS_ERR_DISPATCH_MALFORMED');
    const ids = fields === undefined ? {} : { dispatchId: fields.dispatchId, run: fields.run };
    this.#host.emit('refused', { code: err.code, message: err.message, ...ids });
    this.#host.channels.post(ch, { t: 'error', code: err.code, message: clip(err.message), ...ids });
    if (opts.report && fields?.bundleDigest !== undefined && fields.evidence !== undefined) {
      const now = this.#host.settings.now();
      const full = fields as BindingFields;
      await this.#reports.report(ch, blankResult(full, 'refused', opts.reason ?? err.code, 'none', now, now));
    }
  }

  /** Ask the center for the bundle on this channel; bounded by `fetchTimeoutMs`, stopped by `cancel`. */
  async #fetch(ch: DispatchChannel, fields: BindingFields): Promise<Uint8Array> {
    const { fetchTimeoutMs } = this.#host.settings;
    const digest = fields.bundleDigest;
    let cancel!: () => void;
    const cancelled = new Promise<never>((_, reject) => (cancel = () => reject(new Cancelled('cancelled'))));
    cancelled.catch(() => undefined);
    this.#preparing = { dispatchId: fields.dispatchId, cancel };
    try {
      const answer = ch.next(
        (r) => (r.t === 'bundle' && r.digest === digest) || (r.t === 'error' && (r.dispatchId === fields.dispatchId || r.code === 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE')),
        fetchTimeoutMs,
      );
      answer.catch(() => undefined);
      // A channel that closes makes `answer` reject; one that stops reading makes it time out.
      this.#host.channels.post(ch, { t: 'fetch', digest });
      const reply = await Promise.race([answer, cancelled]);
      if (reply.t === 'bundle') return reply.body;
      if (reply.t === 'error') {
        const code = (DISPATCH_CODES.includes(reply.code) ? reply.code : 'GS_ERR_DISPATCH_UNKNOWN_BUNDLE') as DispatchErrorCode;
        throw new DispatchError(code, `the center could not give bundle ${digest}: ${clip(String(reply.message))}`);
      }
      throw new DispatchError('GS_ERR_DISPATCH_MALFORMED', `unexpected ${reply.t} in answer to a fetch`);
    } catch (e) {
      if (e instanceof Cancelled || e instanceof DispatchError) throw e;
      throw new DispatchError('GS_ERR_DISPATCH_TIMEOUT', `bundle ${digest} did not arrive within ${fetchTimeoutMs} ms`, { cause: e });
    } finally {
      this.#preparing = undefined;
    }
  }
}
