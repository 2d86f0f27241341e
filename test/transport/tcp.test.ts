/**
 * TCP specifics beyond the conformance suite: connect failures are typed and
 * name the endpoint and the OS reason; listeners report their address; bad
 * options fail by name.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError, TransportError } from '../../src/errors/index.js';
import { tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { next } from './conformance.js';

/** A port that was free a moment ago and has nothing listening now. */
async function closedPort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('tcpConnect failures', () => {
  for (const [host, shown] of [['127.0.0.1', '127.0.0.1'], ['::1', '[::1]']] as const) {
    it(`a closed port on ${host} → GS_ERR_CONNECT_FAILED naming host:port and ECONNREFUSED`, async () => {
      const port = await closedPort(host);
      const err = await tcpConnect({ host, port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(err).toMatchObject({ code: 'GS_ERR_CONNECT_FAILED' });
      expect((err as Error).message).toContain(`${shown}:${port}`);
      expect((err as Error).message).toContain('ECONNREFUSED');
    });
  }

  it('an aborted signal → GS_ERR_CONNECT_FAILED (aborted)', async () => {
    const port = await closedPort('127.0.0.1');
    const err = await tcpConnect({ host: '127.0.0.1', port, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GS_ERR_CONNECT_FAILED', message: expect.stringContaining('aborted') });
  });

  it('rejects bad options by name', async () => {
    await expect(tcpConnect({ host: '', port: 80 })).rejects.toThrow(ConfigError);
    await expect(tcpConnect({ host: '127.0.0.1', port: 0 })).rejects.toThrow(/port/);
    await expect(tcpConnect({ host: '127.0.0.1', port: 80, timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
  });
});

describe('tcpListen', () => {
  it('reports its address and port, and close() stops accepting while streams stay open', async () => {
    const accepted: ByteStream[] = [];
    const listener = await tcpListen({ host: '::1' }, (s) => accepted.push(s));
    expect(listener.address).toBe(`[::1]:${listener.port}`);
    const client = await tcpConnect({ host: '::1', port: listener.port });
    await listener.close();
    await expect(tcpConnect({ host: '::1', port: listener.port })).rejects.toMatchObject({ code: 'GS_ERR_CONNECT_FAILED' });
    // The stream accepted before close() still works.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const server = accepted[0]!;
    server.resume();
    const data = next<[Uint8Array]>(server, 'data');
    client.write(Uint8Array.of(1, 2, 3));
    expect([...(await data)[0]]).toEqual([1, 2, 3]);
    expect(client.info).toMatchObject({ kind: 'tcp', remote: listener.address });
    client.destroy();
  });

  it('destroy() resets the connection: a reading peer closes with ECONNRESET', async () => {
    let accept!: (s: ByteStream) => void;
    const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
    const listener = await tcpListen({ host: '127.0.0.1' }, accept);
    const client = await tcpConnect({ host: '127.0.0.1', port: listener.port });
    const server = await accepted;
    server.resume();
    const closed = next<[Error | undefined]>(server, 'close');
    client.destroy();
    const [err] = await closed;
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'GS_ERR_TRANSPORT_CLOSED', message: expect.stringContaining('ECONNRESET') });
    await listener.close();
  });

  it('a port in use → GS_ERR_CONNECT_FAILED naming the address', async () => {
    const first = await tcpListen({ host: '127.0.0.1' }, () => {});
    const err = await tcpListen({ host: '127.0.0.1', port: first.port }, () => {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GS_ERR_LISTEN_FAILED', message: expect.stringContaining('EADDRINUSE') });
    await first.close();
  });
});
