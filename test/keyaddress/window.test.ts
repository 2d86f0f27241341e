/**
 * The server window's incremental upkeep: an admission moves the window and
 * derives only what the window itself lacks at once; the recognised
 * look-ahead it consumed is derived right after (setImmediate), or at once
 * when a decision could need it. These tests pin the orderings: decisions
 * taken before the deferred refill are the same as after it, `change`
 * events describe exactly how acceptable() moved, and the saved state does
 * not depend on when the refill ran.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KeyAddressServer,
  deriveMasterKey,
  epochStart,
  keyAddressAt,
  type AdmitResult,
  type KeyAddressChange,
  type KeyAddressServerOptions,
} from '../../src/keyaddress/index.js';

const master = deriveMasterKey({ passphrase: 'window test', kdf: { N: 16, r: 1, p: 1 } });
const PREFIX = '2001:db8:1:2::/64';
const EPOCH = 60_000;
const T0 = 500;
const MID = epochStart(T0, EPOCH) + EPOCH / 2;

function server(extra: Partial<KeyAddressServerOptions> = {}): KeyAddressServer {
  return KeyAddressServer.fromMasterKey(master, { prefix: PREFIX, epochMs: EPOCH, skewMs: 5_000, window: 4, recognizeAhead: 6, now: () => MID, ...extra });
}
const A = (n: number) => keyAddressAt(master, PREFIX, T0, n).address;
const brief = (r: AdmitResult) => (r.ok ? `ok ${r.position.n}` : `${r.reason} ${r.n ?? ''}`);
const ns = (ps: readonly { n: number }[]) => ps.map((p) => p.n);

describe('deferred look-ahead refill', () => {
  it('an address of the not-yet-derived tail is recognised before the refill runs (outside-window, then retired)', () => {
    const s = server();
    // Window 0..3, look-ahead 4..9. Admitting 3 moves pos to 4: window 4..7, look-ahead 8..13, of which 10..13 not yet derived.
    expect(brief(s.admit(A(3)))).toBe('ok 3');
    expect(brief(s.admit(A(13)))).toBe('outside-window 13');
    expect(brief(s.admit(A(13)))).toBe('retired 13');
    // One beyond the recognised look-ahead stays unknown.
    expect(brief(s.admit(A(14)))).toBe('unknown ');
    // The window itself was complete all along.
    expect(brief(s.admit(A(7)))).toBe('ok 7');
  });

  it('a window address is admitted before the refill, and the refill then derives the same sequence', async () => {
    const s = server();
    expect(brief(s.admit(A(0)))).toBe('ok 0');
    expect(brief(s.admit(A(2)))).toBe('ok 2'); // same tick: no refill in between
    expect(ns(s.acceptable())).toEqual([3, 4, 5, 6]);
    await tick();
    expect(ns(s.acceptable())).toEqual([3, 4, 5, 6]);
    for (let n = 3; n < 40; n++) {
      expect(s.admit(A(n))).toEqual({ ok: true, position: expect.objectContaining({ t: T0, n, address: A(n) }) });
      if (n % 3 === 0) await tick();
    }
    // Every one retired: none admitted twice.
    for (let n = 0; n < 40; n++) expect(s.admit(A(n)).ok).toBe(false);
  });

  it('with no look-ahead (recognizeAhead 0) the whole window is derived at once', () => {
    const s = server({ recognizeAhead: 0 });
    expect(brief(s.admit(A(3)))).toBe('ok 3'); // the window moves by all of its 4 positions
    expect(ns(s.acceptable())).toEqual([4, 5, 6, 7]);
    expect(brief(s.admit(A(8)))).toBe('unknown ');
    expect(brief(s.admit(A(7)))).toBe('ok 7');
  });

  it('the saved state does not depend on whether the refill has run', async () => {
    const s = server();
    s.admit(A(2));
    const early = s.exportState();
    await tick();
    expect(s.exportState()).toEqual(early);
    const resumed = KeyAddressServer.fromState(early, { prefix: PREFIX, epochMs: EPOCH, skewMs: 5_000, window: 4, recognizeAhead: 6, now: () => MID });
    expect(brief(resumed.admit(A(12)))).toBe('outside-window 12');
    expect(brief(resumed.admit(A(6)))).toBe('ok 6');
  });

  it('wipe() before the refill: the refill does nothing and nothing is accepted', async () => {
    const s = server();
    s.admit(A(1));
    s.wipe();
    await tick();
    await tick();
    expect(() => s.admit(A(2))).toThrow(expect.objectContaining({ code: 'GS_ERR_KEYADDR_STATE' }));
  });
});

describe('change events follow acceptable() exactly', () => {
  it('admissions and out-of-order refusals, with and without the refill in between, in random orders', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ n: fc.integer({ min: 0, max: 60 }), wait: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        async (steps) => {
          const s = server();
          let view = new Set(s.acceptable().map((p) => p.address));
          const events: KeyAddressChange[] = [];
          s.on('change', (c) => events.push(c));
          let oks = 0;
          for (const { n, wait } of steps) {
            const r = s.admit(A(n));
            if (r.ok) oks++;
            for (const c of events.splice(0)) {
              expect(c.cause).toBe('admit');
              for (const p of c.removed) expect(view.delete(p.address)).toBe(true);
              for (const p of c.added) {
                expect(view.has(p.address)).toBe(false);
                view.add(p.address);
              }
            }
            expect([...view].sort()).toEqual(s.acceptable().map((p) => p.address).sort());
            // Independently: the window after the last admission, minus addresses refused out of order.
            expect(s.acceptable().every((p) => p.n >= s.positions()[0]!.pos && p.n < s.positions()[0]!.pos + 4)).toBe(true);
            if (wait) await tick();
          }
          // Admissions happened in most runs (n is often inside the window).
          return oks >= 0 && oks <= steps.length;
        },
      ),
      { numRuns: 150 },
    );
  });

  it('an admission that passes over addresses refused out of order reports only what was acceptable', () => {
    const s = server();
    const events: KeyAddressChange[] = [];
    s.on('change', (c) => events.push(c));
    expect(brief(s.admit(A(5)))).toBe('outside-window 5'); // 5 retired while beyond the window 0..3
    expect(events).toEqual([]);
    expect(brief(s.admit(A(1)))).toBe('ok 1'); // window 2..5, 5 retired: added 4 only
    expect(events.map((c) => [ns(c.removed), ns(c.added)])).toEqual([[[0, 1], [4]]]);
    expect(ns(s.acceptable())).toEqual([2, 3, 4]);
  });
});
