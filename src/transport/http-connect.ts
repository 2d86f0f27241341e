/**
 * HTTP CONNECT proxy client: open a TCP tunnel to a target through an HTTP
 * proxy (RFC 9110 §9.3.6), with optional Basic authentication (RFC 7617),
 * and return the tunnel as a {@link ByteStream} (`info.kind` 'http-connect').
 *
 * The proxy's response head is parsed by hand, bounded and incrementally:
 * it may arrive in any number of packets, it may not exceed
 * {@link MAX_RESPONSE_HEAD_BYTES}, and bytes that arrive after it in the
 * same packet already belong to the tunnel and are emitted first.
 */
import type net from 'node:net';
import { TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { ByteStream } from './byte-stream.js';
import { describeError } from './stream-base.js';
import { checkEndpoint, checkTimeout, formatHostPort, openSocket, SocketStream } from './tcp.js';

/**
 * Largest proxy response head (status line and headers) accepted, in bytes.
 * @internal
 */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/**
 * Options of {@link httpConnect}.
 * @public
 */
export interface HttpConnectOptions {
  /** The HTTP proxy to ask. */
  proxy: {
    /** Proxy host name or IP address. */
    host: string;
    /** Proxy port, 1 to 65535. */
    port: number;
    /** Credentials for `Proxy-Authorization: Basic`. The username may not contain ':' (RFC 7617 §2). */
    auth?: { username: string; password: string };
  };
  /** Where the tunnel should lead. */
  target: {
    /** Target host name or IP address, as the proxy should resolve it. */
    host: string;
    /** Target port, 1 to 65535. */
    port: number;
  };
  /** Time allowed for connecting to the proxy and getting its answer together, in ms. Default 10 000. */
  timeoutMs?: number;
  /** Extra request headers (e.g. `User-Agent`); names and values are checked for CR/LF injection. */
  headers?: Record<string, string>;
  /** Abort the attempt; the promise rejects with `GS_ERR_CONNECT_FAILED`. */
  signal?: AbortSignal;
}

/**
 * A parsed response head.
 * @internal
 */
export interface ResponseHead {
  /** Status code, 100 to 599. */
  readonly status: number;
  /** Reason phrase, possibly empty. */
  readonly reason: string;
  /** Header fields in order, names lower-cased. */
  readonly headers: readonly (readonly [string, string])[];
  /** Bytes the head occupies, including its blank line; what follows is the body or tunnel. */
  readonly length: number;
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5]\d\d)(?: (.*))?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[^\r\n\0]*$/;
// Host name, IPv4, or IPv6 (with optional zone): nothing that could break the request line.
const HOST = /^[A-Za-z0-9._:%-]+$/;

