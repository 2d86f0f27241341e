// PCIDs: 1–31 printable ASCII characters without space, compared as typed;
// random ones are `gs-` + 10 symbols of a 32-letter alphabet.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors/index.js';
import { PCID_MAX_LENGTH, checkPcid, isValidPcid, randomPcid } from '../../src/relay/store/index.js';

const REFERENCE = /^[!-~]{1,31}$/; // the rule written the other way: a character class over 0x21..0x7e

describe('isValidPcid and checkPcid', () => {
  it('takes 1 to 31 characters from "!" to "~"', () => {
    expect(PCID_MAX_LENGTH).toBe(31);
    for (const ok of ['a', '!', '~', 'x'.repeat(31), 'Build-01', 'a/b:c@d#e', '0123456789', '"quoted"', '\\']) {
      expect(isValidPcid(ok), ok).toBe(true);
      expect(checkPcid(ok)).toBe(ok);
    }
  });

  it.each([
    ['', /must not be empty/],
    ['x'.repeat(32), /is 32 characters long; at most 31/],
    ['x'.repeat(1000), /is 1000 characters long/],
    ['my server', /a space \(U\+0020\) at index 2/],
    [' lead', /a space \(U\+0020\) at index 0/],
    ['tab\there', /a control character \(U\+0009\) at index 3/],
    ['nul\0', /a control character \(U\+0000\) at index 3/],
    ['line\n', /a control character \(U\+000A\) at index 4/],
    ['del\x7f', /a control character \(U\+007F\) at index 3/],
    ['caf\u00e9', /a character outside ASCII \(U\+00E9\) at index 3/],
    ['nb\u00a0sp', /a character outside ASCII \(U\+00A0\) at index 2/],
    ['\u{1F600}', /a character outside ASCII \(U\+1F600\) at index 0/],
    ['full\uff01', /a character outside ASCII \(U\+FF01\) at index 4/],
  ])('refuses %j, saying why', (bad, why) => {
    expect(isValidPcid(bad)).toBe(false);
    let caught: unknown;
    try {
      checkPcid(bad);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RelayError);
    expect((caught as RelayError).code).toBe('GS_ERR_PCID_INVALID');
    expect((caught as RelayError).message).toMatch(why);
  });

  it.each([[undefined], [null], [42], [{}], [['a']]])('refuses the non-string %j', (value) => {
    expect(isValidPcid(value)).toBe(false);
    expect(() => checkPcid(value)).toThrow(expect.objectContaining({ code: 'GS_ERR_PCID_INVALID', message: expect.stringMatching(/must be a string/) }));
  });

  it('agrees with a regular-expression reference on arbitrary strings', () => {
    const interesting = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: fc.integer({ min: 0x1f, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 34 }),
      fc.string({ unit: 'grapheme', maxLength: 33 }),
    );
    fc.assert(
      fc.property(interesting, (s) => {
        const ok = REFERENCE.test(s);
        expect(isValidPcid(s)).toBe(ok);
        if (ok) expect(checkPcid(s)).toBe(s);
        else expect(() => checkPcid(s)).toThrow(RelayError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('randomPcid', () => {
  const FORMAT = /^gs-[0-9a-hjkmnp-tv-z]{10}$/;

  it('makes valid, readable names: gs- and 10 symbols without i, l, o or u', () => {
    for (let i = 0; i < 100; i++) {
      const p = randomPcid();
      expect(p).toMatch(FORMAT);
      expect(isValidPcid(p)).toBe(true);
    }
  });

  it('makes 1,000 distinct names that use the whole 32-symbol alphabet', () => {
    const names = Array.from({ length: 1000 }, () => randomPcid());
    expect(new Set(names).size).toBe(1000);
    const seen = new Map<string, number>();
    for (const n of names) for (const c of n.slice(3)) seen.set(c, (seen.get(c) ?? 0) + 1);
    // 10,000 symbols: each of the 32 is expected ~312 times; a biased or short alphabet shows here.
    expect([...seen.keys()].sort().join('')).toBe('0123456789abcdefghjkmnpqrstvwxyz');
    for (const [c, n] of seen) expect(n, `symbol ${c}`).toBeGreaterThan(200);
    for (const [c, n] of seen) expect(n, `symbol ${c}`).toBeLessThan(430);
  });
});
