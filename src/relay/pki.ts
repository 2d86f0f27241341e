/**
 * The gateway system's PKI on disk (design, system 1, "Trust"): the
 * operator's root CA, the controller's certificate and one per gateway, all
 * signed by the root, in one folder:
 *
 * ```
 * DIR/root/cert.pem, key.pem          the root CA (self-signed); move key.pem offline once done
 * DIR/controller/cert.pem, key.pem    role `controller`
 * DIR/gateway-1/cert.pem, key.pem     role `gateway` (one folder per gateway, any name)
 * ```
 *
 * Each folder is an identity folder as `saveIdentity` writes it (key mode
 * 0600, folder 0700). A controller or gateway `cert.pem` holds the leaf
 * only, as the rest of gatesock makes them: peers ship the root
 * (`root/cert.pem`) and verify against it, so it is not sent along.
 *
 * Node only: `node:fs` is loaded when one of these functions runs.
 */
import type * as NodeFs from 'node:fs/promises';
import type * as NodePath from 'node:path';
import { checkOption } from '../errors/check.js';
import {
  IDENTITY_FILES,
  certificateFromPem,
  createIdentity,
  createRootCa,
  generateIdentityKey,
  issueCertificate,
  loadIdentity,
  msidOf,
  saveIdentity,
  verifyCertificateChain,
  type Certificate,
  type Identity,
  type Role,
} from '../session/index.js';

/**
 * Defaults of {@link initPki} and {@link addGateway}.
 * @public
 */
export const PKI_DEFAULTS = Object.freeze({
  /** Gateway certificates {@link initPki} makes. */
  gateways: 2,
  /** Days every certificate is valid: ten years. Renewing means a new root, so the root should outlive the deployment. */
  validDays: 3650,
  /** First words of every commonName: `gatesock root CA`, `gatesock controller`, `gatesock gateway-1`. */
  commonNamePrefix: 'gatesock',
});

/** Most gateways {@link initPki} makes in one go; {@link addGateway} adds more. */
const MAX_INIT_GATEWAYS = 256;
/** Folder names of the root and the controller inside a PKI folder. */
const ROOT_DIR = 'root';
const CONTROLLER_DIR = 'controller';
const ROOT_CN_SUFFIX = ' root CA';
/** A gateway's name is its folder's name: a plain file name, so no path tricks. */
const GATEWAY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const PREFIX_MAX = 24;
const DAY_MS = 86_400_000;

/**
 * Where one identity of the PKI lives, and whose it is.
 * @public
 */
export interface PkiIdentityFiles {
  /** The identity's folder. */
  readonly directory: string;
  /** Its certificate (PEM). */
  readonly certificatePath: string;
  /** Its private key (PEM PKCS#8, mode 0600). */
  readonly keyPath: string;
  /** MSID of the certificate. */
  readonly msid: string;
}

/**
 * Where one gateway's identity lives.
 * @public
 */
export interface PkiGatewayFiles extends PkiIdentityFiles {
  /** The gateway's name: its folder's name under the PKI folder (`gateway-1`). */
  readonly name: string;
}

/**
 * The files of a gateway system's PKI, as {@link initPki} wrote them or
 * {@link loadPki} found them.
 * @public
 */
export interface PkiLayout {
  /** The PKI folder. */
  readonly directory: string;
  /** The root CA (`DIR/root`). Its key signs new gateways; keep it offline otherwise. */
  readonly root: PkiIdentityFiles;
  /** The controller (`DIR/controller`). */
  readonly controller: PkiIdentityFiles;
  /** The gateways, ordered by name (`gateway-2` before `gateway-10`). */
  readonly gateways: readonly PkiGatewayFiles[];
}

/**
 * Options of {@link initPki}.
 * @public
 */