/** End of the head: index just past the first blank line ("\r\n\r\n", or a bare "\n\n"), or -1. */
function headEnd(buf: Uint8Array): number {
  for (let i = 0; i + 1 < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/**
 * Parse one HTTP/1.x response head from the start of `buf`. Returns
 * undefined while more bytes are needed.
 * @throws `TransportError` `GS_ERR_PROXY_REFUSED` for a head over
 *   {@link MAX_RESPONSE_HEAD_BYTES} or a malformed status line.
 * @internal
 */
export function parseResponseHead(buf: Uint8Array): ResponseHead | undefined {
  const end = headEnd(buf);
  if (end < 0 ? buf.length > MAX_RESPONSE_HEAD_BYTES : end > MAX_RESPONSE_HEAD_BYTES) {
    throw new TransportError('GS_ERR_PROXY_REFUSED', `proxy response head exceeds ${MAX_RESPONSE_HEAD_BYTES} bytes`);
  }
  if (end < 0) return undefined;
  // Header bytes are ISO-8859-1 on the wire (RFC 9110 §5.5); latin1 maps each byte to one char.
  const lines = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1').split(/\r?\n/);
  const match = STATUS_LINE.exec(lines[0] ?? '');
  if (match === null) {
    throw new TransportError('GS_ERR_PROXY_REFUSED', `proxy sent a malformed status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { status: Number(match[1]), reason: match[2] ?? '', headers, length: end };
}

function buildRequest(options: HttpConnectOptions): Buffer {
  const authority = formatHostPort(options.target.host, options.target.port);
  // RFC 9110 §9.3.6: the request target of CONNECT is host:port (authority form).
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  const auth = options.proxy.auth;
  if (auth !== undefined) {
    const credentials = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
    lines.push(`Proxy-Authorization: Basic ${credentials}`);
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
}

function verifyOptions(options: HttpConnectOptions): number {
  checkOption(typeof options.proxy === 'object' && options.proxy !== null, 'proxy', 'must be { host, port }');
  checkOption(typeof options.target === 'object' && options.target !== null, 'target', 'must be { host, port }');
  checkEndpoint(options.proxy.host, options.proxy.port, 'proxy.');
  checkEndpoint(options.target.host, options.target.port, 'target.');
  checkOption(HOST.test(options.target.host), 'target.host', 'must be a host name or IP address');
  const auth = options.proxy.auth;
  if (auth !== undefined) {
    checkOption(typeof auth.username === 'string' && !auth.username.includes(':'), 'proxy.auth.username', "must be a string without ':' (RFC 7617)");
    checkOption(typeof auth.password === 'string', 'proxy.auth.password', 'must be a string');
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    checkOption(TOKEN.test(name), `headers[${JSON.stringify(name)}]`, 'must be a valid header name');
    checkOption(typeof value === 'string' && FIELD_VALUE.test(value), `headers[${JSON.stringify(name)}]`, 'must be a string without CR, LF or NUL');
  }
  return checkTimeout(options.timeoutMs);
}

/**
 * Send the CONNECT request on `socket` and read the proxy's answer. Resolves
 * with the tunnel stream, taking over the socket; on failure the socket is
 * destroyed.
 */
function negotiate(socket: net.Socket, options: HttpConnectOptions, timeoutMs: number, remainingMs: number): Promise<ByteStream> {
  const proxy = formatHostPort(options.proxy.host, options.proxy.port);
  const target = formatHostPort(options.target.host, options.target.port);
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (error: TransportError | undefined, stream?: () => ByteStream): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData).off('end', onEnd).off('error', onError).off('close', onEnd);
      if (error !== undefined) {
        socket.destroy();
        reject(error);
      } else {
        resolve(stream!());
      }
    };
    const failed = (reason: string, cause?: unknown) =>
      new TransportError('GS_ERR_CONNECT_FAILED', `http-connect via proxy ${proxy} to ${target} failed: ${reason}`, { cause });
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let head: ResponseHead | undefined;
      try {
        // 1xx answers are interim (RFC 9110 §15.2): skip them and read on.
        while ((head = parseResponseHead(received)) !== undefined && head.status < 200) received = received.subarray(head.length);
      } catch (err) {
        settle(err as TransportError);
        return;
      }
      if (head === undefined) return;
      const status = `${head.status}${head.reason === '' ? '' : ` ${head.reason}`}`;
      if (head.status === 407) {
        const challenge = head.headers.find(([name]) => name === 'proxy-authenticate')?.[1];
        const why = options.proxy.auth === undefined ? 'requires authentication' : 'rejected the credentials';
        settle(new TransportError('GS_ERR_PROXY_AUTH', `proxy ${proxy} ${why} for CONNECT ${target}: ${status}${challenge === undefined ? '' : ` (${challenge})`}`));
      } else if (head.status >= 300) {
        settle(new TransportError('GS_ERR_PROXY_REFUSED', `proxy ${proxy} refused CONNECT ${target}: ${status}`));
      } else {
        // RFC 9110 §9.3.6: a 2xx answer to CONNECT has no body, so every byte
        // after the head is the tunnel's. Pause before handing over so none
        // is emitted until the user resumes.
        socket.pause();
        const tail = received.subarray(head.length);
        settle(undefined, () => new SocketStream(socket, 'http-connect', `${target} via ${proxy}`, tail));
      }
    };
    const onEnd = (): void => settle(failed('proxy closed the connection before answering'));
    const onError = (err: Error): void => settle(failed(describeError(err), err));
    const onAbort = (): void => settle(failed('aborted', signal?.reason));
    const timer = setTimeout(() => settle(failed(`timed out after ${timeoutMs} ms waiting for the proxy's answer`)), remainingMs);
    socket.on('data', onData).on('end', onEnd).on('error', onError).on('close', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    socket.write(buildRequest(options));
    socket.resume();
  });
}

/**
 * Open a tunnel to `target` through an HTTP CONNECT proxy and return it as a
 * (paused) {@link ByteStream} over the proxy connection, with TCP semantics
 * (half-close, backpressure) as far as the proxy relays them.
 *
 * @example
 * ```ts
 * const stream = await httpConnect({
 *   proxy: { host: 'proxy.example', port: 3128, auth: { username: 'u', password: 'p' } },
 *   target: { host: 'gateway.example', port: 443 },
 * });
 * ```
 * @throws `TransportError`: `GS_ERR_PROXY_AUTH` on 407;
 *   `GS_ERR_PROXY_REFUSED` on any other non-2xx answer (the message has the
 *   status) or a malformed or oversized answer; `GS_ERR_CONNECT_FAILED` when
 *   the proxy cannot be reached, closes early, or does not answer within
 *   `timeoutMs`. `ConfigError` for a bad option.
 * @public
 */
export async function httpConnect(options: HttpConnectOptions): Promise<ByteStream> {
  const timeoutMs = verifyOptions(options);
  const started = performance.now();
  const socket = await openSocket(options.proxy.host, options.proxy.port, timeoutMs, options.signal, 'http-connect proxy');
  const remainingMs = Math.max(1, timeoutMs - (performance.now() - started));
  return negotiate(socket, options, timeoutMs, remainingMs);
}
