/**
 * Evidence log (docs/dispatch.md, "Evidence log"): chain, signatures,
 * re-open, serialised concurrent appends, every tampering caught with
 * the line named, and (with its head) every line cut off the end.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentityKey } from '../../src/session/index.js';
import {
  EvidenceLog,
  LOG_CONTEXT,
  LOG_FORMAT,
  LOG_GENESIS,
  LOG_HEAD_FORMAT,
  formatLogHead,
  parseLogHead,
  sha256Digest,
  verifyEvidenceLog,
  verifyLogHead,
} from '../../src/delivery/dispatch/wire/index.js';
import { codeOf, dispatchErrorOf } from './wire-helpers.js';

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

const hashOf = (line: string): string => sha256Digest(new TextEncoder().encode(line)).slice(7);

/** A log line of `unsigned` (seq, prev, at, kind, data), signed as the center signs one. */
function signLine(unsigned: Record<string, unknown>, key = center): string {
  const sig = Buffer.from(key.sign(new TextEncoder().encode(LOG_CONTEXT + JSON.stringify(unsigned)))).toString('base64url');
  return JSON.stringify({ ...unsigned, sig });
}

/** Line `l` changed by `edit` and signed again with the center key (a line the center could have written). */
function resign(l: string, edit: (o: Record<string, unknown>) => void): string {
  const o = JSON.parse(l);
  edit(o);
  delete o.sig;
  return signLine(o);
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
  it('writes the documented lines and head, and verifies', async () => {
    const path = await sampleLog('a.log');
    const text = await readFile(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['seq', 'prev', 'at', 'kind', 'data', 'sig']);
    expect(first.seq).toBe(0);
    expect(first.prev).toBe(LOG_GENESIS);
    expect(first.kind).toBe('log');
    expect(first.data).toEqual({ format: LOG_FORMAT });
    expect(JSON.parse(lines[1]!).prev).toBe(hashOf(lines[0]!));
    // The head file: one canonical signed line naming the last line.
    const headText = await readFile(path + '.head', 'utf8');
    const head = JSON.parse(headText);
    expect(Object.keys(head)).toEqual(['format', 'entries', 'hash', 'at', 'sig']);
    expect(head).toMatchObject({ format: LOG_HEAD_FORMAT, entries: 6, hash: hashOf(lines[5]!) });
    expect(headText).toBe(JSON.stringify(head) + '\n');
    expect(verifyLogHead(headText, center.publicKey)).toEqual({ entries: 6, hash: hashOf(lines[5]!), at: head.at });
    const end = { entries: 6, hash: hashOf(lines[5]!) };
    expect(verifyEvidenceLog(text, center.publicKey, { head: headText })).toEqual({
      entries: 6,
      kinds: { log: 1, bundle: 1, dispatch: 1, issued: 1, result: 1, failure: 1 },
      version: 2,
      end,
      head: { ...end, at: head.at },
      pastHead: 0,
    });
    // A head kept elsewhere as text.
    expect(verifyEvidenceLog(text, center.publicKey, { head: parseLogHead(formatLogHead(end)) }).head).toEqual(end);
    expect(verifyEvidenceLog('', center.publicKey)).toMatchObject({ entries: 0, version: 1, head: null });
  });

  it('re-open continues the chain; a bad file is refused', async () => {
    const path = await sampleLog('b.log');
    const log = await EvidenceLog.open(path, center, { now, fsync: true });
    expect(log.entries).toBe(6);
    const e = await log.append('failure', { reason: 'replayed' });
    expect(e.seq).toBe(6);
    await log.close();
    expect(verifyEvidenceLog(await readFile(path, 'utf8'), center.publicKey, { head: await readFile(path + '.head', 'utf8') }).entries).toBe(7);
    // Another key cannot continue it.
    await expect(EvidenceLog.open(path, other)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_INVALID' });
    // A torn tail is refused.
    await writeFile(path, (await readFile(path, 'utf8')) + '{"seq":7');
    await expect(EvidenceLog.open(path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_INVALID', message: expect.stringContaining('line 8') });
  });

  it('concurrent appends are serialised into one chain', async () => {
    const path = join(dir, 'c.log');
    const log = await EvidenceLog.open(path, center, { headIntervalMs: 0 });
    // The head is written behind the lines (headIntervalMs 0: as often as it can) and never names a line not yet written.
    const seen: [number, number][] = [];
    const sample = () => {
      const head = verifyLogHead(readFileSync(path + '.head', 'utf8'), center.publicKey).entries;
      seen.push([head, readFileSync(path, 'utf8').trimEnd().split('\n').length]);
    };
    const entries = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(i % 2 ? 'issued' : 'result', { i }).then((e) => (i % 10 === 0 && sample(), e))));
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(seen.every(([head, lines]) => head <= lines)).toBe(true);
    expect(await log.flush()).toEqual(log.head);
    expect(verifyLogHead(readFileSync(path + '.head', 'utf8'), center.publicKey)).toMatchObject({ ...log.head, entries: 201 });
    await log.close();
    const text = await readFile(path, 'utf8');
    expect(verifyEvidenceLog(text, center.publicKey, { head: await readFile(path + '.head', 'utf8') })).toMatchObject({ entries: 201, pastHead: 0 });
    expect(text.trimEnd().split('\n').slice(1).map((l) => JSON.parse(l).data.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('append refuses bad kinds and data, and refuses everything once closed', async () => {
    const log = await EvidenceLog.open(join(dir, 'd.log'), center);
    const bad: unknown[] = [{ x: undefined }, { x: () => 1 }, { x: NaN }, { x: new Date(0) }, { x: 1n }, { x: '\ud800' }, [1], null];
    for (const d of bad) await expect(log.append('result', d as Record<string, unknown>)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    await expect(log.append('other' as 'result', {})).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    await expect(log.append('log', { format: 'gatesock-evidence-log-v9' })).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_MALFORMED' });
    expect((await log.append('result', { ok: true })).seq).toBe(1); // refusals took no place in the chain (line 1 is the log line)
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
      ['cut at the start', join2(lines.slice(1)), 1],
      ['changed data', join2(lines.map((l, i) => (i === 4 ? l.replace('"exitCode":0', '"exitCode":1') : l))), 5],
      ['spaced', join2(lines.map((l, i) => (i === 3 ? l.replace('"run":0', '"run": 0') : l))), 4],
      ['reordered data keys (real)', join2(lines.map((l, i) => (i === 2 ? reorderData(l) : l))), 3],
      ['no final newline', text.slice(0, -1), 6],
      ['duplicated line', join2([...lines, lines[5]!]), 7],
      ['blank line', join2([lines[0]!, '', ...lines.slice(1)]), 2],
      ['log line with other data', join2([resign(lines[0]!, (o) => (o.data = { format: LOG_FORMAT, extra: 1 })), ...lines.slice(1)]), 1],
    ];
    for (const [what, t, line] of cases) {
      const err = dispatchErrorOf(() => verifyEvidenceLog(t, center.publicKey, { allowNoHead: true }));
      expect(err?.code, what).toBe('GS_ERR_DISPATCH_LOG_INVALID');
      expect(err?.message, what).toContain(`line ${line}:`);
    }
    // Re-signing a changed line with another key: the signature fails there.
    expect(dispatchErrorOf(() => verifyEvidenceLog(text, other.publicKey, { allowNoHead: true }))?.message).toContain('line 1:');
  });
});

describe('evidence log head: lines cut off the end', () => {
  /** A sample log: its text, lines, the head file's text and the final head. */
  async function sample(name: string) {
    const path = await sampleLog(name);
    const text = await readFile(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    const headText = await readFile(path + '.head', 'utf8');
    return { path, text, lines, headText, end: { entries: lines.length, hash: hashOf(lines.at(-1)!) } };
  }
  const keep = (lines: string[], n: number) => lines.slice(0, n).map((l) => l + '\n').join('');

  it('a whole log with its head verifies; a head kept elsewhere too; a log past its head verifies and says by how much', async () => {
    const s = await sample('h-ok.log');
    expect(verifyEvidenceLog(s.text, center.publicKey, { head: s.headText })).toMatchObject({ entries: 6, pastHead: 0, head: s.end });
    expect(verifyEvidenceLog(s.text, center.publicKey, { head: parseLogHead(`${s.end.entries}/${s.end.hash}`) })).toMatchObject({ entries: 6, pastHead: 0 });
    // A head taken earlier (an older head file, or one noted before the last lines): the log extends it.
    const earlier = { entries: 3, hash: hashOf(s.lines[2]!) };
    expect(verifyEvidenceLog(s.text, center.publicKey, { head: earlier })).toMatchObject({ entries: 6, pastHead: 3, head: earlier });
    expect(verifyEvidenceLog(s.text, center.publicKey, { head: { entries: 0, hash: LOG_GENESIS } })).toMatchObject({ pastHead: 6 });
  });

  it('cutting one line, several lines or every line off the end is GS_ERR_DISPATCH_LOG_TRUNCATED naming both heads', async () => {
    const s = await sample('h-cut.log');
    for (const n of [5, 3, 1, 0]) {
      const cut = keep(s.lines, n);
      // Without a head the shorter log is a valid log: the chain alone cannot tell.
      expect(verifyEvidenceLog(cut, center.publicKey, { allowNoHead: true }).entries).toBe(n);
      const err = dispatchErrorOf(() => verifyEvidenceLog(cut, center.publicKey, { head: s.headText }));
      expect(err?.code, `kept ${n}`).toBe('GS_ERR_DISPATCH_LOG_TRUNCATED');
      const endHash = n === 0 ? LOG_GENESIS : hashOf(s.lines[n - 1]!);
      expect(err?.message).toBe(
        `evidence log truncated: expected head 6/${s.end.hash}, found ${n} ${n === 1 ? 'entry' : 'entries'} (ends at ${n}/${endHash}); ${6 - n} line${6 - n === 1 ? ' is' : 's are'} missing from the end`,
      );
      expect(codeOf(() => verifyEvidenceLog(cut, center.publicKey, { head: s.end }))).toBe('GS_ERR_DISPATCH_LOG_TRUNCATED');
    }
  });

  it('a version 2 log without a head is refused unless allowed; a version 1 log needs none', async () => {
    const s = await sample('h-none.log');
    const err = dispatchErrorOf(() => verifyEvidenceLog(keep(s.lines, 4), center.publicKey));
    expect(err?.code).toBe('GS_ERR_DISPATCH_LOG_HEAD_INVALID');
    expect(err?.message).toContain('keeps one from line 1 on');
    expect(verifyEvidenceLog(keep(s.lines, 4), center.publicKey, { allowNoHead: true })).toMatchObject({ entries: 4, version: 2, head: null });
    const v1 = v1Log(3);
    expect(verifyEvidenceLog(v1, center.publicKey)).toMatchObject({ entries: 3, version: 1, head: null, kinds: { log: 0, result: 3 } });
  });

  it('a rewritten head file is GS_ERR_DISPATCH_LOG_HEAD_INVALID: changed, re-signed by another key, torn, or another log\'s', async () => {
    const s = await sample('h-rewrite.log');
    const cut = keep(s.lines, 4);
    const h = JSON.parse(s.headText);
    const rewritten = (o: Record<string, unknown>) => JSON.stringify(o) + '\n';
    const signedBy = (key: typeof center, entries: number, hash: string) => {
      const unsigned = { format: LOG_HEAD_FORMAT, entries, hash, at: h.at };
      const sig = Buffer.from(key.sign(new TextEncoder().encode('gatesock-dispatch-log-head-v1\n' + JSON.stringify(unsigned)))).toString('base64url');
      return rewritten({ ...unsigned, sig });
    };
    // The same key over the same fields verifies (so the cases below fail for the reason they name).
    expect(signedBy(center, h.entries, h.hash)).toBe(s.headText);
    const cases: [string, string, string][] = [
      ['head moved back to match the cut log', rewritten({ ...h, entries: 4, hash: hashOf(s.lines[3]!) }), 'signature does not verify'],
      ['signed by another key', signedBy(other, 4, hashOf(s.lines[3]!)), 'signature does not verify'],
      ['torn', s.headText.slice(0, 40), 'one line ending in a line feed'],
      ['not canonical', s.headText.replace('"entries":', '"entries": '), 'not in canonical form'],
      ['extra field', rewritten({ ...h, extra: 1 }), 'fields must be exactly'],
      ['empty', '', 'one line ending in a line feed'],
    ];
    for (const [what, head, why] of cases) {
      const err = dispatchErrorOf(() => verifyEvidenceLog(cut, center.publicKey, { head }));
      expect(err?.code, what).toBe('GS_ERR_DISPATCH_LOG_HEAD_INVALID');
      expect(err?.message, what).toContain(why);
    }
    // A genuine head of another log with as many lines: the line at the head is not the one it names.
    const otherLog = await sample('h-rewrite-other.log');
    const err = dispatchErrorOf(() => verifyEvidenceLog(s.text, center.publicKey, { head: otherLog.headText }));
    expect(err?.code).toBe('GS_ERR_DISPATCH_LOG_HEAD_INVALID');
    expect(err?.message).toContain('evidence log line 6 is not the line the head');
    // A bad line is named before a bad head.
    expect(codeOf(() => verifyEvidenceLog(s.text.replace('"run":0', '"run":1'), center.publicKey, { head: '' }))).toBe('GS_ERR_DISPATCH_LOG_INVALID');
  });

  it('an older genuine head put back beside a cut log passes it; a head kept elsewhere does not', async () => {
    const path = join(dir, 'h-replay.log');
    const log = await EvidenceLog.open(path, center, { now });
    await log.append('bundle', { n: 1 });
    const old = await readFile(path + '.head', 'utf8');
    await log.append('result', { n: 2 });
    await log.append('result', { n: 3 });
    const kept = formatLogHead(log.head);
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    const cut = keep(lines, 2);
    expect(verifyEvidenceLog(cut, center.publicKey, { head: old }).entries).toBe(2);
    expect(codeOf(() => verifyEvidenceLog(cut, center.publicKey, { head: parseLogHead(kept) }))).toBe('GS_ERR_DISPATCH_LOG_TRUNCATED');
  });

  it('open refuses a cut log (it would fork the chain), a lost head and a rewritten head; a head behind the log is brought up to date', async () => {
    const s = await sample('h-open.log');
    await writeFile(s.path, keep(s.lines, 5));
    await expect(EvidenceLog.open(s.path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_TRUNCATED', message: expect.stringContaining('would fork the chain') });
    await rm(s.path);
    await expect(EvidenceLog.open(s.path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_TRUNCATED', message: expect.stringContaining('found 0 entries') });
    await writeFile(s.path, s.text);
    await writeFile(s.path + '.head', s.headText.replace('"entries":6', '"entries":5'));
    await expect(EvidenceLog.open(s.path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_HEAD_INVALID' });
    await rm(s.path + '.head');
    await expect(EvidenceLog.open(s.path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_HEAD_INVALID', message: expect.stringContaining('.head is missing') });
    // A genuine head of another log beside it: refused.
    const early = await sampleLog('h-open-early.log');
    await writeFile(s.path + '.head', await readFile(early + '.head', 'utf8'));
    await expect(EvidenceLog.open(s.path, center)).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_HEAD_INVALID', message: expect.stringContaining('line 6 is not the line') });
    // A crash between a line and its head leaves this log's head behind: open accepts it and writes a new head.
    const path = join(dir, 'h-open-behind.log');
    const first = await EvidenceLog.open(path, center, { now });
    await first.append('result', { i: 1 });
    const behind = await readFile(path + '.head', 'utf8');
    await first.append('result', { i: 2 });
    const end = first.head;
    await first.close();
    await writeFile(path + '.head', behind);
    const log = await EvidenceLog.open(path, center, { now });
    expect(log.entries).toBe(3);
    await log.close();
    expect(verifyLogHead(await readFile(path + '.head', 'utf8'), center.publicKey)).toMatchObject(end);
  });

  it('open continues a version 1 log: adds the log line and a head, and from then on a cut is caught', async () => {
    const path = join(dir, 'h-v1.log');
    await writeFile(path, v1Log(3));
    const log = await EvidenceLog.open(path, center, { now });
    expect(log.entries).toBe(4);
    await log.append('result', { i: 9 });
    await log.close();
    const text = await readFile(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(JSON.parse(lines[3]!)).toMatchObject({ seq: 3, kind: 'log', data: { format: LOG_FORMAT } });
    const headText = await readFile(path + '.head', 'utf8');
    expect(verifyEvidenceLog(text, center.publicKey, { head: headText })).toMatchObject({ entries: 5, version: 2, kinds: { log: 1, result: 4 } });
    expect(codeOf(() => verifyEvidenceLog(keep(lines, 4), center.publicKey, { head: headText }))).toBe('GS_ERR_DISPATCH_LOG_TRUNCATED');
    expect(codeOf(() => verifyEvidenceLog(keep(lines, 4), center.publicKey))).toBe('GS_ERR_DISPATCH_LOG_HEAD_INVALID');
  });

  it('a failed head write breaks the log like a failed line write', async () => {
    const path = join(dir, 'h-fail.log');
    const log = await EvidenceLog.open(path, center, { now });
    await mkdir(path + '.head.tmp'); // the head cannot be written through a folder
    expect((await log.append('result', { i: 1 })).seq).toBe(1); // the line is written; its head is not
    await expect(log.flush()).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_WRITE_FAILED', message: expect.stringContaining('writing its head') });
    await expect(log.append('result', { i: 2 })).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_WRITE_FAILED' });
    await log.close();
    // The head still names line 1: the log is past it, not cut.
    expect(verifyEvidenceLog(await readFile(path, 'utf8'), center.publicKey, { head: await readFile(path + '.head', 'utf8') })).toMatchObject({ entries: 2, pastHead: 1 });
    // close() reports a head it could not write.
    const other = await EvidenceLog.open(join(dir, 'h-fail-close.log'), center, { now, headIntervalMs: 60_000 });
    await mkdir(other.headPath + '.tmp');
    await other.append('result', { i: 1 });
    await expect(other.close()).rejects.toMatchObject({ code: 'GS_ERR_DISPATCH_LOG_WRITE_FAILED' });
  });

  it('the head is written at most once per headIntervalMs, behind the lines', async () => {
    const path = join(dir, 'h-interval.log');
    const log = await EvidenceLog.open(path, center, { now, headIntervalMs: 60_000 });
    const headAtOpen = await readFile(path + '.head', 'utf8');
    for (let i = 0; i < 5; i++) await log.append('result', { i });
    await new Promise((r) => setTimeout(r, 30));
    // Within the interval: the head still names the log line of open; the log is past it and verifies.
    expect(await readFile(path + '.head', 'utf8')).toBe(headAtOpen);
    expect(verifyEvidenceLog(await readFile(path, 'utf8'), center.publicKey, { head: headAtOpen })).toMatchObject({ entries: 6, pastHead: 5 });
    await log.close(); // brings it up to date
    expect(verifyLogHead(await readFile(path + '.head', 'utf8'), center.publicKey).entries).toBe(6);
    await expect(EvidenceLog.open(path, center, { headIntervalMs: -1 })).rejects.toMatchObject({ code: 'GS_ERR_INVALID_OPTION' });
  });

  it('head text N/hash: round trip and refusals', () => {
    const h = { entries: 12, hash: 'ab'.repeat(32) };
    expect(formatLogHead(h)).toBe(`12/${'ab'.repeat(32)}`);
    expect(parseLogHead(` ${formatLogHead(h)}\n`)).toEqual(h);
    expect(parseLogHead(`0/${LOG_GENESIS}`)).toEqual({ entries: 0, hash: LOG_GENESIS });
    for (const bad of ['12', `12/${'AB'.repeat(32)}`, `-1/${'ab'.repeat(32)}`, `012/${'ab'.repeat(32)}`, `12/${'ab'.repeat(31)}`, `0/${'ab'.repeat(32)}`, `1e3/${'ab'.repeat(32)}`, '']) {
      expect(codeOf(() => parseLogHead(bad)), bad).toBe('GS_ERR_DISPATCH_MALFORMED');
    }
  });
});

/** A version 1 log as centers wrote it before heads: `n` result lines, no log line. */
function v1Log(n: number): string {
  let prev = LOG_GENESIS;
  let out = '';
  for (let seq = 0; seq < n; seq++) {
    const line = signLine({ seq, prev, at: now(), kind: 'result', data: { seq } });
    out += line + '\n';
    prev = hashOf(line);
  }
  return out;
}
