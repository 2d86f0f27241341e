/**
 * port-forward: reach a TCP service through the relay, as `gatesock serve
 * --forward` and `gatesock connect --listen` do. A local HTTP server stands
 * for the service behind NAT; `serveTcp` publishes it under a PCID, and
 * `forwardTcp` opens a local port on the other side whose every connection
 * is carried to it through the gateway. Then plain `fetch` gets a page.
 *
 *   fetch → 127.0.0.1:<forward port> ─► gateway ─► server ─► 127.0.0.1:<http port>
 *
 * Run: npx tsx examples/port-forward.ts
 */
// Users write `from 'gatesock'` (or 'gatesock/relay', 'gatesock/socket').
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServerIdentity } from '../src/index.js';
import { forwardTcp, serveTcp } from '../src/socket/index.js';
import { startLoopbackSystem } from './support/loopback-system.js';

// 1. A gateway system on loopback (see relay-echo.ts for each step).
const loopback = await startLoopbackSystem();
const system = loopback.relay;

// 2. The service: an ordinary HTTP server, listening only on loopback.
const http = createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from the HTTP server behind the relay (you asked for ${req.url})\n`);
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const httpPort = (http.address() as AddressInfo).port;
console.log(`http server    127.0.0.1:${httpPort}`);

// 3. The machine with the service publishes it: each relayed connection to its
//    PCID becomes a TCP connection to the HTTP server. The `pcid` option asks
//    for a readable name (1–31 printable ASCII characters).
const served = await serveTcp({ host: '127.0.0.1', port: httpPort }, { ...system, identity: createServerIdentity(), pcid: 'example-web' });
console.log(`served as      PCID "${served.pcid}" on gateway ${served.gateway?.address}`);

// 4. The machine that wants the service listens on a local port (0: any free one);
//    each accepted connection is carried to "example-web" through the gateway.
const forwarder = await forwardTcp({ ...system, pcid: 'example-web', port: 0 });
forwarder.events.on('open', (id) => console.log(`forward        connection ${id} open`));
forwarder.events.on('close', (id, bytesIn, bytesOut) => console.log(`forward        connection ${id} closed (${bytesOut} B out, ${bytesIn} B in)`));
console.log(`forwarding     ${forwarder.address} → example-web`);

// 5. Any TCP client can use the local port; here, fetch.
const res = await fetch(`http://${forwarder.address}/through-the-tunnel`, { headers: { connection: 'close' } });
console.log(`fetch          HTTP ${res.status}: ${(await res.text()).trimEnd()}`);

// 6. Close everything.
await forwarder.close();
await served.close();
await new Promise<void>((resolve) => http.close(() => resolve()));
await loopback.close();
console.log('closed');
