/**
 * Bundle repositories (memory and folder: same behaviour; the folder one
 * writes atomically and re-hashes on every read) and the in-memory agent
 * connector.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DispatchError, RelayError } from '../../src/errors/index.js';
import { DirectoryBundleRepository, MemoryAgentConnector, MemoryBundleRepository, type BundleRepository } from '../../src/delivery/dispatch/center/index.js';
import { sha256Digest } from '../../src/delivery/dispatch/wire/index.js';
import type { SockIo } from '../../src/socket/index.js';

const work = mkdtempSync(join(tmpdir(), 'gatesock-center-repo-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let dirs = 0;

function describeRepository(name: string, make: () => BundleRepository): void {
  describe(`BundleRepository: ${name}`, () => {
    it('stores by digest and gives the same bytes back', async () => {
      const repo = make();
      const bytes = new TextEncoder().encode('GSBUNDL1 pretend bundle');
      const digest = await repo.put(bytes);
      expect(digest).toBe(sha256Digest(bytes));
      expect(await repo.has(digest)).toBe(true);
      expect(await repo.get(digest)).toEqual(bytes);
      expect(await repo.put(bytes)).toBe(digest);
    });

    it('answers nothing for unknown or ill-formed digests', async () => {
      const repo = make();
      expect(await repo.get(`sha256:${'0'.repeat(64)}`)).toBeUndefined();
      expect(await repo.has(`sha256:${'0'.repeat(64)}`)).toBe(false);
      for (const bad of ['', 'sha256:../../etc/passwd', `sha256:${'A'.repeat(64)}`, `md5:${'0'.repeat(64)}`]) {
        expect(await repo.get(bad)).toBeUndefined();
        expect(await repo.has(bad)).toBe(false);
      }
    });
  });
}

describeRepository('memory', () => new MemoryBundleRepository());
describeRepository('directory', () => new DirectoryBundleRepository(join(work, `r${++dirs}`)));

describe('DirectoryBundleRepository on disk', () => {
  it('names files by digest, leaves no temporary files, and refuses a damaged file', async () => {
    const dir = join(work, 'damaged');
    const repo = new DirectoryBundleRepository(dir);
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    const digest = await repo.put(bytes);
    const file = join(dir, `${digest.slice('sha256:'.length)}.bundle`);
    expect(existsSync(file)).toBe(true);
    expect(readdirSync(dir)).toEqual([`${digest.slice(7)}.bundle`]);
    // A second repository on the same folder sees it (a restarted center).
    expect(await new DirectoryBundleRepository(dir).get(digest)).toEqual(bytes);
    writeFileSync(file, new Uint8Array([1, 2, 3, 4, 6]));
    const err = await repo.get(digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe('GS_ERR_DISPATCH_DIGEST_MISMATCH');
  });
});

describe('MemoryAgentConnector', () => {
  it('connects registered agents both ways and says offline for the rest', async () => {
    const connector = new MemoryAgentConnector();
    const msid = `MSID-${'AB'.repeat(32)}`;
    let agentSide: SockIo | undefined;
    connector.register(msid, (sock) => (agentSide = sock));
    const sock = await connector.connect({ msid: msid.toLowerCase().replace('msid-', 'MSID-'), pcid: 'p1' });
    expect(sock.info.peerMsid).toBe(msid.toLowerCase().replace('msid-', 'MSID-'));
    await sock.send(new Uint8Array([7]));
    expect(await agentSide!.recv()).toEqual(new Uint8Array([7]));
    await Promise.all([sock.disconnect(), agentSide!.disconnect()]);
    connector.unregister(msid);
    const err = await connector.connect({ msid, pcid: 'p1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe('GS_ERR_SERVER_OFFLINE');
  });
});
