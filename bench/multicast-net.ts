/**
 * Network namespaces for the multicast updater's real-network benchmark:
 * one sender and N receivers, each in its own namespace, on one Linux bridge,
 * with packet loss injected on each receiver's interface — and a runner for
 * the uftp/uftpd baseline over the same topology.
 *
 * ```text
 *   ns <id>-s (sender)     eth0 fd47:5300::1/64, 10.71.0.1/16 ─┐
 *   ns <id>-r0 (receiver)  eth0 fd47:5300::100/64, 10.71.1.0/16 ─┤ veth ── bridge "gsbr"
 *   ns <id>-r1             eth0 fd47:5300::101/64, 10.71.1.1/16 ─┤        in ns <id>-br
 *   …                                                            ┘        (no multicast snooping:
 *                                                                          group traffic floods)
 * ```
 *
 * Everything lives in namespaces this code creates (the bridge too), so the
 * host's own interfaces and routes are never touched. IPv6 addresses are
 * added with `nodad` so they work at once; every namespace has lo up and the
 * kernel's `ff00::/8` route on eth0 (plus `224.0.0.0/4` for IPv4).
 *
 * Loss: this kernel has no netem, so loss is an nftables rule on the
 * receiver's eth0 ingress hook (netdev family) that drops a random share of
 * UDP packets (ICMPv6 neighbour discovery passes, so addresses keep working):
 *
 * ```text
 * table netdev gsloss {
 *   chain in { type filter hook ingress device "eth0" priority 0; policy accept;
 *              meta l4proto udp numgen random mod 10000 < 500 counter drop }   # 5.00 %
 * }
 * ```
 *
 * Tear-down always happens: `destroy()` deletes every namespace (which takes
 * the veths and the bridge with it), exit and SIGINT/SIGTERM hooks do the
 * same if the process ends first, and `removeStaleNamespaces()` deletes what
 * a SIGKILLed run left behind (namespaces named `gsmc<pid>-…` whose process
 * is gone).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Prefix of every namespace this module creates. */
const PREFIX = 'gsmc';

/** One namespace of the topology. */
export interface NetnsHost {
  /** Namespace name (`ip netns exec NAME …`). */
  readonly ns: string;
  /** Its interface on the bridge. */
  readonly iface: 'eth0';
  /** IPv6 address on eth0 (unique local). */
  readonly address6: string;
  /** IPv4 address on eth0. */
  readonly address4: string;
}

/** Options of {@link createMulticastNet}. */
export interface MulticastNetOptions {
  /** Receivers, 1–200. */
  readonly receivers: number;
  /** UDP loss in percent on every receiver's ingress (0–100, two decimals). Default 0. */
  readonly lossPercent?: number;
}

/** The result of a command run in a namespace. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time it ran, in ms. */
  readonly ms: number;
  /** True when it was killed for exceeding its timeout. */
  readonly timedOut: boolean;
}

