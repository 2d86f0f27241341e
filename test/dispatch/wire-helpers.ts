// Shared by the wire-*.test.ts files.
import { DispatchError } from '../../src/errors/index.js';

/** Run `fn`: the DispatchError it throws, or undefined when it returns; any other throw fails the test. */
export function dispatchErrorOf(fn: () => unknown): DispatchError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DispatchError) return err;
    throw err;
  }
  return undefined;
}

/** The code of the DispatchError `fn` throws, or undefined when it returns. */
export const codeOf = (fn: () => unknown): string | undefined => dispatchErrorOf(fn)?.code;
