/**
 * Noise handshake patterns as data (Noise spec rev 34, §7 and §18), parsed
 * from the spec's own notation so each line can be checked against the spec
 * by eye. The engine in handshake-state.ts interprets the tokens; no pattern
 * has code of its own.
 */
import { ConfigError } from '../../errors/index.js';

/** A handshake token (Noise spec §7.1). */
export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

/** A parsed handshake pattern. */
export interface HandshakePattern {
  /** e.g. `XX` or `IKpsk2`. */
  readonly name: string;
  /** Pre-message tokens known to the initiator's peer (`-> s` before `...`). */
  readonly initiatorPre: readonly Token[];
  /** Pre-message tokens of the responder (`<- s` before `...`). */
  readonly responderPre: readonly Token[];
  /** Messages in order; even indexes are sent by the initiator. */
  readonly messages: readonly (readonly Token[])[];
  /** One-way patterns (N, K, X): only the initiator ever sends. */
  readonly oneWay: boolean;
  /** True when the pattern has any `psk` token. */
  readonly psk: boolean;
}

// Spec notation: pre-messages, then `...`, then messages; `;` separates lines.
const BASE_PATTERNS: Record<string, string> = {
  // §7.4 one-way
  N: '<- s ; ... ; -> e, es',
  K: '-> s ; <- s ; ... ; -> e, es, ss',
  X: '<- s ; ... ; -> e, es, s, ss',
  // §7.5 interactive, fundamental
  NN: '-> e ; <- e, ee',
  NK: '<- s ; ... ; -> e, es ; <- e, ee',
  NX: '-> e ; <- e, ee, s, es',
  KN: '-> s ; ... ; -> e ; <- e, ee, se',
  KK: '-> s ; <- s ; ... ; -> e, es, ss ; <- e, ee, se',
  KX: '-> s ; ... ; -> e ; <- e, ee, se, s, es',
  XN: '-> e ; <- e, ee ; -> s, se',
  XK: '<- s ; ... ; -> e, es ; <- e, ee ; -> s, se',
  XX: '-> e ; <- e, ee, s, es ; -> s, se',
  IN: '-> e, s ; <- e, ee, se',
  IK: '<- s ; ... ; -> e, es, s, ss ; <- e, ee, se',
  IX: '-> e, s ; <- e, ee, se, s, es',
  // §18.2 deferred
  NK1: '<- s ; ... ; -> e ; <- e, ee, es',
  NX1: '-> e ; <- e, ee, s ; -> es',
  X1N: '-> e ; <- e, ee ; -> s ; <- se',
  X1K: '<- s ; ... ; -> e, es ; <- e, ee ; -> s ; <- se',
  XK1: '<- s ; ... ; -> e ; <- e, ee, es ; -> s, se',
  X1K1: '<- s ; ... ; -> e ; <- e, ee, es ; -> s ; <- se',
  X1X: '-> e ; <- e, ee, s, es ; -> s ; <- se',
  XX1: '-> e ; <- e, ee, s ; -> es, s, se',
  X1X1: '-> e ; <- e, ee, s ; -> es, s ; <- se',
  K1N: '-> s ; ... ; -> e ; <- e, ee ; -> se',
  K1K: '-> s ; <- s ; ... ; -> e, es ; <- e, ee ; -> se',
  KK1: '-> s ; <- s ; ... ; -> e ; <- e, ee, se, es',
  K1K1: '-> s ; <- s ; ... ; -> e ; <- e, ee, es ; -> se',
  K1X: '-> s ; ... ; -> e ; <- e, ee, s, es ; -> se',
  KX1: '-> s ; ... ; -> e ; <- e, ee, se, s ; -> es',
  K1X1: '-> s ; ... ; -> e ; <- e, ee, s ; -> se, es',
  I1N: '-> e, s ; <- e, ee ; -> se',
  I1K: '<- s ; ... ; -> e, es, s ; <- e, ee ; -> se',
  IK1: '<- s ; ... ; -> e, s ; <- e, ee, se, es',
  I1K1: '<- s ; ... ; -> e, s ; <- e, ee, es ; -> se',
  I1X: '-> e, s ; <- e, ee, s, es ; -> se',
  IX1: '-> e, s ; <- e, ee, se, s ; -> es',
  I1X1: '-> e, s ; <- e, ee, s ; -> se, es',
};

const TOKENS = new Set<Token>(['e', 's', 'ee', 'es', 'se', 'ss', 'psk']);

function parseLine(line: string): { dir: '->' | '<-'; tokens: Token[] } {
  const m = /^(->|<-)\s+(.*)$/.exec(line.trim());
  if (!m) throw new Error(`bad pattern line ${line}`);
  const tokens = m[2]!.split(',').map((t) => t.trim() as Token);
  for (const t of tokens) if (!TOKENS.has(t)) throw new Error(`bad token ${t}`);
  return { dir: m[1] as '->' | '<-', tokens };
}

/**
 * Parse a pattern name with optional psk modifiers (`XX`, `IKpsk2`,
 * `NNpsk0+psk2`), applying the modifiers as spec §9.2 says: `psk0` puts a
 * `psk` token at the start of the first message, `pskN` at the end of
 * message N.
 */
export function parsePattern(name: string): HandshakePattern {
  let parsed = parsedPatterns.get(name);
  if (!parsed) {
    parsed = parse(name);
    parsedPatterns.set(name, parsed);
  }
  return parsed;
}

// Parsed once per name: a gateway runs the same pattern for every handshake.
const parsedPatterns = new Map<string, HandshakePattern>();

function parse(name: string): HandshakePattern {
  const m = /^([A-Z0-9]+?)((?:psk\d+\+?)*)$/.exec(name);
  const base = m ? BASE_PATTERNS[m[1]!] : undefined;
  if (!m || base === undefined) throw new ConfigError('GS_ERR_INVALID_OPTION', `unknown Noise handshake pattern ${JSON.stringify(name)}`);
  const parts = base.split(';').map((s) => s.trim());
  const dots = parts.indexOf('...');
  const pre = dots >= 0 ? parts.slice(0, dots).map(parseLine) : [];
  const msgs = parts.slice(dots + 1).map(parseLine);
  const messages = msgs.map((l, i) => {
    const expected = i % 2 === 0 ? '->' : '<-';
    if (l.dir !== expected) throw new Error(`pattern ${name}: message ${i + 1} goes the wrong way`);
    return [...l.tokens];
  });
  const modifiers = m[2] ? m[2].split('+').filter(Boolean) : [];
  for (const mod of modifiers) {
    const n = Number(mod.slice(3));
    if (n === 0) messages[0]!.unshift('psk');
    else if (n <= messages.length) messages[n - 1]!.push('psk');
    else throw new ConfigError('GS_ERR_INVALID_OPTION', `pattern ${name}: ${mod} names a message the pattern lacks`);
  }
  return Object.freeze({
    name,
    initiatorPre: Object.freeze(pre.filter((l) => l.dir === '->').flatMap((l) => l.tokens)),
    responderPre: Object.freeze(pre.filter((l) => l.dir === '<-').flatMap((l) => l.tokens)),
    messages: Object.freeze(messages.map((m) => Object.freeze(m))),
    oneWay: messages.length === 1,
    psk: modifiers.length > 0,
  });
}
