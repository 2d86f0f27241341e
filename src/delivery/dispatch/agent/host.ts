/**
 * What the agent's parts share: its events, and {@link AgentHost}, what
 * each part (channels, order checks, run control, reports) uses of the
 * {@link DispatchAgent} that owns it.
 */
import type { SignedReport } from '../wire/index.js';
import type { AgentChannels } from './channels.js';
import type { AgentSettings } from './options.js';
import type { AgentState } from './state.js';

/**
 * Events of a {@link DispatchAgent}.
 * @public
 */
export interface DispatchAgentEvents {
  /** An order passed every check and its loader is starting (or its loaded code runs again). */
  accepted: (info: { dispatchId: string; run: number; bundle: string; name: string; version: number }) => void;
  /** An order was refused, or an `auth`, `ack` or `cancel` not backed by the center key (`code` is a `GS_ERR_DISPATCH_…` code). */
  refused: (info: { code: string; message: string; dispatchId?: string; run?: number }) => void;
  /** A report was signed (it is kept until acknowledged). */
  report: (report: SignedReport) => void;
  /** A line the distributed code logged. */
  log: (info: { dispatchId: string; message: string }) => void;
  /** Something failed that is not an order's outcome (a state save, a send); the agent carries on. */
  warning: (error: Error) => void;
}

/** What the agent's parts use of it. @internal */
export interface AgentHost {
  readonly settings: AgentSettings;
  readonly channels: AgentChannels;
  /** The loaded state (the parts run only once it is). */
  state(): AgentState;
  /** True once `close()` began. */
  closed(): boolean;
  emit<E extends keyof DispatchAgentEvents>(event: E, ...args: Parameters<DispatchAgentEvents[E]>): void;
  /** Save the state now; a failure is a warning. */
  save(): Promise<void>;
  /** Keep `p` until it settles (close() waits for it); its failure is a warning. */
  track(p: Promise<unknown>): void;
  /** Emit `warning`. */
  warn(e: unknown): void;
}
