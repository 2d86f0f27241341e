/**
 * `gatesock update keygen|send|receive`: the multicast updater from the
 * command line, a thin shell over `gatesock/delivery` (docs/delivery.md).
 *
 * - `keygen` writes a publisher key (PKCS#8 PEM, mode 0600) and its public
 *   key (`ed25519:…`), and prints the public key and key ID.
 * - `send FILE --group [ff15::1]:5000 --key KEY` signs and multicasts one
 *   update, shows a live progress bar on a terminal (bytes, receivers
 *   done/total), prints a final table, and with `--report FILE` writes a JSON
 *   report (per receiver: joined, completed, rounds, result).
 * - `receive --group … --dir DIR --allow PATTERN --publisher-key KEY` takes
 *   permitted updates into DIR and runs `--on-update CMD` on each.
 *
 * A receiver listens on the group's port and answers from a second,
 * ephemeral socket, so several receivers can share one host (their replies
 * and the sender's acks then have distinct ports). A sender binds an
 * ephemeral port of its own (`--local-port` fixes one, for a firewall):
 * receivers send it their requests by unicast as well as to the group, and
 * it never hears its own data back, as a socket on the group's port would
 * through multicast loopback, at one receive per datagram sent.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import {
  DEFAULT_UPDATE_OPTIONS,
  FileUpdateHistory,
  UpdateReceiver,
  UpdateSender,
  isOkStatus,
  prepareUpdateAsync,
  publisherKeyId,
  type ReceiverReport,
  type SenderReport,
  type UpdateHandler,
  withReplySocket,
} from '../delivery/index.js';
import { ConfigError, DeliveryError } from '../errors/index.js';
import { IdentityKey } from '../session/index.js';
import { independentLoss, udpBind, withLoss, type DatagramAddress } from '../transport/index.js';
import { collect, formatTable, fraction, intIn, readPublicKey, writeKeyPair, type Io, type KeygenOptions } from './args.js';
import { EXIT } from './errors.js';

/** How long `receive --once` keeps running after its update ended, so the repeated FINs go out. */
const FIN_LINGER_MS = 1000;

/** Defaults of the update commands, shown by `--help`. */
export const UPDATE_DEFAULTS = Object.freeze({
  rate: '100M',
  ttl: 1,
  keyName: 'publisher',
  validSeconds: DEFAULT_UPDATE_OPTIONS.validitySeconds,
  onUpdateTimeoutMs: 600_000,
});

/** Where a group lives: `[ff15::1]:5000` or `239.1.2.3:5000`. */
export function parseGroup(text: string): DatagramAddress {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new InvalidArgumentError('must be [IPv6-group]:port or IPv4-group:port, e.g. [ff15::1]:5000');
  return { address: m[1]!, port };
}

/** A rate in bits per second: `100M`, `2.5G`, `800k`, `1000000`. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)(?:bit\/s|bps|b)?$/.exec(text);
  const scale = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 } as const;
  const bps = m ? Number(m[1]) * scale[m[2] as keyof typeof scale] : NaN;
  if (!(bps >= 1000 && bps <= 1e11)) throw new InvalidArgumentError('must be a rate such as 100M, 2.5G or 800k (bits per second, 1k…100G)');
  return Math.round(bps);
}

/** The family of a group literal. */
const familyOf = (group: DatagramAddress): 'ipv6' | 'ipv4' => (group.address.includes(':') ? 'ipv6' : 'ipv4');

// ---------------------------------------------------------------- keygen

async function runKeygen(o: KeygenOptions, io: Io): Promise<void> {
  const { key, keyPath, pubPath } = writeKeyPair(o, 'receivers pinning the old key then refuse new updates', io);
  io.print(`key id      ${publisherKeyId(key.publicKey)}`);
  io.print(`wrote ${keyPath} (secret: keep it with the sender) and ${pubPath} (pin it on receivers: --publisher-key)`);
}

// ---------------------------------------------------------------- send

interface SendOptions {
  group: DatagramAddress;
  key: string;
  name?: string;
  updateVersion?: number;
  fileId?: number;
  rate: number;
  interface?: string;
  ttl: number;
  localPort?: number;
  expect?: string;
  joinWindow?: number;
  valid: number;
  symbolSize?: number;
  sourceSymbols?: number;
  repairSymbols?: number;
  expectedLoss?: number;
  report?: string;
  progress?: boolean;
}

