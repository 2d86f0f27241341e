/**
 * How the center reaches an agent: one {@link SockIo} per attempt. Over the
 * relay ({@link RelayAgentConnector}: the agent is a relay server, reached by
 * PCID, its MSID checked end to end) or in this process
 * ({@link MemoryAgentConnector}: tests and the in-process benchmark).
 */
import { DispatchError, RelayError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import { clientConnect, SockIo, type ClientConnectOptions, type RelayEndpointOptions } from '../../../socket/index.js';
import { memoryPair, type MemoryPairOptions } from '../../../transport/index.js';

/**
 * An agent the center dispatches to: its MSID (who must sign the report)
 * and the PCID it is reached by.
 * @public
 */
export interface AgentRef {
  /** The agent's MSID (from its certificate); reports must come from it. */
  readonly msid: string;
  /** The PCID the agent is reached under through the relay. */
  readonly pcid: string;
}

/**
 * Opens connections to agents. A connection the connector returns is to
 * the agent named by `agent.msid` as far as the connector can tell; the
 * center checks the `hello` and the report's signature in any case.
 * @public
 */
export interface AgentConnector {
  /**
   * Connect to `agent`. Rejects when it cannot be reached (the center
   * retries with backoff) or with `DispatchError`
   * `GS_ERR_DISPATCH_WRONG_AGENT` when the peer is another machine (the
   * center does not retry that).
   */
  connect(agent: AgentRef, options?: { timeoutMs?: number }): Promise<SockIo>;
}

/** MSIDs compare without regard to the case of their hex digits. @internal */
export function sameMsid(a: string, b: string): boolean {
  return typeof a === 'string' && typeof b === 'string' && a.toUpperCase() === b.toUpperCase();
}

/**
 * Options of {@link RelayAgentConnector}: how to reach the gateway system
 * (controller, roots, the center's identity, …).
 * @public
 */
export interface RelayAgentConnectorOptions extends RelayEndpointOptions {
  /** Options of each connection's SockIo. */
  sockIo?: ClientConnectOptions['sockIo'];
}

/**
 * An {@link AgentConnector} through the gateway system: `clientConnect` to
 * the agent's PCID, then a check that the connection's peer is the agent's
 * MSID. With the end-to-end layer on (the default), the agent proved that
 * MSID in the inner handshake; with it off the MSID is only the
 * controller's word, so turning it off needs `endToEnd: false` said plainly.
 * @public
 */
export class RelayAgentConnector implements AgentConnector {
  readonly #options: RelayAgentConnectorOptions;

  constructor(options: RelayAgentConnectorOptions) {
    checkOption(typeof options === 'object' && options !== null, 'options', 'must be the relay endpoint options');
    this.#options = options;
  }

  /** {@inheritDoc AgentConnector.connect} */
  async connect(agent: AgentRef, options: { timeoutMs?: number } = {}): Promise<SockIo> {
    const sock = await clientConnect(agent.pcid, { ...this.#options, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
    const peer = sock.info.peerMsid;
    const endToEnd = sock.info['endToEnd'] === true;
    if (typeof peer !== 'string' || !sameMsid(peer, agent.msid) || (!endToEnd && this.#options.endToEnd !== false)) {
      void sock.disconnect();
      throw new DispatchError(
        'GS_ERR_DISPATCH_WRONG_AGENT',
        typeof peer === 'string' && !sameMsid(peer, agent.msid)
          ? `PCID "${agent.pcid}" is now ${peer}, not the agent ${agent.msid}`
          : `the connection to "${agent.pcid}" did not prove the agent's MSID end to end`,
      );
    }
    return sock;
  }
}

/**
 * An {@link AgentConnector} inside this process: agents register a serve
 * function under their MSID, and each `connect` makes an in-memory pair of
 * streams, hands one end to the agent as a SockIo and returns the other.
 * An unregistered MSID is offline (`RelayError` `GS_ERR_SERVER_OFFLINE`).
 *
 * @example
 * ```ts
 * const connector = new MemoryAgentConnector();
 * connector.register(agent.msid, (sock) => void agent.serve(sock));
 * const center = await DispatchCenter.open({ key, connector });
 * ```
 * @public
 */
export class MemoryAgentConnector implements AgentConnector {
  readonly #agents = new Map<string, (sock: SockIo) => void>();
  readonly #pair: MemoryPairOptions;

  /** `pair`: shaping of every connection (latency, bandwidth, …). */
  constructor(pair: MemoryPairOptions = {}) {
    this.#pair = pair;
  }

  /** Make `msid` reachable; `serve` gets the agent's end of every connection. */
  register(msid: string, serve: (sock: SockIo) => void): void {
    checkOption(typeof msid === 'string' && msid.length > 0, 'msid', 'must be a machine ID');
    checkOption(typeof serve === 'function', 'serve', 'must be a function');
    this.#agents.set(msid.toUpperCase(), serve);
  }

  /** Make `msid` unreachable (connections already made stay up). */
  unregister(msid: string): void {
    this.#agents.delete(String(msid).toUpperCase());
  }

  /** {@inheritDoc AgentConnector.connect} */
  async connect(agent: AgentRef): Promise<SockIo> {
    const serve = this.#agents.get(String(agent.msid).toUpperCase());
    if (serve === undefined) throw new RelayError('GS_ERR_SERVER_OFFLINE', `agent ${agent.msid} (${agent.pcid}) is not connected`);
    const [ours, theirs] = memoryPair(this.#pair);
    const far = SockIo.fromStream(theirs, { peerMsid: 'MSID-CENTER', pcid: agent.pcid });
    const near = SockIo.fromStream(ours, { peerMsid: agent.msid, pcid: agent.pcid });
    try {
      serve(far);
    } catch {
      // The agent's own failure: it shows up as a closed connection.
      void far.disconnect();
    }
    return near;
  }
}
