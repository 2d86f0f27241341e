/**
 * The agent of verifiable dispatch (docs/dispatch.md): {@link DispatchAgent}
 * (the resident client, a relay server), the {@link Executor} interface with
 * {@link ProcessExecutor} (a loader process per dispatch) and
 * {@link InlineExecutor} (the same loader in-process, for tests and
 * benchmarks), and what the distributed code sees ({@link DispatchContext}).
 *
 * @packageDocumentation
 */
export { DispatchAgent } from './agent.js';
export type { DispatchAgentEvents } from './host.js';
export { DEFAULT_DISPATCH_AGENT_OPTIONS, type DispatchAgentOptions } from './options.js';
export { InlineExecutor, ProcessExecutor, type InlineExecutorOptions, type ProcessExecutorOptions } from './executor.js';
export { DEFAULT_MAX_OUTPUT_BYTES, type DispatchContext, type TargetRunResult } from './loader.js';
export { MAX_KEPT_REPORTS, STATE_FILE } from './state.js';
export type { Executor, LoaderEvents, LoaderHandle, LoaderJob, LoaderResult } from './types.js';
