/**
 * The gateway-system programs as a user runs them: `gatesock up`, `serve`,
 * `connect`, `controller` and `gateway`, each the built `dist/cli/main.js`
 * in its own process on loopback, checked by output, exit status and the
 * bytes that cross the tunnel. Needs a fresh `dist/` (`npm run build`).
 *
 * Long-running children are spawned with {@link start} and stopped with a
 * signal; every wait has a deadline, and afterAll kills whatever is left.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/cli/errors.js';
import { Procs, repo, runCli, waitFor, type Child } from './helpers/cli-processes.js';
import { startConnectProxy } from './helpers/connect-proxy.js';

const procs = new Procs();
/** Spawn `script` (default: the CLI) with `args` in `cwd`; killed after the file. */
const start = (args: string[], cwd: string, script?: string): Child => procs.start(args, cwd, script);

/** Send `signal` and resolve with the exit status (null: killed by a signal), failing after `ms`. */
async function stop(child: Child, signal: NodeJS.Signals = 'SIGTERM', ms = 15_000): Promise<number | null> {
  child.proc.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit ${ms} ms after ${signal}\n${child.stdout}\n${child.stderr}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run a short-lived CLI command to its end. */
const run = (args: string[], cwd: string, timeout = 20_000) => runCli(args, cwd, timeout);

/** A TCP port free right now on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The JSON log lines of a child's stdout. */
function logLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let work: string;
let web: Server;
let webPort: number;
const PAGE = `<h1>through the tunnel ${Math.random().toString(36).slice(2)}</h1>`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatesock-cli-relay-'));
  web = createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(req.url === '/big' ? 'x'.repeat(1 << 20) : PAGE);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await procs.killAll();
  await new Promise<void>((resolve) => web?.close(() => resolve()));
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('gatesock up, serve and connect', () => {
  let dir: string;
  let up: Child;
  let controller: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(work, 'up-'));
    const port = await freePort();
    controller = `127.0.0.1:${port}`;
    up = start(['up', '--port', String(port)], dir);
    await waitFor(up, 'stdout', /^Ctrl-C stops\.$/m);
  });

  it('up prints its addresses and the exact serve and connect command lines', () => {
    expect(up.stdout).toMatch(new RegExp(`^controller\\s+${controller}$`, 'm'));
    expect(up.stdout).toMatch(/^gateway-1\s+127\.0\.0\.1:\d+$/m);
    expect(up.stdout).toMatch(/^gateway-2\s+127\.0\.0\.1:\d+$/m);
    const root = join(dir, '.gatesock', 'root', 'cert.pem');
    expect(up.stdout).toContain(`gatesock serve --forward 127.0.0.1:8080 --pcid my-web --controller ${controller} --root ${root}`);
    expect(up.stdout).toContain(`gatesock connect my-web --listen 127.0.0.1:8081 --controller ${controller} --root ${root}`);
    expect(existsSync(join(dir, '.gatesock', 'controller.db'))).toBe(true);
  });

  it('serve and connect tunnel an HTTP server (page and 1 MiB body intact), then exit 0 on SIGTERM', async () => {
    // --root and --identity are left to their defaults: ./.gatesock from `up` in the same folder.
    const serve = start(['serve', '--forward', `127.0.0.1:${webPort}`, '--pcid', 'web', '--controller', controller], dir);
    await waitFor(serve, 'stdout', /^gateway\s+127\.0\.0\.1:\d+/m);
    expect(serve.stdout).toMatch(/^pcid\s+web$/m);
    const msid = (await waitFor(serve, 'stdout', /^msid\s+(MSID-[0-9A-F]{64})$/m))[1]!;
    expect(existsSync(join(dir, '.gatesock', 'server-identity', 'cert.pem'))).toBe(true);

    const connect = start(['connect', 'web', '--listen', '127.0.0.1:0', '--controller', controller], dir);
    const local = (await waitFor(connect, 'stdout', /^listening on (127\.0\.0\.1:\d+), forwarding to web$/m))[1]!;
    expect(connect.stdout).toContain(`found    web (${msid})`);

    const [page, big] = await Promise.all([fetch(`http://${local}/`).then((r) => r.text()), fetch(`http://${local}/big`).then((r) => r.text())]);
    expect(page).toBe(PAGE);
    expect(big.length).toBe(1 << 20);
    expect(big).toBe('x'.repeat(1 << 20));
    // A line per forwarded connection on the serve side, with byte counts (the 1 MiB body went back).
    await waitFor(serve, 'stderr', /^close\s+#\d+ \d+ B to 127\.0\.0\.1:\d+, (10[4-9]\d{4}) B back$/m);
    expect(serve.stderr).toMatch(/^open\s+#\d+ from MSID-[0-9A-F]{64}$/m);

    expect(await stop(connect)).toBe(EXIT.ok);
    expect(await stop(serve)).toBe(EXIT.ok);
    // `up` saw the server log in.
    expect(up.stdout).toContain(`server ${msid} is on gateway-`);
  });

  it('serve and connect leave through an HTTP CONNECT proxy (--proxy user:password@host:port) and the tunnel still works', async () => {
    const auth = { username: 'op', password: 'pw' };
    const proxy = await startConnectProxy({ auth });
    try {
      const via = `${auth.username}:${auth.password}@127.0.0.1:${proxy.port}`;
      const serve = start(['serve', '--forward', `127.0.0.1:${webPort}`, '--pcid', 'web-proxied', '--identity', join(dir, 'proxied-id'), '--controller', controller, '--proxy', via], dir);
      await waitFor(serve, 'stdout', /^gateway\s+127\.0\.0\.1:\d+/m);
      const connect = start(['connect', 'web-proxied', '--listen', '127.0.0.1:0', '--controller', controller, '--proxy', via], dir);
      const local = (await waitFor(connect, 'stdout', /^listening on (127\.0\.0\.1:\d+), forwarding to web-proxied$/m))[1]!;
      expect(await fetch(`http://${local}/`).then((r) => r.text())).toBe(PAGE);
      // Every hop of both went through the proxy: logins and lookups at the controller, sessions to the gateway.
      expect(proxy.requests.filter((r) => r.startsWith(`CONNECT ${controller} `)).length).toBeGreaterThanOrEqual(2);
      expect(proxy.requests.some((r) => !r.startsWith(`CONNECT ${controller} `))).toBe(true);
      expect(await stop(connect)).toBe(EXIT.ok);
      expect(await stop(serve)).toBe(EXIT.ok);
    } finally {
      await proxy.close();
    }
  });

  it('connect names an unknown PCID or an offline server at once: its line and exit status 7', async () => {
    const r = await run(['connect', 'unknown-name', '--listen', '127.0.0.1:0', '--controller', controller], dir);
    expect(r.stderr).toMatch(/^gatesock: GS_ERR_UNKNOWN_PCID: .*"unknown-name"/m);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.status).toBe(EXIT.relay);
    // "web" is known, but its serve stopped in the test before: offline, same status.
    const offline = await run(['connect', 'web', '--controller', controller], dir);
    expect(offline.stderr.trim()).toMatch(/^gatesock: GS_ERR_SERVER_OFFLINE: server "web" \(MSID-[0-9A-F]{64}\) has no session on any gateway now$/);
    expect(offline.status).toBe(EXIT.relay);
  });

  it('connect and serve say when the controller cannot be reached (exit 4), the root certificate is missing (exit 3) or belongs to another system (exit 5)', async () => {
    const closed = await freePort();
    const unreachable = await run(['connect', 'web', '--controller', `127.0.0.1:${closed}`], dir);
    expect(unreachable.stderr.trim()).toMatch(new RegExp(`^gatesock: GS_ERR_CONNECT_FAILED: cannot reach the controller at 127\\.0\\.0\\.1:${closed}: ECONNREFUSED$`));
    expect(unreachable.status).toBe(EXIT.transport);
    const noRoot = await run(['serve', '--forward', `127.0.0.1:${webPort}`, '--controller', controller, '--root', 'nope.pem'], dir);
    expect(noRoot.stderr.trim()).toMatch(/^gatesock: GS_ERR_INVALID_OPTION: cannot read the root certificate nope\.pem: ENOENT/);
    expect(noRoot.status).toBe(EXIT.config);
    // Another gateway system's root: the controller's certificate does not chain to it.
    expect((await run(['pki', 'init', 'other-pki', '--gateways', '0'], dir)).status).toBe(EXIT.ok);
    const wrongRoot = await run(['connect', 'web', '--controller', controller, '--root', 'other-pki/root/cert.pem'], dir);
    expect(wrongRoot.stderr.trim()).toMatch(/^gatesock: GS_ERR_(CERT_UNTRUSTED|CERT_BAD_SIGNATURE|PEER_REJECTED|HANDSHAKE_FAILED): /);
    expect(wrongRoot.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongRoot.status).toBe(EXIT.trust);
  });

  it('up stops cleanly on SIGTERM, and reuses its PKI and database on the next run', async () => {
    expect(await stop(up)).toBe(EXIT.ok);
    expect(up.stdout).toMatch(/^stopping$/m);
    const port = await freePort();
    const again = start(['up', '--port', String(port)], dir);
    await waitFor(again, 'stdout', /^Ctrl-C stops\.$/m);
    expect(again.stdout).toContain(`(reusing ${join(dir, '.gatesock')})`);
    // The server keeps its PCID: the database survived.
    const serve = start(['serve', '--forward', `127.0.0.1:${webPort}`, '--controller', `127.0.0.1:${port}`], dir);
    await waitFor(serve, 'stdout', /^pcid\s+web$/m);
    expect(await stop(serve)).toBe(EXIT.ok);
    expect(await stop(again, 'SIGINT')).toBe(EXIT.ok);
  });
});

