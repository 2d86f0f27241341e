/**
 * Requests, replies and notices between relay peers, carried in the CONTROL
 * frames of the {@link MuxSession} that runs over each hop's secure channel
 * (server ↔ controller, client ↔ controller, gateway ↔ controller,
 * server ↔ gateway, client ↔ gateway). Relayed bytes never go this way; they
 * ride in the session's connections.
 *
 * One CONTROL body is one message:
 *
 * ```
 *  0        1                 5
 *  +--------+-----------------+------------------------------------+
 *  | kind   | id (u32, BE)    | JSON, UTF-8                        |
 *  +--------+-----------------+------------------------------------+
 *  kind 1 request   id = the sender's request number   {"m": method, "p": params}
 *  kind 2 reply     id = the request's number          {"r": result}
 *  kind 3 refusal   id = the request's number          {"code": "GS_ERR_…", "message": "…"}
 *  kind 4 notice    id = 0                             {"m": method, "p": params}
 * ```
 *
 * JSON because these messages are small, rare next to the data, and worth
 * reading in a capture; binary values (tokens, tickets) travel as base64url
 * strings. A refusal carries a stable error code, so the caller gets the same
 * typed error the far side raised.
 */
import { EventEmitter } from 'eventemitter3';
import { ERROR_CODES, GatesockError, RelayError, SessionError, SocketError, type GatesockErrorCode } from '../errors/index.js';
import type { MuxSession } from '../session/index.js';

const HEADER_LEN = 5;
const enum Kind {
  Request = 1,
  Reply = 2,
  Refusal = 3,
  Notice = 4,
}

/** Parameters and results: plain JSON values. */
export type RpcValue = null | boolean | number | string | RpcValue[] | { [key: string]: RpcValue | undefined };
/** Parameters of a request or notice. */
export type RpcParams = { [key: string]: RpcValue | undefined };

/** Answers one request; throw a {@link GatesockError} to refuse with its code. */
export type RpcHandler = (params: RpcParams) => RpcValue | Promise<RpcValue>;
/** Takes one notice. */
export type NoticeHandler = (params: RpcParams) => void;

/** Events of an {@link RpcPeer}. */
export interface RpcPeerEvents {
  /** A message could not be handled (malformed, unknown method, handler error); for logs. */
  problem: (error: GatesockError) => void;
}

interface Pending {
  readonly resolve: (value: RpcValue) => void;
  readonly reject: (error: GatesockError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encode one message (exported for tests and the fuzzer). */
export function encodeRpcMessage(kind: number, id: number, body: unknown): Uint8Array {
  const json = encoder.encode(JSON.stringify(body));
  const out = new Uint8Array(HEADER_LEN + json.length);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, id);
  out.set(json, HEADER_LEN);
  return out;
}

/** Decode one message; undefined for anything malformed. */
export function decodeRpcMessage(body: Uint8Array): { kind: number; id: number; value: Record<string, unknown> } | undefined {
  if (body.length < HEADER_LEN) return undefined;
  const kind = body[0]!;
  if (kind < Kind.Request || kind > Kind.Notice) return undefined;
  const id = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body.subarray(HEADER_LEN)));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return { kind, id, value: value as Record<string, unknown> };
}

const FAMILY_OF = new Map<string, string>(Object.entries(ERROR_CODES).flatMap(([family, codes]) => codes.map((c) => [c, family] as const)));

/** The typed error a refusal stands for: the far side's code, in its family where we know it. */
export function errorFromRefusal(code: unknown, message: unknown): GatesockError {
  const text = typeof message === 'string' ? message.slice(0, 1000) : 'refused';
  const family = typeof code === 'string' ? FAMILY_OF.get(code) : undefined;
  if (family === 'relay') return new RelayError(code as never, text);
  if (family === 'socket') return new SocketError(code as never, text);
  if (family !== undefined) return new GatesockError(code as GatesockErrorCode, text);
  return new SessionError('GS_ERR_PROTOCOL', `peer refused with an unknown code ${JSON.stringify(code)}: ${text}`);
}

/**
 * One end of the request/reply channel of a session. Both ends may send
 * requests; each end answers the methods it registered with {@link RpcPeer.handle}.
 * A request without a reply within `timeoutMs` fails with `GS_ERR_TIMEOUT`;
 * when the session closes, every pending request fails with its error.
 */
export class RpcPeer extends EventEmitter<RpcPeerEvents> {
  // Made on first use: a gateway holds thousands of idle sessions, and an
  // empty Map is a few hundred bytes each.
  private handlers: Map<string, RpcHandler> | undefined;
  private noticeHandlers: Map<string, NoticeHandler> | undefined;
  private pending: Map<number, Pending> | undefined;
  private nextId = 1;

