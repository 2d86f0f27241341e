/**
 * What the controller and gateway log through: the four levels of pino's
 * logger (a pino instance fits as it is), each taking a context object and a
 * message. The default drops everything; the CLI passes pino.
 */

/**
 * A structured logger: `log.warn({ msid, code }, 'token refused')`.
 * @public
 */
export interface RelayLogger {
  /** Detail for debugging (refused handshakes, for example). */
  debug(context: object, message: string): void;
  /** What an operator wants to see: registrations, logins, attaches. */
  info(context: object, message: string): void;
  /** Something refused or lost: a token, a link. */
  warn(context: object, message: string): void;
  /** Something broken. */
  error(context: object, message: string): void;
}

/**
 * A logger that drops everything.
 * @public
 */
export const silentLogger: RelayLogger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
