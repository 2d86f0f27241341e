/**
 * The executor contract between the agent and its loaders (docs/dispatch.md,
 * "Roles and processes"): a {@link LoaderJob} goes in, a {@link LoaderHandle}
 * comes out, and each run of the loaded code settles with a
 * {@link LoaderResult} — the report's fields without the agent's MSID, which
 * the agent adds before it signs.
 */
import type { ReportFields } from '../wire/index.js';

/**
 * What the agent hands a loader for one dispatch. It travels only in memory
 * or over the loader's IPC pipe: never on a command line, in the
 * environment or on disk.
 * @public
 */
export interface LoaderJob {
  /** The encoded bundle, exactly as received (the loader decodes and verifies it again). */
  readonly bundle: Uint8Array;
  /** The center-signed evidence binding (base64url, as on the wire). */
  readonly binding: string;
  /** The center's Ed25519 public key (32 bytes) the bundle and binding must be signed by. */
  readonly centerKey: Uint8Array;
  /** The agent's own MSID: the binding must name it. */
  readonly agentMsid: string;
  /** The agent's work directory; the target program is written under it. */
  readonly workDir: string;
  /** The lowest bundle version acceptable for the bundle's name (no rollback); 0 for none. */
  readonly minVersion: number;
  /**
   * How long each run may take, in ms: the bundle's `timeoutMs`, which the
   * agent read when it verified the bundle. When absent the executor reads
   * it from the bundle (one more decode).
   */
  readonly timeoutMs?: number;
}

/**
 * The outcome of one run of the loaded code: every report field except
 * `agentMsid`. The agent adds its MSID and signs it.
 * @public
 */
export type LoaderResult = Omit<ReportFields, 'agentMsid'>;

/**
 * Optional callbacks of {@link Executor.start}.
 * @public
 */
export interface LoaderEvents {
  /** A line the distributed code wrote with `ctx.log()` (at most 4,096 characters). */
  log?(message: string): void;
}

/**
 * A started loader. It stays alive after its first run so the center can
 * re-run the loaded code with new arguments; it ends when killed, when the
 * loaded code could not be loaded, or when its process dies.
 * @public
 */
export interface LoaderHandle {
  /** The first run. Never rejects: a failure is a result with its outcome. */
  readonly result: Promise<LoaderResult>;
  /**
   * Run the loaded code again under a new binding (new evidence, new
   * arguments), after any run still in progress. Never rejects for a failed
   * run (that is a result); rejects with `DispatchError`
   * `GS_ERR_DISPATCH_UNKNOWN_BUNDLE` when the loader has ended and
   * `GS_ERR_DISPATCH_MALFORMED` for a binding that does not decode.
   */
  rerun(binding: string): Promise<LoaderResult>;
  /**
   * End the loader and everything it started. A run still in progress
   * settles with outcome `timeout` and `reason` as given (`cancelled`,
   * `superseded`, …). Idempotent.
   */
  kill(reason: string): Promise<void>;
  /** False once the loader has ended (killed, crashed, timed out, or nothing was loaded). */
  readonly alive: boolean;
}

/**
 * Starts loaders: {@link ProcessExecutor} (a separate Node process per
 * dispatch, the production choice) or {@link InlineExecutor} (the same
 * loader in this process, for tests and benchmarks).
 * @public
 */
export interface Executor {
  /**
   * Start a loader for `job`. Throws `DispatchError`
   * `GS_ERR_DISPATCH_MALFORMED` when the job's binding or bundle does not
   * decode (the agent never passes such a job); everything after that is
   * reported through the handle's results.
   */
  start(job: LoaderJob, events?: LoaderEvents): LoaderHandle;
}
