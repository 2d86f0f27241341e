/**
 * What the long-running commands share: settings from a YAML file and from
 * flags, checked by name with one set of rules, and the files they read
 * (PKI folders, root certificates).
 *
 * A command declares its settings once as a {@link SettingsSpec}: each key
 * is the long flag's name without the dashes (`gateway-timeout` is
 * `--gateway-timeout` and `gateway-timeout:` in the file), with a parser and
 * a default. Precedence: flag, then file, then default. An unknown key in
 * the file, or a bad value anywhere, is a `ConfigError` naming the key and
 * where it came from (exit status 3), never a silent fallback.
 */
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isMap, parseDocument } from 'yaml';
import { ConfigError, TransportError } from '../errors/index.js';
import { certificateFromPem, certificatesFromPem, loadIdentity, verifyCertificateChain, type Certificate, type Identity, type Role } from '../session/index.js';

/** A value parser: returns the value or throws a `string` saying what is wrong (the caller adds the key and origin). */
type Parse<T> = (raw: unknown, base: string) => T;

/**
 * One setting: how to read it, its default (`undefined`: none), and the help
 * text shown by `--help` (the default is appended from the same object).
 */
export interface Setting<T> {
  readonly parse: Parse<T>;
  readonly default?: T;
  /** Flag placeholder and description. */
  readonly arg: string;
  readonly help: string;
}

/** A command's settings by key. */
export type SettingsSpec = Record<string, Setting<unknown>>;

/** What a spec resolves to: each value, or `undefined` where there is neither value nor default. */
export type Settings<S extends SettingsSpec> = {
  -readonly [K in keyof S]: S[K] extends Setting<infer T> ? (S[K] extends { default: T } ? T : T | undefined) : never;
};

/** A host and port to listen on or connect to. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** An HTTP CONNECT proxy to leave through. */
export interface ProxySetting extends HostPort {
  readonly auth?: { readonly username: string; readonly password: string };
}

/** `host:port` or `[ipv6]:port`, as printed and accepted everywhere. */
export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const HOST_PORT_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/;

/** Parse `host:port`; `allowZero` lets port 0 mean "pick one" (listening). */
function hostPort(raw: unknown, allowZero: boolean): HostPort {
  const text = typeof raw === 'number' ? String(raw) : raw;
  const m = typeof text === 'string' ? HOST_PORT_RE.exec(text) : null;
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (port === 0 && !allowZero)) {
    throw `must be "host:port" or "[ipv6]:port"${allowZero ? ' (port 0 picks a free one)' : ' with a port from 1 to 65535'}, got ${JSON.stringify(raw)}`;
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** Parsers for the kinds of values the commands take. */
export const kind = Object.freeze({
  /** An address to listen on; port 0 picks a free one. */
  listen: (): Parse<HostPort> => (raw) => hostPort(raw, true),
  /** An address to connect to (port 1–65535). */
  address: (): Parse<HostPort> => (raw) => hostPort(raw, false),
  /** The controller: `host:port`, `[ipv6]:port`, or a `ws://` / `wss://` URL; kept as text. */
  controller: (): Parse<string> => (raw) => {
    if (typeof raw === 'string' && /^wss?:\/\/[^\s]+$/.test(raw)) {
      try {
        new URL(raw);
        return raw;
      } catch {
        throw `is not a valid URL: ${JSON.stringify(raw)}`;
      }
    }
    return formatHostPort(hostPort(raw, false));
  },
  /** An HTTP CONNECT proxy: `host:port`, or `user:password@host:port` for Basic auth. */
  proxy: (): Parse<ProxySetting> => (raw) => {
    const text = typeof raw === 'string' ? raw : '';
    const at = text.lastIndexOf('@');
    const where = hostPort(at < 0 ? raw : text.slice(at + 1), false);
    if (at < 0) return where;
    const credentials = text.slice(0, at);
    const colon = credentials.indexOf(':');
    if (colon < 1) throw 'must be "host:port" or "user:password@host:port"';
    return { ...where, auth: { username: credentials.slice(0, colon), password: credentials.slice(colon + 1) } };
  },
  /** An integer within [min, max]; from YAML a number, from a flag its digits. */
  integer:
    (min: number, max = Number.MAX_SAFE_INTEGER): Parse<number> =>
    (raw) => {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) throw `must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, got ${JSON.stringify(raw)}`;
      return n;
    },
  /** One of a few words. */
  oneOf:
    <T extends string>(...choices: T[]): Parse<T> =>
    (raw) => {
      if (typeof raw !== 'string' || !(choices as string[]).includes(raw)) throw `must be one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`;
      return raw as T;
    },
  /** On or off: YAML `true`/`false`, or the words `on`, `off`, `true`, `false`. */
  onOff: (): Parse<boolean> => (raw) => {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'on' || raw === 'true') return true;
    if (raw === 'off' || raw === 'false') return false;
    throw `must be on or off, got ${JSON.stringify(raw)}`;
  },
  /** A non-empty string. */
  text: (): Parse<string> => (raw) => {
    if (typeof raw !== 'string' || raw.length === 0) throw `must be a non-empty string, got ${JSON.stringify(raw)}`;
    return raw;
  },
  /** A file or folder path; relative ones are taken from `base` (the config file's folder, or the working folder for a flag). */
  path: (): Parse<string> => (raw, base) => {
    if (typeof raw !== 'string' || raw.length === 0) throw `must be a path, got ${JSON.stringify(raw)}`;
    if (raw === ':memory:') return raw;
    return isAbsolute(raw) ? raw : resolve(base, raw);
  },
});