/** A live topology. Call `destroy()` when done (an exit hook also does). */
export interface MulticastNet {
  readonly sender: NetnsHost;
  readonly receivers: readonly NetnsHost[];
  /** Every namespace, the bridge's included. */
  readonly namespaces: readonly string[];
  /** Set (or with 0, remove) the UDP loss on one receiver's ingress. */
  setLoss(receiver: NetnsHost, percent: number): void;
  /** Packets the loss rule of a receiver dropped so far. */
  droppedBy(receiver: NetnsHost): number;
  /**
   * Datagrams the kernel of a namespace dropped because a socket's receive
   * buffer was full (Udp6RcvbufErrors + UDP RcvbufErrors): loss the program
   * caused by not reading fast enough, as opposed to the injected loss.
   */
  receiveBufferDrops(host: NetnsHost): number;
  /**
   * UDP the sender has put on the wire so far, counted where its veth
   * enters the bridge (an nftables ingress counter on the bridge port, so
   * every program is measured the same way): packets, and payload bytes
   * (the IP and UDP headers taken off).
   */
  senderUdp(): { packets: number; payloadBytes: number };
  /** Start a command in a namespace. */
  spawnIn(host: NetnsHost, command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Run a command in a namespace to its end, or kill it after `timeoutMs`. */
  runIn(host: NetnsHost, command: string, args: readonly string[], timeoutMs: number, options?: SpawnOptions): Promise<RunResult>;
  /** Kill what `spawnIn` started and delete every namespace. Idempotent. */
  destroy(): void;
}

function sh(args: readonly string[], what: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${what}: \`${args.join(' ')}\` failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces need CAP_NET_ADMIN)';
  for (const tool of ['ip', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  const probe = `${PREFIX}${process.pid}-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  try {
    const veth = spawnSync('ip', ['-n', probe, 'link', 'add', 'name', 'va', 'type', 'veth', 'peer', 'name', 'vb'], { encoding: 'utf8' });
    if (veth.status !== 0) return `veth pairs are not available: ${veth.stderr.trim()}`;
    const br = spawnSync('ip', ['-n', probe, 'link', 'add', 'name', 'gsbr', 'type', 'bridge'], { encoding: 'utf8' });
    if (br.status !== 0) return `bridges are not available: ${br.stderr.trim()}`;
    const nft = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'add table netdev t; add chain netdev t c { type filter hook ingress device "va" priority 0; }'], { encoding: 'utf8' });
    if (nft.status !== 0) return `nftables netdev ingress is not available: ${nft.stderr.trim()}`;
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}

/** Delete namespaces left by runs of this module whose process has gone. */
export function removeStaleNamespaces(): string[] {
  if (!existsSync('/run/netns')) return [];
  const removed: string[] = [];
  for (const name of readdirSync('/run/netns')) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    spawnSync('ip', ['netns', 'del', name]);
    removed.push(name);
  }
  return removed;
}

let serial = 0;

/**
 * Create the topology: the bridge namespace, the sender and `receivers`
 * receiver namespaces, addresses, routes and (optionally) loss. Throws after
 * cleaning up if any step fails.
 */
