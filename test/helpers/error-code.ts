/**
 * The stable `code` of the GatesockError a call throws or a promise rejects
 * with: what most error tests compare. Anything other than a GatesockError
 * is rethrown, so a stray TypeError fails the test instead of reading as
 * "some other code" or "no error".
 */
import { GatesockError } from '../../src/errors/index.js';

/** The code of the GatesockError `fn` throws; undefined when it returns. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return gatesockCode(err);
  }
  return undefined;
}

/** The code of the GatesockError `p` rejects with; undefined when it resolves. */
export async function rejectionCodeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return gatesockCode(err);
  }
  return undefined;
}

function gatesockCode(err: unknown): string {
  if (err instanceof GatesockError) return err.code;
  throw err;
}