/** The report `--report FILE` writes. */
export interface SendReportJson {
  readonly name: string;
  readonly version: number;
  readonly fileId: number;
  readonly fileSize: number;
  readonly digest: string;
  readonly group: string;
  readonly rounds: number;
  readonly bytesSent: number;
  readonly overhead: number;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly receivers: readonly {
    readonly host: string;
    readonly address: string | null;
    readonly joined: boolean;
    readonly completed: boolean;
    readonly rounds: number | null;
    readonly requests: number;
    readonly result: string | null;
    readonly ok: boolean;
    readonly dropped: string | null;
  }[];
}

const human = (bytes: number): string =>
  bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;

/** The final table: one row per receiver. */
export function receiverTable(report: SendReportJson): string[] {
  const rows = [['host', 'joined', 'completed', 'rounds', 'requests', 'result']];
  for (const r of report.receivers) {
    rows.push([r.host, r.joined ? 'yes' : 'no', r.completed ? 'yes' : 'no', r.rounds === null ? '-' : String(r.rounds), String(r.requests), r.result ?? r.dropped ?? '-']);
  }
  return formatTable(rows);
}

function toJson(report: SenderReport, o: { version: number; digest: string; group: DatagramAddress }): SendReportJson {
  const receivers = report.receivers.map((r) => {
    const ok = r.completed && r.result !== undefined && isOkStatus(r.result);
    return {
      host: r.host,
      address: r.address ? `${r.address.address.includes(':') ? `[${r.address.address}]` : r.address.address}:${r.address.port}` : null,
      joined: r.joined,
      completed: r.completed,
      rounds: r.rounds ?? null,
      requests: r.requests,
      result: r.result ?? null,
      ok,
      dropped: r.dropped ?? null,
    };
  });
  return {
    name: report.name,
    version: o.version,
    fileId: report.fileId,
    fileSize: report.fileSize,
    digest: o.digest,
    group: o.group.address.includes(':') ? `[${o.group.address}]:${o.group.port}` : `${o.group.address}:${o.group.port}`,
    rounds: report.rounds,
    bytesSent: report.bytesSent,
    overhead: report.overhead,
    durationMs: report.durationMs,
    ok: receivers.length > 0 && receivers.every((r) => r.ok),
    receivers,
  };
}

