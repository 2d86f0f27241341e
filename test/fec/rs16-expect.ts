// Shared by the rs16-* and object-* tests: assert a FecError with its code and message.
import { expect } from 'vitest';
import { FecError, type FecErrorCode } from '../../src/errors/index.js';

/** Run `fn` and expect it to throw a FecError with `code` and a message matching `message`. */
export function expectFec(fn: () => unknown, code: FecErrorCode, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(FecError);
  expect((thrown as FecError).code).toBe(code);
  expect((thrown as FecError).message).toMatch(message);
}
