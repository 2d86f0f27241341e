/**
 * The in-process resolver ("DNS masquerade"): Node's lookup signature, one
 * address consumed per lookup, family handling, fallback — and real
 * connections through `net.connect` and `http.request` to an admission
 * listener (loopback, addresses `::ffff:127.0.0.X`, see listener.test.ts).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyAddressListener } from '../../src/keyaddress/listener.js';
import { createKeyAddressLookup, type AddressCursor, type LookupFunction } from '../../src/keyaddress/resolver.js';
import { sequenceWindow } from './fixtures/probe.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A cursor over a list, counting calls. */
function listCursor(addresses: string[]): AddressCursor & { calls: number } {
  let i = 0;
  return {
    calls: 0,
    next() {
      this.calls++;
      const a = addresses[i++];
      if (a === undefined) throw new Error('cursor exhausted');
      return a;
    },
  };
}

function call(lookup: LookupFunction, name: string, options: Parameters<LookupFunction>[1]): Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }> {
  return new Promise((resolve) => lookup(name, options, (error, address, family) => resolve({ error, address, family })));
}

describe('createKeyAddressLookup', () => {
  it('answers a configured name with the next address each time (canonical text, family 6)', async () => {
    const cursor = listCursor(['2001:DB8:1:2:0:0:0:A', '2001:db8:1:2::b']);
    const lookup = createKeyAddressLookup({ names: { 'Device.Example': cursor } });
    expect(await call(lookup, 'device.example', {})).toEqual({ error: null, address: '2001:db8:1:2::a', family: 6 });
    // all: true (what net.connect asks with autoSelectFamily) — one element, the next address.
    expect(await call(lookup, 'DEVICE.example.', { all: true, family: 0 })).toEqual({ error: null, address: [{ address: '2001:db8:1:2::b', family: 6 }], family: undefined });
    expect(cursor.calls).toBe(2);
  });

  it('family 4 gets ENOTFOUND without consuming; an unknown name goes to the fallback or fails typed', async () => {
    const cursor = listCursor(['2001:db8::1']);
    const lookup = createKeyAddressLookup({ names: new Map([['device.example', cursor]]) });
    const v4 = await call(lookup, 'device.example', { family: 4 });
    expect(v4.error).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: 'device.example' });
    expect(await call(lookup, 'device.example', 4)).toMatchObject({ error: { code: 'ENOTFOUND' } });
    expect(cursor.calls).toBe(0);
    expect((await call(lookup, 'other.example', {})).error).toMatchObject({ code: 'GS_ERR_KEYADDR_UNKNOWN_NAME' });

    const withFallback = createKeyAddressLookup({ names: { 'device.example': cursor }, fallback: dnsLookup as unknown as LookupFunction });
    const local = await call(withFallback, 'localhost', { family: 4 });
    expect(local).toMatchObject({ error: null, address: '127.0.0.1', family: 4 });
    expect(cursor.calls).toBe(0);
  });

  it('a cursor that fails or returns a non-address is an error for that lookup only', async () => {
    const lookup = createKeyAddressLookup({ names: { a: { next: () => 'not-an-address' }, b: listCursor([]) } });
    expect((await call(lookup, 'a', {})).error).toMatchObject({ code: 'GS_ERR_KEYADDR_STATE' });
    expect((await call(lookup, 'b', {})).error?.message).toBe('cursor exhausted');
  });

  it('checks its options by name', () => {
    expect(() => createKeyAddressLookup({ names: { 'bad name': listCursor([]) } })).toThrow(/names key "bad name"/);
    expect(() => createKeyAddressLookup({ names: { ok: {} as AddressCursor } })).toThrow(/must have next\(\)/);
  });
});

describe('lookup plugged into net and http, against an admission listener', () => {
  async function setUp(count: number) {
    const addresses = Array.from({ length: count }, (_, i) => `::ffff:127.0.0.${i + 2}`);
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '::', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const listener = await KeyAddressListener.listen({ prefix: '::/64', port, windows: [sequenceWindow(addresses)], checkHost: false });
    closers.push(() => listener.close());
    const lookup = createKeyAddressLookup({ names: { 'device.example': listCursor(addresses) } });
    return { listener, lookup, port };
  }

  it('net.connect to device.example reaches the server at each next key address', async () => {
    const { listener, lookup, port } = await setUp(3);
    const seen: string[] = [];
    listener.on('connection', (socket, info) => {
      seen.push(info.address);
      socket.end('ok\n');
    });
    for (let i = 0; i < 3; i++) {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: 'device.example', port, lookup });
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
      expect(reply).toBe('ok\n');
    }
    expect(seen).toEqual(['::ffff:7f00:2', '::ffff:7f00:3', '::ffff:7f00:4']);
  });

  it('http.request with lookup: two requests (no keep-alive), two addresses, both answered', async () => {
    const { listener, lookup, port } = await setUp(2);
    const { createServer: createHttp } = await import('node:http');
    const http = createHttp((req, res) => res.end(`hello ${req.url}`));
    closers.push(() => http.close());
    listener.on('connection', (socket) => http.emit('connection', socket));
    for (const path of ['/one', '/two']) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: 'device.example', port, path, lookup, agent: false }, (res) => {
          let data = '';
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve(data));
        });
        req.on('error', reject);
        req.end();
      });
      expect(body).toBe(`hello ${path}`);
    }
    expect(listener.stats).toMatchObject({ accepted: 2, refused: 0 });
  });
});