  constructor(
    readonly session: MuxSession,
    private readonly timeoutMs = 15_000,
  ) {
    super();
    session.on('control', this.onControl);
    session.on('close', (error) => {
      const why = error ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed before the reply came');
      const pending = this.pending;
      this.pending = undefined;
      for (const p of pending?.values() ?? []) {
        clearTimeout(p.timer);
        p.reject(why);
      }
    });
  }

  /** Answer requests for `method`. */
  handle(method: string, handler: RpcHandler): this {
    (this.handlers ??= new Map()).set(method, handler);
    return this;
  }

  /** Stop answering `method` (a later request for it is refused as unknown). */
  unhandle(method: string): this {
    this.handlers?.delete(method);
    if (this.handlers?.size === 0) this.handlers = undefined;
    return this;
  }

  /** Take notices for `method`. */
  onNotice(method: string, handler: NoticeHandler): this {
    (this.noticeHandlers ??= new Map()).set(method, handler);
    return this;
  }

  /** Send a request; resolves with the reply or rejects with the refusal's typed error. */
  request(method: string, params: RpcParams = {}): Promise<RpcValue> {
    if (this.session.closed) return Promise.reject(this.session.error ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed'));
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    return new Promise<RpcValue>((resolve, reject) => {
      const pending = (this.pending ??= new Map());
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new SocketError('GS_ERR_TIMEOUT', `no reply to "${method}" within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref?.();
      pending.set(id, { resolve, reject, timer });
      try {
        this.session.sendControl(encodeRpcMessage(Kind.Request, id, { m: method, p: params }));
      } catch (error) {
        clearTimeout(timer);
        pending.delete(id);
        reject(error);
      }
    });
  }

  /** Send a notice (no reply). Silently dropped once the session is closed. */
  notify(method: string, params: RpcParams = {}): void {
    if (this.session.closed) return;
    try {
      this.session.sendControl(encodeRpcMessage(Kind.Notice, 0, { m: method, p: params }));
    } catch {
      // The session is ending; its close event tells whoever cares.
    }
  }

  private readonly onControl = (body: Uint8Array): void => {
    const msg = decodeRpcMessage(body);
    if (!msg) return this.problem(new SessionError('GS_ERR_PROTOCOL', 'malformed control message'));
    const { kind, id, value } = msg;
    if (kind === Kind.Reply || kind === Kind.Refusal) {
      const p = this.pending?.get(id);
      if (!p) return; // late reply after a timeout
      clearTimeout(p.timer);
      this.pending!.delete(id);
      if (kind === Kind.Reply) p.resolve((value.r ?? null) as RpcValue);
      else p.reject(errorFromRefusal(value.code, value.message));
      return;
    }
    const method = value.m;
    const params = value.p ?? {};
    if (typeof method !== 'string' || typeof params !== 'object' || params === null || Array.isArray(params)) {
      if (kind === Kind.Request) this.refuse(id, new SessionError('GS_ERR_PROTOCOL', 'request without a method or with bad params'));
      return;
    }
    if (kind === Kind.Notice) {
      const handler = this.noticeHandlers?.get(method);
      if (!handler) return this.problem(new RelayError('GS_ERR_RELAY_FORBIDDEN', `unexpected notice "${method.slice(0, 64)}"`));
      try {
        handler(params as RpcParams);
      } catch (error) {
        this.problem(asGatesockError(error));
      }
      return;
    }
    const handler = this.handlers?.get(method);
    if (!handler) return this.refuse(id, new RelayError('GS_ERR_RELAY_FORBIDDEN', `this peer does not answer "${method.slice(0, 64)}"`));
    let result: RpcValue | Promise<RpcValue>;
    try {
      result = handler(params as RpcParams);
    } catch (error) {
      return this.refuse(id, error);
    }
    Promise.resolve(result).then(
      (r) => this.send(Kind.Reply, id, { r }),
      (error) => this.refuse(id, error),
    );
  };

  private refuse(id: number, error: unknown): void {
    const gs = asGatesockError(error);
    if (!(error instanceof GatesockError)) this.problem(gs);
    // A bug's message stays here (in the problem event); the peer learns only that it was ours.
    this.send(Kind.Refusal, id, { code: gs.code, message: error instanceof GatesockError ? gs.message : 'internal error' });
  }

  private send(kind: Kind, id: number, body: unknown): void {
    if (this.session.closed) return;
    try {
      this.session.sendControl(encodeRpcMessage(kind, id, body));
    } catch (error) {
      this.problem(asGatesockError(error));
    }
  }

  private problem(error: GatesockError): void {
    if (this.listenerCount('problem') > 0) this.emit('problem', error);
  }
}

/** A gatesock error as it is; anything else (a bug) as a protocol error. */
function asGatesockError(error: unknown): GatesockError {
  if (error instanceof GatesockError) return error;
  return new SessionError('GS_ERR_PROTOCOL', `internal error: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
