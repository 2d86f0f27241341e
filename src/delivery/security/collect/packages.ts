/**
 * Installed packages: dpkg's status database read directly, and rpm's through
 * `rpm -qa --queryformat` when rpm is there.
 *
 * dpkg status (deb-control(5) syntax, one paragraph per package, separated by
 * blank lines; a line starting with a space or tab continues the field above):
 *
 * ```text
 * Package: libssl3
 * Status: install ok installed        want · error flag · state
 * Architecture: amd64
 * Source: openssl (3.0.11-1~deb12u1)  optional; "(version)" when it differs
 * Version: 3.0.11-1~deb12u2
 * ```
 *
 * A package counts as installed when its error flag is `ok`, its state is
 * `installed` and its want is `install` or `hold` (a held package is
 * installed too). Half-installed and config-files states are left out.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as posix from 'node:path/posix';
import { isArch, isPackageName, isPackageVersion, packageKey, type PackageEntry } from '../report/index.js';

/** Why an entry of a package database was left out of the report. @public */
export interface SkippedPackage {
  /** Package name as read (may be empty). */
  readonly name: string;
  /** The rule it broke. */
  readonly reason: string;
}

/** Packages read from one database, and what was left out. */
export interface PackageScan {
  /** Installed packages, sorted by key. */
  readonly packages: PackageEntry[];
  /** Entries not reported because a field would not pass the center's check. */
  readonly skipped: SkippedPackage[];
}

/**
 * One entry per key, sorted by key. dpkg's database never lists one name:arch
 * twice, nor rpm's one NEVRA; if a damaged one does, the first is kept and the
 * others are listed as skipped.
 */
function finish(packages: PackageEntry[], skipped: SkippedPackage[]): PackageScan {
  const seen = new Set<string>();
  const unique = packages.filter((e) => {
    const k = packageKey(e);
    if (seen.has(k)) {
      skipped.push({ name: e.name, reason: 'listed twice' });
      return false;
    }
    seen.add(k);
    return true;
  });
  return { packages: unique.sort((a, b) => (packageKey(a) < packageKey(b) ? -1 : packageKey(a) > packageKey(b) ? 1 : 0)), skipped };
}

/** Split deb-control text into paragraphs of field → value (folded lines joined with "\n"). */
function paragraphs(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      if (cur.size > 0) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (last !== undefined) cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    // Field names are case-insensitive (deb-control(5)); keep the canonical spelling we look up.
    const key = last.toLowerCase();
    last = key;
    cur.set(key, line.slice(colon + 1).trim());
  }
  if (cur.size > 0) out.push(cur);
  return out;
}

/** Parse the text of `/var/lib/dpkg/status` into installed packages. */
export function parseDpkgStatus(text: string): PackageScan {
  const packages: PackageEntry[] = [];
  const skipped: SkippedPackage[] = [];
  for (const p of paragraphs(text)) {
    const name = p.get('package') ?? '';
    const [want, flag, state] = (p.get('status') ?? '').split(/\s+/);
    if (flag !== 'ok' || state !== 'installed' || (want !== 'install' && want !== 'hold')) continue;
    const version = p.get('version') ?? '';
    const arch = p.get('architecture') ?? '';
    let source: string | null = null;
    let sourceVersion: string | null = null;
    const src = p.get('source');
    if (src !== undefined && src !== '') {
      const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(src);
      if (m === null) { skipped.push({ name, reason: `Source ${JSON.stringify(src)} is not "name" or "name (version)"` }); continue; }
      source = m[1] === name ? null : m[1]!;
      sourceVersion = m[2] === undefined || m[2] === version ? null : m[2];
    }
    if (!isPackageName(name)) { skipped.push({ name, reason: 'Package is not a package name' }); continue; }
    if (!isPackageVersion('dpkg', version)) { skipped.push({ name, reason: `Version ${JSON.stringify(version)} is not a Debian version` }); continue; }
    if (!isArch(arch)) { skipped.push({ name, reason: `Architecture ${JSON.stringify(arch)} is not an architecture` }); continue; }
    if (source !== null && !isPackageName(source)) { skipped.push({ name, reason: 'Source is not a package name' }); continue; }
    if (sourceVersion !== null && !isPackageVersion('dpkg', sourceVersion)) { skipped.push({ name, reason: 'Source version is not a Debian version' }); continue; }
    packages.push({ manager: 'dpkg', name, version, arch, source, sourceVersion });
  }
  return finish(packages, skipped);
}

