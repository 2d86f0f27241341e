/**
 * A TCP forwarder for tests that can cut the network path of the flows it
 * carries without closing them: `freeze()` stops moving bytes both ways on
 * every flow open now (nothing is closed, nothing is sent; as when a cable
 * is pulled or a NAT forgets the mapping), while new flows pass normally.
 */
import net from 'node:net';

export interface FreezeProxy {
  /** `127.0.0.1:port` to give out instead of the target. */
  readonly address: string;
  /** Flows open now (frozen ones included). */
  readonly flows: number;
  /** Silently stop every open flow. */
  freeze(): void;
  close(): Promise<void>;
}

/** `target` may be a function: the proxy can start before the thing it forwards to. */
export async function startFreezeProxy(target: { host: string; port: number } | (() => { host: string; port: number })): Promise<FreezeProxy> {
  const flows = new Set<{ a: net.Socket; b: net.Socket; frozen: boolean }>();
  const server = net.createServer((a) => {
    const b = net.connect(typeof target === 'function' ? target() : target);
    const flow = { a, b, frozen: false };
    flows.add(flow);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (d) => {
        if (!flow.frozen && !to.destroyed) to.write(d);
      });
    forward(a, b);
    forward(b, a);
    const end = () => {
      flows.delete(flow);
      a.destroy();
      b.destroy();
    };
    for (const s of [a, b]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        if (!flow.frozen) end();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    get flows() {
      return flows.size;
    },
    freeze() {
      for (const f of flows) f.frozen = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const f of flows) {
          f.a.destroy();
          f.b.destroy();
        }
        server.close(() => r());
      }),
  };
}
