/**
 * The published key-address vectors (test/vectors/keyaddress-v1.json,
 * format in docs/keyaddress.md): recomputed three ways — keyAddressAt from
 * the master key, a client driven by a clock inside epoch t, and an
 * independent implementation of the construction on node:crypto
 * (scryptSync, createHmac), so the construction itself is pinned and not
 * only this code.
 */
import { createHmac, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveMasterKey, KeyAddressClient, keyAddressAt } from '../../src/keyaddress/index.js';

interface Vector {
  passphrase: string;
  context: string;
  kdf: { N: number; r: number; p: number };
  prefix: string;
  epochMs: number;
  originMs: number;
  t: number;
  n: number;
  address: string;
  slots?: Record<string, string>;
}

const file = JSON.parse(readFileSync(new URL('../vectors/keyaddress-v1.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const vectors = file.vectors;
const isDefaultKdf = (v: Vector) => v.kdf.N === 2 ** 15 && v.kdf.r === 8 && v.kdf.p === 1;

/** The construction of docs/keyaddress.md, written again from the page on node:crypto. */
function independent(v: Vector): { address: string; slots: Record<string, string> } {
  const mac = (key: Buffer, ...msg: (Buffer | string)[]) => {
    const h = createHmac('sha256', key);
    for (const m of msg) h.update(m);
    return h.digest();
  };
  const salt = Buffer.concat([Buffer.from('gatesock/keyaddress/v1'), Buffer.from([0]), Buffer.from(v.context, 'utf8')]);
  let node = scryptSync(Buffer.from(v.passphrase.normalize('NFKC'), 'utf8'), salt, 32, { N: v.kdf.N, r: v.kdf.r, p: v.kdf.p, maxmem: 256 * 1024 * 1024 });
  const bits = v.t.toString(2).padStart(32, '0');
  for (const b of bits) node = mac(node, 'gs-ka tree', Buffer.from([Number(b)]));
  let chain = mac(node, 'gs-ka session chain');
  // The prefix's first 8 bytes, read from its text with the WHATWG parser.
  const hostHex = (text: string) => {
    const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    const [l, r = ''] = host.split('::');
    const left = l ? l.split(':') : [];
    const right = r ? r.split(':') : [];
    const groups = host.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
    return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
  };
  const prefix = hostHex(v.prefix.split('/')[0]!).subarray(0, 8);
  const reserved = (iid: Buffer) => {
    const x = iid.readBigUInt64BE();
    return x === 0n || (x >= 0x02005efffe000000n && x <= 0x02005efffeffffffn) || x >= 0xfdffffffffffff80n && x <= 0xfdffffffffffffffn;
  };
  const addressOf = (c: Buffer) => {
    for (let k = 0; ; k++) {
      const ctr = Buffer.alloc(4);
      ctr.writeUInt32BE(k);
      const iid = mac(c, 'gs-ka address', ctr).subarray(0, 8);
      if (!reserved(iid)) return Buffer.concat([prefix, iid]);
    }
  };
  for (let i = 0; i < v.n; i++) chain = mac(chain, 'gs-ka next', addressOf(chain));
  const bytes = addressOf(chain);
  const text = new URL(`http://[${bytes.toString('hex').match(/.{4}/g)!.join(':')}]/`).hostname.slice(1, -1);
  const slots = Object.fromEntries(Object.keys(v.slots ?? {}).map((l) => [l, mac(chain, `gs-ka slot ${l}`).toString('hex')]));
  return { address: text, slots };
}

describe('keyaddress-v1 vectors', () => {
  it('has the cases the format promises', () => {
    expect(vectors.filter(isDefaultKdf).length).toBeGreaterThanOrEqual(3);
    expect(vectors.some((v) => v.n >= 3)).toBe(true);
    expect(vectors.some((v) => v.t >= 2 ** 31)).toBe(true);
  });

  it.each(vectors.map((v, i) => [i, v] as const))('vector %i: keyAddressAt and a client give the address', (_i, v) => {
    const master = deriveMasterKey({ passphrase: v.passphrase, context: v.context, kdf: v.kdf });
    const p = keyAddressAt(master, v.prefix, v.t, v.n, Object.keys(v.slots ?? {}));
    expect(p.address).toBe(v.address);
    for (const [label, hex] of Object.entries(v.slots ?? {})) expect(Buffer.from(p.slots[label]!).toString('hex')).toBe(hex);
    // A client whose clock is in the middle of epoch t hands out (t, 0) … (t, n).
    const now = v.originMs + v.t * v.epochMs + Math.floor(v.epochMs / 2);
    const client = KeyAddressClient.fromMasterKey(master, { prefix: v.prefix, epochMs: v.epochMs, originMs: v.originMs, now: () => now });
    master.fill(0);
    let last = client.next();
    for (let i = 0; i < v.n; i++) last = client.next();
    expect([last.t, last.n, last.address]).toEqual([v.t, v.n, v.address]);
  });

  it.each(vectors.map((v, i) => [i, v] as const))('vector %i: an independent node:crypto computation agrees', (_i, v) => {
    const r = independent(v);
    expect(r.address).toBe(v.address);
    expect(r.slots).toEqual(v.slots ?? {});
  });
});
