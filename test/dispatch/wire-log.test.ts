/**
 * Evidence log (docs/dispatch.md, "Evidence log"): chain, signatures,
 * re-open, serialised concurrent appends, and every tampering caught with
 * the line named.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentityKey } from '../../src/session/index.js';
import { EvidenceLog, LOG_GENESIS, sha256Digest, verifyEvidenceLog } from '../../src/delivery/dispatch/wire/index.js';
import { dispatchErrorOf } from './wire-helpers.js';

const center = generateIdentityKey();
const other = generateIdentityKey();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gs-wire-log-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


/** Line `l` with the keys of its data object in reverse order (canonical JSON, but not what was signed). */
function reorderData(l: string): string {
  const o = JSON.parse(l);
  o.data = Object.fromEntries(Object.entries(o.data).reverse());
  return JSON.stringify(o);
}

let clock = 1_800_000_000_000;
const now = () => clock++;

async function sampleLog(name: string): Promise<string> {
  const path = join(dir, name);
  const log = await EvidenceLog.open(path, center, { now });
  await log.append('bundle', { digest: sha256Digest(new Uint8Array([1])), metadata: { name: 'x', version: 1 } });
  await log.append('dispatch', { id: 'ab'.repeat(16), bundle: sha256Digest(new Uint8Array([1])), agents: ['MSID-1'], options: { concurrency: 4 } });
  await log.append('issued', { dispatch: 'ab'.repeat(16), run: 0, agent: 'MSID-1', evidence: sha256Digest(new Uint8Array([2])) });
  await log.append('result', { report: { outcome: 'ran', exitCode: 0, text: 'é ✓ "quoted" \\ \n' } });
  await log.append('failure', { dispatch: 'ab'.repeat(16), run: 0, agent: 'MSID-2', reason: 'wrong-evidence' });
  await log.close();
  return path;
}

describe('evidence log', () => {
  it('writes the documented lines and verifies', async () => {
    const path = await sampleLog('a.log');
    const text = await readFile(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['seq', 'prev', 'at', 'kind', 'data', 'sig']);
    expect(first.seq).toBe(0);
    expect(first.prev).toBe(LOG_GENESIS);
    expect(JSON.parse(lines[1]!).prev).toBe(sha256Digest(new TextEncoder().encode(lines[0]!)).slice(7));
    expect(verifyEvidenceLog(text, center.publicKey)).toEqual({ entries: 5, kinds: { bundle: 1, dispatch: 1, issued: 1, result: 1, failure: 1 } });
    expect(verifyEvidenceLog('', center.publicKey).entries).toBe(0);
  });

  it('re-open continues the chain; a bad file is refused', async () => {
    const path = await sampleLog('b.log');
    const log = await EvidenceLog.open(path, center, { now, fsync: true });
    expect(log.entries).toBe(5);
    const e = await log.append('failure', { reason: 'replayed' });
    expect(e.seq).toBe(5);
    await log.close();
    expect(verifyEvidenceLog(await readFile(path, 'utf8'), center.publicKey).entries).toBe(6);
    // Another key cannot continue it.
    await expect(EvidenceLog.open(path, other)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_INVALID' });
    // A torn tail is refused.
    await writeFile(path, (await readFile(path, 'utf8')) + '{"seq":6');
    await expect(EvidenceLog.open(path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_INVALID', message: expect.stringContaining('line 7') });
  });

  it('concurrent appends are serialised into one chain', async () => {
    const path = join(dir, 'c.log');
    const log = await EvidenceLog.open(path, center);
    const entries = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(i % 2 ? 'issued' : 'result', { i })));
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    await log.close();
    const text = await readFile(path, 'utf8');
    expect(verifyEvidenceLog(text, center.publicKey).entries).toBe(200);
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l).data.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('append refuses bad kinds and data, and refuses everything once closed', async () => {
    const log = await EvidenceLog.open(join(dir, 'd.log'), center);
    const bad: unknown[] = [{ x: undefined }, { x: () => 1 }, { x: NaN }, { x: new Date(0) }, { x: 1n }, { x: '\ud800' }, [1], null];
    for (const d of bad) await expect(log.append('result', d as Record<string, unknown>)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    await expect(log.append('other' as 'result', {})).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    expect((await log.append('result', { ok: true })).seq).toBe(0); // refusals took no place in the chain
    await log.close();
    await log.close();
    await expect(log.append('result', {})).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_WRITE_FAILED' });
  });

  it('every kind of tampering is caught, naming the line', async () => {
    const text = await readFile(await sampleLog('e.log'), 'utf8');
    const lines = text.trimEnd().split('\n');
    const join2 = (ls: string[]) => ls.join('\n') + '\n';
    const cases: [string, string, number][] = [
      ['dropped line', join2([lines[0]!, ...lines.slice(2)]), 2],
      ['swapped lines', join2([lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]), 2],
      ['truncated head', join2(lines.slice(1)), 1],
      ['changed data', join2(lines.map((l, i) => (i === 3 ? l.replace('"exitCode":0', '"exitCode":1') : l))), 4],
      ['spaced', join2(lines.map((l, i) => (i === 2 ? l.replace('"run":0', '"run": 0') : l))), 3],
      ['reordered data keys (real)', join2(lines.map((l, i) => (i === 1 ? reorderData(l) : l))), 2],
      ['no final newline', text.slice(0, -1), 5],
      ['duplicated line', join2([...lines, lines[4]!]), 6],
      ['blank line', join2([lines[0]!, '', ...lines.slice(1)]), 2],
    ];
    for (const [what, t, line] of cases) {
      const err = dispatchErrorOf(() => verifyEvidenceLog(t, center.publicKey));
      expect(err?.code, what).toBe('GS_ERR_DISPATCH_LOG_INVALID');
      expect(err?.message, what).toContain(`line ${line}:`);
    }
    // Re-signing a changed line with another key: the signature fails there.
    expect(dispatchErrorOf(() => verifyEvidenceLog(text, other.publicKey))?.message).toContain('line 1:');
  });
});
