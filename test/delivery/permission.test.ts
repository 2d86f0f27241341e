/**
 * The receiver's permission check (a pure function of policy and
 * announcement), its glob patterns, and the per-name version memory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FileUpdateHistory,
  MemoryUpdateHistory,
  assertPermitted,
  checkPermission,
  compileNamePattern,
  publisherKeyId,
  verifyReceiverPolicy,
} from '../../src/delivery/index.js';
import { codeOf, publisher, stranger } from './fixtures/wire.js';

const keyId = publisherKeyId(publisher.publicKey);
const policy = { allow: ['app/*.tar.gz', 'fw/**', 'motd'], publisherKeys: [publisher.publicKey] };

describe('name patterns', () => {
  it('* stays within a segment, ** crosses them, ? is one character, the rest is literal', () => {
    const m = compileNamePattern('app/*.tar.gz');
    expect(m('app/v2.tar.gz')).toBe(true);
    expect(m('app/.tar.gz')).toBe(true);
    expect(m('app/x/v2.tar.gz')).toBe(false);
    expect(m('app/v2.tarXgz')).toBe(false);
    expect(compileNamePattern('fw/**')('fw/a/b/c')).toBe(true);
    expect(compileNamePattern('**')('anything/at/all')).toBe(true);
    expect(compileNamePattern('v?.bin')('v2.bin')).toBe(true);
    expect(compileNamePattern('v?.bin')('v/.bin')).toBe(false);
    expect(compileNamePattern('a+b(c)[d]$^|')('a+b(c)[d]$^|')).toBe(true);
    expect(compileNamePattern('a+b')('aab')).toBe(false);
    for (const bad of ['', 'a b', 'x'.repeat(401), 'é']) expect(codeOf(() => compileNamePattern(bad))).toBe('GS_ERR_INVALID_OPTION');
  });
});

describe('checkPermission', () => {
  it('permits a pinned publisher and a matching name; refuses the rest with a reason', () => {
    expect(checkPermission(policy, { name: 'app/v2.tar.gz', keyId })).toEqual({ permitted: true });
    expect(checkPermission(policy, { name: 'fw/a/b.bin', keyId })).toEqual({ permitted: true });
    expect(checkPermission(policy, { name: 'motd', keyId })).toEqual({ permitted: true });
    const other = checkPermission(policy, { name: 'etc/passwd', keyId });
    expect(other.permitted).toBe(false);
    expect(!other.permitted && other.reason).toMatch(/matches no allowed pattern/);
    const unpinned = checkPermission(policy, { name: 'motd', keyId: publisherKeyId(stranger.publicKey) });
    expect(!unpinned.permitted && unpinned.reason).toMatch(/not pinned/);
    expect(checkPermission(policy, { name: '../motd', keyId }).permitted).toBe(false);
    expect(checkPermission({ allow: [], publisherKeys: [publisher.publicKey] }, { name: 'motd', keyId }).permitted).toBe(false);
    expect(codeOf(() => assertPermitted(policy, { name: 'nope', keyId }))).toBe('GS_ERR_DELIVERY_NOT_PERMITTED');
    expect(codeOf(() => assertPermitted(policy, { name: 'motd', keyId }))).toBeUndefined();
  });

  it('verifyReceiverPolicy refuses a bad pattern or key', () => {
    expect(() => verifyReceiverPolicy(policy)).not.toThrow();
    expect(codeOf(() => verifyReceiverPolicy({ ...policy, allow: ['a b'] }))).toBe('GS_ERR_INVALID_OPTION');
    expect(codeOf(() => verifyReceiverPolicy({ ...policy, publisherKeys: [new Uint8Array(31)] }))).toBe('GS_ERR_INVALID_OPTION');
  });
});

describe('update history', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gs-history-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('remembers the highest version per name, never lowers it, and survives a reopen', () => {
    const mem = new MemoryUpdateHistory();
    mem.record('a', 3);
    mem.record('a', 2);
    expect(mem.lastVersion('a')).toBe(3);
    expect(mem.lastVersion('b')).toBeUndefined();
    const file = path.join(dir, 'state', 'history.json');
    const h = new FileUpdateHistory(file);
    h.record('app/x', 7);
    h.record('motd', 1);
    h.record('app/x', 4);
    const again = new FileUpdateHistory(file);
    expect(again.lastVersion('app/x')).toBe(7);
    expect(again.lastVersion('motd')).toBe(1);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['history.json']);
  });

  it('refuses a damaged history file', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, '{"versions":{"a":-1}}');
    expect(codeOf(() => new FileUpdateHistory(file))).toBe('GS_ERR_DELIVERY_MALFORMED');
    fs.writeFileSync(file, 'not json');
    expect(codeOf(() => new FileUpdateHistory(file))).toBe('GS_ERR_DELIVERY_MALFORMED');
  });
});
