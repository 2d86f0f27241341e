/**
 * How the long-running commands live and die: structured JSON logs with
 * pino, and signal handling that closes cleanly before exiting 0.
 */
import { pino, type Logger } from 'pino';
import type { RelayLogger } from '../relay/index.js';
import type { LogLevel } from './config.js';

/**
 * A pino logger writing JSON lines to `fd` (default stdout), synchronously
 * so that nothing is lost on exit. pino's `info(obj, msg)` is the
 * {@link RelayLogger} shape.
 */
export function createLogger(name: string, level: LogLevel, fd: 1 | 2 = 1): Logger & RelayLogger {
  return pino({ name, level }, pino.destination({ fd, sync: true }));
}

/**
 * Run `first` on the first SIGTERM or SIGINT and exit 0 when it resolves
 * (1 if it throws); on a second signal run `again` (default: exit at once).
 * Returns a function that removes the handlers.
 */
export function onShutdown(first: (signal: NodeJS.Signals) => Promise<void>, again?: (signal: NodeJS.Signals) => Promise<void>): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals): void => {
    count++;
    const step = count === 1 ? first : again;
    if (!step) return process.exit(count === 1 ? 0 : 1);
    if (count > 2) return process.exit(1);
    step(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`gatesock: shutdown failed: ${(error as Error)?.message ?? String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
