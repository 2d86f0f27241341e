/**
 * A throwaway gateway system on loopback for the examples that are about
 * something else: a root CA, a controller and one gateway, all in this
 * process, with certificates valid for a day. relay-echo.ts builds the same
 * thing step by step; in production they run as `gatesock controller` and
 * `gatesock gateway` with a PKI from `gatesock pki init`.
 */
// Users write `from 'gatesock'`; the examples import the source so they run without a build.
import { Controller, Gateway, MemoryServerStore, createIdentity, createRootCa, generateIdentityKey, issueCertificate, type Certificate, type Identity } from '../../src/index.js';

/** What an example needs of the system: where the controller is and the root to trust, plus a way to stop it. */
export interface LoopbackSystem {
  /** Relay endpoint options (`serverStart`, `clientConnect`, `serveTcp`, connectors) take these two. */
  readonly relay: { readonly controller: string; readonly roots: Certificate[] };
  readonly controller: Controller;
  readonly gateway: Gateway;
  /** Close the gateway, then the controller. */
  close(): Promise<void>;
}

export async function startLoopbackSystem(): Promise<LoopbackSystem> {
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'example root', validDays: 1, key: rootKey });
  const issue = (role: 'controller' | 'gateway', name: string): Identity => {
    const key = generateIdentityKey();
    return createIdentity(key, [issueCertificate({ role, commonName: name, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 })]);
  };
  const controller = await Controller.start({ identity: issue('controller', 'example-controller'), roots: [root], store: new MemoryServerStore() });
  const gateway = await Gateway.start({ identity: issue('gateway', 'example-gateway'), roots: [root], controller: controller.address });
  return {
    relay: { controller: controller.address, roots: [root] },
    controller,
    gateway,
    async close() {
      await gateway.close();
      await controller.close();
    },
  };
}
