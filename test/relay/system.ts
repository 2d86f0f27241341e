/**
 * An in-process gateway system for tests: a throwaway root CA, a controller
 * on a memory store, and gateways, all on loopback with short timers.
 */
import {
  createIdentity,
  createRootCa,
  generateIdentityKey,
  issueCertificate,
  type Certificate,
  type Identity,
} from '../../src/session/index.js';
import { Controller, Gateway, MemoryServerStore, type ControllerOptions, type GatewayOptions } from '../../src/relay/index.js';

export interface TestPki {
  readonly root: Certificate;
  readonly controller: Identity;
  gateway(name: string): Identity;
}

export function makePki(): TestPki {
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'test root', validDays: 1, key: rootKey });
  const issue = (role: 'controller' | 'gateway', name: string): Identity => {
    const key = generateIdentityKey();
    return createIdentity(key, [issueCertificate({ role, commonName: name, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 })]);
  };
  return { root, controller: issue('controller', 'test-controller'), gateway: (name) => issue('gateway', name) };
}

export interface TestSystem {
  readonly pki: TestPki;
  readonly controller: Controller;
  readonly gateways: Gateway[];
  addGateway(options?: Partial<GatewayOptions>): Promise<Gateway>;
  close(): Promise<void>;
}

export async function startSystem(
  options: { gateways?: number; controller?: Partial<ControllerOptions>; gateway?: Partial<GatewayOptions> } = {},
): Promise<TestSystem> {
  const pki = makePki();
  const controller = await Controller.start({
    identity: pki.controller,
    roots: [pki.root],
    store: new MemoryServerStore(),
    keepaliveIntervalMs: 100,
    gatewayTimeoutMs: 500,
    ...options.controller,
  });
  const gateways: Gateway[] = [];
  let n = 0;
  const addGateway = async (extra: Partial<GatewayOptions> = {}): Promise<Gateway> => {
    const g = await Gateway.start({
      identity: pki.gateway(`gw-${++n}`),
      roots: [pki.root],
      controller: controller.address,
      reconnect: { firstMs: 20, maxMs: 200 },
      ...options.gateway,
      ...extra,
    });
    gateways.push(g);
    return g;
  };
  for (let i = 0; i < (options.gateways ?? 1); i++) await addGateway();
  return {
    pki,
    controller,
    gateways,
    addGateway,
    async close() {
      await Promise.all(gateways.map((g) => g.close()));
      await controller.close();
    },
  };
}