/** Options of {@link collectDpkgPackages}. */
export interface DpkgOptions {
  /** Directory treated as `/`. Default `/`. */
  readonly root?: string;
  /** The status file below root. Default `/var/lib/dpkg/status`. */
  readonly statusFile?: string;
}

/** Installed dpkg packages; an empty scan when the host has no dpkg database. */
export async function collectDpkgPackages(options: DpkgOptions = {}): Promise<PackageScan> {
  let text: string;
  try {
    text = await readFile(posix.join(options.root ?? '/', options.statusFile ?? '/var/lib/dpkg/status'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { packages: [], skipped: [] };
    throw err;
  }
  return parseDpkgStatus(text);
}

/**
 * The query format the rpm collector asks for: one line per package, six
 * tab-separated fields. `%{EPOCH}` and `%{SOURCERPM}` print `(none)` when unset.
 */
export const RPM_QUERY_FORMAT = '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n';

/** Source package name from a SOURCERPM value (`openssl-3.0.7-24.el9.src.rpm` → `openssl`). */
function sourceRpmName(v: string): string | null {
  const m = /^(.+)-[^-]+-[^-]+\.(?:src|nosrc)\.rpm$/.exec(v);
  return m === null ? null : m[1]!;
}

/** Parse the output of `rpm -qa --queryformat RPM_QUERY_FORMAT`. */
export function parseRpmQuery(text: string): PackageScan {
  const packages: PackageEntry[] = [];
  const skipped: SkippedPackage[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split('\t');
    const name = f[0] ?? '';
    if (f.length !== 6) { skipped.push({ name, reason: `has ${f.length} fields, not 6` }); continue; }
    const [, epoch, ver, rel, arch, srpm] = f as [string, string, string, string, string, string];
    const version = `${epoch === '(none)' ? '' : `${epoch}:`}${ver}-${rel}`;
    const srcName = srpm === '(none)' ? null : sourceRpmName(srpm);
    if (!isPackageName(name)) { skipped.push({ name, reason: 'NAME is not a package name' }); continue; }
    if (!isPackageVersion('rpm', version)) { skipped.push({ name, reason: `${JSON.stringify(version)} is not an rpm version` }); continue; }
    if (!isArch(arch)) { skipped.push({ name, reason: `ARCH ${JSON.stringify(arch)} is not an architecture` }); continue; }
    if (srcName !== null && !isPackageName(srcName)) { skipped.push({ name, reason: 'SOURCERPM name is not a package name' }); continue; }
    packages.push({ manager: 'rpm', name, version, arch, source: srcName === name ? null : srcName, sourceVersion: null });
  }
  return finish(packages, skipped);
}

/** Options of {@link collectRpmPackages}. */
export interface RpmOptions {
  /** The rpm program. Default `rpm` (looked up on PATH). */
  readonly rpm?: string;
  /** Passed as `--root` when set. */
  readonly root?: string;
  /** Kill rpm after this long. Default 60 000 ms. */
  readonly timeoutMs?: number;
}

/** Installed rpm packages, or `skipped` with the reason when rpm is not installed. */
export type RpmScan = PackageScan | { readonly absent: string };

/** Run `rpm -qa --queryformat …` and parse it; `{ absent }` when there is no rpm program. */
export function collectRpmPackages(options: RpmOptions = {}): Promise<RpmScan> {
  const args = [...(options.root !== undefined ? ['--root', options.root] : []), '-qa', '--queryformat', RPM_QUERY_FORMAT];
  return new Promise((resolve, reject) => {
    execFile(options.rpm ?? 'rpm', args, { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout) => {
      if (err !== null) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') { resolve({ absent: `${options.rpm ?? 'rpm'} is not installed` }); return; }
        reject(err);
        return;
      }
      resolve(parseRpmQuery(stdout));
    });
  });
}