export interface InitPkiOptions {
  /** The PKI folder; created (mode 0700) when missing. */
  directory: string;
  /** Gateway certificates to make, `gateway-1` … `gateway-N`: an integer from 0 to 256. Default {@link PKI_DEFAULTS}.gateways. */
  gateways?: number;
  /** Days every certificate is valid, an integer ≥ 1. Default {@link PKI_DEFAULTS}.validDays. */
  validDays?: number;
  /**
   * Replace an existing PKI in `directory`. Default false: refuse, since a new
   * root makes every certificate signed by the old one useless. Only the
   * `cert.pem` and `key.pem` files of the PKI's folders are removed.
   */
  force?: boolean;
  /** First words of every commonName, 1 to 24 characters. Default {@link PKI_DEFAULTS}.commonNamePrefix. */
  commonNamePrefix?: string;
}

/**
 * Options of {@link addGateway}.
 * @public
 */
export interface AddGatewayOptions {
  /** Days the certificate is valid, an integer ≥ 1. Default {@link PKI_DEFAULTS}.validDays, cut to the root's remaining validity. */
  validDays?: number;
  /** First words of the commonName. Default: the root's, when its commonName ends in ` root CA`; else {@link PKI_DEFAULTS}.commonNamePrefix. */
  commonNamePrefix?: string;
}

/**
 * A PKI read back by {@link loadPki}: every certificate checked against the root.
 * @public
 */
export interface LoadedPki {
  /** Where each file is. */
  readonly layout: PkiLayout;
  /** The root CA certificate: what applications ship and every peer verifies against. */
  readonly root: Certificate;
  /** The controller's identity. */
  readonly controller: Identity;
  /** Each gateway's identity, by name. */
  readonly gateways: ReadonlyMap<string, Identity>;
}

/**
 * Create a gateway system's PKI in `options.directory`: a root CA, a
 * controller certificate and `gateways` gateway certificates signed by it,
 * each with its key. Rejects with `ConfigError` `GS_ERR_INVALID_OPTION` for a
 * bad option, or when the folder already holds a PKI and `force` is not set.
 * @public
 */
export async function initPki(options: InitPkiOptions): Promise<PkiLayout> {
  const { fs, path } = node();
  checkDirectory(options?.directory);
  const gateways = options.gateways ?? PKI_DEFAULTS.gateways;
  checkOption(Number.isInteger(gateways) && gateways >= 0 && gateways <= MAX_INIT_GATEWAYS, 'gateways', `must be an integer from 0 to ${MAX_INIT_GATEWAYS}`);
  const validDays = options.validDays ?? PKI_DEFAULTS.validDays;
  checkOption(Number.isInteger(validDays) && validDays >= 1, 'validDays', 'must be an integer ≥ 1');
  const prefix = checkPrefix(options.commonNamePrefix ?? PKI_DEFAULTS.commonNamePrefix);
  const force = options.force === true;
  const directory = path.resolve(options.directory);
  const gatewayNames = Array.from({ length: gateways }, (_, i) => `gateway-${i + 1}`);

  const existing = await pkiFolders(fs, path, directory);
  if (existing.length > 0) {
    checkOption(
      force,
      'directory',
      `${directory} already holds a PKI (${existing.map((d) => path.basename(d)).join(', ')}); pass force (--force) to replace it — every certificate signed by the old root stops working`,
    );
    for (const dir of existing) await removeIdentityFiles(fs, path, dir);
  }
  await fs.mkdir(directory, { recursive: true, mode: 0o700 });

  // One time for all, so the set is consistent.
  const now = new Date();
  const rootKey = generateIdentityKey();
  const root = createRootCa({ commonName: `${prefix}${ROOT_CN_SUFFIX}`, validDays, key: rootKey, now });
  const issuer = { key: rootKey, certificate: root };
  const rootFiles = await save(createIdentity(rootKey, [root]), path.join(directory, ROOT_DIR));
  const controllerFiles = await issueInto(path.join(directory, CONTROLLER_DIR), 'controller', `${prefix} controller`, issuer, validDays, now);
  const gatewayFiles: PkiGatewayFiles[] = [];
  for (const name of gatewayNames) {
    gatewayFiles.push({ name, ...(await issueInto(path.join(directory, name), 'gateway', `${prefix} ${name}`, issuer, validDays, now)) });
  }
  return Object.freeze({ directory, root: rootFiles, controller: controllerFiles, gateways: Object.freeze(gatewayFiles) });
}

