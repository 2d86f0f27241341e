/**
 * The security agent (seed 004, ホストエージェント / ネットワーク機器エージェント):
 * a DispatchAgent (countermeasures arrive as ordinary signed dispatch
 * bundles, verified, in waves), the collectors, and the reporting loop.
 *
 * - Its dispatch agent is a relay server under its own PCID (no open port).
 * - Its reports go outward only: it connects to the security center's PCID
 *   as a relay client, pushes one signed report per connection (full
 *   first, then deltas; a full one again when the center asks), and hangs up.
 *   When a countermeasure run ends it reports again at once, so the center
 *   can confirm the fix.
 * - A network-device agent gets its nftables rule set in the center's
 *   answer and hands it to `applyFirewall` (e.g. write it and `nft -f`).
 * - The center's answer also lists the configuration files the host's
 *   policy needs (hash, or content for settings that must hold); the agent
 *   adds them to its own list and reports again at once when that list
 *   changes. (The center can already run signed code on the host, so
 *   reading a file it names gives it nothing more.)
 * - Collector roots are options, so tests run agents on fixture trees.
 */
import { EventEmitter } from 'eventemitter3';
import { SecurityCenterError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { Identity } from '../../../session/index.js';
import { clientConnect, type ClientConnectOptions, type ServerStartOptions, type SockIo, type SockServer } from '../../../socket/index.js';
import { DispatchAgent, type DispatchAgentOptions, type SignedReport } from '../../dispatch/index.js';
import { exchangeReport, signReportMessage, type DeviceKind, type RequestedFile } from '../channel/index.js';
import { ConfigurationReporter, collectConfiguration, type CenterAnswer, type CollectOptions } from '../collect/index.js';
import { encodeConfigurationReport, type ConfigurationReport } from '../report/index.js';

/** How the agent reaches the security center. @public */
export type CenterLink =
  /** Through the relay: the center's PCID, and optionally its MSID (checked end to end). */
  | { readonly pcid: string; readonly relay: ClientConnectOptions; readonly msid?: string }
  /** Any other way (tests): a function that opens a connection to the center. */
  | { readonly connect: () => Promise<SockIo> };

/** Options of {@link SecurityAgent.open}. @public */
export interface SecurityAgentOptions extends Omit<DispatchAgentOptions, 'identity'> {
  /** The agent's identity: signs dispatch reports and configuration reports; its MSID is the host's. */
  readonly identity: Identity;
  /** Host ID, as the policy database names it. */
  readonly host: string;
  /** `server` (default) or `network-device`. */
  readonly device?: DeviceKind;
  /** The security center. */
  readonly center: CenterLink;
  /** Collector options (root, proc, files, rpm, addresses); `hostMsid` is the identity's. */
  readonly collect?: Omit<CollectOptions, 'hostMsid' | 'seq'>;
  /** Report period, ms. Default 3 600 000 (one hour). */
  readonly intervalMs?: number;
  /** Wait for the center's answer, ms. Default 30 000. */
  readonly answerTimeoutMs?: number;
  /** Network devices: apply the rule set the center generated from the policy. */
  readonly applyFirewall?: (rules: string) => void | Promise<void>;
}

/** Events of a {@link SecurityAgent}. @public */
export interface SecurityAgentEvents {
  /** A report went out and the center answered. */
  sent: (report: ConfigurationReport, answer: CenterAnswer) => void;
  /** The center refused a report (`code`, `message`). */
  refused: (info: { code: string; message: string }) => void;
  /** A rule set arrived (network devices). */
  firewall: (rules: string) => void;
  /** A countermeasure run ended and its signed report was made. */
  ran: (report: SignedReport) => void;
  /** Something failed; the agent carries on. */
  error: (error: Error) => void;
}

/** A security agent; open one with {@link SecurityAgent.open}, then {@link SecurityAgent.start}. @public */
export class SecurityAgent extends EventEmitter<SecurityAgentEvents> {
  /** The dispatch agent that runs countermeasures. */
  readonly dispatch: DispatchAgent;
  readonly #options: SecurityAgentOptions;
  readonly #reporter: ConfigurationReporter;
  #pcid: string | undefined;
  #server: SockServer | undefined;
  #lastRules: string | undefined;
  /** Files the center's policy asked for in its last answer. */
  #requested: readonly RequestedFile[] = [];
  #sending: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: SecurityAgentOptions, dispatch: DispatchAgent) {
    super();
    this.#options = options;
    this.dispatch = dispatch;
    this.#reporter = new ConfigurationReporter({
      collect: async () => (await collectConfiguration({ ...this.#collectOptions(), hostMsid: options.identity.msid })).report,
      send: (report) => this.#send(report),
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
    });
    this.#reporter.on('sent', (r, a) => this.emit('sent', r, a));
    this.#reporter.on('error', (e) => this.emit('error', e instanceof Error ? e : new Error(String(e))));
    dispatch.on('report', (r) => {
      this.emit('ran', r);
      // The fix is on disk now: tell the center, so it can confirm it.
      if (this.#pcid !== undefined && !this.#closed) void this.reportNow().catch((e: unknown) => this.emit('error', e instanceof Error ? e : new Error(String(e))));
    });
  }

  /** Open the agent (its dispatch state is loaded). */
  static async open(options: SecurityAgentOptions): Promise<SecurityAgent> {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
    checkOption(typeof options.center === 'object' && options.center !== null, 'center', 'must say how to reach the security center');
    const { host: _h, device: _d, center: _c, collect: _col, intervalMs: _i, answerTimeoutMs: _t, applyFirewall: _f, ...dispatchOptions } = options;
    const dispatch = await DispatchAgent.open(dispatchOptions);
    return new SecurityAgent(options, dispatch);
  }

  /** The agent's MSID (the host's identity at the center). */
  get msid(): string {
    return this.#options.identity.msid;
  }

  /** The PCID its dispatch agent serves under, once started. */
  get pcid(): string | undefined {
    return this.#pcid;
  }

  /** The last rule set the center sent (network devices). */
  get firewall(): string | undefined {
    return this.#lastRules;
  }

  /**
   * Go online: the dispatch agent as a relay server (`listen` options), or,
   * with `{ pcid, listen: false }`, reachable some other way under that PCID
   * (tests with a memory connector); then report (full) and keep reporting
   * every `intervalMs`. Resolves with the first report's answer (rejects
   * when it could not be sent or was refused; reporting goes on).
   */
  async start(options: (Omit<ServerStartOptions, 'identity'> & { pcid?: string }) | { pcid: string; listen: false }): Promise<CenterAnswer> {
    if ('listen' in options && options.listen === false) {
      this.#pcid = options.pcid;
    } else {
      this.#server = await this.dispatch.listen(options as Omit<ServerStartOptions, 'identity'>);
      this.#pcid = this.#server.pcid;
    }
    if (this.#pcid === undefined) throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', 'the dispatch agent got no PCID');
    const first = new Promise<CenterAnswer>((resolve, reject) => {
      const onSent = (_r: ConfigurationReport, a: CenterAnswer) => {
        this.#reporter.off('error', onError);
        resolve(a);
      };
      const onError = (e: unknown) => {
        this.#reporter.off('sent', onSent);
        reject(e instanceof Error ? e : new Error(String(e)));
      };
      this.#reporter.once('sent', onSent);
      this.#reporter.once('error', onError);
    });
    this.#reporter.start();
    return first;
  }

  /** Collect and report now (a full report again when the center asks). */
  async reportNow(): Promise<CenterAnswer> {
    return this.#reporter.reportNow();
  }

  /** The collector options: the configured ones plus the files the center asked for. */
  #collectOptions(): Omit<CollectOptions, 'hostMsid' | 'seq'> {
    const base = this.#options.collect ?? {};
    if (this.#requested.length === 0) return base;
    const own = base.files;
    const paths = new Set(own?.paths ?? []);
    const content = new Set<string>(own?.content === true ? (own.paths ?? []) : Array.isArray(own?.content) ? own.content : []);
    for (const f of this.#requested) {
      paths.add(f.path);
      if (f.content) content.add(f.path);
    }
    return { ...base, files: { ...(own ?? {}), paths: [...paths], content: [...content] } };
  }

  async #connect(): Promise<SockIo> {
    const c = this.#options.center;
    if ('connect' in c) return c.connect();
    const sock = await clientConnect(c.pcid, { ...c.relay, timeoutMs: c.relay.timeoutMs ?? 15_000 });
    if (c.msid !== undefined && sock.info.peerMsid?.toUpperCase() !== c.msid.toUpperCase()) {
      void sock.disconnect();
      throw new SecurityCenterError('GS_ERR_SECURITY_WRONG_HOST', `PCID "${c.pcid}" is ${String(sock.info.peerMsid)}, not the security center ${c.msid}`);
    }
    return sock;
  }

  /**
   * Send one report; sends run one at a time in the order they were numbered
   * (a periodic report and one after a countermeasure may overlap), so the
   * center never sees delta n+1 before n.
   */
  #send(report: ConfigurationReport): Promise<CenterAnswer> {
    const run = this.#sending.then(() => this.#sendOne(report));
    this.#sending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #sendOne(report: ConfigurationReport): Promise<CenterAnswer> {
    const message = signReportMessage({ host: this.#options.host, pcid: this.#pcid!, device: this.#options.device ?? 'server' }, encodeConfigurationReport(report), this.#options.identity);
    const sock = await this.#connect();
    const a = await exchangeReport(sock, message, { timeoutMs: this.#options.answerTimeoutMs ?? 30_000 });
    if (a.firewall) {
      const rules = Buffer.from(a.body).toString('utf8');
      if (rules !== this.#lastRules) {
        this.#lastRules = rules;
        this.emit('firewall', rules);
        await this.#options.applyFirewall?.(rules);
      }
    }
    if (a.status === 'accepted' && JSON.stringify(a.files) !== JSON.stringify(this.#requested)) {
      // The policy wants other files: report again at once with them (trigger 1 needs them to check settings).
      this.#requested = a.files;
      setImmediate(() => {
        if (!this.#closed) this.reportNow().catch((e: unknown) => this.emit('error', e instanceof Error ? e : new Error(String(e))));
      });
    }
    switch (a.status) {
      case 'accepted':
        return { status: 'accepted' };
      case 'stale':
        return { status: 'stale', expectSeqAbove: a.expectSeqAbove ?? 0 };
      case 'need-full':
        return { status: 'need-full', ...(a.message !== null ? { reason: a.message } : {}) };
      case 'refused':
        this.emit('refused', { code: a.code ?? 'GS_ERR_SECURITY_MALFORMED_REPORT', message: a.message ?? '' });
        throw new SecurityCenterError('GS_ERR_SECURITY_MALFORMED_REPORT', `the center refused the report: ${a.code}: ${a.message ?? ''}`);
    }
  }

  /** Stop reporting, leave the relay, close the dispatch agent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reporter.stop();
    await this.#server?.close().catch(() => undefined);
    await this.dispatch.close();
  }
}
