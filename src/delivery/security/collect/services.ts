/**
 * Listening services from the kernel's socket tables (proc(5), /proc/net/tcp):
 *
 * ```text
 *   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
 *    0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21301 1 …
 *       └ addr : port └ remote      └ state                                                   └ inode (field 9)
 * ```
 *
 * The address is the in-kernel network-order value printed as host-order
 * 32-bit words (`%08X` per word: one word for IPv4, four for IPv6), so on a
 * little-endian host each word's bytes come out reversed: `0100007F` is
 * 127.0.0.1. The port is printed in host order already. A TCP socket listens
 * in state `0A` (TCP_LISTEN); a UDP socket counts as a service when it is
 * unconnected: state `07` (TCP_CLOSE) and remote port 0.
 *
 * The owning process is found by matching socket inodes against the
 * `socket:[INODE]` links in `/proc/PID/fd/`, when they are readable (root, or
 * our own processes); otherwise `process` stays null.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import * as os from 'node:os';
import * as posix from 'node:path/posix';
import { formatIp, serviceKey, type ServiceEntry } from '../report/index.js';

/** One socket row as decoded, before processes are attached. */
export interface SocketRow {
  /** Transport protocol. */
  readonly proto: 'tcp' | 'udp';
  /** Local address, canonical text. */
  readonly address: string;
  /** Local port. */
  readonly port: number;
  /** Remote address, canonical text. */
  readonly remoteAddress: string;
  /** Remote port. */
  readonly remotePort: number;
  /** Kernel socket state (`0A` listen, `07` close, …) as a number. */
  readonly state: number;
  /** Socket inode (0 for some kernel sockets). */
  readonly inode: number;
}

const TCP_LISTEN = 0x0a;
const TCP_CLOSE = 0x07;

/** Decode a `/proc/net` address (`0100007F` or 32 hex digits) for a host of the given endianness. */
export function decodeProcAddress(hex: string, endianness: 'LE' | 'BE' = os.endianness()): string {
  if (!/^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{32})$/.test(hex)) throw new RangeError(`not a /proc/net address: ${JSON.stringify(hex)}`);
  const bytes = Buffer.from(hex, 'hex');
  if (endianness === 'LE') for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  return formatIp(bytes);
}

/**
 * Parse one `/proc/net/{tcp,tcp6,udp,udp6}` table. Rows that do not decode
 * are skipped (the header, a truncated last line).
 */
export function parseProcNetTable(text: string, proto: 'tcp' | 'udp', endianness: 'LE' | 'BE' = os.endianness()): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const local = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(f[1]!);
    const remote = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(f[2]!);
    if (local === null || remote === null || !/^[0-9A-Fa-f]{2}$/.test(f[3]!) || !/^\d+$/.test(f[9]!)) continue;
    try {
      rows.push({
        proto,
        address: decodeProcAddress(local[1]!, endianness),
        port: parseInt(local[2]!, 16),
        remoteAddress: decodeProcAddress(remote[1]!, endianness),
        remotePort: parseInt(remote[2]!, 16),
        state: parseInt(f[3]!, 16),
        inode: Number(f[9]),
      });
    } catch {
      continue;
    }
  }
  return rows;
}

/** True for a listening TCP socket or an unconnected, bound UDP socket. */
export function isListening(row: SocketRow): boolean {
  return row.proto === 'tcp' ? row.state === TCP_LISTEN : row.state === TCP_CLOSE && row.remotePort === 0;
}

/** Options of {@link collectListeningServices}. @public */
export interface ServicesOptions {
  /** The proc file system. Default `/proc`. */
  readonly procRoot?: string;
  /** Look up owning processes through `/proc/PID/fd`. Default true. */
  readonly resolveProcesses?: boolean;
  /** At most this many fd links are read while looking for owners. Default 200 000. */
  readonly maxFdLinks?: number;
  /** Byte order the tables were written in. Default this host's. */
  readonly endianness?: 'LE' | 'BE';
}

/** Map socket inode → process name, from `/proc/PID/fd` links we may read. */
async function socketOwners(procRoot: string, wanted: ReadonlySet<number>, maxLinks: number): Promise<Map<number, string>> {
  const owners = new Map<number, string>();
  let pids: string[];
  try {
    pids = (await readdir(procRoot)).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(a) - Number(b));
  } catch {
    return owners;
  }
  let budget = maxLinks;
  for (const pid of pids) {
    if (budget <= 0 || owners.size === wanted.size) break;
    let fds: string[];
    try {
      fds = await readdir(posix.join(procRoot, pid, 'fd'));
    } catch {
      continue; // not ours to read, or the process ended
    }
    let comm: string | undefined;
    for (const fd of fds) {
      if (budget-- <= 0) break;
      let target: string;
      try {
        target = await readlink(posix.join(procRoot, pid, 'fd', fd));
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m === null) continue;
      const inode = Number(m[1]);
      if (!wanted.has(inode) || owners.has(inode)) continue;
      if (comm === undefined) {
        try {
          // eslint-disable-next-line no-control-regex
          comm = (await readFile(posix.join(procRoot, pid, 'comm'), 'utf8')).replace(/\n$/, '').replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 64);
        } catch {
          comm = '';
        }
      }
      if (comm !== '') owners.set(inode, comm);
    }
  }
  return owners;
}

/**
 * Listening sockets of the host, one entry per protocol, address and port
 * (sockets sharing one through SO_REUSEPORT are merged; the process name is
 * the alphabetically first owner), sorted by key. A missing table (no IPv6)
 * is skipped.
 * @public
 */
export async function collectListeningServices(options: ServicesOptions = {}): Promise<ServiceEntry[]> {
  const procRoot = options.procRoot ?? '/proc';
  const rows: SocketRow[] = [];
  for (const [file, proto] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
    let text: string;
    try {
      text = await readFile(posix.join(procRoot, 'net', file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    rows.push(...parseProcNetTable(text, proto, options.endianness).filter(isListening));
  }
  const owners = options.resolveProcesses === false
    ? new Map<number, string>()
    : await socketOwners(procRoot, new Set(rows.map((r) => r.inode).filter((i) => i !== 0)), options.maxFdLinks ?? 200_000);
  const merged = new Map<string, ServiceEntry>();
  for (const r of rows) {
    const owner = owners.get(r.inode) ?? null;
    const entry: ServiceEntry = { proto: r.proto, address: r.address, port: r.port, process: owner };
    const k = serviceKey(entry);
    const had = merged.get(k);
    if (had === undefined || (owner !== null && (had.process === null || owner < had.process))) merged.set(k, entry);
  }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}
