/**
 * SockEvent (Win32 auto-reset semantics) and waitForMultiple: who is
 * released, what is consumed, timeouts, and that nothing is left registered
 * or armed after many waits.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/index.js';
import { SockEvent, waitForMultiple } from '../../src/socket/index.js';

function timerCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** Settles on the next macrotask: lets pending promise chains run. */
function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('SockEvent', () => {
  it('a set event satisfies one wait at once and is consumed by it', async () => {
    const e = new SockEvent();
    e.set();
    e.set(); // signals do not count up
    expect(e.isSet).toBe(true);
    expect(await e.wait(0)).toBe(true);
    expect(e.isSet).toBe(false);
    expect(await e.wait(0)).toBe(false);
  });

  it('reset clears the signal without waking anyone', async () => {
    const e = new SockEvent();
    e.set();
    e.reset();
    expect(e.isSet).toBe(false);
    expect(await e.wait(10)).toBe(false);
  });

  it('a wait times out with false', async () => {
    const e = new SockEvent();
    expect(await e.wait(20)).toBe(false);
    expect(e.waiting).toBe(0);
  });

  it('set releases exactly one waiter, oldest first, and leaves the event unset', async () => {
    const e = new SockEvent();
    const order: string[] = [];
    const w1 = e.wait().then((r) => order.push(`1:${r}`));
    const w2 = e.wait().then((r) => order.push(`2:${r}`));
    expect(e.waiting).toBe(2);
    e.set();
    await w1;
    await tick();
    expect(order).toEqual(['1:true']);
    expect(e.isSet).toBe(false);
    expect(e.waiting).toBe(1);
    e.set();
    await w2;
    expect(order).toEqual(['1:true', '2:true']);
    expect(e.waiting).toBe(0);
  });

  it('refuses a bad timeout by name', async () => {
    const e = new SockEvent();
    await expect(e.wait(-1)).rejects.toThrow(ConfigError);
    await expect(e.wait(Number.NaN)).rejects.toThrow(/timeoutMs/);
    await expect(e.wait(2 ** 40)).rejects.toThrow(/timeoutMs/);
  });
});

describe('waitForMultiple', () => {
  it('returns the lowest set index at once, consuming only that event', async () => {
    const events = [new SockEvent(), new SockEvent(), new SockEvent()];
    events[1]!.set();
    events[2]!.set();
    expect(await waitForMultiple(events, 1000)).toBe(1);
    expect(events.map((e) => e.isSet)).toEqual([false, false, true]);
    expect(await waitForMultiple(events, 0)).toBe(2);
    expect(await waitForMultiple(events, 0)).toBe(-1);
  });

  it('waits for the first event set later, and unregisters from all the others', async () => {
    const events = Array.from({ length: 50 }, () => new SockEvent());
    const waiting = waitForMultiple(events, 10_000);
    await tick();
    expect(events.every((e) => e.waiting === 1)).toBe(true);
    setTimeout(() => events[37]!.set(), 10);
    expect(await waiting).toBe(37);
    expect(events.every((e) => e.waiting === 0)).toBe(true);
    expect(events[37]!.isSet).toBe(false); // consumed
    events[3]!.set(); // a later set is not lost: nobody waits, so it stays set
    expect(events[3]!.isSet).toBe(true);
  });

  it('resolves -1 on timeout and leaves the events untouched', async () => {
    const events = [new SockEvent(), new SockEvent()];
    expect(await waitForMultiple(events, 20)).toBe(-1);
    expect(events.every((e) => e.waiting === 0 && !e.isSet)).toBe(true);
  });

  it('one set wakes one of two multi-waits sharing an event; the other keeps waiting', async () => {
    const shared = new SockEvent();
    const other = new SockEvent();
    const first = waitForMultiple([shared, other]);
    const second = waitForMultiple([other, shared]);
    shared.set();
    expect(await first).toBe(0);
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await tick();
    expect(secondDone).toBe(false);
    other.set();
    expect(await second).toBe(0);
  });

  it('an event listed twice reports its first index', async () => {
    const a = new SockEvent();
    const b = new SockEvent();
    const waiting = waitForMultiple([b, a, b]);
    b.set();
    expect(await waiting).toBe(0);
    expect(b.waiting).toBe(0);
  });

  it('refuses an empty list and things that are not events', async () => {
    await expect(waitForMultiple([])).rejects.toThrow(ConfigError);
    await expect(waitForMultiple([{} as SockEvent])).rejects.toThrow(/events/);
    await expect(waitForMultiple([new SockEvent()], -5)).rejects.toThrow(/timeoutMs/);
  });

  it('leaves no waiters or timers behind after thousands of waits', async () => {
    const events = Array.from({ length: 50 }, () => new SockEvent());
    const timers = timerCount();
    for (let i = 0; i < 2000; i++) {
      const waiting = waitForMultiple(events, 60_000);
      events[i % 50]!.set();
      expect(await waiting).toBe(i % 50);
    }
    for (let i = 0; i < 2000; i++) {
      const waiting = events[i % 50]!.wait(60_000);
      events[i % 50]!.set();
      expect(await waiting).toBe(true);
    }
    // And many that end by timeout, all at once.
    const results = await Promise.all(Array.from({ length: 500 }, () => waitForMultiple(events, 5)));
    expect(results.every((r) => r === -1)).toBe(true);
    expect(events.every((e) => e.waiting === 0)).toBe(true);
    expect(timerCount()).toBeLessThanOrEqual(timers);
  });
});
