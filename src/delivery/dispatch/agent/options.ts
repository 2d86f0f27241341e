/**
 * The agent's options: what each means, their defaults, and the one check
 * every {@link DispatchAgent} runs on them ({@link agentSettings}).
 */
import { checkOption } from '../../../errors/check.js';
import type { Identity } from '../../../session/index.js';
import { DEFAULT_MAX_BUNDLE_BYTES, parseCenterKey, toBase64url } from '../wire/index.js';
import { ProcessExecutor } from './executor.js';
import type { Executor } from './types.js';

/**
 * Options of {@link DispatchAgent}.
 * @public
 */
export interface DispatchAgentOptions {
  /** The agent's identity: its MSID is the one bindings must name; it signs every report. */
  identity: Identity;
  /** The center's public key (32 bytes, or `ed25519:…` text, or a PUBLIC KEY PEM block): the only signer the agent obeys. */
  centerKey: Uint8Array | string;
  /** Where the agent keeps `state.json` (rollback floor, bindings acted on, reports not yet acknowledged). */
  stateDir: string;
  /** Where target programs are written (each bundle's `target.path` is relative to it). */
  workDir: string;
  /** Where loaders run. Default: a {@link ProcessExecutor} (a Node process per dispatch). */
  executor?: Executor;
  /** Largest bundle accepted, in bytes. Default 64 MiB. */
  maxBundleBytes?: number;
  /** How long to wait for a fetched bundle, in ms. Default 30,000. */
  fetchTimeoutMs?: number;
  /** A loaded bundle with no run for this long (ms) is ended, so idle loaders do not pile up. Default 600,000 (10 min). */
  idleLoaderMs?: number;
  /** Flush `state.json` to disk on every save (default true). Off only for benchmarks and tests. */
  syncState?: boolean;
  /** Clock, ms since the epoch (default `Date.now`): expiry checks and report times. */
  now?: () => number;
}

/** Defaults of {@link DispatchAgentOptions}. @public */
export const DEFAULT_DISPATCH_AGENT_OPTIONS = Object.freeze({
  maxBundleBytes: DEFAULT_MAX_BUNDLE_BYTES,
  fetchTimeoutMs: 30_000,
  idleLoaderMs: 600_000,
  syncState: true,
});

/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** {@link DispatchAgentOptions} checked, with every default filled in. @internal */
export interface AgentSettings {
  readonly identity: Identity;
  /** The identity's MSID. */
  readonly msid: string;
  /** The identity's certificate (DER), unpadded base64url: what hello and reports carry. */
  readonly certificate: string;
  /** The pinned center key, 32 bytes. */
  readonly centerKey: Uint8Array;
  readonly stateDir: string;
  readonly workDir: string;
  readonly executor: Executor;
  readonly maxBundleBytes: number;
  readonly fetchTimeoutMs: number;
  readonly idleLoaderMs: number;
  readonly syncState: boolean;
  readonly now: () => number;
}

/**
 * Check `options` by name and fill in the defaults.
 * @throws ConfigError `GS_ERR_INVALID_OPTION` naming the first bad option.
 * @internal
 */
export function agentSettings(options: DispatchAgentOptions): AgentSettings {
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const id = options.identity;
  checkOption(typeof id === 'object' && id !== null && typeof id.msid === 'string' && typeof id.sign === 'function' && id.certificate?.der instanceof Uint8Array, 'identity', 'must be an Identity');
  let centerKey: Uint8Array;
  try {
    centerKey = parseCenterKey(options.centerKey);
  } catch {
    checkOption(false, 'centerKey', 'must be a 32-byte Ed25519 public key, "ed25519:<base64url>" or a PUBLIC KEY PEM block');
  }
  checkOption(typeof options.stateDir === 'string' && options.stateDir.length > 0, 'stateDir', 'must be a directory path');
  checkOption(typeof options.workDir === 'string' && options.workDir.length > 0, 'workDir', 'must be a directory path');
  checkOption(options.executor === undefined || typeof options.executor?.start === 'function', 'executor', 'must be an Executor');
  const d = DEFAULT_DISPATCH_AGENT_OPTIONS;
  const maxBundleBytes = options.maxBundleBytes ?? d.maxBundleBytes;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? d.fetchTimeoutMs;
  const idleLoaderMs = options.idleLoaderMs ?? d.idleLoaderMs;
  checkOption(Number.isSafeInteger(maxBundleBytes) && maxBundleBytes > 0, 'maxBundleBytes', 'must be a positive integer');
  checkOption(Number.isInteger(fetchTimeoutMs) && fetchTimeoutMs > 0 && fetchTimeoutMs <= MAX_TIMER_MS, 'fetchTimeoutMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
  checkOption(Number.isInteger(idleLoaderMs) && idleLoaderMs > 0 && idleLoaderMs <= MAX_TIMER_MS, 'idleLoaderMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
  checkOption(options.syncState === undefined || typeof options.syncState === 'boolean', 'syncState', 'must be a boolean');
  checkOption(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function');
  return {
    identity: id,
    msid: id.msid,
    certificate: toBase64url(id.certificate.der),
    centerKey: centerKey!,
    stateDir: options.stateDir,
    workDir: options.workDir,
    executor: options.executor ?? new ProcessExecutor(),
    maxBundleBytes,
    fetchTimeoutMs,
    idleLoaderMs,
    syncState: options.syncState ?? d.syncState,
    now: options.now ?? Date.now,
  };
}
