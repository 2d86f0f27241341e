/**
 * A small HTTP CONNECT proxy for tests, listening on 127.0.0.1. It tunnels to
 * whatever host:port is asked for, optionally demands Basic auth, and can
 * misbehave on purpose (refuse, coalesce its answer with tunnel bytes, dribble
 * its answer one byte per packet) so the client's parser is exercised.
 *
 * Like a careful real proxy, it relays half-close (FIN) and turns a reset on
 * one side into a reset on the other.
 */
import net from 'node:net';

export interface ConnectProxyOptions {
  /** Demand `Proxy-Authorization: Basic` with these credentials; 407 otherwise. */
  auth?: { username: string; password: string };
  /** Answer every CONNECT with this status (e.g. 403, 502) instead of tunnelling. */
  status?: number;
  /** Wait for the target's first bytes and send them in the same write as the 200 answer. */
  coalesce?: boolean;
  /** Send the 200 answer one byte per write, each on its own turn of the event loop. */
  dribble?: boolean;
}

export interface ConnectProxy {
  readonly port: number;
  /** Every request head received, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

const REASONS: Record<number, string> = { 200: 'Connection Established', 403: 'Forbidden', 407: 'Proxy Authentication Required', 502: 'Bad Gateway' };

function answer(status: number, extra = ''): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}\r\n${extra}${status === 200 ? '' : 'Content-Length: 0\r\nConnection: close\r\n'}\r\n`;
}

function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(authority);
  if (m === null) return undefined;
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

async function dribble(socket: net.Socket, bytes: Buffer): Promise<void> {
  for (const byte of bytes) {
    socket.write(Buffer.of(byte));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Join client and upstream both ways, relaying FIN, backpressure (pipe) and resets. */
function splice(client: net.Socket, upstream: net.Socket): void {
  client.on('error', () => upstream.resetAndDestroy());
  upstream.on('error', () => client.resetAndDestroy());
  client.pipe(upstream);
  upstream.pipe(client);
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };

  const handle = (client: net.Socket, head: string, rest: Buffer): void => {
    requests.push(head);
    const [requestLine = '', ...headerLines] = head.split('\r\n');
    const target = parseAuthority(/^CONNECT (\S+) HTTP\/1\.[01]$/.exec(requestLine)?.[1] ?? '');
    if (target === undefined) {
      client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (options.auth !== undefined) {
      const expected = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
      const given = headerLines.find((l) => l.toLowerCase().startsWith('proxy-authorization:'))?.slice(20).trim();
      if (given !== expected) {
        client.end(answer(407, 'Proxy-Authenticate: Basic realm="test"\r\n'));
        return;
      }
    }
    if (options.status !== undefined) {
      client.end(answer(options.status));
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    track(upstream);
    upstream.once('error', () => client.end(answer(502)));
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      if (rest.length > 0) upstream.write(rest);
      const ok = Buffer.from(answer(200, 'Proxy-Agent: gatesock-test\r\n'));
      if (options.coalesce === true) {
        upstream.once('data', (first: Buffer) => {
          upstream.pause();
          client.write(Buffer.concat([ok, first]));
          splice(client, upstream);
        });
      } else if (options.dribble === true) {
        void dribble(client, ok).then(() => splice(client, upstream));
      } else {
        client.write(ok);
        splice(client, upstream);
      }
    });
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    client.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 64 * 1024) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      handle(client, buf.subarray(0, end).toString('latin1'), buf.subarray(end + 4));
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