/**
 * Issue one more gateway certificate from the root key kept in
 * `directory/root`, into `directory/name`. `name` is a folder name: 1 to 32
 * characters of letters, digits, `.`, `_` and `-`, starting with a letter or
 * digit, and not `root` or `controller`. Rejects with `ConfigError`
 * `GS_ERR_INVALID_OPTION` for a bad name or option or when that gateway
 * exists, `CertificateError` when the root has expired, or the file-system
 * error (`ENOENT` when there is no PKI).
 * @public
 */
export async function addGateway(directory: string, name: string, options: AddGatewayOptions = {}): Promise<PkiGatewayFiles> {
  const { fs, path } = node();
  checkDirectory(directory);
  checkOption(typeof name === 'string' && GATEWAY_NAME_RE.test(name), 'name', 'must be 1 to 32 letters, digits, ".", "_" or "-", starting with a letter or digit');
  checkOption(name !== ROOT_DIR && name !== CONTROLLER_DIR, 'name', `must not be "${ROOT_DIR}" or "${CONTROLLER_DIR}"`);
  const dir = path.resolve(directory);
  const target = path.join(dir, name);
  checkOption(!(await holdsIdentity(fs, path, target)), 'name', `"${name}" already has a certificate in ${target}`);

  const rootIdentity = await loadIdentity(path.join(dir, ROOT_DIR));
  const root = rootIdentity.certificate;
  const now = new Date();
  verifyCertificateChain([root], { roots: [root], now }); // a damaged or expired root fails here, by its code
  const remainingDays = Math.floor((root.notAfter.getTime() - now.getTime()) / DAY_MS);
  checkOption(remainingDays >= 1, 'root', `certificate expires within a day (${root.notAfter.toISOString()}); make a new PKI`);
  const validDays = options.validDays ?? Math.min(PKI_DEFAULTS.validDays, remainingDays);
  checkOption(Number.isInteger(validDays) && validDays >= 1, 'validDays', 'must be an integer ≥ 1');
  const rootCn = root.commonName ?? '';
  const prefix = checkPrefix(options.commonNamePrefix ?? (rootCn.endsWith(ROOT_CN_SUFFIX) ? rootCn.slice(0, -ROOT_CN_SUFFIX.length) : PKI_DEFAULTS.commonNamePrefix));
  const files = await issueInto(target, 'gateway', `${prefix} ${name}`, { key: rootIdentity.key, certificate: root }, validDays, now);
  return Object.freeze({ name, ...files });
}

/**
 * Read a PKI written by {@link initPki} (and {@link addGateway}): the root
 * certificate (its key is not read, so it may be kept elsewhere), the
 * controller's identity and every gateway's. Gateways are the folders other
 * than `root` and `controller` that hold a `cert.pem`. Each certificate is
 * verified against the root, with its role, at `now` (default: the current
 * time). Rejects with `CertificateError` when one does not verify,
 * `CryptoError` `GS_ERR_BAD_KEY` for a damaged key, or the file-system error.
 * @public
 */
export async function loadPki(directory: string, options: { now?: Date } = {}): Promise<LoadedPki> {
  const { fs, path } = node();
  checkDirectory(directory);
  const dir = path.resolve(directory);
  const now = options.now ?? new Date();
  const rootFiles = filesOf(path, path.join(dir, ROOT_DIR));
  const root = certificateFromPem(await fs.readFile(rootFiles.certificatePath, 'utf8'));
  verifyCertificateChain([root], { roots: [root], now });
  checkOption(root.isCa, rootFiles.certificatePath, 'is not a CA certificate');

  const load = async (folder: string, role: Role): Promise<{ identity: Identity; files: PkiIdentityFiles }> => {
    const identity = await loadIdentity(folder);
    verifyCertificateChain(identity.chain, { roots: [root], role, now });
    return { identity, files: { ...filesOf(path, folder), msid: identity.msid } };
  };
  const controller = await load(path.join(dir, CONTROLLER_DIR), 'controller');
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && e.name !== ROOT_DIR && e.name !== CONTROLLER_DIR)
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const gateways = new Map<string, Identity>();
  const gatewayFiles: PkiGatewayFiles[] = [];
  for (const name of names) {
    const folder = path.join(dir, name);
    // Other identities may live beside the PKI (`gatesock serve` keeps a server's there): only gateways count.
    if ((await certificateRoleIn(fs, path, folder)) !== 'gateway') continue;
    const g = await load(folder, 'gateway');
    gateways.set(name, g.identity);
    gatewayFiles.push(Object.freeze({ name, ...g.files }));
  }
  const layout: PkiLayout = Object.freeze({
    directory: dir,
    root: Object.freeze({ ...rootFiles, msid: msidOf(root) }),
    controller: Object.freeze(controller.files),
    gateways: Object.freeze(gatewayFiles),
  });
  return Object.freeze({ layout, root, controller: controller.identity, gateways });
}

