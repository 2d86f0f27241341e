// UdpSocket.send checks a destination once and remembers it (a sender sends datagram after datagram
// to one group): a different, or bad, destination after a good one is still checked.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/index.js';
import { udpBind } from '../../src/transport/udp.js';

describe('UdpSocket.send destination checks', () => {
  it('delivers to a remembered destination, and still refuses a bad one after it', async () => {
    const a = await udpBind({ family: 'ipv4', address: '127.0.0.1' });
    const b = await udpBind({ family: 'ipv4', address: '127.0.0.1' });
    const c = await udpBind({ family: 'ipv4', address: '127.0.0.1' });
    try {
      const got: string[] = [];
      const both = new Promise<void>((resolve) => {
        const on = (who: string) => (data: Uint8Array): void => {
          got.push(`${who}:${data[0]}`);
          if (got.length === 4) resolve();
        };
        b.on('message', on('b'));
        c.on('message', on('c'));
      });
      const to = { address: '127.0.0.1', port: b.localAddress.port };
      a.send(Uint8Array.of(1), to);
      a.send(Uint8Array.of(2), { ...to });
      expect(() => a.send(Uint8Array.of(9), { address: '127.0.0.1', port: 0 })).toThrow(ConfigError);
      expect(() => a.send(Uint8Array.of(9), { address: '::1', port: b.localAddress.port })).toThrow(/not an ipv4 address/);
      expect(() => a.send(Uint8Array.of(9), { address: 'localhost', port: b.localAddress.port })).toThrow(/literal/);
      expect(() => a.send(new Uint8Array(70_000), to)).toThrow(/at most/);
      a.send(Uint8Array.of(3), { address: '127.0.0.1', port: c.localAddress.port });
      a.send(Uint8Array.of(4), to);
      await both;
      expect(got.sort()).toEqual(['b:1', 'b:2', 'b:4', 'c:3']);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });
});
