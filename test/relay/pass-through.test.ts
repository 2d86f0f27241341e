/**
 * Pass-through (clear payload) on the relay hops, over loopback TCP with a
 * tap in front of the gateway that records (and, on demand, alters) every
 * byte the gateway's peers send and receive: what a capture at the gateway
 * sees. With the end-to-end layer, the hops carry its ciphertext without a
 * second encryption; the capture still holds no plaintext; an altered clear
 * byte kills only its own connection, with the inner layer's typed error;
 * and every mix of endpoints and gateways with and without pass-through
 * (what older peers look like on the wire) works.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatesockError } from '../../src/errors/index.js';
import { ServerEndpoint, relayConnect, type RelayConnectionInfo } from '../../src/relay/index.js';
import { decodeRelayOpen, encodeRelayOpen } from '../../src/relay/relay-open.js';
import { createServerIdentity, type ByteStream } from '../../src/session/index.js';
import { echo, roundTrip, sha256 } from './streams.js';
import { startSystem, type TestSystem } from './system.js';

/**
 * A TCP tap: listens, forwards each connection to `target`, records both
 * directions, and can flip one byte in the clear part of the `splitIndex`-th
 * split record (record-reader.ts) the next accepted connection sends.
 */
class Tap {
  readonly captured: Buffer[] = [];
  /** Split records seen on each connection, in accept order: `up` towards the gateway, `down` from it. */
  readonly splits: { up: () => number; down: () => number }[] = [];
  target = '';
  private tamperNext: number | undefined;
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(): Promise<Tap> {
    const server = net.createServer();
    const tap = new Tap(server);
    server.on('connection', (s) => tap.accept(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return tap;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Alter the `splitIndex`-th split record (1-based) of the next connection. */
  tamperNextConnection(splitIndex: number): void {
    this.tamperNext = splitIndex;
  }

  private accept(inbound: net.Socket): void {
    const [host, port] = this.target.split(':');
    const outbound = net.connect({ host, port: Number(port) });
    for (const s of [inbound, outbound]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => this.sockets.delete(s));
    }
    const up = splitTamperer(this.tamperNext ?? 0);
    const down = splitTamperer(0);
    this.tamperNext = undefined;
    this.splits.push({ up: up.count, down: down.count });
    inbound.on('data', (c: Buffer) => {
      up.push(c);
      this.captured.push(Buffer.from(c));
      outbound.write(c);
    });
    outbound.on('data', (c: Buffer) => {
      down.push(c);
      this.captured.push(Buffer.from(c));
      inbound.write(c);
    });
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * Follows the record framing of one direction, counts split records, and
 * flips the first clear byte of split record number `target` (0: none).
 */
function splitTamperer(target: number): { push: (chunk: Buffer) => void; count: () => number } {
  let prefix: number[] = [];
  let sealedLeft = 0;
  let clearPending = 0;
  let clearLeft = 0;
  let splits = 0;
  let done = false;
  const push = (chunk: Buffer): void => {
    let i = 0;
    while (i < chunk.length) {
      if (sealedLeft > 0) {
        const n = Math.min(sealedLeft, chunk.length - i);
        sealedLeft -= n;
        i += n;
        if (sealedLeft === 0 && clearPending > 0) [clearLeft, clearPending] = [clearPending, 0];
        continue;
      }
      if (clearLeft > 0) {
        if (!done && splits === target) {
          chunk[i]! ^= 0x5a;
          done = true;
        }
        const n = Math.min(clearLeft, chunk.length - i);
        clearLeft -= n;
        i += n;
        continue;
      }
      prefix.push(chunk[i++]!);
      if (prefix.length === 2 && (prefix[0] !== 0 || prefix[1] !== 0)) {
        sealedLeft = (prefix[0]! << 8) | prefix[1]!;
        prefix = [];
      } else if (prefix.length === 6) {
        splits++;
        sealedLeft = (prefix[2]! << 8) | prefix[3]!;
        clearPending = (prefix[4]! << 8) | prefix[5]!;
        prefix = [];
      }
    }
  };
  return { push, count: () => splits };
}

let system: TestSystem | undefined;
let tap: Tap | undefined;
const endpoints: ServerEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  await system?.close();
  await tap?.close();
  system = undefined;
  tap = undefined;
});

/** A controller and one gateway that everybody reaches through the tap. */
async function tappedSystem(gatewayPassThrough?: boolean): Promise<{ sys: TestSystem; tap: Tap }> {
  tap = await Tap.start();
  system = await startSystem({ gateways: 0 });
  const gateway = await system.addGateway({ advertise: tap.address, passThrough: gatewayPassThrough });
  tap.target = gateway.address;
  return { sys: system, tap };
}

interface EchoServer {
  readonly endpoint: ServerEndpoint;
  readonly infos: RelayConnectionInfo[];
  readonly errors: (GatesockError | undefined)[];
}

async function echoServer(sys: TestSystem, passThrough?: boolean): Promise<EchoServer> {
  const endpoint = new ServerEndpoint({ controller: sys.controller.address, roots: [sys.pki.root], identity: createServerIdentity(), passThrough });
  endpoints.push(endpoint);
  const infos: RelayConnectionInfo[] = [];
  const errors: (GatesockError | undefined)[] = [];
  endpoint.on('connection', (stream: ByteStream, info) => {
    infos.push(info);
    stream.on('close', (e) => errors.push(e));
    echo(stream);
  });
  await endpoint.online();
  return { endpoint, infos, errors };
}

const MARKER = 'PASS-THROUGH-PLAINTEXT-MARKER-';

describe('relay pass-through', () => {
  it('with the end-to-end layer both hops carry its ciphertext as it is, data arrives intact, and a capture at the gateway holds no plaintext', async () => {
    const { sys, tap } = await tappedSystem();
    const server = await echoServer(sys);
    const { stream, info } = await relayConnect(server.endpoint.pcid!, { controller: sys.controller.address, roots: [sys.pki.root] });
    expect(info).toMatchObject({ endToEnd: true, passThrough: true });
    const data = Buffer.concat([Buffer.from(MARKER.repeat(100)), randomBytes(2 << 20), Buffer.from(MARKER.repeat(100))]);
    const back = await roundTrip(stream, data);
    expect(sha256(back)).toBe(sha256(data));
    expect(server.infos[0]).toMatchObject({ endToEnd: true, passThrough: true });
    // Both hops, both ways: [0] is the server's session, [1] the client's.
    expect(tap.splits).toHaveLength(2);
    for (const hop of tap.splits) {
      expect(hop.up()).toBeGreaterThan(30);
      expect(hop.down()).toBeGreaterThan(30);
    }
    const capture = Buffer.concat(tap.captured);
    expect(capture.length).toBeGreaterThan(4 * data.length);
    expect(capture.includes(Buffer.from(MARKER))).toBe(false);
  });

  it('a clear byte altered on the wire kills only its own connection, with the end-to-end layer’s GS_ERR_DECRYPT_FAILED; the server session and other connections go on', async () => {
    const { sys, tap } = await tappedSystem();
    const server = await echoServer(sys);
    const opts = { controller: sys.controller.address, roots: [sys.pki.root] };
    // The inner handshake crosses sealed, so the first split record already
    // carries application data: altering it is an end-to-end decryption
    // failure, not a handshake failure.
    tap.tamperNextConnection(1);
    const victim = await relayConnect(server.endpoint.pcid!, opts);
    const bystander = await relayConnect(server.endpoint.pcid!, opts);
    const data = randomBytes(1 << 20);
    const [hit, fine] = await Promise.allSettled([roundTrip(victim.stream, data), roundTrip(bystander.stream, data)]);
    expect(hit.status).toBe('rejected');
    expect(fine.status).toBe('fulfilled');
    expect(sha256((fine as PromiseFulfilledResult<Uint8Array>).value)).toBe(sha256(data));
    const codes = server.errors.map((e) => e?.code);
    expect(codes).toContain('GS_ERR_DECRYPT_FAILED');
    expect(codes.filter((c) => c !== undefined)).toHaveLength(1);
    expect(server.endpoint.isOnline).toBe(true);
    // And a new connection after it works.
    const later = await relayConnect(server.endpoint.pcid!, opts);
    expect(Buffer.from(await roundTrip(later.stream, Buffer.from('still here'))).toString()).toBe('still here');
  });

  it.each([
    { client: false, server: true, gateway: true },
    { client: true, server: false, gateway: true },
    { client: true, server: true, gateway: false },
  ])('interoperates with peers without it (client $client, server $server, gateway $gateway): each hop uses it only where both ends offer it', async (p) => {
    const { sys, tap } = await tappedSystem(p.gateway);
    const server = await echoServer(sys, p.server);
    const { stream, info } = await relayConnect(server.endpoint.pcid!, { controller: sys.controller.address, roots: [sys.pki.root], passThrough: p.client });
    const data = Buffer.concat([Buffer.from(MARKER.repeat(50)), randomBytes(300_000)]);
    expect(sha256(await roundTrip(stream, data))).toBe(sha256(data));
    expect(info.passThrough).toBe(p.client && p.gateway);
    expect(server.infos[0]!.passThrough).toBe(p.server && p.gateway);
    // The client's hop goes clear only if it agreed; the server's only if it did (and the gateway).
    const [serverHop, clientHop] = tap.splits;
    expect(clientHop!.up() > 0).toBe(p.client && p.gateway);
    expect(serverHop!.down() > 0).toBe(p.server && p.gateway && p.client);
    expect(serverHop!.up() > 0).toBe(p.server && p.gateway);
    expect(Buffer.concat(tap.captured).includes(Buffer.from(MARKER))).toBe(false);
  });

  it('without the end-to-end layer nothing goes clear, even between peers that offer pass-through', async () => {
    const { sys, tap } = await tappedSystem();
    const plain = new ServerEndpoint({ controller: sys.controller.address, roots: [sys.pki.root], identity: createServerIdentity(), endToEnd: false });
    endpoints.push(plain);
    const infos: RelayConnectionInfo[] = [];
    plain.on('connection', (stream, info) => {
      infos.push(info);
      echo(stream);
    });
    await plain.online();
    const { stream, info } = await relayConnect(plain.pcid!, { controller: sys.controller.address, roots: [sys.pki.root], endToEnd: false });
    const data = Buffer.from(MARKER.repeat(1000));
    expect(Buffer.from(await roundTrip(stream, data)).equals(data)).toBe(true);
    expect(info.passThrough).toBe(false);
    expect(infos[0]!.passThrough).toBe(false);
    // The hops are still sealed: the gateway's peers' wire holds no plaintext (the gateway itself sees it).
    expect(Buffer.concat(tap.captured).includes(Buffer.from(MARKER))).toBe(false);
  });

  it('the OPEN flag of pass-through needs the end-to-end flag, and older metadata still decodes', () => {
    const peer = createServerIdentity().msid;
    const old = encodeRelayOpen({ connectionId: 7, endToEnd: true, clearPayload: false, peer });
    expect(old[4]).toBe(1);
    expect(decodeRelayOpen(old)).toMatchObject({ connectionId: 7, endToEnd: true, clearPayload: false });
    const both = encodeRelayOpen({ connectionId: 7, endToEnd: true, clearPayload: true, peer });
    expect(both[4]).toBe(3);
    expect(decodeRelayOpen(both).clearPayload).toBe(true);
    const clearOnly = both.slice();
    clearOnly[4] = 2;
    expect(() => decodeRelayOpen(clearOnly)).toThrow(/end-to-end/);
    expect(() => encodeRelayOpen({ connectionId: 7, endToEnd: false, clearPayload: true, peer })).toThrow(/end-to-end/);
  });
});
