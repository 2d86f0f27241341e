/**
 * relay-echo: the whole gateway system in one file. A controller and one
 * gateway run in this process on loopback; an echo server registers with
 * `serverStart` (it gets a PCID, its name in the system); a client finds it
 * by that PCID with `clientConnect` and talks to it with the seed's
 * send/recv style. Bytes go client → gateway → server and back, encrypted
 * on every hop and end to end (the gateway cannot read them).
 *
 * Run: npx tsx examples/relay-echo.ts
 */
// Users write `from 'gatesock'` (or 'gatesock/relay', 'gatesock/socket').
// The example imports the source so it runs without a build.
import { createIdentity, createRootCa, createServerIdentity, generateIdentityKey, issueCertificate, type Identity } from '../src/index.js';
import { Controller, Gateway, MemoryServerStore } from '../src/relay/index.js';
import { clientConnect, serverStart, type SockIo } from '../src/socket/index.js';

// 1. The operator's PKI: a root CA, and certificates it signs for the
//    controller and the gateway. Applications ship only the root certificate.
//    (In production: `gatesock pki init DIR`, then loadPki(DIR).)
const rootKey = generateIdentityKey();
const root = createRootCa({ commonName: 'example root', validDays: 1, key: rootKey });
const issue = (role: 'controller' | 'gateway', name: string): Identity => {
  const key = generateIdentityKey();
  return createIdentity(key, [issueCertificate({ role, commonName: name, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 })]);
};

// 2. The gateway system: a controller (directory + load balancer) and one gateway
//    that registers with it. Both listen on a free port of 127.0.0.1.
const controller = await Controller.start({ identity: issue('controller', 'example-controller'), roots: [root], store: new MemoryServerStore() });
const gateway = await Gateway.start({ identity: issue('gateway', 'example-gateway'), roots: [root], controller: controller.address });
console.log(`controller     ${controller.address}`);
console.log(`gateway        ${gateway.address}`);

// What every server and client needs: where the controller is, and the root to trust.
const system = { controller: controller.address, roots: [root] };

// 3. The echo server. Its identity is a self-signed certificate; its MSID is the
//    certificate's hash (keep it on disk with loadOrCreateServerIdentity(dir) so
//    the server keeps its name across restarts). serverStart resolves once its
//    server session is up on the gateway the controller picked.
const server = await serverStart({ ...system, identity: createServerIdentity() }, async (sock: SockIo) => {
  console.log(`server         accepted connection ${sock.info.connectionId} from ${sock.info.peerMsid?.slice(0, 17)}…`);
  // recv resolves with 1..max bytes, or an empty array at end of stream.
  for (let data = await sock.recv(); data.length > 0; data = await sock.recv()) {
    // send accepts at least one byte and says how many: loop until all are gone.
    for (let off = 0; off < data.length; ) off += await sock.send(data.subarray(off));
  }
  await sock.disconnect(); // the client finished sending: finish our side too
});
console.log(`server         online as PCID "${server.pcid}" (${server.msid.slice(0, 17)}…)`);

// 4. The client: connect by PCID. The controller says which gateway holds the
//    server; the client checks end to end that the server's certificate hashes
//    to the MSID the controller gave, so a gateway cannot pretend to be it.
const sock = await clientConnect(server.pcid!, system);
sock.setTimeout(5000); // send/recv reject with GS_ERR_TIMEOUT after 5 s
console.log(`client         connected to ${sock.info.pcid} through the gateway, end to end: ${sock.info.endToEnd}`);

for (const line of ['hello through gatesock', 'second line']) {
  const bytes = new TextEncoder().encode(line);
  for (let off = 0; off < bytes.length; ) off += await sock.send(bytes.subarray(off));
  // Read until the whole line has come back (it may arrive in pieces).
  let echoed = '';
  while (echoed.length < line.length) echoed += new TextDecoder().decode(await sock.recv());
  console.log(`echo           ${echoed}`);
}

// 5. Close: the client ends its side, the server's loop sees end of stream and
//    disconnects; then stop the server, the gateway and the controller.
await sock.disconnect();
await server.close();
await gateway.close();
await controller.close();
console.log('closed');
