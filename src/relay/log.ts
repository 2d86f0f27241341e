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
  debug(context: object, message: string): void;
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
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
