/**
 * A small DNS responder on a loopback UDP port that answers AAAA queries
 * for configured names with the next key address — the seed's "DNS
 * masquerade" (paper 002, §5) for programs that cannot take a `lookup`
 * function (ssh, curl, a browser): point the system's resolver, or the
 * program's, at it.
 *
 * What it answers (RFC 1035 §4.1; packets built and parsed with
 * `dns-packet`):
 *
 * | query | answer |
 * |---|---|
 * | AAAA for a configured name | NOERROR, AA, one AAAA record, TTL 0 (nobody may cache a key address) — consumes one address |
 * | any other type for a configured name | NOERROR, AA, no records ("NODATA": the name exists, not with that type) |
 * | a name not configured | NXDOMAIN, AA |
 * | opcode other than QUERY | NOTIMP |
 * | class other than IN | REFUSED |
 * | not exactly one question | FORMERR |
 * | a cursor that fails | SERVFAIL |
 * | bytes that do not decode | FORMERR with the query's ID if a query header (12 bytes, QR clear) is there, else nothing; counted in `malformed` |
 * | a response (QR set) | nothing; counted in `malformed` |
 *
 * Resolvers retransmit: a query seen again (same source address and port,
 * same ID, same question) within {@link DNS_RETRANSMIT_MS} gets the same
 * reply instead of consuming a second address.
 *
 * It binds loopback only (127.0.0.0/8 or ::1): it hands the next secret
 * address to whoever asks, so it must not be reachable from the network.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { checkOption } from '../errors/check.js';
import { cursorMap, nextAddress, normalizeName, type AddressCursor, type KeyAddressLookupOptions } from './resolver.js';

/**
 * How long a reply is kept for a retransmitted query, in ms.
 * @public
 */
export const DNS_RETRANSMIT_MS = 2000;
/** At most this many replies are kept for retransmissions (oldest dropped first). */
const RETRANSMIT_CACHE_MAX = 1024;

/** RFC 1035 §4.1.1 RCODE values. */
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/**
 * Options of {@link KeyAddressDnsResponder.start}.
 * @public
 */
export interface KeyAddressDnsOptions {
  /** Names answered with key addresses (case-insensitive) and the cursor of each. */
  readonly names: KeyAddressLookupOptions['names'];
  /** Loopback address to bind: `127.0.0.1` (default), another 127.x, or `::1`. */
  readonly host?: string;
  /** UDP port; 0 (default) picks a free one. Port 53 needs privilege. */
  readonly port?: number;
}

/**
 * Counters of a {@link KeyAddressDnsResponder}.
 * @public
 */
export interface KeyAddressDnsStats {
  /** Queries that decoded (all of the rows below but `malformed`). */
  readonly queries: number;
  /** AAAA answers given (addresses consumed). */
  readonly answered: number;
  /** Replies repeated for a retransmitted query. */
  readonly repeated: number;
  /** NODATA replies (configured name, another type). */
  readonly nodata: number;
  /** NXDOMAIN replies. */
  readonly nxdomain: number;
  /** FORMERR, NOTIMP, REFUSED and SERVFAIL replies. */
  readonly errors: number;
  /** Packets dropped without a reply: undecodable bytes, or responses. */
  readonly malformed: number;
}

type MutableStats = { -readonly [K in keyof KeyAddressDnsStats]: number };

