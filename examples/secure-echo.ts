/**
 * secure-echo: a whole gatesock program in one file. A gateway accepts secure
 * sessions on loopback and echoes every connection. A server connects to it,
 * opens one connection over the session, sends a line and prints the echo.
 * Both ends check each other's certificate during the handshake.
 *
 * Run: npx tsx examples/secure-echo.ts
 * `gatesock demo` (src/cli/demo.ts) does the same with more detail.
 */
// Users write `from 'gatesock'`. The example imports the source so it runs without a build.
import {
  certificateVerifier, createIdentity, createRootCa, createServerIdentity, generateIdentityKey,
  issueCertificate, msidOf, MuxSession, parseCertificate, secureAccept, secureConnect, tcpConnect, tcpListen,
} from '../src/index.js';

// 1. The operator of the gateway system: a root CA, and a gateway certificate signed by it.
const rootKey = generateIdentityKey();
const root = createRootCa({ commonName: 'example root', validDays: 1, key: rootKey });
const gatewayKey = generateIdentityKey();
const gatewayCert = issueCertificate({
  role: 'gateway', commonName: 'example-gateway', publicKey: gatewayKey.publicKey,
  issuer: { key: rootKey, certificate: root }, validDays: 1,
});
const gateway = createIdentity(gatewayKey, [gatewayCert]);

// 2. The gateway: accept TCP, run the handshake (any self-signed server may
//    connect), then echo every connection the server opens over the session.
const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, (stream) => {
  const verifyPeer = certificateVerifier({ role: 'server', allowSelfSignedServer: true });
  secureAccept(stream, { identity: gateway, verifyPeer }).then((channel) => {
    console.log(`gateway sees   ${channel.peer.role} ${channel.peer.msid}`);
    new MuxSession(channel, { role: 'responder' }).on('connection', (conn) => {
      conn.on('data', (chunk) => {
        if (conn.write(chunk)) return;
        conn.pause(); // backpressure: stop reading until the reply has gone out
        conn.once('drain', () => conn.resume());
      });
      conn.on('end', () => conn.end()); // the server finished sending: finish ours too
      conn.resume(); // streams start paused
    });
  }, (err) => console.error('gateway: handshake failed:', err.code, err.message));
});

// 3. The server: a self-signed identity (its MSID is the hash of its certificate).
//    It trusts only gateways whose certificate chains to the root.
const server = createServerIdentity();
console.log(`server         ${msidOf(parseCertificate(server.certificateChain[0]!))}`);
const channel = await secureConnect(await tcpConnect({ host: '127.0.0.1', port: listener.port }), {
  identity: server,
  verifyPeer: certificateVerifier({ roots: [root], role: 'gateway' }),
});
console.log(`server sees    ${channel.peer.role} ${channel.peer.msid}`);

// 4. One connection over the session: send a line, read until the gateway ends its side.
const session = new MuxSession(channel, { role: 'initiator' });
const conn = session.open();
const echoed = await new Promise<string>((resolve, reject) => {
  const decoder = new TextDecoder();
  let text = '';
  conn.on('data', (chunk) => (text += decoder.decode(chunk, { stream: true })));
  conn.on('end', () => resolve(text + decoder.decode()));
  conn.on('close', (err) => err && reject(err)); // err is a GatesockError: match on err.code
  conn.resume();
  conn.write(new TextEncoder().encode('hello through gatesock\n'));
  conn.end();
});
console.log(`echo           ${echoed.trimEnd()}`);

// 5. Close cleanly: GO_AWAY, wait for open connections, end the transport; then stop listening.
await session.close();
await listener.close();
