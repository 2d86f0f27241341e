/**
 * An in-process gateway system for tests: a throwaway root CA, a controller
 * on a memory store, and gateways, all on loopback with short timers.
 */
import { Controller, Gateway, MemoryServerStore, type ControllerOptions, type GatewayOptions } from '../../src/relay/index.js';
import type { Certificate, Identity } from '../../src/session/index.js';
import { createGatewaySystemPki } from '../session/identity/pki.js';

export interface TestPki {
  readonly root: Certificate;
  readonly controller: Identity;
  gateway(name: string): Identity;
}

export function makePki(): TestPki {
  const pki = createGatewaySystemPki({ rootName: 'relay test root' });
  return { root: pki.root, controller: pki.controller, gateway: (name) => pki.issue('gateway', name) };
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
