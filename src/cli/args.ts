/**
 * Pieces several commands share: flag parsers that answer with commander's
 * usage error, the stdout/stderr pair a command writes to, and Ed25519 key
 * files (a secret PKCS#8 PEM and its `ed25519:…` public half).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { formatPublicKey, generatePublisherKey, parsePublicKey } from '../delivery/index.js';
import { ConfigError } from '../errors/index.js';
import type { IdentityKey } from '../session/index.js';

/** Where a command writes: result lines on stdout, notes on stderr. */
export interface Io {
  readonly print: (line: string) => void;
  readonly note: (line: string) => void;
}

/** An integer flag in [min, max]. */
export function intIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}…${max}`);
    return n;
  };
}

/** A number flag in [0, 1). */
export function fraction(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1)`);
    return n;
  };
}

/** A repeatable flag's accumulator. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** A public key from its text (`ed25519:…`, a PEM block) or a file holding it; `flag` names it in errors. */
export function readPublicKey(spec: string, flag: string): Uint8Array {
  if (spec.startsWith('ed25519:') || spec.includes('-----BEGIN')) return parsePublicKey(spec);
  let text: string;
  try {
    text = fs.readFileSync(spec, 'utf8');
  } catch (err) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `${flag} ${spec}: not "ed25519:…" and not a readable file (${(err as Error).message})`);
  }
  return parsePublicKey(text);
}

/** Flags of a `keygen` command. */
export interface KeygenOptions {
  out: string;
  name: string;
  force?: boolean;
}

/**
 * Write a fresh key as OUT/NAME.key (mode 0600) and OUT/NAME.pub, refusing
 * to replace either without `force` (`consequence` says what replacing
 * breaks), and print the public key.
 */
export function writeKeyPair(o: KeygenOptions, consequence: string, io: Io): { key: IdentityKey; keyPath: string; pubPath: string } {
  const keyPath = path.resolve(o.out, `${o.name}.key`);
  const pubPath = path.resolve(o.out, `${o.name}.pub`);
  if (!o.force) {
    for (const p of [keyPath, pubPath]) {
      if (fs.existsSync(p)) throw new ConfigError('GS_ERR_INVALID_OPTION', `${p} exists; pass --force to replace it (${consequence})`);
    }
  }
  const key = generatePublisherKey();
  fs.mkdirSync(path.dirname(keyPath), { recursive: true });
  fs.writeFileSync(keyPath, key.toPem(), { mode: 0o600 });
  fs.chmodSync(keyPath, 0o600);
  const pub = formatPublicKey(key.publicKey);
  fs.writeFileSync(pubPath, pub + '\n');
  io.print(`public key  ${pub}`);
  return { key, keyPath, pubPath };
}

/** Rows (the first is the header) as lines of columns aligned with two spaces; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}