describe('gatesock controller and gateway', () => {
  let dir: string;
  let controller: Child;
  let controllerAddress: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(work, 'system-'));
    const pki = await run(['pki', 'init', join(dir, 'pki'), '--gateways', '2'], dir);
    expect(pki.status).toBe(EXIT.ok);
  });

  it('controller reads a YAML config, and a flag overrides it', async () => {
    const [filePort, flagPort] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, 'controller.yaml'),
      [
        '# paths are relative to this file',
        'pki: pki',
        `listen: 127.0.0.1:${filePort}`,
        'db: ":memory:"',
        'keepalive: 200',
        'gateway-timeout: 1000',
        'strategy: weighted-load',
        '',
      ].join('\n'),
    );
    controllerAddress = `127.0.0.1:${flagPort}`;
    // Run from another folder: the config's relative pki path must still resolve.
    controller = start(['controller', '--config', join(dir, 'controller.yaml'), '--listen', controllerAddress], work);
    await waitFor(controller, 'stdout', /"msg":"controller ready"/);
    const logs = logLines(controller.stdout);
    const listening = logs.find((l) => l.msg === 'controller listening');
    expect(listening).toMatchObject({ address: controllerAddress, strategy: expect.stringMatching(/weighted/) });
    expect(logs.find((l) => l.msg === 'controller ready')).toMatchObject({ db: ':memory:', keepaliveMs: 200, gatewayTimeoutMs: 1000 });
  });

  it('a bad key or a bad value in the config file, or a bad flag value, is one clear line and exit status 3', async () => {
    const bad = async (yaml: string, extra: string[] = []): Promise<string> => {
      writeFileSync(join(dir, 'bad.yaml'), yaml);
      const r = await run(['controller', '--config', join(dir, 'bad.yaml'), '--db', ':memory:', ...extra], dir, 10_000);
      expect(r.status, r.stderr).toBe(EXIT.config);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      return r.stderr.trim();
    };
    expect(await bad('pki: pki\nkeepalive-ms: 100\n')).toMatch(/^gatesock: GS_ERR_INVALID_OPTION: config file .*bad\.yaml: unknown key "keepalive-ms" \(known keys: pki, listen, /);
    expect(await bad('pki: pki\nkeepalive: fast\n')).toMatch(/config file .*bad\.yaml: key "keepalive" must be an integer from 10 up, got "fast"$/);
    expect(await bad('pki: pki\nlisten: localhost\n')).toMatch(/key "listen" must be "host:port"/);
    expect(await bad('pki: pki\n', ['--strategy', 'random'])).toMatch(/--strategy must be one of least-sessions, weighted-load, got "random"$/);
    expect(await bad('pki: pki\nkeepalive: 5000\ngateway-timeout: 5000\n')).toMatch(/gateway-timeout \(5000 ms\) must be greater than keepalive \(5000 ms\)$/);
    expect(await bad('pki: [unclosed\n')).toMatch(/is not valid YAML/);
    expect(await bad('listen: 127.0.0.1:0\n')).toMatch(/pki is required: pass --pki or set "pki:" in the --config file$/);
    expect(await bad('pki: elsewhere\n')).toMatch(/elsewhere is not a PKI folder/);
  });

  it('gateway SIGTERM drains: its server moves to the other gateway, and it exits 0 well before the drain timeout', async () => {
    // pass-through off here (on in the sample config below): every byte sealed on every hop, and still relayed.
    writeFileSync(join(dir, 'gateway.yaml'), `pki: pki\ncontroller: ${controllerAddress}\ndrain-timeout: 20000\npass-through: off\n`);
    const gateways = ['gateway-1', 'gateway-2'].map((name) => start(['gateway', '--config', join(dir, 'gateway.yaml'), '--name', name], dir));
    const addresses = await Promise.all(gateways.map(async (g) => (await waitFor(g, 'stdout', /"address":"(127\.0\.0\.1:\d+)"[^\n]*"msg":"gateway listening"/))[1]!));
    expect(new Set(addresses).size).toBe(2);
    for (const g of gateways) expect(logLines(g.stdout).find((l) => l.msg === 'gateway listening')).toMatchObject({ passThrough: false });

    const serve = start(
      ['serve', '--forward', `127.0.0.1:${webPort}`, '--pcid', 'drained', '--controller', controllerAddress, '--root', 'pki/root/cert.pem', '--identity', 'server-id'],
      dir,
    );
    const on = (await waitFor(serve, 'stdout', /^gateway\s+(127\.0\.0\.1:\d+)/m))[1]!;
    const held = addresses.indexOf(on);
    expect(held).toBeGreaterThanOrEqual(0);
    const other = addresses[1 - held]!;

    const began = Date.now();
    expect(await stop(gateways[held]!, 'SIGTERM', 15_000)).toBe(EXIT.ok);
    expect(Date.now() - began).toBeLessThan(10_000);
    const logs = logLines(gateways[held]!.stdout).map((l) => l.msg);
    expect(logs).toContain('draining (send SIGTERM again to close at once)');
    expect(logs).toContain('drained and closed');
    // The server was told to move and is online on the other gateway, still reachable.
    await waitFor(serve, 'stderr', new RegExp(`^online as drained via gateway ${other.replace(/\./g, '\\.')}`, 'm'));
    // It moved without ever going offline: a drain, not a close (which would have dropped its session).
    expect(serve.stderr).not.toMatch(/^offline/m);
    expect(logs).toContain('draining'); // the library's own line: it told its servers to move
    const connect = start(['connect', 'drained', '--no-pass-through', '--controller', controllerAddress, '--root', 'pki/root/cert.pem'], dir);
    const local = (await waitFor(connect, 'stdout', /^listening on (127\.0\.0\.1:\d+)/m))[1]!;
    expect(await fetch(`http://${local}/`).then((r) => r.text())).toBe(PAGE);
    expect(await stop(connect)).toBe(EXIT.ok);
    expect(await stop(serve)).toBe(EXIT.ok);
    expect(await stop(gateways[1 - held]!)).toBe(EXIT.ok);
  });

  it('the reference servers run with their sample configs (every key known and valid) and stop with exit 0', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const entry = (name: string): string => join(repo, 'reference-servers', name, 'main.mjs');
    const spawnEntry = (name: string, args: string[]): Child => start(args, dir, entry(name));
    const ctl = spawnEntry('controller', ['--pki', 'pki', '--listen', address, '--db', ':memory:']);
    await waitFor(ctl, 'stdout', /"msg":"controller ready"/);
    // The sample's values, not the flags', where no flag was given.
    expect(logLines(ctl.stdout).find((l) => l.msg === 'controller ready')).toMatchObject({ keepaliveMs: 5000, gatewayTimeoutMs: 15000 });
    const gw = spawnEntry('gateway', ['--pki', 'pki', '--name', 'gateway-2', '--controller', address]);
    await waitFor(gw, 'stdout', /"msg":"gateway listening"/);
    expect(logLines(gw.stdout).find((l) => l.msg === 'gateway listening')).toMatchObject({ capacity: 1000, gateway: 'gateway-2', passThrough: true });
    expect(await stop(gw)).toBe(EXIT.ok);
    const badSwitch = await run(['gateway', '--pki', 'pki', '--name', 'gateway-2', '--controller', address, '--pass-through', 'maybe'], dir, 10_000);
    expect(badSwitch.status, badSwitch.stderr).toBe(EXIT.config);
    expect(badSwitch.stderr.trim()).toMatch(/--pass-through must be on or off, got "maybe"$/);
    expect(await stop(ctl)).toBe(EXIT.ok);
    expect(ctl.stderr + gw.stderr).toBe('');
  });

  it('controller closes and exits 0 on SIGTERM', async () => {
    expect(await stop(controller)).toBe(EXIT.ok);
    expect(logLines(controller.stdout).map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'closed']));
  });
});
