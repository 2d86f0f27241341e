/**
 * The key-address DNS responder: its answers (sans I/O), real UDP queries
 * built with dns-packet, node:dns's Resolver pointed at it, and random
 * bytes (never a crash, every packet counted).
 */
import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { randomBytes } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DNS_RETRANSMIT_MS, KeyAddressDnsResponder } from '../../src/keyaddress/dns.js';
import type { AddressCursor } from '../../src/keyaddress/resolver.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A cursor handing out 2001:db8:1:2::1, ::2, … */
function counting(): AddressCursor & { readonly given: number } {
  let n = 0;
  return {
    get given() {
      return n;
    },
    next: () => `2001:db8:1:2::${(++n).toString(16)}`,
  };
}

function query(name: string, type: dnsPacket.RecordType, id = 7, extra: Partial<dnsPacket.Packet> = {}): Uint8Array {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra });
}

const decode = (b: Uint8Array | undefined) => dnsPacket.decode(Buffer.from(b!)) as dnsPacket.DecodedPacket & { rcode: string };

describe('KeyAddressDnsResponder.respond (no I/O)', () => {
  it('AAAA for a configured name: the next address, TTL 0, authoritative; each query a new address', () => {
    const cursor = counting();
    const dns = new KeyAddressDnsResponder({ 'device.example': cursor });
    const first = decode(dns.respond(query('Device.Example', 'AAAA', 1), 'a|1', 0));
    expect(first).toMatchObject({ type: 'response', id: 1, rcode: 'NOERROR', flag_aa: true, flag_rd: true });
    expect(first.answers).toEqual([{ type: 'AAAA', name: 'Device.Example', ttl: 0, class: 'IN', flush: false, data: '2001:db8:1:2::1' }]);
    const second = decode(dns.respond(query('device.example', 'AAAA', 2), 'a|1', 0));
    expect((second.answers![0] as dnsPacket.StringAnswer).data).toBe('2001:db8:1:2::2');
    expect(cursor.given).toBe(2);
    expect(dns.stats).toMatchObject({ queries: 2, answered: 2 });
  });

  it('a retransmitted query gets the same answer and consumes nothing, until the retransmit window passes', () => {
    const cursor = counting();
    const dns = new KeyAddressDnsResponder({ 'device.example': cursor });
    const q = query('device.example', 'AAAA', 42);
    const a = dns.respond(q, '127.0.0.1|5000', 1000);
    expect(dns.respond(q, '127.0.0.1|5000', 1000 + DNS_RETRANSMIT_MS - 1)).toEqual(a);
    // Another asker with the same ID is another query.
    expect(decode(dns.respond(q, '127.0.0.1|5001', 1500)).answers).toHaveLength(1);
    expect(cursor.given).toBe(2);
    expect((decode(dns.respond(q, '127.0.0.1|5000', 1000 + DNS_RETRANSMIT_MS)).answers![0] as dnsPacket.StringAnswer).data).toBe('2001:db8:1:2::3');
    expect(dns.stats).toMatchObject({ answered: 3, repeated: 1 });
  });

  it('other types: NODATA; other names: NXDOMAIN; bad shapes: FORMERR, NOTIMP, REFUSED, SERVFAIL', () => {
    const cursor = counting();
    const dns = new KeyAddressDnsResponder({ 'device.example': cursor, broken: { next: () => { throw new Error('x'); } } });
    const a = decode(dns.respond(query('device.example', 'A')));
    expect([a.rcode, a.answers]).toEqual(['NOERROR', []]);
    expect(decode(dns.respond(query('other.example', 'AAAA'))).rcode).toBe('NXDOMAIN');
    const two = dnsPacket.encode({ type: 'query', id: 3, questions: [{ type: 'AAAA', name: 'device.example' }, { type: 'AAAA', name: 'device.example' }] });
    expect(decode(dns.respond(two)).rcode).toBe('FORMERR');
    const none = dnsPacket.encode({ type: 'query', id: 3, questions: [] });
    expect(decode(dns.respond(none)).rcode).toBe('FORMERR');
    const status = Buffer.from(query('device.example', 'AAAA'));
    status[2] = (status[2]! & 0x87) | (2 << 3); // opcode STATUS
    expect(decode(dns.respond(status)).rcode).toBe('NOTIMP');
    expect(decode(dns.respond(dnsPacket.encode({ type: 'query', id: 4, questions: [{ type: 'AAAA', name: 'device.example', class: 'CH' }] }))).rcode).toBe('REFUSED');
    expect(decode(dns.respond(query('broken', 'AAAA'))).rcode).toBe('SERVFAIL');
    expect(cursor.given).toBe(0);
    expect(dns.stats).toMatchObject({ nodata: 1, nxdomain: 1, errors: 5, answered: 0 });
  });

  it('responses and undecodable bytes: counted as malformed; FORMERR only where a query header is', () => {
    const dns = new KeyAddressDnsResponder({ 'device.example': counting() });
    const response = dnsPacket.encode({ type: 'response', id: 9, questions: [{ type: 'AAAA', name: 'device.example' }] });
    expect(dns.respond(response)).toBeUndefined();
    expect(dns.respond(new Uint8Array([1, 2, 3]))).toBeUndefined();
    const truncated = query('device.example', 'AAAA', 0x1234).subarray(0, 20);
    const reply = decode(dns.respond(truncated));
    expect([reply.id, reply.rcode]).toEqual([0x1234, 'FORMERR']);
    expect(dns.stats.malformed).toBe(3);
  });

  it('random bytes never make it throw, and every packet is counted once', () => {
    const dns = new KeyAddressDnsResponder({ 'device.example': counting() });
    let sent = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        sent++;
        const out = dns.respond(bytes, 'fuzz');
        if (out !== undefined) expect(() => dnsPacket.decode(Buffer.from(out))).not.toThrow();
      }),
      { numRuns: 2000 },
    );
    const s = dns.stats;
    expect(s.queries + s.malformed).toBe(sent);
  });
});

