/**
 * Names from the wire never leave the receiver's directory: whatever string
 * arrives, resolveUpdatePath throws GS_ERR_DELIVERY_UNSAFE_NAME or returns a
 * path strictly inside the directory; names of the grammar land exactly
 * where their segments say.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeliveryError } from '../../src/errors/index.js';
import { MAX_NAME_LENGTH, isSafeUpdateName, resolveUpdatePath } from '../../src/delivery/index.js';

const DIR = '/srv/updates';

/** Returns the resolved path or the error code; anything but a DeliveryError fails the test. */
function resolve(name: string): string {
  try {
    return resolveUpdatePath(DIR, name);
  } catch (err) {
    if (!(err instanceof DeliveryError) || err.code !== 'GS_ERR_DELIVERY_UNSAFE_NAME') throw err;
    return 'UNSAFE';
  }
}

const inside = (p: string) => p.startsWith(DIR + path.sep) && path.relative(DIR, p).split(path.sep).every((s) => s !== '..' && s !== '');

describe('resolveUpdatePath', () => {
  it('refuses every listed kind of unsafe name', () => {
    const unsafe = [
      '', '..', '.', '../x', 'a/../../x', 'a/..', './a', '/etc/passwd', '//x', 'a//b', 'a/', 'a\\b', '..\\x',
      'a\u0000b', 'a\nb', 'a\tb', 'a\u007fb', 'a b', 'ä', 'a/\u2215b', 'x'.repeat(MAX_NAME_LENGTH + 1), `${'y'.repeat(101)}/z`, 'C:x', '~/x?', '.gatesock-partial/3-x', '.gatesock-history.json', '.gatesockx',
    ];
    for (const name of unsafe) expect(resolve(name), JSON.stringify(name)).toBe('UNSAFE');
    expect(isSafeUpdateName(undefined)).toBe(false);
    expect(isSafeUpdateName(42)).toBe(false);
  });

  it('places safe names inside the directory', () => {
    expect(resolve('app.tar.gz')).toBe('/srv/updates/app.tar.gz');
    expect(resolve('fw/v2/image-1.0+rc_3.bin')).toBe('/srv/updates/fw/v2/image-1.0+rc_3.bin');
    expect(resolve('...')).toBe('/srv/updates/...');
    expect(resolve('.hidden')).toBe('/srv/updates/.hidden');
    expect(resolve('x'.repeat(100))).toBe(`/srv/updates/${'x'.repeat(100)}`);
  });

  it('any string at all: UNSAFE or a path strictly inside the directory (fast-check, 20 000 cases)', () => {
    const pieces = fc.constantFrom('..', '.', '/', '\\', 'a', 'b.c', '\u0000', ' ', ':', '~', '%2e', 'é', '\n', '*');
    const tricky = fc.array(pieces, { maxLength: 12 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 40 }), tricky), (name) => {
        const r = resolve(name);
        if (r !== 'UNSAFE') {
          if (!inside(r)) throw new Error(`${JSON.stringify(name)} → ${r}`);
          if (!isSafeUpdateName(name)) throw new Error(`${JSON.stringify(name)} resolved but is not safe`);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  it('every name of the grammar resolves to directory/segments (fast-check, 10 000 cases)', () => {
    const segment = fc
      .stringMatching(/^[A-Za-z0-9._+-]{1,20}$/)
      .filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), (segments) => {
        const name = segments.join('/');
        expect(resolve(name)).toBe(path.join(DIR, ...segments));
      }),
      { numRuns: 10_000 },
    );
  });
});
