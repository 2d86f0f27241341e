// The secure channel with real X.509 identities over loopback TCP: the
// handshake payload carries the chain, and each side checks role, root or MSID.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { certificateVerifier, createServerIdentity, msidOf, parseCertificate, secureAccept, secureConnect, type SecureChannelOptions } from '../../src/session/index.js';
import { tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { createGatewaySystemPki } from './identity/pki.js';

const pki = createGatewaySystemPki();
const otherPki = createGatewaySystemPki({ rootName: 'gatesock test root' }); // same names, other key
const server = createServerIdentity();

async function overTcp(clientOpts: SecureChannelOptions, serverOpts: SecureChannelOptions) {
  let accepted!: (s: ByteStream) => void;
  const incoming = new Promise<ByteStream>((r) => (accepted = r));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, (s) => accepted(s));
  try {
    const clientStream = await tcpConnect({ host: '127.0.0.1', port: listener.port });
    return await Promise.allSettled([secureConnect(clientStream, clientOpts), incoming.then((s) => secureAccept(s, serverOpts))]);
  } finally {
    await listener.close();
  }
}

describe('secure channel with X.509 identities over TCP', () => {
  it('a server reaches a gateway: the server checks the root and role, the gateway learns the server MSID', async () => {
    const [c, s] = await overTcp(
      { identity: server, verifyPeer: certificateVerifier({ roots: [pki.root], role: 'gateway' }) },
      { identity: pki.gateway, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }) },
    );
    expect(c.status).toBe('fulfilled');
    expect(s.status).toBe('fulfilled');
    const client = (c as PromiseFulfilledResult<Awaited<ReturnType<typeof secureConnect>>>).value;
    const gw = (s as PromiseFulfilledResult<Awaited<ReturnType<typeof secureAccept>>>).value;
    expect(client.peer.role).toBe('gateway');
    expect(client.peer.msid).toBe(msidOf(parseCertificate(pki.gateway.certificateChain[0]!)));
    expect(gw.peer.msid).toBe(msidOf(parseCertificate(server.certificateChain[0]!)));
    expect(gw.peer.role).toBe('server');
    const got = new Promise<string>((r) => gw.once('data', (d) => r(new TextDecoder().decode(d))));
    gw.resume();
    client.write(new TextEncoder().encode('over tls-like noise'));
    expect(await got).toBe('over tls-like noise');
    client.destroy();
    gw.destroy();
  });

  it('refuses a gateway certificate where a controller is expected (GS_ERR_CERT_WRONG_ROLE)', async () => {
    const [c] = await overTcp(
      { identity: server, verifyPeer: certificateVerifier({ roots: [pki.root], role: 'controller' }) },
      { identity: pki.gateway, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }) },
    );
    expect((c as PromiseRejectedResult).reason.code).toBe('GS_ERR_CERT_WRONG_ROLE');
  });

  it('refuses a gateway from another root with the same names (GS_ERR_CERT_UNTRUSTED)', async () => {
    const [c] = await overTcp(
      { identity: server, verifyPeer: certificateVerifier({ roots: [pki.root], role: 'gateway' }) },
      { identity: otherPki.gateway, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }) },
    );
    expect((c as PromiseRejectedResult).reason.code).toBe('GS_ERR_CERT_UNTRUSTED');
  });

  it('end to end: a client pinned to a server MSID refuses another server (GS_ERR_CERT_MSID_MISMATCH)', async () => {
    const impostor = createServerIdentity();
    const [c] = await overTcp(
      { identity: createServerIdentity(), verifyPeer: certificateVerifier({ role: 'server', expectMsid: msidOf(parseCertificate(server.certificateChain[0]!)) }) },
      { identity: impostor, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }) },
    );
    expect((c as PromiseRejectedResult).reason.code).toBe('GS_ERR_CERT_MSID_MISMATCH');
  });

  it('drops a peer that connects and says nothing, within the handshake timeout', async () => {
    let result!: Promise<unknown>;
    const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, (s) => {
      result = secureAccept(s, { identity: pki.gateway, verifyPeer: certificateVerifier({ role: 'server', allowSelfSignedServer: true }), handshakeTimeoutMs: 200 }).catch((e) => e);
    });
    const silent = net.connect(listener.port, '127.0.0.1');
    silent.on('error', () => undefined); // the reset we expect
    const closed = new Promise((r) => silent.on('close', r));
    await new Promise((r) => silent.on('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    expect(((await result) as { code: string }).code).toBe('GS_ERR_HANDSHAKE_TIMEOUT');
    await closed;
    await listener.close();
  });
});
