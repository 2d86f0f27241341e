/**
 * Operating system and kernel, as an agent reports them.
 *
 * os-release(5): the file is `/etc/os-release`, or `/usr/lib/os-release` when
 * that does not exist. Each line is `KEY=VALUE`; `#` starts a comment line;
 * values with characters outside A–Z, a–z, 0–9 are quoted with `"` or `'`;
 * inside double quotes `\"`, `\\`, `` \` `` and `\$` are escapes (shell style);
 * concatenated quoted strings are not supported. Lines that break the syntax
 * are skipped, as systemd's parser does. `ID` defaults to `linux`, `NAME` and
 * `PRETTY_NAME` to `Linux`.
 */
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as posix from 'node:path/posix';
import type { OsInfo } from '../report/index.js';

/** One value: the text after `=`, or undefined when it breaks the syntax. */
function parseValue(raw: string): string | undefined {
  if (raw.startsWith('"')) {
    let out = '';
    for (let i = 1; i < raw.length; i++) {
      const c = raw[i]!;
      if (c === '\\' && i + 1 < raw.length) {
        const n = raw[i + 1]!;
        // Shell double-quote rules: the backslash escapes only these four.
        if (n === '"' || n === '\\' || n === '`' || n === '$') { out += n; i++; continue; }
        out += c;
        continue;
      }
      if (c === '"') return raw.slice(i + 1).trim() === '' ? out : undefined;
      out += c;
    }
    return undefined; // unterminated
  }
  if (raw.startsWith("'")) {
    const end = raw.indexOf("'", 1);
    if (end < 0 || raw.slice(end + 1).trim() !== '') return undefined;
    return raw.slice(1, end);
  }
  // Unquoted: shell-style backslash escapes, no whitespace or quotes.
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) { out += raw[++i]; continue; }
    if (/[\s"'`$;&|<>()]/.test(c)) return undefined;
    out += c;
  }
  return out;
}

/**
 * Parse the text of an os-release file into its variables. Invalid lines are
 * skipped; a later assignment of the same key wins.
 */
export function parseOsReleaseText(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const l = line.replace(/\r$/, '').trim();
    if (l === '' || l.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(l);
    if (m === null) continue;
    const value = parseValue(m[2]!);
    if (value !== undefined) vars.set(m[1]!, value);
  }
  return vars;
}

/** The report's {@link OsInfo} from os-release variables, with os-release(5)'s defaults. */
export function osInfoFromVars(vars: ReadonlyMap<string, string>): OsInfo {
  // Fields outside the characters the report allows are dropped rather than sent (the center would refuse them).
  const idish = (v: string | undefined) => (v !== undefined && /^[A-Za-z0-9._~+-]{0,64}$/.test(v) ? v : '');
  const textish = (v: string | undefined, dflt: string) => {
    // eslint-disable-next-line no-control-regex
    const t = (v ?? dflt).replace(/[\u0000-\u001f\u007f]/g, ' ');
    return t.length > 256 ? t.slice(0, 256) : t;
  };
  const id = idish(vars.get('ID')) || 'linux';
  return {
    id,
    versionId: idish(vars.get('VERSION_ID')),
    name: textish(vars.get('NAME'), 'Linux'),
    prettyName: textish(vars.get('PRETTY_NAME'), 'Linux'),
    idLike: (vars.get('ID_LIKE') ?? '').split(/\s+/).filter((s) => s !== '' && /^[A-Za-z0-9._~+-]{1,64}$/.test(s)).slice(0, 16),
    versionCodename: idish(vars.get('VERSION_CODENAME')),
  };
}

/** Options of {@link collectOsRelease}. */
export interface OsReleaseOptions {
  /** Directory treated as `/` (tests point it at a fixture tree). Default `/`. */
  readonly root?: string;
}

/**
 * Read the host's os-release: `/etc/os-release`, else `/usr/lib/os-release`,
 * else the defaults (ID `linux`).
 */
export async function collectOsRelease(options: OsReleaseOptions = {}): Promise<OsInfo> {
  const root = options.root ?? '/';
  for (const file of ['etc/os-release', 'usr/lib/os-release']) {
    let text: string;
    try {
      text = await readFile(posix.join(root, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    return osInfoFromVars(parseOsReleaseText(text));
  }
  return osInfoFromVars(new Map());
}

/** Options of {@link collectKernel}. */
export interface KernelOptions {
  /**
   * Directory treated as `/`; when set, the release is read from
   * `ROOT/proc/sys/kernel/osrelease` instead of asking the running kernel.
   */
  readonly root?: string;
}

/** The running kernel's release (`uname -r`, `os.release()`). */
export async function collectKernel(options: KernelOptions = {}): Promise<string> {
  if (options.root === undefined) return os.release();
  return (await readFile(posix.join(options.root, 'proc/sys/kernel/osrelease'), 'utf8')).trim();
}