async function runSend(file: string, o: SendOptions, io: Io): Promise<void> {
  const key = IdentityKey.fromPem(fs.readFileSync(o.key, 'utf8'));
  const k = o.sourceSymbols ?? DEFAULT_UPDATE_OPTIONS.sourceSymbols;
  const m = o.repairSymbols ?? DEFAULT_UPDATE_OPTIONS.repairSymbols;
  const symbolSize = o.symbolSize ?? DEFAULT_UPDATE_OPTIONS.symbolSize;
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    io.note(`preparing ${path.basename(file)}: hashing ${human(size)} and its repair symbols…`);
    const update = await prepareUpdateAsync(
      {
        length: size,
        readBlock: (_sbn, offset, length) => {
          const b = new Uint8Array(length);
          let got = 0;
          while (got < length) {
            const n = fs.readSync(fd, b, got, length - got, offset + got);
            if (n === 0) throw new DeliveryError('GS_ERR_DELIVERY_DIGEST_MISMATCH', `${file} shrank while it was being sent`);
            got += n;
          }
          return b;
        },
      },
      {
        name: o.name ?? path.basename(file),
        key,
        fileId: o.fileId ?? randomInt(1, 65536),
        version: o.updateVersion ?? Math.floor(Date.now() / 1000),
        validitySeconds: o.valid,
        symbolSize,
        sourceSymbols: k,
        repairSymbols: m,
        // GF(2^8) holds 256 shards; larger blocks take GF(2^16), which needs an even symbol size.
        code: k + m > 256 ? 'rs16' : 'rs8',
      },
    );
    const a = update.announcement;
    const socket = await udpBind({
      family: familyOf(o.group),
      port: o.localPort ?? 0,
      // On the group's port it shares the port with any receivers of this host.
      reuseAddr: o.localPort === o.group.port,
      hopLimit: o.ttl,
      sendBufferBytes: 4 << 20,
      receiveBufferBytes: 4 << 20,
      ...(o.interface !== undefined && { interface: o.interface }),
    });
    const expected = o.expect?.split(',').map((h) => h.trim()).filter((h) => h !== '');
    let sender: UpdateSender;
    try {
      sender = new UpdateSender({
        socket,
        update,
        controlGroup: o.group.address,
        port: o.group.port,
        rateBps: o.rate,
        ...(expected && expected.length > 0 && { expectedHosts: expected }),
        ...(o.joinWindow !== undefined && { joinWindowMs: o.joinWindow }),
        ...(o.expectedLoss !== undefined && { expectedLoss: o.expectedLoss }),
      });
    } catch (err) {
      socket.close(); // an open socket would keep the process alive after the error
      throw err;
    }
    io.note(`sending ${a.name} (${human(a.size)}, version ${a.version}, file ID ${a.fileId}, key ${a.keyId}) to ${o.group.address} port ${o.group.port} from port ${socket.localAddress.port}`);
    const showBar = o.progress ?? process.stderr.isTTY === true;
    const bar = showBar
      ? new SingleBar({
          format: '{bar} {percentage}% | {sent} sent | receivers {done}/{hosts} | round {round}',
          stream: process.stderr,
          hideCursor: true,
          barsize: 30,
          // --progress on a pipe: redraw as lines every second instead of not at all.
          noTTYOutput: true,
          notTTYSchedule: 1000,
        })
      : undefined;
    bar?.start(a.size, 0, { sent: human(0), done: 0, hosts: 0, round: 1 });
    sender.on('progress', (p) => bar?.update(Math.min(p.bytesSent, a.size), { sent: human(p.bytesSent), done: p.receiversDone, hosts: p.receiversTotal, round: p.round }));
    const stop = (): void => sender.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let report: SenderReport;
    try {
      report = await sender.start();
    } finally {
      bar?.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      sender.close();
      socket.close();
    }
    const json = toJson(report, { version: a.version, digest: a.digest, group: o.group });
    for (const line of receiverTable(json)) io.print(line);
    io.print(`${json.receivers.filter((r) => r.ok).length}/${json.receivers.length} receivers applied ${a.name}; ${human(json.bytesSent)} sent (${json.overhead.toFixed(3)} × the file) in ${json.rounds} round(s), ${(json.durationMs / 1000).toFixed(1)} s`);
    if (o.report) fs.writeFileSync(o.report, JSON.stringify(json, null, 2) + '\n');
    if (!json.ok) process.exitCode = EXIT.delivery;
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- receive

interface ReceiveOptions {
  group: DatagramAddress;
  dir: string;
  allow: string[];
  publisherKey: string[];
  onUpdate?: string;
  onUpdateTimeout: number;
  host?: string;
  interface?: string;
  history?: string;
  once?: boolean;
  injectLoss?: number;
  lossSeed?: number;
}

/** `--on-update CMD`: run it with /bin/sh, the file as $1 and in the environment; its first output line goes into `FIN`. */
function commandHandler(command: string, timeoutMs: number): UpdateHandler {
  return (file, update) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command, 'gatesock-update', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, GATESOCK_UPDATE_FILE: file, GATESOCK_UPDATE_NAME: update.name, GATESOCK_UPDATE_SIZE: String(update.size) },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => void (out.length < 4096 && (out += d.toString('utf8'))));
      child.stderr.on('data', (d: Buffer) => void (err.length < 4096 && (err += d.toString('utf8'))));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const first = (s: string) => s.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
        if (code === 0) resolve(first(out) === '' ? 'ok' : `ok ${first(out)}`);
        else reject(new Error(`${signal ? `killed by ${signal}` : `exit ${code}`}${first(err) ? `: ${first(err)}` : ''}`));
      });
    });
}

