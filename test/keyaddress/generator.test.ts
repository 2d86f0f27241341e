/**
 * The key-address generator: prefix and address text, the reserved-IID
 * filter (on crafted IIDs, since HMAC output practically never lands in a
 * reserved range), the KDF's inputs, the epoch tree's frontier against a
 * straight descent from the master key, and properties of the sequence
 * (distinct addresses, prefix kept, no reserved IID).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import net from 'node:net';
import { advanceChain, firstUnreservedIid, withKeyNoble } from '../../src/keyaddress/generator.js';
import { parseHexIpv6, parseIpv6ByUrl } from '../../src/keyaddress/address.js';
import {
  ConfigError,
  EPOCH_COUNT,
  EpochFrontier,
  KeyAddressError,
  RESERVED_IID_RANGES,
  deriveMasterKey,
  deriveMasterKeyAsync,
  epochKey,
  epochOf,
  epochStart,
  formatIpv6,
  frontierShape,
  iidOf,
  isReservedIid,
  keyAddressAt,
  openChain,
  parseIpv6,
  parsePrefix,
  positionAt,
  stepChain,
} from '../../src/keyaddress/index.js';

const FAST = { N: 16, r: 1, p: 1 } as const;
const PREFIX = '2001:db8:1:2::/64';
const master = deriveMasterKey({ passphrase: 'generator test', kdf: FAST });
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('prefix and address text', () => {
  it('parses a /64 and prints it canonically', () => {
    expect(parsePrefix('2001:DB8:1:2:0:0:0:0/64').text).toBe('2001:db8:1:2::/64');
    expect(hex(parsePrefix('2001:db8:1:2::/64').bytes)).toBe('20010db8000100020000000000000000');
    expect(parsePrefix('fd00::/64').text).toBe('fd00::/64');
  });

  it.each([
    ['2001:db8:1:2::/48', /not a \/64/],
    ['2001:db8:1:2::/65', /not a \/64/],
    ['2001:db8:1:2::1/64', /low 64 bits/],
    ['2001:db8:1:2:0:0:0:8000/64', /low 64 bits/],
    ['2001:db8:1:2::', /no prefix length/],
    ['10.0.0.0/64', /not an IPv6/],
    ['2001:db8::1::/64', /not an IPv6/],
    ['fe80::%eth0/64', /not an IPv6/],
    ['', /no prefix length/],
  ])('refuses %j', (text, why) => {
    let err: unknown;
    try {
      parsePrefix(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyAddressError);
    expect((err as KeyAddressError).code).toBe('GS_ERR_KEYADDR_INVALID_PREFIX');
    expect((err as Error).message).toMatch(why);
  });

  it('refuses a non-string prefix with the same code', () => {
    expect(() => parsePrefix(64 as unknown as string)).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_INVALID_PREFIX' }));
  });

  it('formats like the WHATWG URL serializer (what Node prints) and parses back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 6 }), (bytes, zeroGroups) => {
        // Zero some groups so that runs of zeros (and ties between runs) occur.
        for (const g of zeroGroups) bytes[2 * g] = bytes[2 * g + 1] = 0;
        const text = formatIpv6(bytes);
        const node = new URL(`http://[${bytes.reduce((s, b, i) => s + (i % 2 === 0 && i > 0 ? ':' : '') + b.toString(16).padStart(2, '0'), '')}]/`).hostname.slice(1, -1);
        expect(text).toBe(node);
        expect(hex(parseIpv6(text)!)).toBe(hex(bytes));
      }),
      { numRuns: 500 },
    );
    expect(formatIpv6(new Uint8Array(16))).toBe('::');
    expect(parseIpv6('::ffff:1.2.3.4')).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]));
    expect(parseIpv6('nonsense')).toBeUndefined();
    expect(parseIpv6('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(() => formatIpv6(new Uint8Array(4))).toThrow(RangeError);
  });

  it("formats as libuv's inet_ntop does (what Node reports as socket.localAddress)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 7 }), (bytes, zeroGroups) => {
        for (const g of zeroGroups) bytes[2 * g] = bytes[2 * g + 1] = 0;
        // inet_ntop prints ::ffff:a.b.c.d and ::a.b.c.d with a dotted tail; key addresses are never those.
        const head = bytes.subarray(0, 10).every((b) => b === 0);
        const g5 = (bytes[10]! << 8) | bytes[11]!;
        fc.pre(!(head && (g5 === 0xffff || (g5 === 0 && ((bytes[12]! << 8) | bytes[13]!) !== 0))));
        const text = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16).padStart(4, '0')).join(':');
        expect(formatIpv6(bytes)).toBe(new net.SocketAddress({ address: text, family: 'ipv6' }).address);
      }),
      { numRuns: 1000 },
    );
    for (const [text, canonical] of [
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
      ['1:0:0:2:3:0:0:4', '1::2:3:0:0:4'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
      ['2001:db8:1:2:abcd:ef01:2345:6789', '2001:db8:1:2:abcd:ef01:2345:6789'],
    ] as const) {
      expect(formatIpv6(parseIpv6(text)!)).toBe(canonical);
    }
  });

  it('parses hex-only text exactly as the URL host parser does (its fast path), valid or not', () => {
    // Strings of hex digits and colons, biased to near-valid shapes: groups of 0–5 digits, `::`, `:::`.
    const group = fc.stringMatching(/^[0-9a-fA-F]{0,5}$/);
    const sep = fc.constantFrom(':', ':', ':', '::', ':::');
    const shaped = fc
      .tuple(fc.array(fc.tuple(group, sep), { minLength: 0, maxLength: 10 }), group)
      .map(([parts, last]) => parts.map(([g, s]) => g + s).join('') + last);
    const loose = fc.stringMatching(/^[0-9a-f:]{1,45}$/);
    let valid = 0;
    fc.assert(
      fc.property(fc.oneof(shaped, loose), (text) => {
        const fast = parseHexIpv6(text);
        const url = parseIpv6ByUrl(text);
        if (url !== undefined) valid++;
        expect(fast === undefined ? 'invalid' : hex(fast)).toBe(url === undefined ? 'invalid' : hex(url));
        expect(parseIpv6(text) === undefined ? 'invalid' : hex(parseIpv6(text)!)).toBe(url === undefined ? 'invalid' : hex(url));
      }),
      { numRuns: 3000 },
    );
    // Both branches were exercised.
    expect(valid).toBeGreaterThan(50);
    for (const text of ['::', '1::', '::1', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8', 'ABCD::ef']) expect(parseHexIpv6(text)).toEqual(parseIpv6ByUrl(text));
    for (const text of [':', ':::', '1:::2', '1::2::3', ':1::', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '12345::', '1:2:3:4:5:6:7']) {
      expect(parseHexIpv6(text)).toBeUndefined();
      expect(parseIpv6ByUrl(text)).toBeUndefined();
    }
  });
});

describe('reserved interface IDs (RFC 5453, RFC 2526)', () => {
  const bytes = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return b;
  };

  it('flags every range at its ends and nothing just outside', () => {
    const cases: [bigint, boolean][] = [
      [0n, true],
      [1n, false],
      [0x0200_5eff_fdff_ffffn, false],
      [0x0200_5eff_fe00_0000n, true],
      [0x0200_5eff_fe00_5212n, true],
      [0x0200_5eff_fe00_5213n, true],
      [0x0200_5eff_fe00_5214n, true],
      [0x0200_5eff_feff_ffffn, true],
      [0x0200_5eff_ff00_0000n, false],
      [0xfdff_ffff_ffff_ff7fn, false],
      [0xfdff_ffff_ffff_ff80n, true],
      [0xfdff_ffff_ffff_ffffn, true],
      [0xfe00_0000_0000_0000n, false],
      [0xffff_ffff_ffff_ffffn, false],
    ];
    for (const [v, reserved] of cases) {
      expect([v.toString(16), isReservedIid(v)]).toEqual([v.toString(16), reserved]);
      expect([v.toString(16), isReservedIid(bytes(v))]).toEqual([v.toString(16), reserved]);
    }
    expect(RESERVED_IID_RANGES.map((r) => r.what).join(' ')).toMatch(/RFC 5453.*RFC 2526/);
  });

  it('agrees with a plain range check on random and near-range IIDs', () => {
    const near = fc.constantFrom(...RESERVED_IID_RANGES.flatMap((r) => [r.first, r.last])).chain((edge) =>
      fc.bigInt({ min: -300n, max: 300n }).map((d) => (edge + d) & 0xffff_ffff_ffff_ffffn),
    );
    fc.assert(
      fc.property(fc.oneof(near, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), (v) => {
        const expected = RESERVED_IID_RANGES.some((r) => v >= r.first && v <= r.last);
        expect(isReservedIid(v)).toBe(expected);
        expect(isReservedIid(bytes(v))).toBe(expected);
        expect(iidOf(bytes(v))).toBe(v);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses values that are not 64-bit IIDs', () => {
    expect(() => isReservedIid(-1n)).toThrow(RangeError);
    expect(() => isReservedIid(2n ** 64n)).toThrow(RangeError);
    expect(() => isReservedIid(new Uint8Array(7))).toThrow(RangeError);
  });

  it('the address step writes the IID where it is told and nothing else', () => {
    const into = new Uint8Array(16).fill(0x11);
    const reserved = new Uint8Array(32); // all-zero IID: reserved
    const good = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
    let k = 0;
    const out = firstUnreservedIid(() => (k++ === 0 ? reserved : good), into, 8);
    expect(out).toBe(into);
    expect(hex(into)).toBe('1111111111111111' + 'a0a1a2a3a4a5a6a7');
    expect(good.every((b) => b === 0)).toBe(true); // the accepted candidate is wiped after the copy
  });

  it('a position without labels has no slots; with labels each position has its own', () => {
    const prefix = parsePrefix(PREFIX).bytes;
    const key = new Uint8Array(32).fill(9);
    const a = positionAt(key, prefix, 1, 0);
    expect(Object.keys(a.slots)).toEqual([]);
    const b = positionAt(key, prefix, 1, 0, ['x']);
    const c = positionAt(key, prefix, 1, 0, ['y']);
    expect(Object.keys(b.slots)).toEqual(['x']);
    expect(Object.keys(c.slots)).toEqual(['y']);
    expect(Object.keys(positionAt(key, prefix, 1, 0).slots)).toEqual([]);
  });

  it('the address step skips reserved candidates and takes the first unreserved one', () => {
    // HMAC output practically never lands in a reserved range (p ≈ 2^-39), so
    // the skip is checked on crafted candidates fed to the step's own filter.
    const crafted = [0n, 0x0200_5eff_fe00_5213n, 0xfdff_ffff_ffff_ffc0n, 0x1234n, 0x5678n].map((v) => {
      const b = new Uint8Array(32).fill(0xee);
      new DataView(b.buffer).setBigUint64(0, v);
      return b;
    });
    const asked: number[] = [];
    const iid = firstUnreservedIid((k) => {
      asked.push(k);
      return crafted[k]!;
    });
    expect(asked).toEqual([0, 1, 2, 3]);
    expect(iidOf(iid)).toBe(0x1234n);
    expect(crafted.slice(0, 4).every((c) => c.every((x) => x === 0))).toBe(true); // candidates wiped
    expect(iidOf(firstUnreservedIid(() => Uint8Array.from([0xab, 1, 2, 3, 4, 5, 6, 7, 8])))).toBe(0xab01020304050607n);
  });

  it('a MAC that only ever gives reserved IIDs fails with a typed error instead of spinning', () => {
    let asked = 0;
    expect(() =>
      firstUnreservedIid(() => {
        asked++;
        return new Uint8Array(32); // all-zero IID: subnet-router anycast, reserved
      }),
    ).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_STATE' }));
    expect(asked).toBe(64);
  });
});

describe('master key (scrypt)', () => {
  it('normalises the passphrase to NFKC and separates contexts', () => {
    const a = deriveMasterKey({ passphrase: 'Ångström', kdf: FAST });
    const b = deriveMasterKey({ passphrase: 'A\u030Angstro\u0308m', kdf: FAST });
    expect(hex(a)).toBe(hex(b));
    const c = deriveMasterKey({ passphrase: 'Ångström', context: 'device 2', kdf: FAST });
    expect(hex(c)).not.toBe(hex(a));
    expect(hex(deriveMasterKey({ passphrase: 'Ångström', kdf: { N: 32, r: 1, p: 1 } }))).not.toBe(hex(a));
  });

  it('sync and async derivations agree', async () => {
    const s = deriveMasterKey({ passphrase: 'x', context: 'c', kdf: { N: 64, r: 2, p: 1 } });
    const a = await deriveMasterKeyAsync({ passphrase: 'x', context: 'c', kdf: { N: 64, r: 2, p: 1 } });
    expect(hex(a)).toBe(hex(s));
  });

  it.each([
    [{ passphrase: '' }, /passphrase/],
    [{ passphrase: 'x', kdf: { N: 1000 } }, /kdf\.N/],
    [{ passphrase: 'x', kdf: { N: 16, r: 0 } }, /kdf\.r/],
    [{ passphrase: 'x', kdf: { N: 16, p: 99 } }, /kdf\.p/],
    [{ passphrase: 'x', context: 7 as unknown as string }, /context/],
    [{ passphrase: 'x', kdf: { N: 2 ** 24, r: 8 } }, /memory/],
  ])('refuses bad secrets by name (%j)', (secret, why) => {
    expect(() => deriveMasterKey(secret)).toThrow(ConfigError);
    expect(() => deriveMasterKey(secret)).toThrow(why);
  });
});

describe('epoch tree frontier', () => {
  it('has the minimal cover shape', () => {
    expect(frontierShape(0)).toEqual([{ depth: 0, index: 0 }]);
    expect(frontierShape(EPOCH_COUNT)).toEqual([]);
    expect(frontierShape(EPOCH_COUNT - 1)).toEqual([{ depth: 32, index: EPOCH_COUNT - 1 }]);
    expect(frontierShape(1).length).toBe(32);
    expect(frontierShape(2 ** 31)).toEqual([{ depth: 1, index: 1 }]);
  });

  it('open(t) equals the straight descent from the master key, and forgets every epoch ≤ t', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: EPOCH_COUNT - 1 }), fc.array(fc.integer({ min: 0, max: 2 ** 20 }), { maxLength: 3 }), (from, gaps) => {
        const f = EpochFrontier.fromMaster(master, from);
        expect(f.nodes().map(({ depth, index }) => ({ depth, index }))).toEqual(frontierShape(from));
        let t = from;
        for (const gap of [0, ...gaps]) {
          t += gap;
          if (t >= EPOCH_COUNT) break;
          expect(hex(f.open(t))).toBe(hex(epochKey(master, t)));
          expect(f.from).toBe(t + 1);
          expect(() => f.open(t)).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_STATE' }));
          t++;
        }
      }),
      { numRuns: 60 },
    );
  });

  it('holds no key of an opened epoch: no stored node, nor any descendant of one, equals a past leaf', () => {
    const f = EpochFrontier.fromMaster(master, 5);
    const past = [0, 1, 2, 3, 4, 5, 6].map((t) => hex(epochKey(master, t)));
    f.open(6);
    for (const n of f.nodes()) {
      expect(n.index * 2 ** (32 - n.depth)).toBeGreaterThanOrEqual(7);
      expect(past).not.toContain(hex(n.key));
    }
  });

  it('rebuilds from nodes only in the right shape', () => {
    const f = EpochFrontier.fromMaster(master, 1234);
    const g = EpochFrontier.fromNodes(1234, f.nodes());
    expect(hex(g.open(99999))).toBe(hex(epochKey(master, 99999)));
    const nodes = f.nodes();
    expect(() => EpochFrontier.fromNodes(1235, nodes)).toThrow(KeyAddressError);
    expect(() => EpochFrontier.fromNodes(1234, nodes.slice(1))).toThrow(/nodes/);
    expect(() => EpochFrontier.fromNodes(1234, [{ ...nodes[0]!, key: new Uint8Array(31) }, ...nodes.slice(1)])).toThrow(/32 bytes/);
  });

  it('wipe() zeroes the keys and derives nothing more', () => {
    const f = EpochFrontier.fromMaster(master, 10);
    f.wipe();
    expect(f.nodes()).toEqual([]);
    expect(() => f.open(11)).toThrow(KeyAddressError);
  });
});

describe('the address sequence', () => {
  it('chain and position agree with keyAddressAt', () => {
    const e = epochKey(master, 77);
    let c = openChain(e);
    for (let n = 0; n < 5; n++) {
      const p = positionAt(c, parsePrefix(PREFIX).bytes, 77, n, ['relay']);
      const q = keyAddressAt(master, PREFIX, 77, n, ['relay']);
      expect(p.address).toBe(q.address);
      expect(hex(p.slots.relay!)).toBe(hex(q.slots.relay!));
      c = stepChain(c, p.bytes);
    }
  });

  it("a chain step (Node's HMAC) gives the bytes of the pure-TS twin (noble), as plain arrays that slice() copies", () => {
    const prefix = parsePrefix(PREFIX).bytes;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 0xffff_ffff }), (key, t, n) => {
        const { position, next } = advanceChain(key, prefix, t, n, ['relay']);
        // C(t, n+1) = HMAC(C, "gs-ka next" ‖ A) through noble.
        expect(hex(next)).toBe(hex(stepChain(key, position.bytes)));
        // The address and slot through noble's keyed MAC.
        const twin = withKeyNoble(key, (mac) => ({
          first: mac(new Uint8Array([...new TextEncoder().encode('gs-ka address'), 0, 0, 0, 0])),
          slot: mac(new TextEncoder().encode('gs-ka slot relay')),
        }));
        if (!isReservedIid(twin.first.slice(0, 8))) expect(hex(position.bytes.subarray(8))).toBe(hex(twin.first.subarray(0, 8)));
        expect(hex(position.slots.relay!)).toBe(hex(twin.slot));
        // The two-part message (label, address) is the one-part concatenation, on both paths.
        const label = new TextEncoder().encode('gs-ka next');
        expect(hex(withKeyNoble(key, (mac) => mac(label, position.bytes)))).toBe(hex(next));
        expect(hex(advanceChain(key, prefix, t, n).next)).toBe(hex(next));
        expect(Buffer.isBuffer(next)).toBe(false);
        const copy = next.slice();
        next.fill(0);
        expect(copy.some((b) => b !== 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('addresses are distinct across many (t, n), keep the prefix, never use a reserved IID', () => {
    const prefix = parsePrefix(PREFIX);
    const seen = new Map<string, string>();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: EPOCH_COUNT - 1 }), (t) => {
        let c = openChain(epochKey(master, t));
        for (let n = 0; n < 20; n++) {
          const p = positionAt(c, prefix.bytes, t, n, ['a', 'b']);
          expect(hex(p.bytes.subarray(0, 8))).toBe(hex(prefix.bytes.subarray(0, 8)));
          expect(isReservedIid(p.bytes.subarray(8))).toBe(false);
          expect(p.address.startsWith('2001:db8:1:2:')).toBe(true);
          expect(hex(p.slots.a!)).not.toBe(hex(p.slots.b!));
          const prev = seen.get(p.address);
          if (prev !== undefined && prev !== `${t},${n}`) throw new Error(`${p.address} at ${prev} and ${t},${n}`);
          seen.set(p.address, `${t},${n}`);
          c = stepChain(c, p.bytes);
        }
      }),
      { numRuns: 200 },
    );
    expect(seen.size).toBeGreaterThan(3000);
  });

  it('a different passphrase, context or prefix gives an unrelated sequence', () => {
    const other = deriveMasterKey({ passphrase: 'generator test', context: 'x', kdf: FAST });
    expect(keyAddressAt(other, PREFIX, 3, 0).address).not.toBe(keyAddressAt(master, PREFIX, 3, 0).address);
    const a = keyAddressAt(master, PREFIX, 3, 0).bytes.subarray(8);
    const b = keyAddressAt(master, 'fd00::/64', 3, 0).bytes.subarray(8);
    expect(hex(a)).toBe(hex(b)); // the IID of (t, 0) depends on the key only …
    const iid1 = (prefix: string) => hex(keyAddressAt(master, prefix, 3, 1).bytes.subarray(8));
    expect(iid1(PREFIX)).not.toBe(iid1('fd00::/64')); // … later ones on the prefix too (the step hashes the whole address)
  });

  it('epochOf and epochStart', () => {
    expect(epochOf(0)).toBe(0);
    expect(epochOf(3_600_000 * 5 + 1)).toBe(5);
    expect(epochOf(10_999, 1000, 5000)).toBe(5);
    expect(epochStart(5, 1000, 5000)).toBe(10_000);
    expect(() => epochOf(4999, 1000, 5000)).toThrow(ConfigError);
    expect(() => epochOf(NaN)).toThrow(ConfigError);
    expect(() => epochOf(1000 * EPOCH_COUNT, 1000, 0)).toThrow(ConfigError);
  });

  it('keyAddressAt refuses positions out of range', () => {
    expect(() => keyAddressAt(master, PREFIX, -1, 0)).toThrow(ConfigError);
    expect(() => keyAddressAt(master, PREFIX, EPOCH_COUNT, 0)).toThrow(ConfigError);
    expect(() => keyAddressAt(master, PREFIX, 0, 1.5)).toThrow(ConfigError);
    expect(() => keyAddressAt(master, '2001:db8::/56', 0, 0)).toThrow(KeyAddressError);
  });
});
