/**
 * Balancing: which gateway a server logging in is sent to. The controller
 * asks a {@link BalancingStrategy}, given the gateways that are alive and not
 * draining; the strategy is pluggable.
 */

/**
 * What the controller knows of one gateway when it balances.
 * @public
 */
export interface GatewayLoad {
  /** The gateway's MSID. */
  readonly msid: string;
  /** Where servers and clients reach it. */
  readonly address: string;
  /** Server sessions its operator says it can hold. */
  readonly capacity: number;
  /** Server sessions it holds, plus those sent to it whose attach has not been reported yet. */
  readonly sessions: number;
  /** Relayed connections open, from its last keepalive. */
  readonly connections: number;
  /** Bytes relayed per second (both ways), from its last keepalive. */
  readonly bytesPerSecond: number;
  /** Fraction of one core its process used over the last keepalive interval (0…n). */
  readonly cpu: number;
}

/**
 * Picks a gateway for a server. Returns undefined when none will do.
 * @public
 */
export interface BalancingStrategy {
  /** A name for logs. */
  readonly name: string;
  /** `candidates` is never empty; every one is alive and not draining. */
  pick(candidates: readonly GatewayLoad[], serverMsid: string): GatewayLoad | undefined;
}

/** The candidate with the lowest score; ties go to the lower MSID, so the choice is reproducible. */
function lowest(candidates: readonly GatewayLoad[], score: (g: GatewayLoad) => number): GatewayLoad | undefined {
  let best: GatewayLoad | undefined;
  let bestScore = Infinity;
  for (const g of candidates) {
    const s = score(g);
    if (s < bestScore || (s === bestScore && best !== undefined && g.msid < best.msid)) {
      best = g;
      bestScore = s;
    }
  }
  return best;
}

/**
 * The seed's rule and the default: the gateway with the lowest
 * `server sessions / capacity`.
 * @public
 */
export const leastSessionsStrategy: BalancingStrategy = Object.freeze({
  name: 'least-sessions',
  pick: (candidates: readonly GatewayLoad[]) => lowest(candidates, (g) => g.sessions / Math.max(g.capacity, 1)),
});

/**
 * Weights of {@link weightedLoadStrategy}; each term is a fraction of what the
 * gateway can take, so weights compare like with like.
 * @public
 */
export interface LoadWeights {
  /** Weight of `sessions / capacity`. Default 1. */
  sessions?: number;
  /** Weight of `connections / connectionCapacity`. Default 1. */
  connections?: number;
  /** Weight of `bytesPerSecond / bandwidth`. Default 1. */
  bandwidth?: number;
  /** Weight of `cpu` (one core = 1). Default 1. */
  cpu?: number;
  /** Connections a gateway of capacity 1 is taken to carry well; scaled by capacity. Default 8. */
  connectionsPerSession?: number;
  /** Bytes per second a gateway of capacity 1000 is taken to carry well; scaled by capacity. Default 125 MB/s (a gigabit). */
  bandwidthPer1000?: number;
}

/**
 * The seed's stated next step: weigh what each gateway reports every
 * keepalive (sessions, connections, bytes per second, CPU), each as a
 * fraction of what a gateway of its capacity can take, and pick the lowest
 * weighted sum.
 * @public
 */
export function weightedLoadStrategy(weights: LoadWeights = {}): BalancingStrategy {
  const w = { sessions: 1, connections: 1, bandwidth: 1, cpu: 1, connectionsPerSession: 8, bandwidthPer1000: 125e6, ...weights };
  return Object.freeze({
    name: 'weighted-load',
    pick: (candidates: readonly GatewayLoad[]) =>
      lowest(candidates, (g) => {
        const capacity = Math.max(g.capacity, 1);
        return (
          w.sessions * (g.sessions / capacity) +
          w.connections * (g.connections / (capacity * w.connectionsPerSession)) +
          w.bandwidth * (g.bytesPerSecond / ((capacity / 1000) * w.bandwidthPer1000)) +
          w.cpu * g.cpu
        );
      }),
  });
}
