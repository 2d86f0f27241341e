/**
 * The connection state machine, sans-I/O: a pure function from (state,
 * event) to the next state. {@link MuxConnection} applies it through its one
 * `setState(next, why)`.
 *
 * States are yamux's half-close set (hashicorp/yamux `stream.go`). gatesock
 * has no ACK flag: the accepting side acknowledges an OPEN with the first
 * frame it sends on that connection (DATA, WINDOW_UPDATE or CLOSE), and the
 * opener counts the first frame it receives on the connection as that
 * acknowledgement. Either side may send data before then.
 *
 * ```text
 *   init ──sendOpen──▶ synSent ──recvFrame──▶ established
 *   init ──recvOpen──▶ synReceived ──sendFrame──▶ established
 *   synSent | synReceived | established ──sendFin──▶ localClosed ──recvFin──▶ closed
 *   synSent | synReceived | established ──recvFin──▶ remoteClosed ──sendFin──▶ closed
 *   any state but closed/reset ──reset──▶ reset
 * ```
 */

/**
 * States of a {@link MuxConnection}.
 * @public
 */
export const ConnState = Object.freeze({
  /** Created, OPEN not yet sent or received. */
  Init: 'init',
  /** We sent OPEN; the peer has not answered on this connection yet. */
  SynSent: 'synSent',
  /** The peer sent OPEN; we have not sent anything on this connection yet. */
  SynReceived: 'synReceived',
  /** Both directions open. */
  Established: 'established',
  /** We sent CLOSE (FIN); the peer may still send. */
  LocalClosed: 'localClosed',
  /** The peer sent CLOSE (FIN); we may still send. */
  RemoteClosed: 'remoteClosed',
  /** Both sides sent CLOSE: finished cleanly. */
  Closed: 'closed',
  /** Aborted by a RESET either way, the close timer, or the session ending. */
  Reset: 'reset',
} as const);

/**
 * A state of a {@link MuxConnection}: one of the {@link (ConnState:variable)} values.
 * @public
 */
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

/**
 * What can happen to a connection.
 * @public
 */
export type ConnEvent =
  /** We send OPEN. */
  | 'sendOpen'
  /** The peer's OPEN arrived. */
  | 'recvOpen'
  /** We send DATA or WINDOW_UPDATE on the connection. */
  | 'sendFrame'
  /** DATA or WINDOW_UPDATE arrived on the connection. */
  | 'recvFrame'
  /** We send CLOSE. */
  | 'sendFin'
  /** The peer's CLOSE arrived. */
  | 'recvFin'
  /** RESET either way, close timeout, or session end. */
  | 'reset';

/** True for states a connection never leaves. */
export function isTerminal(state: ConnState): boolean {
  return state === ConnState.Closed || state === ConnState.Reset;
}

/** True while the peer may still send DATA (it has not sent CLOSE). */
export function canReceive(state: ConnState): boolean {
  return state === ConnState.SynSent || state === ConnState.SynReceived || state === ConnState.Established || state === ConnState.LocalClosed;
}

/** True while we may still send DATA (we have not sent CLOSE). */
export function canSend(state: ConnState): boolean {
  return state === ConnState.SynSent || state === ConnState.SynReceived || state === ConnState.Established || state === ConnState.RemoteClosed;
}

/**
 * The state after `event` in `state`: the same state when the event changes
 * nothing, `undefined` when the event is not allowed there (the caller
 * decides whether that is the peer's protocol violation or our bug).
 */
export function transition(state: ConnState, event: ConnEvent): ConnState | undefined {
  switch (`${state}:${event}` as `${ConnState}:${ConnEvent}`) {
    case 'init:sendOpen':
      return ConnState.SynSent;
    case 'init:recvOpen':
      return ConnState.SynReceived;

    // The first frame back from the peer acknowledges our OPEN (no ACK flag; module doc).
    case 'synSent:recvFrame':
      return ConnState.Established;
    // The first frame we send acknowledges the peer's OPEN.
    case 'synReceived:sendFrame':
      return ConnState.Established;
    // Further frames change nothing.
    case 'synSent:sendFrame':
    case 'synReceived:recvFrame':
    case 'established:sendFrame':
    case 'established:recvFrame':
    case 'localClosed:recvFrame':
    case 'remoteClosed:sendFrame':
    // WINDOW_UPDATEs still flow the other way after a half-close.
    case 'localClosed:sendFrame':
    case 'remoteClosed:recvFrame':
      return state;

    // Half-close (yamux: Close() → localClose; FIN received → remoteClose).
    case 'synSent:sendFin':
    case 'synReceived:sendFin':
    case 'established:sendFin':
      return ConnState.LocalClosed;
    case 'synSent:recvFin':
    case 'synReceived:recvFin':
    case 'established:recvFin':
      return ConnState.RemoteClosed;
    // The second FIN finishes the connection.
    case 'localClosed:recvFin':
    case 'remoteClosed:sendFin':
      return ConnState.Closed;

    case 'init:reset':
    case 'synSent:reset':
    case 'synReceived:reset':
    case 'established:reset':
    case 'localClosed:reset':
    case 'remoteClosed:reset':
      return ConnState.Reset;

    default:
      // Everything else is refused: a second OPEN, a second FIN, anything
      // after closed or reset, a frame before OPEN.
      return undefined;
  }
}