async function issueInto(
  folder: string,
  role: Role,
  commonName: string,
  issuer: { key: Identity['key']; certificate: Certificate },
  validDays: number,
  now: Date,
): Promise<PkiIdentityFiles> {
  const key = generateIdentityKey();
  const certificate = issueCertificate({ role, commonName, publicKey: key.publicKey, issuer, validDays, now });
  return save(createIdentity(key, [certificate]), folder);
}

async function save(identity: Identity, folder: string): Promise<PkiIdentityFiles> {
  const { keyPath, certificatePath } = await saveIdentity(identity, folder);
  return Object.freeze({ directory: folder, certificatePath, keyPath, msid: identity.msid });
}

function filesOf(path: typeof NodePath, folder: string): { directory: string; certificatePath: string; keyPath: string } {
  return { directory: folder, certificatePath: path.join(folder, IDENTITY_FILES.certificate), keyPath: path.join(folder, IDENTITY_FILES.key) };
}

/** The folders of `directory` that hold PKI files: root, controller, and every folder whose certificate is a gateway's (a server identity kept beside them is not the PKI's). */
async function pkiFolders(fs: typeof NodeFs, path: typeof NodePath, directory: string): Promise<string[]> {
  const entries = await fs.readdir(directory, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const found: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const folder = path.join(directory, e.name);
    if (e.name === ROOT_DIR || e.name === CONTROLLER_DIR || (await certificateRoleIn(fs, path, folder)) === 'gateway') found.push(folder);
  }
  return found;
}

async function holdsIdentity(fs: typeof NodeFs, path: typeof NodePath, folder: string): Promise<boolean> {
  return (await exists(fs, path.join(folder, IDENTITY_FILES.certificate))) || (await exists(fs, path.join(folder, IDENTITY_FILES.key)));
}

/** The role named by the certificate in `folder`, if it holds a readable one. */
async function certificateRoleIn(fs: typeof NodeFs, path: typeof NodePath, folder: string): Promise<Role | null | undefined> {
  try {
    return certificateFromPem(await fs.readFile(path.join(folder, IDENTITY_FILES.certificate), 'utf8')).role;
  } catch {
    return undefined;
  }
}

/** Remove a folder's cert.pem and key.pem, then the folder if nothing else is in it. */
async function removeIdentityFiles(fs: typeof NodeFs, path: typeof NodePath, folder: string): Promise<void> {
  for (const file of Object.values(IDENTITY_FILES)) await fs.rm(path.join(folder, file), { force: true });
  await fs.rmdir(folder).catch(() => undefined); // not empty: the operator's own files stay
}

async function exists(fs: typeof NodeFs, file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

function checkDirectory(directory: unknown): asserts directory is string {
  checkOption(typeof directory === 'string' && directory.length > 0, 'directory', 'must be a folder path');
}

function checkPrefix(prefix: unknown): string {
  checkOption(typeof prefix === 'string' && prefix.length >= 1 && prefix.length <= PREFIX_MAX, 'commonNamePrefix', `must be a string of 1 to ${PREFIX_MAX} characters`);
  return prefix;
}

function node(): { fs: typeof NodeFs; path: typeof NodePath } {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs/promises') as typeof NodeFs | undefined;
  const path = proc?.getBuiltinModule?.('node:path') as typeof NodePath | undefined;
  checkOption(fs !== undefined && path !== undefined, 'the PKI functions', 'need Node.js ≥ 20.16 (process.getBuiltinModule)');
  return { fs, path };
}