async function runReceive(o: ReceiveOptions, io: Io): Promise<void> {
  if (o.allow.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', '--allow is required: name patterns this receiver takes (e.g. --allow "app/*")');
  if (o.publisherKey.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', '--publisher-key is required: the publisher key(s) this receiver trusts');
  const publisherKeys = o.publisherKey.map((k) => readPublicKey(k, '--publisher-key'));
  const host = o.host ?? os.hostname();
  if (!/^[A-Za-z0-9._:-]{1,253}$/.test(host)) {
    throw new ConfigError('GS_ERR_INVALID_OPTION', `--host must be 1…253 of A-Z a-z 0-9 . _ - : (it goes into RECV), got ${JSON.stringify(host)}`);
  }
  const dir = path.resolve(o.dir);
  fs.mkdirSync(dir, { recursive: true });
  const history = new FileUpdateHistory(o.history ?? path.join(dir, '.gatesock-history.json'));
  const family = familyOf(o.group);
  const iface = o.interface !== undefined ? { interface: o.interface } : {};
  const raw = await udpBind({ family, port: o.group.port, groups: [o.group.address], reuseAddr: true, receiveBufferBytes: 8 << 20, ...iface });
  const group = o.injectLoss ? withLoss(raw, { loss: independentLoss(o.injectLoss), seed: o.lossSeed ?? 1 }) : raw;
  // From here on, an error must close what is open, or the sockets would keep the process alive.
  const reply = await udpBind({ family, port: 0, ...iface }).catch((err: unknown) => {
    raw.close();
    throw err;
  });
  const socket = withReplySocket(group, reply);
  let receiver: UpdateReceiver;
  try {
    receiver = new UpdateReceiver({
      socket,
      policy: { allow: o.allow, publisherKeys },
      history,
      controlGroup: o.group.address,
      host,
      directory: dir,
      ...(o.onUpdate !== undefined && { handler: commandHandler(o.onUpdate, o.onUpdateTimeout) }),
    });
  } catch (err) {
    socket.close();
    throw err;
  }
  io.note(`receiving on ${o.group.address} port ${o.group.port} as ${host}: ${o.allow.join(', ')} into ${dir} (publisher ${publisherKeys.map((k) => publisherKeyId(k)).join(', ')})`);
  const finished = new Promise<ReceiverReport | undefined>((resolve) => {
    receiver.on('done', (r) => {
      io.print(`${r.name}: ${r.status} (file ID ${r.fileId}, ${r.requests} request(s)${r.resumed ? ', resumed' : ''})`);
      const c = receiver.counters;
      io.note(`counters: datagrams ${c.datagrams}, symbols ${c.symbols}, duplicates ${c.duplicates}, junk ${c.junk}, foreign ${c.foreign}, forged ${c.forged}, refused ${c.refused}`);
      if (o.once) resolve(r);
    });
    socket.on('close', () => resolve(undefined));
    const stop = (): void => resolve(undefined);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  receiver.on('state', (state, why) => {
    if (state === 'joined') io.note(`joined: ${why}`);
  });
  receiver.start();
  const result = await finished;
  // Let the FIN (sent at once, then repeated a few times: it has no ack) leave before the socket closes.
  if (result) await new Promise((r) => setTimeout(r, FIN_LINGER_MS));
  receiver.close();
  socket.close();
  if (o.once && (!result || !result.ok)) process.exitCode = EXIT.delivery;
}

// ---------------------------------------------------------------- registration

/** Add `gatesock update keygen|send|receive` to the program. */
export function registerUpdateCommands(program: Command, io: Io): void {
  const update = program.command('update').description('the reliable multicast updater: signed updates to many hosts at once (docs/delivery.md)');
  update
    .command('keygen')
    .description('make a publisher key: DIR/NAME.key (secret, PKCS#8 PEM) and DIR/NAME.pub (the public key receivers pin)')
    .option('--out <dir>', 'folder for the two files', '.')
    .option('--name <name>', 'file name stem', UPDATE_DEFAULTS.keyName)
    .option('--force', 'replace existing files')
    .action(async (o: KeygenOptions) => runKeygen(o, io));

  update
    .command('send')
    .description('sign FILE and multicast it to every receiver that answers; live progress on a terminal, a table at the end (exit 9 unless every receiver applied it)')
    .argument('<file>', 'the update file')
    .requiredOption('--group <[addr]:port>', 'multicast group and port, e.g. [ff15::1]:5000 or 239.1.2.3:5000', parseGroup)
    .requiredOption('--key <file>', 'the publisher key (PEM, from `gatesock update keygen`)')
    .option('--name <name>', 'update name: where receivers put it, relative to their directory (default: the file name)')
    // Not `--version`: the program's own --version would take it.
    .option('--update-version <n>', 'version of this name; receivers take only a higher one (default: Unix time in seconds)', intIn('--update-version', 1, Number.MAX_SAFE_INTEGER))
    .option('--file-id <n>', 'file ID of the data session (default: random)', intIn('--file-id', 0, 65535))
    .option('--rate <bits/s>', 'rate limit, e.g. 100M, 1G', parseRate, parseRate(UPDATE_DEFAULTS.rate))
    .option('--interface <name>', 'interface to send on (name or address), e.g. eth0 or lo')
    .option('--ttl <n>', 'multicast hop limit', intIn('--ttl', 1, 255), UPDATE_DEFAULTS.ttl)
    .option('--local-port <n>', "local port to send from and take replies on (default: an ephemeral one; the group's own port makes the sender hear its data back)", intIn('--local-port', 0, 65535))
    .option('--expect <hosts>', 'comma-separated receivers to wait for; the join ends once all answered')
    .option('--join-window <ms>', 'how long to collect RECV answers', intIn('--join-window', 1, 3_600_000))
    .option('--valid <seconds>', 'seconds the announcement stays valid', intIn('--valid', 1, 10 * 365 * 86_400), UPDATE_DEFAULTS.validSeconds)
    .option('--symbol-size <bytes>', `bytes per packet payload (default ${DEFAULT_UPDATE_OPTIONS.symbolSize})`, intIn('--symbol-size', 16, 65_488))
    .option('--source-symbols <k>', `source symbols per FEC block (default ${DEFAULT_UPDATE_OPTIONS.sourceSymbols})`, intIn('--source-symbols', 1, 65_535))
    .option('--repair-symbols <m>', `repair pool per FEC block (default ${DEFAULT_UPDATE_OPTIONS.repairSymbols})`, intIn('--repair-symbols', 1, 65_535))
    .option('--expected-loss <p>', 'loss rate to plan proactive repair for, e.g. 0.05', fraction('--expected-loss'))
    .option('--report <file>', 'write a JSON report here (per receiver: joined, completed, rounds, result)')
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show the progress bar')
    .action(async (file: string, o: SendOptions) => runSend(file, o, io));

  update
    .command('receive')
    .description('take permitted, signed updates from a group into DIR and run --on-update for each (runs until SIGINT/SIGTERM, or one update with --once)')
    .requiredOption('--group <[addr]:port>', 'multicast group and port, e.g. [ff15::1]:5000', parseGroup)
    .requiredOption('--dir <dir>', 'directory updates land in (names never leave it)')
    .option('--allow <pattern>', 'update names this receiver takes (glob: * within a segment, ** across); repeatable', collect, [])
    .option('--publisher-key <key>', 'pinned publisher public key: ed25519:… or a file holding it; repeatable', collect, [])
    .option('--on-update <cmd>', 'shell command run with the verified file as $1 (and GATESOCK_UPDATE_FILE, _NAME, _SIZE); exit 0 = ok, its first output line goes into FIN')
    .option('--on-update-timeout <ms>', 'kill --on-update after this long', intIn('--on-update-timeout', 1, 86_400_000), UPDATE_DEFAULTS.onUpdateTimeoutMs)
    .option('--host <name>', 'this host as named in RECV (default: the system host name)')
    .option('--interface <name>', 'interface to join the group on, e.g. eth0 or lo')
    .option('--history <file>', 'where the last version taken per name is kept (default DIR/.gatesock-history.json)')
    .option('--once', 'exit after one update (status 0 if it was applied, 9 if not)')
    .option('--inject-loss <p>', 'for tests: drop this fraction of arriving datagrams', fraction('--inject-loss'))
    .option('--loss-seed <n>', 'for tests: seed of --inject-loss', intIn('--loss-seed', 0, 0xffffffff))
    .action(async (o: ReceiveOptions) => runReceive(o, io));
}
