/**
 * How the CLI reports failures: one plain line naming the code, an exit
 * status per error family, and the stack only under `--debug`.
 */
import { GatesockError } from '../errors/index.js';

/** Exit statuses by family; documented in `gatesock --help`. */
export const EXIT = Object.freeze({
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  transport: 4,
  trust: 5,
  session: 6,
  relay: 7,
  keyAddress: 8,
  delivery: 9,
  dispatch: 10,
  security: 11,
});

export function exitStatusOf(err: unknown): number {
  if (!(err instanceof GatesockError)) return EXIT.failure;
  if (err.code.startsWith('GS_ERR_KEYADDR_')) return EXIT.keyAddress;
  if (err.code.startsWith('GS_ERR_DELIVERY_')) return EXIT.delivery;
  if (err.code.startsWith('GS_ERR_DISPATCH_')) return EXIT.dispatch;
  if (err.code.startsWith('GS_ERR_SECURITY_')) return EXIT.security;
  // A bad key file is a bad input the user fixes, like a bad option.
  if (err.code === 'GS_ERR_INVALID_OPTION' || err.code === 'GS_ERR_BAD_KEY' || err.code === 'GS_ERR_PCID_INVALID' || err.code.startsWith('GS_ERR_FEC_')) {
    return EXIT.config;
  }
  if (
    err.code.startsWith('GS_ERR_CERT_') ||
    err.code.startsWith('GS_ERR_TOKEN_') ||
    err.code.startsWith('GS_ERR_HANDSHAKE') ||
    err.code === 'GS_ERR_PEER_REJECTED' ||
    err.code === 'GS_ERR_LOW_ORDER_KEY' ||
    err.code === 'GS_ERR_MESSAGE_TOO_LARGE'
  ) {
    return EXIT.trust;
  }
  if (/^GS_ERR_(TRANSPORT|CONNECT|LISTEN|PROXY)/.test(err.code) || err.code === 'GS_ERR_TIMEOUT') return EXIT.transport;
  // The gateway system answered, and the answer was no.
  if (/^GS_ERR_(UNKNOWN_PCID|SERVER_OFFLINE|PCID_TAKEN|NO_GATEWAY|GATEWAY_DRAINING|SESSION_REPLACED|RELAY_FORBIDDEN)$/.test(err.code)) return EXIT.relay;
  return EXIT.session;
}

export function reportError(err: unknown, debug: boolean): number {
  const line = err instanceof GatesockError ? `gatesock: ${err.code}: ${err.message}` : `gatesock: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(line + '\n');
  if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  return exitStatusOf(err);
}