export function createMulticastNet(options: MulticastNetOptions): MulticastNet {
  const n = options.receivers;
  if (!(Number.isInteger(n) && n >= 1 && n <= 200)) throw new RangeError('receivers must be an integer from 1 to 200');
  removeStaleNamespaces();
  const id = `${PREFIX}${process.pid}-${serial++}`;
  const bridgeNs = `${id}-br`;
  const namespaces: string[] = [bridgeNs];
  const children = new Set<ChildProcess>();
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
  };
  // Ctrl-C or a kill would end the process without 'exit': tear down, then
  // die of the same signal as if we had not been listening.
  const onSignal = (signal: NodeJS.Signals): void => {
    destroy();
    process.kill(process.pid, signal);
  };
  process.on('exit', destroy);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const mkHost = (ns: string, index: number): NetnsHost => ({
    ns,
    iface: 'eth0',
    address6: index < 0 ? 'fd47:5300::1' : `fd47:5300::${(0x100 + index).toString(16)}`,
    address4: index < 0 ? '10.71.0.1' : `10.71.${1 + (index >> 8)}.${index & 255}`,
  });
  const sender = mkHost(`${id}-s`, -1);
  const receivers = Array.from({ length: n }, (_, i) => mkHost(`${id}-r${i}`, i));
  try {
    sh(['ip', 'netns', 'add', bridgeNs], 'bridge namespace');
    sh(['ip', '-n', bridgeNs, 'link', 'add', 'name', 'gsbr', 'type', 'bridge', 'mcast_snooping', '0'], 'bridge');
    sh(['ip', '-n', bridgeNs, 'link', 'set', 'dev', 'gsbr', 'up'], 'bridge up');
    [sender, ...receivers].forEach((h, k) => {
      namespaces.push(h.ns);
      sh(['ip', 'netns', 'add', h.ns], 'namespace');
      const port = `p${k}`;
      sh(['ip', '-n', bridgeNs, 'link', 'add', 'name', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns], 'veth');
      sh(['ip', '-n', bridgeNs, 'link', 'set', 'dev', port, 'master', 'gsbr', 'up'], 'bridge port');
      sh(['ip', '-n', h.ns, 'link', 'set', 'lo', 'up'], 'lo');
      sh(['ip', '-n', h.ns, 'addr', 'add', `${h.address6}/64`, 'dev', 'eth0', 'nodad'], 'IPv6 address');
      sh(['ip', '-n', h.ns, 'addr', 'add', `${h.address4}/16`, 'dev', 'eth0'], 'IPv4 address');
      sh(['ip', '-n', h.ns, 'link', 'set', 'eth0', 'up'], 'eth0 up');
      sh(['ip', '-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'], 'IPv4 multicast route');
    });
    // Count what the sender sends: ingress of its bridge port (p0). At
    // ingress skb->len is the IP packet (no Ethernet header).
    sh(
      [
        'ip', 'netns', 'exec', bridgeNs, 'nft',
        'add table netdev gscount; add chain netdev gscount in { type filter hook ingress device "p0" priority 0; policy accept; }; ' +
          'add rule netdev gscount in meta protocol ip6 meta l4proto udp counter; add rule netdev gscount in meta protocol ip meta l4proto udp counter',
      ],
      'sender counter',
    );
  } catch (err) {
    destroy();
    throw err;
  }

  const net: MulticastNet = {
    sender,
    receivers,
    namespaces,
    setLoss(receiver, percent) {
      if (!(percent >= 0 && percent <= 100)) throw new RangeError('loss percent must be in [0, 100]');
      spawnSync('ip', ['netns', 'exec', receiver.ns, 'nft', 'delete table netdev gsloss']);
      if (percent === 0) return;
      const threshold = Math.round(percent * 100);
      sh(
        [
          'ip', 'netns', 'exec', receiver.ns, 'nft',
          `add table netdev gsloss; add chain netdev gsloss in { type filter hook ingress device "eth0" priority 0; policy accept; }; add rule netdev gsloss in meta l4proto udp numgen random mod 10000 < ${threshold} counter drop`,
        ],
        'loss rule',
      );
    },
    droppedBy(receiver) {
      const r = spawnSync('ip', ['netns', 'exec', receiver.ns, 'nft', 'list table netdev gsloss'], { encoding: 'utf8' });
      const m = /counter packets (\d+)/.exec(r.stdout ?? '');
      return m === null ? 0 : Number(m[1]);
    },
    receiveBufferDrops(host) {
      const out = sh(['ip', 'netns', 'exec', host.ns, 'cat', '/proc/net/snmp6', '/proc/net/snmp'], 'UDP counters');
      const v6 = /^Udp6RcvbufErrors\s+(\d+)/m.exec(out);
      // /proc/net/snmp: a "Udp:" header line of names, then a "Udp:" line of values.
      const udp = out.split('\n').filter((l) => l.startsWith('Udp: '));
      let v4 = 0;
      if (udp.length >= 2) {
        const names = udp[0]!.split(/\s+/);
        const values = udp[1]!.split(/\s+/);
        v4 = Number(values[names.indexOf('RcvbufErrors')] ?? 0);
      }
      return Number(v6?.[1] ?? 0) + v4;
    },
    senderUdp() {
      const out = sh(['ip', 'netns', 'exec', bridgeNs, 'nft', 'list table netdev gscount'], 'sender counter');
      const counts = [...out.matchAll(/counter packets (\d+) bytes (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
      const [v6 = [0, 0], v4 = [0, 0]] = counts;
      // IPv6 header 40 + UDP 8; IPv4 header 20 (no options here) + UDP 8.
      return { packets: v6[0] + v4[0], payloadBytes: v6[1] - 48 * v6[0] + (v4[1] - 28 * v4[0]) };
    },
    spawnIn(host, command, args, spawnOptions = {}) {
      const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], spawnOptions);
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    runIn(host, command, args, timeoutMs, spawnOptions = {}) {
      const started = performance.now();
      const child = net.spawnIn(host, command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      return new Promise((resolve) => {
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
        });
      });
    },
    destroy,
  };
  if ((options.lossPercent ?? 0) > 0) for (const r of receivers) net.setLoss(r, options.lossPercent!);
  return net;
}

