/**
 * From the wire format to the diagnosis engine's input: a full report becomes
 * a {@link HostInventory} (src/delivery/security/diagnosis), so the engine does
 * not depend on how agents report.
 */
import type { HostInventory, InventoryFile, InventoryPackage, InventoryService } from '../diagnosis/inventory.js';
import type { FullReport, OsInfo } from './types.js';

/**
 * The OSV ecosystem name of an operating system (https://ossf.github.io/osv-schema/,
 * "Defined ecosystems"): `Debian:12`, `Ubuntu:22.04:LTS` (`:LTS` when PRETTY_NAME
 * says LTS), `Alpine:v3.18`, `AlmaLinux:9`, `Rocky Linux:9`, `Red Hat:9`.
 * Others, and releases without VERSION_ID, map to `ID:VERSION_ID` as reported,
 * which matches no OSV ecosystem (so nothing is matched by guess).
 */
export function osvEcosystem(os: OsInfo): string {
  const major = os.versionId.split('.')[0] ?? '';
  switch (os.id) {
    case 'debian':
      // Debian's VERSION_ID is the major release ("12"); testing/sid have none.
      return os.versionId === '' ? 'Debian' : `Debian:${major}`;
    case 'ubuntu':
      return /\bLTS\b/.test(os.prettyName) ? `Ubuntu:${os.versionId}:LTS` : `Ubuntu:${os.versionId}`;
    case 'alpine': {
      const [a, b] = os.versionId.split('.');
      return b === undefined ? `Alpine:v${a}` : `Alpine:v${a}.${b}`;
    }
    case 'almalinux':
      return `AlmaLinux:${major}`;
    case 'rocky':
      return `Rocky Linux:${major}`;
    case 'rhel':
      return `Red Hat:${major}`;
    default:
      return `${os.id}:${os.versionId}`;
  }
}

/**
 * The diagnosis engine's view of a host's full report. File entries without a
 * regular file (sha256 null) are left out: the engine matches what is there.
 * @public
 */
export function toInventory(report: FullReport): HostInventory {
  const packages: InventoryPackage[] = report.packages.map((p) => ({
    name: p.name,
    version: p.version,
    ...(p.source !== null ? { source: p.source } : {}),
    ...(p.sourceVersion !== null ? { sourceVersion: p.sourceVersion } : {}),
    arch: p.arch,
  }));
  const services: InventoryService[] = report.services.map((s) => ({
    proto: s.proto,
    port: s.port,
    address: s.address,
    ...(s.process !== null ? { process: s.process } : {}),
  }));
  const files: InventoryFile[] = [];
  for (const f of report.files) {
    if (f.sha256 === null) continue;
    files.push({ path: f.path, sha256: f.sha256, ...(f.content !== null ? { content: f.content } : {}) });
  }
  return {
    hostId: report.hostMsid,
    os: { id: report.os.id, versionId: report.os.versionId, ecosystem: osvEcosystem(report.os) },
    kernel: report.kernel,
    packages,
    services,
    files,
  };
}
