/**
 * The multiplexed session: many connections, a control channel, pings and
 * keepalive over one byte stream, with per-connection credit flow control.
 *
 * @packageDocumentation
 */
export { MuxSession, type MuxRole, type MuxSessionEvents, type MuxSessionOptions, type MuxSessionStats } from './session.js';
export { MuxConnection, type MuxConnectionStats } from './connection.js';
export { ConnState } from './state.js';
export { DEFAULT_MUX_OPTIONS, MAX_DATA_PAYLOAD, systemClock, verifyMuxOptions, type MuxClock, type MuxOptions } from './options.js';
export { sessionChannels } from './diagnostics.js';
