// A small gateway-system PKI for tests: a root CA with a controller and a
// gateway certificate, plus helpers to damage DER.
import {
  createIdentity,
  createRootCa,
  generateIdentityKey,
  issueCertificate,
  type Certificate,
  type Identity,
  type IdentityKey,
  type Role,
} from '../../../src/session/identity/index.js';

export interface TestPki {
  rootKey: IdentityKey;
  root: Certificate;
  controller: Identity;
  gateway: Identity;
  issue(role: Role, commonName: string, options?: { validDays?: number; now?: Date }): Identity;
}

export function createGatewaySystemPki(options: { rootName?: string; now?: Date } = {}): TestPki {
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: options.rootName ?? 'gatesock test root', validDays: 3650, key: rootKey, ...(options.now ? { now: options.now } : {}) });
  const issue = (role: Role, commonName: string, o: { validDays?: number; now?: Date } = {}) => {
    const key = generateIdentityKey();
    const cert = issueCertificate({
      role,
      commonName,
      publicKey: key.publicKey,
      issuer: { key: rootKey, certificate: root },
      validDays: o.validDays ?? 365,
      ...((o.now ?? options.now) ? { now: o.now ?? options.now } : {}),
    });
    return createIdentity(key, [cert]);
  };
  return { rootKey, root, controller: issue('controller', 'controller-1'), gateway: issue('gateway', 'gateway-1'), issue };
}

/** A copy of `der` with byte `index` XOR `mask`. */
export function flipByte(der: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = der.slice();
  out[index] = out[index]! ^ mask;
  return out;
}

/** Index of the first occurrence of `needle` in `haystack` (throws if absent). */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('needle not found');
}

export const DAY = 86_400_000;
