// Shared by the rs16-* and object-* tests: assert a FecError with its code and
// message, and the codecs the object layer is tested over.
import { expect } from 'vitest';
import { FecError, type FecErrorCode } from '../../src/errors/index.js';
import type { CoderFactory } from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';
import { createReedSolomon16 } from '../../src/fec/reed-solomon16.js';

/** The object layer is written to the ErasureCoder interface: its tests run against each codec. */
export const CODERS: readonly (readonly [string, CoderFactory])[] = [
  ['GF(2^16)', createReedSolomon16],
  ['GF(2^8)', createReedSolomon],
];

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
