/**
 * keyaddress: a server reachable only at secret IPv6 addresses that change
 * every session (seed paper 002, "key addresses"), and a client that knows
 * the passphrase, in one file.
 *
 * - As root on Linux, it makes a throwaway network namespace with a random
 *   ULA /64 routed locally (`ip -6 route add local PREFIX/64 dev lo`), runs
 *   itself inside it (Node cannot switch namespace in-process), and deletes
 *   it afterwards: a KeyAddressListener admits the client at its current key
 *   address, found by name (`device.example`) through the key-address
 *   lookup and through the DNS responder; a used and a random address are
 *   refused.
 * - Otherwise (or with `--relay`) it shows the same idea over the relay: a
 *   server registered under secret PCIDs from the same sequence.
 *
 * Run: npx tsx examples/keyaddress.ts [--relay]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { connect, type Socket } from 'node:net';
// Users write `from 'gatesock/keyaddress'`; the example imports the source so it runs without a build.
import {
  KeyAddressClient,
  KeyAddressDnsResponder,
  KeyAddressListener,
  KeyAddressRelayClient,
  KeyAddressRelayServer,
  KeyAddressServer,
  RELAY_PCID_SLOT,
  createKeyAddressLookup,
  formatIpv6,
  parsePrefix,
} from '../src/keyaddress/index.js';

const secret = { passphrase: 'correct horse battery staple' };
const args = process.argv.slice(2);
const inside = args.indexOf('--inside');

if (inside >= 0) await overIpv6(args[inside + 1]!);
else if (args.includes('--relay')) await overRelay('asked for with --relay');
else {
  const why = await whyNoNamespace();
  if (why === undefined) await inNamespace();
  else await overRelay(why);
}

/** Root on Linux with `ip netns`? undefined if so, else why not. */
async function whyNoNamespace(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `key-address listeners need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'not root: a local /64 route needs CAP_NET_ADMIN';
  return (await run('ip', ['netns', 'list'])).ok ? undefined : 'the `ip` command (iproute2) is missing';
}

function run(cmd: string, argv: string[], inherit = false): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: inherit ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ ok: false, err: e.message }));
    child.on('exit', (code) => resolve({ ok: code === 0, err }));
  });
}

/** Make the namespace and the route, run this file inside it, delete the namespace. */
async function inNamespace(): Promise<void> {
  const ns = `gs-example-${randomBytes(3).toString('hex')}`;
  const p = new Uint8Array(16);
  p.set(randomBytes(8));
  p[0] = 0xfd;
  const prefix = `${formatIpv6(p)}/64`;
  try {
    for (const argv of [['netns', 'add', ns], ['-n', ns, 'link', 'set', 'lo', 'up'], ['-n', ns, '-6', 'route', 'add', 'local', prefix, 'dev', 'lo']]) {
      const r = await run('ip', argv);
      if (!r.ok) throw new Error(`ip ${argv.join(' ')}: ${r.err.trim()}`);
    }
    console.log(`namespace   ${ns}: ip -6 route add local ${prefix} dev lo`);
    const r = await run('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, process.argv[1]!, '--inside', prefix], true);
    if (!r.ok) process.exitCode = 1;
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
}

/** One line to `[address]:port` (or a name with `lookup`); resolves with the reply, or how it failed. */
function talk(options: { host: string; port: number; lookup?: ReturnType<typeof createKeyAddressLookup> }, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect(options);
    let reply = '';
    s.on('connect', () => s.write(line + '\n'));
    s.on('data', (d) => {
      reply += d;
      if (reply.endsWith('\n')) {
        s.end();
        resolve(reply.trim());
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`refused (${e.code === 'ECONNRESET' ? 'reset after accept' : e.code})`));
    s.on('close', () => resolve(reply ? reply.trim() : 'refused (closed)'));
  });
}

/** Inside the namespace: listener, lookup, DNS responder. */
async function overIpv6(prefix: string): Promise<void> {
  const port = 2222;
  // Both ends derive the sequence from the passphrase (scrypt, once each).
  const window = await KeyAddressServer.fromPassphrase(secret, { prefix });
  const client = await KeyAddressClient.fromPassphrase(secret, { prefix });

  const listener = await KeyAddressListener.listen({ prefix, port, windows: [window] }, (socket, info) => {
    socket.once('data', (d) => socket.end(`echo ${String(d).trim()} (at ${info.address})\n`));
    socket.on('error', () => undefined);
  });
  listener.on('refused', (r) => console.log(`server      reset a connection to ${r.address}: ${r.reason} (${r.detail})`));
  console.log(`server      listening on [::]:${port}, admitting the key addresses of ${prefix}`);

  // 1. The seed's DNS masquerade, in process: a lookup function for net.connect.
  let used = '';
  const lookup = createKeyAddressLookup({
    names: {
      'device.example': {
        next: () => {
          used = client.next().address;
          console.log(`client      device.example → ${used}`);
          return used;
        },
      },
    },
  });
  console.log(`reply       ${await talk({ host: 'device.example', port, lookup }, 'hello over a key address')}`);

  // 2. The address is retired: connecting to it again is refused.
  console.log(`again       ${used} → ${await talk({ host: used, port }, 'hello again')}`);

  // 3. So is a random address of the /64.
  const b = parsePrefix(prefix).bytes;
  b.set(randomBytes(8), 8);
  const random = formatIpv6(b);
  console.log(`random      ${random} → ${await talk({ host: random, port }, 'guess')}`);

  // 4. For programs that cannot take a lookup function: a DNS responder on loopback.
  const responder = await KeyAddressDnsResponder.start({ names: { 'device.example': client } });
  const resolver = new dns.Resolver();
  resolver.setServers([responder.server]);
  const [next] = await resolver.resolve6('device.example');
  console.log(`dns         AAAA device.example @${responder.server} → ${next}`);
  console.log(`reply       ${await talk({ host: next!, port }, 'hello via DNS')}`);

  await responder.close();
  await listener.close();
}

/** Without the privilege or IPv6 path: the same idea over the relay. */
async function overRelay(why: string): Promise<void> {
  console.log(`mode        relay (${why})`);
  const { createIdentity, createRootCa, createServerIdentity, generateIdentityKey, issueCertificate } = await import('../src/index.js');
  const { Controller, Gateway, MemoryServerStore } = await import('../src/relay/index.js');
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: 'example root', validDays: 1, key: rootKey });
  const issue = (role: 'controller' | 'gateway', name: string) => {
    const key = generateIdentityKey();
    return createIdentity(key, [issueCertificate({ role, commonName: name, publicKey: key.publicKey, issuer: { key: rootKey, certificate: root }, validDays: 1 })]);
  };
  const controller = await Controller.start({ identity: issue('controller', 'example-controller'), roots: [root], store: new MemoryServerStore() });
  const gateway = await Gateway.start({ identity: issue('gateway', 'example-gateway'), roots: [root], controller: controller.address });
  const system = { controller: controller.address, roots: [root] };

  // The prefix only seeds the sequence here; the PCIDs come from its slot secrets.
  const options = { prefix: '2001:db8:1:2::/64', slots: [RELAY_PCID_SLOT] };
  const window = await KeyAddressServer.fromPassphrase(secret, options);
  const server = await KeyAddressRelayServer.start({ ...system, identity: createServerIdentity(), window }, async (sock) => {
    const line = new TextDecoder().decode(await sock.recv());
    await sock.send(new TextEncoder().encode(`echo ${line}`));
    await sock.disconnect();
  });
  console.log(`server      registered under a secret PCID (${server.pcid!.slice(0, 8)}…)`);

  const client = new KeyAddressRelayClient({ ...system, cursor: await KeyAddressClient.fromPassphrase(secret, options) });
  for (const line of ['hello over a secret PCID', 'next session, next PCID']) {
    const sock = await client.connect();
    await sock.send(new TextEncoder().encode(line));
    console.log(`reply       ${new TextDecoder().decode(await sock.recv())}`);
    await sock.disconnect();
    await server.settled();
    console.log(`server      moved on to ${server.pcid!.slice(0, 8)}…`);
  }
  await server.close();
  await gateway.close();
  await controller.close();
}