describe('KeyAddressDnsResponder over UDP on loopback', () => {
  async function start(names: Record<string, AddressCursor>, host?: string) {
    const dns = await KeyAddressDnsResponder.start({ names, ...(host ? { host } : {}) });
    closers.push(() => dns.close());
    return dns;
  }

  /** Send `bytes` to the responder; resolve with the reply, or undefined after `ms`. */
  function ask(dns: KeyAddressDnsResponder, bytes: Uint8Array, ms = 1000): Promise<Buffer | undefined> {
    const a = dns.address!;
    const socket = createSocket(a.address.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), ms);
      const finish = (b: Buffer | undefined) => {
        clearTimeout(timer);
        socket.close();
        resolve(b);
      };
      socket.on('message', (m) => finish(m));
      socket.send(bytes, a.port, a.address);
    });
  }

  it('a dns-packet query over real UDP gets the AAAA answer (IPv4 and IPv6 loopback)', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const dns = await start({ 'device.example': counting() }, host);
      const reply = decode(await ask(dns, query('device.example', 'AAAA', 77)));
      expect(reply.id).toBe(77);
      expect((reply.answers![0] as dnsPacket.StringAnswer).data).toBe('2001:db8:1:2::1');
    }
  });

  it('node:dns Resolver pointed at it: resolve6 gives successive addresses, TTL 0; other names fail', async () => {
    const dns = await start({ 'device.example': counting() });
    const resolver = new dnsPromises.Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([dns.server]);
    expect(await resolver.resolve6('device.example', { ttl: true })).toEqual([{ address: '2001:db8:1:2::1', ttl: 0 }]);
    expect(await resolver.resolve6('device.example')).toEqual(['2001:db8:1:2::2']);
    await expect(resolver.resolve6('other.example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve4('device.example')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('after a burst of random datagrams it still answers, and counted them', async () => {
    const dns = await start({ 'device.example': counting() });
    const a = dns.address!;
    const junk = createSocket('udp4');
    for (let i = 0; i < 300; i++) {
      const b = randomBytes(1 + (i % 200));
      b[2]! |= 0x80; // QR set: a "response", or undecodable — never answered
      await new Promise<void>((r) => junk.send(b, a.port, a.address, () => r()));
      // One datagram in flight at a time (a loopback UDP receive buffer drops
      // what overflows it): wait until the responder has counted this one.
      for (let t = 0; dns.stats.malformed < i + 1; t++) {
        if (t > 2000) throw new Error(`datagram ${i} was not counted within 2 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    junk.close();
    const reply = decode(await ask(dns, query('device.example', 'AAAA')));
    expect((reply.answers![0] as dnsPacket.StringAnswer).data).toBe('2001:db8:1:2::1');
    expect(dns.stats.malformed).toBe(300);
  });

  it('binds loopback only', async () => {
    await expect(KeyAddressDnsResponder.start({ names: {}, host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    await expect(KeyAddressDnsResponder.start({ names: {}, port: 70000 })).rejects.toThrow(/port/);
  });
});