function isLoopback(host: string): boolean {
  return host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The DNS responder. {@link KeyAddressDnsResponder.respond} is the whole
 * protocol, without I/O (tests and fuzzers call it directly);
 * {@link KeyAddressDnsResponder.start} puts it on a UDP socket.
 *
 * @example
 * ```ts
 * const dns = await KeyAddressDnsResponder.start({ names: { 'device.example': client }, port: 5353 });
 * // dig -p 5353 @127.0.0.1 device.example AAAA   → the next key address, TTL 0
 * const resolver = new (await import('node:dns')).promises.Resolver();
 * resolver.setServers([dns.server]);
 * ```
 * @public
 */
export class KeyAddressDnsResponder {
  readonly #names: Map<string, AddressCursor>;
  readonly #recent = new Map<string, { reply: Uint8Array; at: number }>();
  readonly #stats: MutableStats = { queries: 0, answered: 0, repeated: 0, nodata: 0, nxdomain: 0, errors: 0, malformed: 0 };
  #socket: UdpSocket | undefined;
  #address: { address: string; port: number } | undefined;

  /** A responder without a socket: call {@link KeyAddressDnsResponder.respond} yourself. */
  constructor(names: KeyAddressLookupOptions['names']) {
    this.#names = cursorMap(names);
  }

  /**
   * Bind a loopback UDP port and answer queries on it.
   * @throws ConfigError for a non-loopback host or a bad port; the socket's
   *   error (e.g. `EADDRINUSE`, `EACCES` for port 53 without privilege).
   */
  static async start(options: KeyAddressDnsOptions): Promise<KeyAddressDnsResponder> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    checkOption(typeof host === 'string' && isLoopback(host), 'host', 'must be a loopback address (127.0.0.0/8 or ::1): the responder hands out secret addresses');
    checkOption(Number.isInteger(port) && port >= 0 && port < 65536, 'port', 'must be an integer in 0..65535');
    const responder = new KeyAddressDnsResponder(options.names);
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.removeListener('error', reject);
        resolve();
      });
    });
    // After start, a send error (e.g. the asker's port gone) is not fatal.
    socket.on('error', () => undefined);
    socket.on('message', (message, rinfo) => {
      const reply = responder.respond(message, `${rinfo.address}|${rinfo.port}`);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    responder.#socket = socket;
    const a = socket.address();
    responder.#address = { address: a.address, port: a.port };
    return responder;
  }

  /** Where it listens (after {@link KeyAddressDnsResponder.start}). */
  get address(): { readonly address: string; readonly port: number } | undefined {
    return this.#address;
  }

  /** `127.0.0.1:PORT` or `[::1]:PORT`, as `dns.Resolver#setServers` and `dig @… -p …` want it. */
  get server(): string {
    const a = this.#address;
    if (!a) return '';
    return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** Counters so far. */
  get stats(): KeyAddressDnsStats {
    return { ...this.#stats };
  }

  /** Stop answering. */
  async close(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * Answer one DNS message received from `from` (any string naming the
   * asker, e.g. `address|port`; used to recognise retransmissions), or
   * return undefined to send nothing. Never throws.
   */
  respond(message: Uint8Array, from = '', now = Date.now()): Uint8Array | undefined {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    } catch {
      return this.#formErr(message);
    }
    if (query.type !== 'query') {
      this.#stats.malformed++;
      return undefined;
    }
    this.#stats.queries++;
    const opcode = (query as { opcode?: string }).opcode;
    if (opcode !== 'QUERY') return this.#reply(query, RCODE.NOTIMP, []);
    const questions = query.questions ?? [];
    if (questions.length !== 1) return this.#reply(query, RCODE.FORMERR, []);
    const q = questions[0]!;
    if ((q.class ?? 'IN') !== 'IN') return this.#reply(query, RCODE.REFUSED, []);
    const name = normalizeName(q.name);
    const cursor = this.#names.get(name);
    if (cursor === undefined) {
      this.#stats.nxdomain++;
      return this.#encode(query, RCODE.NXDOMAIN, []);
    }
    if (q.type !== 'AAAA') {
      this.#stats.nodata++;
      return this.#encode(query, RCODE.NOERROR, []);
    }
    const key = `${from}|${query.id ?? 0}|${name}`;
    this.#expire(now);
    const seen = this.#recent.get(key);
    if (seen) {
      this.#stats.repeated++;
      return seen.reply;
    }
    let address: string;
    try {
      address = nextAddress(cursor, name);
    } catch {
      return this.#reply(query, RCODE.SERVFAIL, []);
    }
    this.#stats.answered++;
    const reply = this.#encode(query, RCODE.NOERROR, [{ type: 'AAAA', name: q.name, ttl: 0, class: 'IN', data: address }]);
    if (this.#recent.size >= RETRANSMIT_CACHE_MAX) this.#recent.delete(this.#recent.keys().next().value!);
    this.#recent.set(key, { reply, at: now });
    return reply;
  }

  #expire(now: number): void {
    for (const [key, { at }] of this.#recent) {
      if (now - at < DNS_RETRANSMIT_MS) break; // insertion order is time order
      this.#recent.delete(key);
    }
  }

  /** An error reply (counted in `errors`). */
  #reply(query: dnsPacket.DecodedPacket, rcode: number, answers: dnsPacket.Answer[]): Uint8Array {
    this.#stats.errors++;
    return this.#encode(query, rcode, answers);
  }

  #encode(query: dnsPacket.DecodedPacket, rcode: number, answers: dnsPacket.Answer[]): Uint8Array {
    return dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      // AA: we are the authority for these names; RD echoed (RFC 1035 §4.1.1).
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | rcode,
      questions: query.questions ?? [],
      answers,
    });
  }

  /**
   * Bytes that do not decode: a FORMERR with the query's ID when there is
   * a query header to answer (12 bytes, QR clear), nothing otherwise.
   */
  #formErr(message: Uint8Array): Uint8Array | undefined {
    this.#stats.malformed++;
    if (message.length < 12 || (message[2]! & 0x80) !== 0) return undefined;
    const id = (message[0]! << 8) | message[1]!;
    return dnsPacket.encode({ type: 'response', id, flags: RCODE.FORMERR, questions: [], answers: [] });
  }
}
