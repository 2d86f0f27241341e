/**
 * A receiver's configuration and the pure check its engine calls on each
 * announcement before it answers or joins (seed §3.3.2, figure 4: a receiver
 * not permitted does not join and says nothing), plus the memory of the
 * last version taken per name that makes replays and rollbacks stale.
 *
 * Name patterns are globs over the whole name: `*` matches any run of
 * characters except `/`, `**` any run including `/`, `?` one character
 * except `/`; every other character matches itself. `app/*.tar.gz` takes
 * `app/v2.tar.gz` but not `app/x/v2.tar.gz`; `**` takes every name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DeliveryError } from '../../../errors/index.js';
import type { Announcement } from './control.js';
import { isSafeUpdateName } from './names.js';
import { PUBLIC_KEY_LEN, publisherKeyId } from './publisher.js';

/** Longest name pattern. @public */
export const MAX_PATTERN_LENGTH = 400;

/**
 * What a receiver takes.
 * @public
 */
export interface ReceiverPolicy {
  /** Name patterns (globs, module comment); an update must match one. Empty: nothing is permitted. */
  readonly allow: readonly string[];
  /** Pinned publisher public keys (32 bytes each); an update must name one of them. */
  readonly publisherKeys: readonly Uint8Array[];
}

/**
 * The outcome of {@link checkPermission}.
 * @public
 */
export type PermissionDecision = { readonly permitted: true } | { readonly permitted: false; readonly reason: string };

const PATTERN_RE = /^[\x21-\x7e]+$/;

/**
 * Compile a name pattern into a matcher.
 * @throws ConfigError `GS_ERR_INVALID_OPTION` for an empty, overlong or non-printable pattern.
 * @public
 */
export function compileNamePattern(pattern: string): (name: string) => boolean {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH || !PATTERN_RE.test(pattern)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `allow pattern must be 1…${MAX_PATTERN_LENGTH} printable ASCII characters without spaces, got ${JSON.stringify(String(pattern).slice(0, 60))}`);
  }
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  const compiled = new RegExp(re + '$');
  return (name) => compiled.test(name);
}

/**
 * Check a policy once (patterns compile, keys are 32 bytes), so a bad
 * configuration fails at start rather than at the first announcement.
 * @throws ConfigError `GS_ERR_INVALID_OPTION`.
 * @public
 */
export function verifyReceiverPolicy(policy: ReceiverPolicy): void {
  if (!policy || !Array.isArray(policy.allow) || !Array.isArray(policy.publisherKeys)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', 'policy must have allow (patterns) and publisherKeys (public keys) arrays');
  }
  for (const p of policy.allow) compileNamePattern(p);
  for (const k of policy.publisherKeys) {
    if (!(k instanceof Uint8Array) || k.length !== PUBLIC_KEY_LEN) throw new ConfigError('GS_ERR_INVALID_OPTION', `publisherKeys must be ${PUBLIC_KEY_LEN}-byte Ed25519 public keys`);
  }
}

/**
 * May this receiver take `announcement`? A pure function of the policy and
 * the announcement: its key ID must name a pinned key and its name must be
 * safe and match an allowed pattern. (The signature itself is
 * `verifyAnnouncement`'s job.)
 * @public
 */
export function checkPermission(policy: ReceiverPolicy, announcement: Pick<Announcement, 'name' | 'keyId'>): PermissionDecision {
  if (!isSafeUpdateName(announcement.name)) return { permitted: false, reason: 'the name is not a safe update name' };
  const pinned = policy.publisherKeys.some((k) => k instanceof Uint8Array && k.length === PUBLIC_KEY_LEN && publisherKeyId(k) === announcement.keyId);
  if (!pinned) return { permitted: false, reason: `publisher key ${announcement.keyId} is not pinned` };
  for (const p of policy.allow) {
    let match: (name: string) => boolean;
    try {
      match = compileNamePattern(p);
    } catch {
      continue;
    }
    if (match(announcement.name)) return { permitted: true };
  }
  return { permitted: false, reason: `${announcement.name} matches no allowed pattern` };
}

/**
 * {@link checkPermission}, throwing when not permitted.
 * @throws DeliveryError `GS_ERR_DELIVERY_NOT_PERMITTED`.
 * @public
 */
export function assertPermitted(policy: ReceiverPolicy, announcement: Pick<Announcement, 'name' | 'keyId'>): void {
  const d = checkPermission(policy, announcement);
  if (!d.permitted) throw new DeliveryError('GS_ERR_DELIVERY_NOT_PERMITTED', `update ${announcement.name} is not permitted here: ${d.reason}`);
}

/**
 * The last version a receiver took per name: a new announcement must be
 * above it (`verifyAnnouncement`'s `lastVersion`).
 * @public
 */
export interface UpdateHistory {
  /** The last version taken of `name`, or `undefined`. */
  lastVersion(name: string): number | undefined;
  /** Remember that `version` of `name` was taken (never lowers a version). */
  record(name: string, version: number): void;
}

/**
 * An {@link UpdateHistory} in memory (lost on exit).
 * @public
 */
export class MemoryUpdateHistory implements UpdateHistory {
  readonly #versions = new Map<string, number>();
  /** {@inheritDoc UpdateHistory.lastVersion} */
  lastVersion(name: string): number | undefined {
    return this.#versions.get(name);
  }
  /** {@inheritDoc UpdateHistory.record} */
  record(name: string, version: number): void {
    if (!Number.isSafeInteger(version) || version < 1) throw new ConfigError('GS_ERR_INVALID_OPTION', `version must be an integer ≥ 1, got ${version}`);
    if ((this.#versions.get(name) ?? 0) < version) this.#versions.set(name, version);
  }
  /** Every name and its version. */
  entries(): [string, number][] {
    return [...this.#versions];
  }
}

/**
 * An {@link UpdateHistory} kept in a JSON file (`{"versions":{"name":7}}`),
 * written whole to a temporary file and renamed over the old one at every
 * `record`, so a crash leaves the old or the new file, never half of one.
 * @public
 */
export class FileUpdateHistory extends MemoryUpdateHistory {
  readonly #path: string;

  /**
   * Open (or start) the history at `file`.
   * @throws DeliveryError `GS_ERR_DELIVERY_MALFORMED` for a file that is not a history.
   */
  constructor(file: string) {
    super();
    this.#path = path.resolve(file);
    let text: string | undefined;
    try {
      text = fs.readFileSync(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const versions = (parsed as { versions?: unknown } | undefined)?.versions;
      if (typeof versions !== 'object' || versions === null || Array.isArray(versions)) {
        throw new DeliveryError('GS_ERR_DELIVERY_MALFORMED', `${this.#path} is not an update history ({"versions":{…}})`);
      }
      for (const [name, v] of Object.entries(versions)) {
        if (!Number.isSafeInteger(v) || (v as number) < 1) throw new DeliveryError('GS_ERR_DELIVERY_MALFORMED', `${this.#path}: version of ${name} is not an integer ≥ 1`);
        super.record(name, v as number);
      }
    }
  }

  /** {@inheritDoc UpdateHistory.record} */
  override record(name: string, version: number): void {
    super.record(name, version);
    const tmp = `${this.#path}.tmp-${process.pid}`;
    fs.mkdirSync(path.dirname(this.#path), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify({ versions: Object.fromEntries(this.entries()) }, null, 2) + '\n');
    fs.renameSync(tmp, this.#path);
  }
}
