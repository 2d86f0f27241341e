/**
 * The seed's "DNS masquerade" (paper 002, §4 step 3 and §5): a client
 * program asks for the server's name and gets the key address the server
 * listens on now. In process, as a `lookup` function that Node's
 * `net.connect`, `http.request`, `tls.connect` and undici's `Agent`
 * (`connect: { lookup }`) all take; for unmodified programs, the DNS
 * responder in dns.ts.
 *
 * A lookup *consumes* an address: the address handed out is the one the
 * client is about to try, and a key address is never tried twice (the
 * server retires it on sight; a failed attempt may have been seen). So two
 * lookups of `device.example` give two successive addresses, and a program
 * that resolves once and connects twice reaches the server once.
 */
import type { LookupAddress, LookupOptions, lookup as dnsLookup } from 'node:dns';
import { checkOption } from '../errors/check.js';
import { KeyAddressError } from '../errors/index.js';
import { canonicalIpv6 } from './host.js';

/**
 * The client side of one key-address sequence, as the resolver needs it:
 * the next address to try (each call a new one). The synchronisation
 * module's client cursor has this shape.
 * @public
 */
export interface AddressCursor {
  /** The next key address to try (IPv6 text, or a position carrying it); never the same one twice. */
  next(): string | { readonly address: string };
}

/**
 * Node's `lookup` callback signature (`dns.lookup`, `net.connect({ lookup })`).
 * @public
 */
export type LookupFunction = (
  hostname: string,
  options: LookupOptions | number | undefined,
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

/**
 * Options of {@link createKeyAddressLookup}.
 * @public
 */
export interface KeyAddressLookupOptions {
  /** Names answered with key addresses (case-insensitive, a trailing dot ignored) and the cursor of each. */
  readonly names: Readonly<Record<string, AddressCursor>> | ReadonlyMap<string, AddressCursor>;
  /**
   * Where every other name goes, e.g. `dns.lookup` (accepted as it is, with
   * its overloads). Without it, other names fail with
   * `GS_ERR_KEYADDR_UNKNOWN_NAME`.
   */
  readonly fallback?: LookupFunction | typeof dnsLookup;
}

/** `device.example.` and `Device.Example` are the same name. @internal */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The names map of the options, keys normalised, checked by name. @internal */
export function cursorMap(names: KeyAddressLookupOptions['names'], option = 'names'): Map<string, AddressCursor> {
  checkOption(typeof names === 'object' && names !== null, option, 'must be an object or a Map of name → cursor');
  const entries = names instanceof Map ? [...names.entries()] : Object.entries(names);
  const out = new Map<string, AddressCursor>();
  for (const [name, cursor] of entries) {
    checkOption(typeof name === 'string' && /^[a-z0-9_.-]{1,253}$/i.test(name), `${option} key ${JSON.stringify(name)}`, 'must be a DNS name');
    checkOption(typeof cursor?.next === 'function', `${option}[${JSON.stringify(name)}]`, 'must have next()');
    out.set(normalizeName(name), cursor);
  }
  return out;
}

/** The next address of `cursor`, canonical, checked to be IPv6. @internal */
export function nextAddress(cursor: AddressCursor, name: string): string {
  const next = cursor.next();
  const raw: unknown = typeof next === 'object' && next !== null ? next.address : next;
  const address = typeof raw === 'string' ? canonicalIpv6(raw) : undefined;
  if (address === undefined) {
    throw new KeyAddressError('GS_ERR_KEYADDR_STATE', `the cursor for ${JSON.stringify(name)} gave ${JSON.stringify(raw)}, not an IPv6 address`);
  }
  return address;
}

/** The error getaddrinfo gives for a name without addresses of the family asked. */
function notFound(hostname: string, why: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (${why})`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname });
}

/**
 * Make a `lookup` function that answers the configured names with the next
 * key address of their cursor (family 6), and passes every other name to
 * `fallback`. Plugs into `net.connect({ host, port, lookup })`,
 * `http.request({ lookup })`, `tls.connect({ lookup })` and undici's
 * `new Agent({ connect: { lookup } })`.
 *
 * Each call for a configured name consumes one address, `all: true`
 * included (it returns a one-element list). Asked for family 4 only, a
 * configured name fails with `ENOTFOUND` without consuming anything: key
 * addresses exist only in IPv6.
 *
 * @example
 * ```ts
 * const lookup = createKeyAddressLookup({ names: { 'device.example': client }, fallback: dns.lookup });
 * const socket = net.connect({ host: 'device.example', port: 22, lookup });
 * ```
 * @public
 */
export function createKeyAddressLookup(options: KeyAddressLookupOptions): LookupFunction {
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const names = cursorMap(options.names);
  const fallback = options.fallback as LookupFunction | undefined;
  checkOption(fallback === undefined || typeof fallback === 'function', 'fallback', 'must be a lookup function');
  return function keyAddressLookup(hostname, opts, callback) {
    const o: LookupOptions = typeof opts === 'number' ? { family: opts } : (opts ?? {});
    const cursor = typeof hostname === 'string' ? names.get(normalizeName(hostname)) : undefined;
    if (cursor === undefined) {
      if (fallback) return fallback(hostname, opts, callback);
      const error = new KeyAddressError('GS_ERR_KEYADDR_UNKNOWN_NAME', `the key-address resolver has no name ${JSON.stringify(hostname)} and no fallback`);
      process.nextTick(callback, error, o.all ? [] : '', 0);
      return;
    }
    const family = o.family === 'IPv4' ? 4 : o.family === 'IPv6' ? 6 : (o.family ?? 0);
    if (family === 4) {
      process.nextTick(callback, notFound(hostname, 'key addresses are IPv6 only'), o.all ? [] : '', 0);
      return;
    }
    let address: string;
    try {
      address = nextAddress(cursor, hostname);
    } catch (error) {
      process.nextTick(callback, error as NodeJS.ErrnoException, o.all ? [] : '', 0);
      return;
    }
    if (o.all) process.nextTick(callback, null, [{ address, family: 6 }]);
    else process.nextTick(callback, null, address, 6);
  };
}
