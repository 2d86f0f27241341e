/**
 * The requests and notices of the gateway system, by hop, with a parser for
 * each reply so that what came over the network is checked before use.
 *
 * ```
 * server → controller   login {avoid?}            → LoginReply      (the handshake proved the server's key)
 *                       loginInfo {}              → ServerInfo
 *                       rename {pcid}             → ServerInfo
 * any    → controller   lookup {pcid}             → LookupReply     UNKNOWN_PCID, SERVER_OFFLINE
 * gateway→ controller   register {address, capacity, servers[]} → RegisterReply
 *                       notice keepalive {connections, bytesPerSecond, cpu}   every T1
 *                       sessions {added[], removed[]}    → {}   deltas, batched; acknowledged
 *                       notice draining {}
 * controller → gateway  notice evict {msid}       a newer session of that server is elsewhere
 * server → gateway      attach {token, clearPayload?}  → AttachReply
 * gateway → server      notice move {}            the gateway drains: log in again elsewhere
 * client → gateway      connect {msid, ticket, endToEnd, clearPayload?} → ConnectReply  (then the gateway opens the connection)
 * ```
 *
 * `clearPayload: true` (attach, connect) offers pass-through: the sender
 * takes and sends the payload of end-to-end connections outside the hop
 * encryption (relay-open.ts, flags bit 1). Peers that predate it leave it
 * out, and ignore it (requests are read by field name).
 */
import { SessionError } from '../errors/index.js';
import { isMsid } from '../session/index.js';
import { booleanField, bytesField, numberField, stringField } from './params.js';
import type { RpcParams, RpcValue } from './rpc.js';

/** Request and notice names. */
export const METHOD = Object.freeze({
  login: 'login',
  loginInfo: 'loginInfo',
  rename: 'rename',
  lookup: 'lookup',
  register: 'register',
  keepalive: 'keepalive',
  sessions: 'sessions',
  draining: 'draining',
  evict: 'evict',
  attach: 'attach',
  move: 'move',
  connect: 'connect',
});

/**
 * Where a gateway is.
 * @public
 */
export interface GatewayAddress {
  /** The gateway's MSID (its certificate's hash). */
  readonly msid: string;
  /** Where servers and clients reach it (`host:port`). */
  readonly address: string;
}

/** The controller's answer to a server's login. */
export interface LoginReply {
  readonly msid: string;
  readonly pcid: string;
  readonly gateway: GatewayAddress;
  readonly token: Uint8Array;
}

/** The controller's answer to a lookup. */
export interface LookupReply {
  readonly msid: string;
  readonly gateway: GatewayAddress;
  readonly ticket: Uint8Array;
}

/**
 * A server's record, as `getLoginInfo()` gives it.
 * @public
 */
export interface ServerInfo {
  /** The server's machine ID: `MSID-` + hex SHA-256 of its certificate. */
  readonly msid: string;
  /** Its current name. */
  readonly pcid: string;
  /** First login. */
  readonly created: Date;
  /** Last login or rename. */
  readonly updated: Date;
}

/** The controller's answer to a gateway's registration. */
export interface RegisterReply {
  readonly keepaliveMs: number;
  readonly timeoutMs: number;
}

/** The gateway's answer to a client's connect. */
export interface ConnectReply {
  readonly connectionId: number;
}

function asParams(value: RpcValue, what: string): RpcParams {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SessionError('GS_ERR_PROTOCOL', `${what}: reply is not an object`);
  return value;
}

function msidField(p: RpcParams, field: string): string {
  const v = stringField(p, field, 69);
  if (!isMsid(v)) throw new SessionError('GS_ERR_PROTOCOL', `field "${field}" is not an MSID`);
  return v;
}

function gatewayField(p: RpcParams): GatewayAddress {
  const g = asParams((p.gateway ?? null) as RpcValue, 'gateway');
  return { msid: msidField(g, 'msid'), address: stringField(g, 'address', 300) };
}

export function parseLoginReply(value: RpcValue): LoginReply {
  const p = asParams(value, 'login');
  return { msid: msidField(p, 'msid'), pcid: stringField(p, 'pcid', 31), gateway: gatewayField(p), token: bytesField(p, 'token', 512) };
}

export function parseLookupReply(value: RpcValue): LookupReply {
  const p = asParams(value, 'lookup');
  return { msid: msidField(p, 'msid'), gateway: gatewayField(p), ticket: bytesField(p, 'ticket', 512) };
}

export function serverInfoParams(info: ServerInfo): RpcParams {
  return { msid: info.msid, pcid: info.pcid, created: info.created.getTime(), updated: info.updated.getTime() };
}

export function parseServerInfo(value: RpcValue): ServerInfo {
  const p = asParams(value, 'server info');
  return { msid: msidField(p, 'msid'), pcid: stringField(p, 'pcid', 31), created: new Date(numberField(p, 'created')), updated: new Date(numberField(p, 'updated')) };
}

export function parseRegisterReply(value: RpcValue): RegisterReply {
  const p = asParams(value, 'register');
  return { keepaliveMs: numberField(p, 'keepaliveMs', 10, 3_600_000), timeoutMs: numberField(p, 'timeoutMs', 10, 3_600_000) };
}

export function parseConnectReply(value: RpcValue): ConnectReply {
  const p = asParams(value, 'connect');
  return { connectionId: numberField(p, 'connectionId', 0, 0xffffffff) };
}

/** An MSID field of a request (the peer's fault when it is not one). */
export { msidField };
export { booleanField };