/** Pino's level names, for `--log-level`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** commander's attribute name of a kebab-case flag: `gateway-timeout` → `gatewayTimeout`. */
export function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `--help` text of a setting, with its default from the spec. */
export function helpOf(setting: Setting<unknown>): string {
  const d = setting.default;
  if (d === undefined) return setting.help;
  const shown = typeof d === 'object' && d !== null && 'host' in d ? formatHostPort(d as HostPort) : String(d);
  return `${setting.help} (default: ${shown})`;
}

/** Read a YAML config file: a mapping of setting keys. */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `cannot read config file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new ConfigError('GS_ERR_INVALID_OPTION', `config file ${file} is not valid YAML: ${first.message.split('\n')[0]}`);
  }
  if (doc.contents === null) return {}; // an empty file, or only comments
  if (!isMap(doc.contents)) throw new ConfigError('GS_ERR_INVALID_OPTION', `config file ${file} must be a mapping of keys (key: value)`);
  return doc.toJS() as Record<string, unknown>;
}

/**
 * Resolve a command's settings: `flags` (commander's parsed options, camelCase,
 * `undefined` when not given) over the file named by `configFile` over the
 * defaults.
 */
export async function resolveSettings<S extends SettingsSpec>(spec: S, flags: Record<string, unknown>, configFile: string | undefined): Promise<Settings<S>> {
  const out: Record<string, unknown> = {};
  const fromFile = configFile === undefined ? {} : await readConfigFile(configFile);
  const fileBase = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  for (const key of Object.keys(fromFile)) {
    if (!(key in spec)) {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `config file ${configFile}: unknown key "${key}" (known keys: ${Object.keys(spec).join(', ')})`);
    }
  }
  for (const [key, setting] of Object.entries(spec)) {
    const flag = flags[camel(key)];
    const [raw, origin, base] =
      flag !== undefined ? [flag, `--${key}`, process.cwd()] : key in fromFile ? [fromFile[key], `config file ${configFile}: key "${key}"`, fileBase] : [undefined, '', ''];
    if (raw === undefined || raw === null) {
      out[key] = setting.default;
      continue;
    }
    try {
      out[key] = setting.parse(raw, base);
    } catch (reason) {
      if (typeof reason !== 'string') throw reason;
      throw new ConfigError('GS_ERR_INVALID_OPTION', `${origin} ${reason}`);
    }
  }
  return out as Settings<S>;
}

/** Parse one value given outside a spec (an argument, a flag of a short-lived command), naming it in the error. */
export function parseValue<T>(parse: Parse<T>, raw: unknown, name: string): T {
  try {
    return parse(raw, process.cwd());
  } catch (reason) {
    if (typeof reason !== 'string') throw reason;
    throw new ConfigError('GS_ERR_INVALID_OPTION', `${name} ${reason}`);
  }
}

/** A required setting: present, or a `ConfigError` saying how to give it. */
export function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `${key} is required: pass --${key} or set "${key}:" in the --config file`);
  return value;
}

/** Read a PEM file of one or more root certificates (what applications ship). */
export async function loadRoots(file: string, hint = ''): Promise<Certificate[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `cannot read the root certificate ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}${hint}`, {
      cause: error,
    });
  }
  const roots = certificatesFromPem(text);
  if (roots.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', `${file} holds no certificate`);
  return roots;
}

/**
 * One identity from a PKI folder made by `gatesock pki init`: the root
 * certificate from `DIR/root/cert.pem` and the identity in `DIR/<name>`,
 * checked against the root with its role. The root key is never read (it
 * should be offline), and no other folder is touched.
 */
export async function loadPkiIdentity(directory: string, name: string, role: Role): Promise<{ root: Certificate; identity: Identity }> {
  const rootFile = join(directory, 'root', 'cert.pem');
  let rootText: string;
  try {
    rootText = await readFile(rootFile, 'utf8');
  } catch (error) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `${directory} is not a PKI folder: cannot read ${rootFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); make one with \`gatesock pki init\``, {
      cause: error,
    });
  }
  const root = certificateFromPem(rootText);
  verifyCertificateChain([root], { roots: [root] });
  let identity: Identity;
  try {
    identity = await loadIdentity(join(directory, name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new ConfigError('GS_ERR_INVALID_OPTION', `cannot read the ${role} identity in ${join(directory, name)} (${code})${role === 'gateway' ? '; issue one with `gatesock pki add-gateway`' : ''}`, {
        cause: error,
      });
    }
    throw error;
  }
  verifyCertificateChain(identity.chain, { roots: [root], role });
  return { root, identity };
}

/**
 * Check that something listens at `address` with a plain TCP connect, so a
 * command can say "cannot reach the controller" at once instead of retrying
 * in silence. `ws://` addresses are not probed.
 */
export async function checkReachable(address: string, what: string, timeoutMs = 5000): Promise<void> {
  const m = HOST_PORT_RE.exec(address);
  if (!m) return;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  await new Promise<void>((resolvePromise, reject) => {
    const socket = net.connect({ host, port });
    const fail = (why: string, cause?: unknown): void => {
      socket.destroy();
      reject(new TransportError('GS_ERR_CONNECT_FAILED', `cannot reach ${what} at ${address}: ${why}`, { cause }));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message, error));
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise();
    });
  });
}

/** Add one `--key <arg>` option per setting to a commander command, with the help and default from the spec. */
export function addSettingOptions(command: Command, spec: SettingsSpec): Command {
  for (const [key, setting] of Object.entries(spec)) command.option(`--${key} <${setting.arg}>`, helpOf(setting));
  return command;
}