/** What one transfer over the topology measured. */
export interface TransferResult {
  /** Wall time of the sender's run, start to exit (every receiver done), in seconds. */
  readonly seconds: number;
  /** UDP payload bytes the sender put on the wire (data, repair and control). */
  readonly payloadBytes: number;
  /** UDP packets the sender put on the wire. */
  readonly packets: number;
  /**
   * CPU time (user + system) in seconds: the sender's process, and each
   * receiver's process from start to exit — for gatesock only the transfer:
   * the sender's without the preparation, the receivers' from listening on
   * (start-up, ~1 s compiling the TypeScript, apart; in the trace).
   */
  readonly cpu: { readonly sender: number; readonly receivers: readonly number[] };
}

/** CPU seconds (user + system) a live process used so far, from /proc; NaN when unreadable. */
function procCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // utime, stime (fields 14, 15)
  } catch {
    return Number.NaN;
  }
}

/** Kernel clock ticks per second (`getconf CLK_TCK`); 100 on Linux. */
const CLOCK_TICKS = 100;

/**
 * `GS_BENCH_PROF=DIR`: gatesock's sender and first receiver run with
 * `node --cpu-prof --cpu-prof-dir DIR` (open the .cpuprofile files in Chrome
 * DevTools or speedscope).
 */
function profileArgs(): string[] {
  const dir = process.env['GS_BENCH_PROF'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/**
 * Node options for every gatesock process of the bench, from
 * `GS_BENCH_NODE_FLAGS` (space-separated; for diagnosis, e.g.
 * `--trace-opt`: what such flags print on stdout goes to
 * `$GS_BENCH_NODE_LOG/r<i>.log` for the receivers when that is set).
 */
function nodeFlags(): string[] {
  return (process.env['GS_BENCH_NODE_FLAGS'] ?? '').split(' ').filter((s) => s !== '');
}

/** The name the warm-up update of {@link GatesockRunOptions.warmUpFile} goes under. */
const WARM_UP_NAME = 'warm-up.bin';

/** Options of {@link runUftp}. */
export interface UftpOptions {
  /** The file to send (its bytes are checked at every receiver afterwards). */
  readonly file: string;
  /** Fixed sending rate in kbit/s (uftp -R; congestion control off). */
  readonly rateKbps: number;
  /** Kill everything and fail after this long. */
  readonly timeoutMs: number;
  /** Default `ipv6`. */
  readonly family?: 'ipv6' | 'ipv4';
  /** UDP port (uftp -p, uftpd -p). Default 1044. */
  readonly port?: number;
  /** Socket buffer bytes for both sides (-B). Default 8 MiB. */
  readonly bufferBytes?: number;
  /** A smaller file the same uftpd daemons take first, unmeasured (as {@link GatesockRunOptions.warmUpFile}). */
  readonly warmUpFile?: string;
}

/** SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { createReadStream } = await import('node:fs');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Deliver `file` to every receiver with Debian's uftp (sender) and uftpd
 * (one per receiver namespace), open group, fixed rate, no encryption;
 * check every received copy byte for byte (by SHA-256), and return the
 * sender's wall time and what it put on the wire. Throws when uftp fails,
 * times out, or a copy differs.
 */
export async function runUftp(net: MulticastNet, options: UftpOptions): Promise<TransferResult> {
  const { mkdtempSync, rmSync, statSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { basename, join } = await import('node:path');
  const family = options.family ?? 'ipv6';
  const pub = family === 'ipv6' ? 'ff15::4753:10' : '239.255.71.10';
  const priv = family === 'ipv6' ? 'ff15::4753:11' : '239.255.71.11';
  const port = String(options.port ?? 1044);
  const buf = String(options.bufferBytes ?? 8 << 20);
  const addr = (h: NetnsHost) => (family === 'ipv6' ? h.address6 : h.address4);
  const root = mkdtempSync(join(tmpdir(), `${PREFIX}-uftp-`));
  const daemons: ChildProcess[] = [];
  try {
    const dirs = net.receivers.map((_, i) => {
      const d = join(root, `r${i}`);
      rmSync(d, { recursive: true, force: true });
      return d;
    });
    const { mkdirSync } = await import('node:fs');
    for (const d of dirs) mkdirSync(d, { recursive: true });
    // uftpd -d stays in the foreground; it prints its start-up lines once listening.
    const ready = net.receivers.map((r, i) => {
      const child = net.spawnIn(r, 'uftpd', ['-d', '-q', '-D', dirs[i]!, '-I', addr(r), '-M', pub, '-p', port, '-B', buf, '-x', '1'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      daemons.push(child);
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 3000); // quiet daemons: assume listening after 3 s
        child.stderr!.once('data', () => {
          clearTimeout(t);
          setTimeout(resolve, 100);
        });
        child.once('exit', (code) => reject(new Error(`uftpd in ${r.ns} exited with ${code} before the transfer`)));
      });
    });
    await Promise.all(ready);
    // Through sh, which prints the CPU time of its waited child (cutime + cstime) to stderr afterwards.
    const cpuLine = 'uftp "$@"; rc=$?; echo "GSCPU $(cut -d" " -f16,17 /proc/$$/stat)" >&2; exit $rc';
    const uftp = async (file: string) => {
      const run = await net.runIn(
        net.sender,
        'sh',
        ['-c', cpuLine, 'sh', '-I', addr(net.sender), '-M', pub, '-P', priv, '-p', port, '-R', String(Math.round(options.rateKbps)), '-C', 'none', '-B', buf, '-x', '2', file],
        options.timeoutMs,
      );
      if (run.timedOut) throw new Error(`uftp did not finish within ${options.timeoutMs} ms`);
      // Its end-of-run table has one "Status: Completed" line per receiver (log level 2).
      const completed = ((run.stderr + run.stdout).match(/Status: Completed/g) ?? []).length;
      if (run.code !== 0 || completed !== net.receivers.length) {
        throw new Error(`uftp exited with ${run.code}, ${completed}/${net.receivers.length} receivers completed: ${run.stderr.trim().split('\n').slice(-5).join(' | ')}`);
      }
      return run;
    };
    if (options.warmUpFile !== undefined) await uftp(options.warmUpFile);
    const receiverCpu0 = daemons.map((d) => procCpuSeconds(d.pid));
    const before = net.senderUdp();
    const run = await uftp(options.file);
    const after = net.senderUdp();
    const receiverCpu = daemons.map((d, i) => procCpuSeconds(d.pid) - receiverCpu0[i]!);
    const senderTicks = /GSCPU (\d+) (\d+)/.exec(run.stderr);
    const senderCpu = senderTicks ? (Number(senderTicks[1]) + Number(senderTicks[2])) / CLOCK_TICKS : Number.NaN;
    const want = await sha256File(options.file);
    const size = statSync(options.file).size;
    for (const d of dirs) {
      const copy = join(d, basename(options.file));
      if (statSync(copy).size !== size || (await sha256File(copy)) !== want) throw new Error(`uftp delivered a different file to ${copy}`);
    }
    return { seconds: run.ms / 1000, payloadBytes: after.payloadBytes - before.payloadBytes, packets: after.packets - before.packets, cpu: { sender: senderCpu, receivers: receiverCpu } };
  } finally {
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}

/** Options of {@link runGatesockUpdate}. */
export interface GatesockRunOptions {
  /** The file to send (checked at every receiver afterwards). */
  readonly file: string;
  /** Sender's rate limit, bits/s of UDP payload. */
  readonly rateBps: number;
  /** Loss the sender plans proactive repair for (the configured loss, as a previous run's report would give). */
  readonly expectedLoss: number;
  /** Kill everything and fail after this long. */
  readonly timeoutMs: number;
  /** Default `ipv6`. */
  readonly family?: 'ipv6' | 'ipv4';
  /** UDP port. Default 7400. */
  readonly port?: number;
  /**
   * A smaller file each receiver takes first, unmeasured, as a receiver
   * daemon has taken updates before (its code is then compiled): the
   * receivers' figures are the measured update's. Default: none.
   */
  readonly warmUpFile?: string;
}

/** What {@link runGatesockUpdate} measured, beyond {@link TransferResult}. */
export interface GatesockRunResult extends TransferResult {
  /** The sender's preparation (FEC repair, hashes, signature) before sending, in seconds; not in `seconds`. */
  readonly prepareSeconds: number;
  /** Repair rounds the sender ran. */
  readonly rounds: number;
}

/**
 * Deliver `file` to every receiver with gatesock's multicast updater: one
 * receiver process per receiver namespace and one sender process
 * (bench/multicast-net-node.ts), over real UDP on the bridge. `seconds` is
 * the sender's `start()` to done (every receiver's completion and FIN),
 * measured inside the sender process; preparing the update is reported
 * apart. Checks every received copy by SHA-256; throws when the transfer
 * fails or times out.
 */
export async function runGatesockUpdate(net: MulticastNet, options: GatesockRunOptions): Promise<GatesockRunResult> {
  const { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createInterface } = await import('node:readline');
  const { generatePublisherKey, formatPublicKey } = await import('../src/delivery/update/wire/index.js');
  const family = options.family ?? 'ipv6';
  const controlGroup = family === 'ipv6' ? 'ff15::4753:20' : '239.255.71.20';
  const dataGroup = family === 'ipv6' ? 'ff15::4753:21' : '239.255.71.21';
  const port = options.port ?? 7400;
  const node = new URL('./multicast-net-node.ts', import.meta.url).pathname;
  const register = new URL('../scripts/ts-register.mjs', import.meta.url).pathname;
  const root = mkdtempSync(join(tmpdir(), `${PREFIX}-ours-`));
  const children: ChildProcess[] = [];
  const deadline = setTimeout(() => {
    for (const c of children) c.kill('SIGKILL');
  }, options.timeoutMs);
  try {
    const key = generatePublisherKey();
    const keyPem = join(root, 'publisher.pem');
    writeFileSync(keyPem, key.toPem(), { mode: 0o600 });
    const hosts = net.receivers.map((_, i) => `r${i}`);
    const common = { port, controlGroup, dataGroup, interface: 'eth0', family };
    // Receivers first; each says when it listens.
    const receivers = net.receivers.map((r, i) => {
      const args = { ...common, host: hosts[i]!, directory: join(root, `r${i}`), publisherKey: formatPublicKey(key.publicKey), ...(options.warmUpFile !== undefined && { warmUpName: WARM_UP_NAME }) };
      const child = net.spawnIn(r, process.execPath, [...nodeFlags(), ...(i === 0 ? profileArgs() : []), '--import', register, node, 'receive', JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const lines = createInterface({ input: child.stdout! });
      let onReady!: () => void;
      const ready = new Promise<void>((res) => (onReady = res));
      const done = new Promise<{ ok: boolean; status: string; cpuMs: number }>((res, rej) => {
        lines.on('line', (line) => {
          // Anything else on stdout is node's own (GS_BENCH_NODE_FLAGS such as --trace-opt): to a log when asked.
          if (!line.startsWith('{')) {
            if (process.env['GS_BENCH_NODE_LOG'] !== undefined) appendFileSync(join(process.env['GS_BENCH_NODE_LOG'], `r${i}.log`), `${line}\n`);
            return;
          }
          const msg = JSON.parse(line) as { ready?: boolean; ok?: boolean; status?: string };
          if (msg.ready === true) onReady();
          else res(msg as { ok: boolean; status: string; cpuMs: number });
        });
        child.once('exit', (code, signal) => rej(new Error(`receiver r${i} exited (${code ?? signal}) without a report: ${stderr.trim().slice(-500)}`)));
      });
      return { ready: Promise.race([ready, done.then(() => undefined)]), done };
    });
    await Promise.all(receivers.map((r) => r.ready));
    if (options.warmUpFile !== undefined) {
      const warm = { ...common, file: options.warmUpFile, keyPem, hosts, rateBps: options.rateBps, expectedLoss: options.expectedLoss, name: WARM_UP_NAME, fileId: 2 };
      const w = await net.runIn(net.sender, process.execPath, [...nodeFlags(), '--import', register, node, 'send', JSON.stringify(warm)], options.timeoutMs);
      if (w.timedOut || w.code !== 0) throw new Error(`gatesock warm-up sender failed (${w.timedOut ? 'timed out' : `exit ${w.code}`}): ${w.stderr.trim().slice(-800)}`);
    }
    const before = net.senderUdp();
    const sendArgs = { ...common, file: options.file, keyPem, hosts, rateBps: options.rateBps, expectedLoss: options.expectedLoss };
    const run = await net.runIn(net.sender, process.execPath, [...nodeFlags(), ...profileArgs(), '--import', register, node, 'send', JSON.stringify(sendArgs)], options.timeoutMs);
    const after = net.senderUdp();
    if (run.timedOut) throw new Error(`gatesock sender did not finish within ${options.timeoutMs} ms`);
    if (run.code !== 0) throw new Error(`gatesock sender exited with ${run.code}: ${run.stderr.trim().slice(-800)}`);
    const out = JSON.parse(run.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { prepareMs: number; transferMs: number; rounds: number; grttMs: number; completed: number; receivers: number; states: unknown[]; cpuMs: number };
    if (process.env['GS_BENCH_TRACE'] !== undefined) process.stderr.write(`gatesock sender (cpu ${out.cpuMs} ms, group RTT ${out.grttMs.toFixed(1)} ms): ${JSON.stringify(out.states)}\n`);
    if (out.completed !== net.receivers.length) throw new Error(`gatesock: ${out.completed}/${net.receivers.length} receivers completed`);
    const reports = await Promise.all(receivers.map((r) => r.done));
    if (process.env['GS_BENCH_TRACE'] !== undefined) {
      reports.forEach((r, i) => process.stderr.write(`gatesock receiver r${i}: ${JSON.stringify(r)}\n`));
      process.stderr.write(`receive-buffer drops per receiver (kernel, not injected): ${JSON.stringify(net.receivers.map((r) => net.receiveBufferDrops(r)))}; injected: ${JSON.stringify(net.receivers.map((r) => net.droppedBy(r)))}\n`);
    }
    const bad = reports.findIndex((r) => !r.ok);
    if (bad >= 0) throw new Error(`gatesock: receiver r${bad} reported ${reports[bad]!.status}`);
    const want = await sha256File(options.file);
    const size = statSync(options.file).size;
    for (let i = 0; i < hosts.length; i++) {
      const copy = join(root, `r${i}`, 'update.bin');
      if (statSync(copy).size !== size || (await sha256File(copy)) !== want) throw new Error(`gatesock delivered a different file to ${copy}`);
    }
    return {
      seconds: out.transferMs / 1000,
      prepareSeconds: out.prepareMs / 1000,
      rounds: out.rounds,
      payloadBytes: after.payloadBytes - before.payloadBytes,
      packets: after.packets - before.packets,
      cpu: { sender: out.cpuMs / 1000, receivers: reports.map((r) => r.cpuMs / 1000) },
    };
  } finally {
    clearTimeout(deadline);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}
