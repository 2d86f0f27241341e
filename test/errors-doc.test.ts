/**
 * docs/errors.md is the one page that lists every stable error code. It must
 * list exactly the codes in ERROR_CODES, each once under its class with a
 * section of its own, and give each the CLI exit status that exitStatusOf
 * really returns.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exitStatusOf } from '../src/cli/errors.js';
import {
  CertificateError,
  ConfigError,
  CryptoError,
  ERROR_CODES,
  DeliveryError,
  DispatchError,
  SecurityCenterError,
  FecError,
  KeyAddressError,
  RelayError,
  SocketError,
  FrameError,
  GatesockError,
  HandshakeError,
  SessionError,
  TransportError,
} from '../src/errors/index.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

type Family = keyof typeof ERROR_CODES;
type ErrorClass = new (code: never, message: string) => GatesockError;
/** The class of each ERROR_CODES family; a new family fails here until it is added (and documented). */
const CLASS_OF: Record<Family, ErrorClass> = {
  config: ConfigError,
  frame: FrameError,
  crypto: CryptoError,
  handshake: HandshakeError,
  certificate: CertificateError,
  transport: TransportError,
  session: SessionError,
  fec: FecError,
  relay: RelayError,
  socket: SocketError,
  keyaddress: KeyAddressError,
  delivery: DeliveryError,
  dispatch: DispatchError,
  security: SecurityCenterError,
};

const codes = (Object.entries(ERROR_CODES) as [Family, readonly string[]][]).flatMap(([family, list]) =>
  list.map((code) => ({ family, code, error: new CLASS_OF[family](code as never, 'x') })),
);

/** Whole code tokens (`GS_ERR_CERT_*`, a prefix, is not one). */
const mentioned = new Set(doc.match(/\bGS_ERR_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);

/** `## Class` sections in order, each with the `### \`CODE\`` headings under it. */
const sections = new Map<string, string[]>();
let current: string[] | undefined;
for (const line of doc.split('\n')) {
  const h2 = /^## (.+)$/.exec(line);
  if (h2) sections.set(h2[1]!, (current = []));
  const h3 = /^### `(GS_ERR_[A-Z0-9_]+)`$/.exec(line);
  if (h3) current?.push(h3[1]!);
}

/** Index rows: code → [class, exit status]. */
const index = new Map([...doc.matchAll(/^\| `(GS_ERR_[A-Z0-9_]+)` \| `(\w+)` \| (\d+) \|$/gm)].map((m) => [m[1]!, [m[2]!, Number(m[3])] as const]));

describe('docs/errors.md', () => {
  it('every family of ERROR_CODES has its class here', () => {
    expect(Object.keys(CLASS_OF).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const { family, error } of codes) expect(error.name, family).toBe(CLASS_OF[family].name);
  });

  it('mentions every code in ERROR_CODES', () => {
    expect(codes.map((c) => c.code).filter((c) => !mentioned.has(c))).toEqual([]);
  });

  it('mentions no code that does not exist', () => {
    const known = new Set(codes.map((c) => c.code));
    expect([...mentioned].filter((c) => !known.has(c))).toEqual([]);
  });

  it('gives each code one section, under the heading of its class', () => {
    for (const { code, error } of codes) {
      const headings = [...sections.values()].flat().filter((c) => c === code);
      expect(headings, `### \`${code}\``).toHaveLength(1);
      expect(sections.get(error.name), `## ${error.name}`).toContain(code);
    }
  });

  it('indexes each code once with its class and the exit status the CLI uses', () => {
    expect([...index.keys()].sort()).toEqual(codes.map((c) => c.code).sort());
    expect(doc.match(/^\| `GS_ERR_/gm)).toHaveLength(codes.length);
    for (const { code, error } of codes) expect(index.get(code), code).toEqual([error.name, exitStatusOf(error)]);
  });
});
