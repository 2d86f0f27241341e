/**
 * What servers and clients of the gateway system share: where the
 * controller is, what root to trust, which identity to present.
 */
import { checkOption } from '../errors/check.js';
import { createServerIdentity, type Certificate, type Identity } from '../session/index.js';
import type { LinkOptions } from './link.js';

/**
 * How a server or client reaches the gateway system.
 * @public
 */
export interface RelayEndpointOptions {
  /** The controller's address: `host:port`, `[ipv6]:port`, or a `ws://` URL. */
  controller: string;
  /** The gateway system's root certificate(s); the controller and gateways must chain to one. */
  roots: readonly Certificate[];
  /**
   * This machine's identity. A server must keep its identity (its MSID, and
   * so its PCID, is the hash of its certificate): load it with
   * `loadOrCreateServerIdentity(dir)`. A client may leave it out and get a
   * throwaway one, made once per process.
   */
  identity?: Identity;
  /**
   * Run the end-to-end layer: an inner handshake through the relay in which
   * the client checks that the server's certificate hashes to the MSID the
   * controller gave, and payload encrypted end to end, so a gateway relays
   * bytes it cannot read. Default true. Turn off only where the gateways are
   * trusted: a server that requires it refuses clients without it.
   */
  endToEnd?: boolean;
  /**
   * With the end-to-end layer, offer the gateway pass-through: the hop to
   * it then carries the (already end-to-end encrypted) payload without
   * encrypting it again — only a small header per 64 KiB is sealed — which
   * saves a third of the relay's CPU per byte. The gateway uses it only if
   * it has it too; the payload is still end-to-end encrypted and
   * authenticated, and framing stays sealed. Default true; false sends every
   * byte sealed on the hop as well, as before.
   */
  passThrough?: boolean;
  /** Crypto backend, handshake and session tunables of every link. */
  link?: LinkOptions;
}

let throwaway: Identity | undefined;

/** The identity to present: the given one, or this process's throwaway one. */
export function endpointIdentity(options: RelayEndpointOptions): Identity {
  if (options.identity !== undefined) return options.identity;
  return (throwaway ??= createServerIdentity());
}

/** Check the common options. */
export function checkEndpointOptions(options: RelayEndpointOptions): void {
  checkOption(typeof options === 'object' && options !== null, 'options', 'must be an object');
  checkOption(typeof options.controller === 'string' && options.controller.length > 0, 'controller', 'must be the controller address (host:port)');
  checkOption(Array.isArray(options.roots) && options.roots.length > 0, 'roots', 'must list the gateway system root certificate');
  checkOption(options.endToEnd === undefined || typeof options.endToEnd === 'boolean', 'endToEnd', 'must be true or false');
  checkOption(options.passThrough === undefined || typeof options.passThrough === 'boolean', 'passThrough', 'must be true or false');
}
