/**
 * The agent's reporting loop against the center's ledger: a full report on
 * joining, deltas after, and recovery when reports are lost (a gap), when
 * the center forgot the host, or when the agent restarted with old numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationReporter, type CenterAnswer } from '../../src/delivery/security/collect/index.js';
import { ConfigurationLedger, REPORT_FORMAT, type ConfigurationReport, type FullReport } from '../../src/delivery/security/report/index.js';

const MSID = `MSID-${'C3'.repeat(32)}`;
let version = 1;
const state = (): FullReport => ({
  format: REPORT_FORMAT, kind: 'full', hostMsid: MSID, seq: 1, time: 1000 + version,
  os: { id: 'debian', versionId: '12', name: 'Debian GNU/Linux', prettyName: 'Debian GNU/Linux 12 (bookworm)', idLike: [], versionCodename: 'bookworm' },
  kernel: '6.1.0-18-amd64', addresses: ['192.0.2.20'],
  packages: [{ manager: 'dpkg', name: 'openssl', version: `3.0.11-1~deb12u${version}`, arch: 'amd64', source: null, sourceVersion: null }],
  services: [], files: [],
});

const reporters: ConfigurationReporter[] = [];
afterEach(async () => {
  for (const r of reporters.splice(0)) await r.stop();
});

function center(ledger: ConfigurationLedger, drop: (r: ConfigurationReport) => boolean = () => false) {
  const seen: string[] = [];
  const send = async (r: ConfigurationReport): Promise<CenterAnswer> => {
    seen.push(`${r.kind}:${r.seq}`);
    if (drop(r)) throw new Error('lost on the way');
    const res = ledger.receive(JSON.stringify(r), MSID);
    return res.status === 'accepted' ? { status: 'accepted' } : res.status === 'stale' ? res : { status: 'need-full', reason: res.reason };
  };
  return { seen, send };
}

describe('ConfigurationReporter', () => {
  it('sends a full report on joining, then deltas on its timer', async () => {
    const ledger = new ConfigurationLedger();
    const { seen, send } = center(ledger);
    const rep = new ConfigurationReporter({ collect: async () => state(), send, intervalMs: 20 });
    reporters.push(rep);
    const sent: ConfigurationReport[] = [];
    rep.on('sent', (r) => sent.push(r));
    rep.start();
    for (let i = 0; i < 100 && sent.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await rep.stop();
    expect(seen.slice(0, 3)).toEqual(['full:1', 'delta:2', 'delta:3']);
    expect(ledger.latest(MSID)?.seq).toBe(seen.length);
    expect(rep.state).toBe('stopped');
  });

  it('recovers with a full report after a lost report, a forgetful center, or a restart', async () => {
    const ledger = new ConfigurationLedger();
    let dropNext = false;
    const { seen, send } = center(ledger, () => {
      const d = dropNext;
      dropNext = false;
      return d;
    });
    const rep = new ConfigurationReporter({ collect: async () => state(), send });
    const errors: unknown[] = [];
    rep.on('error', (e) => errors.push(e));
    expect(await rep.reportNow()).toEqual({ status: 'accepted' });
    version = 2;
    dropNext = true;
    await expect(rep.reportNow()).rejects.toThrow('lost on the way');
    expect(await rep.reportNow()).toEqual({ status: 'accepted' }); // full, since the last send failed
    expect(seen).toEqual(['full:1', 'delta:2', 'full:3']);
    expect(ledger.latest(MSID)?.packages[0]?.version).toBe('3.0.11-1~deb12u2');

    ledger.forget(MSID); // the center lost the host: its delta has no base
    version = 3;
    expect(await rep.reportNow()).toEqual({ status: 'accepted' });
    expect(seen.slice(3)).toEqual(['delta:4', 'full:5']);
    expect(ledger.latest(MSID)?.packages[0]?.version).toBe('3.0.11-1~deb12u3');

    // an agent restarted without its numbers: the center says stale, the agent jumps above
    const fresh = new ConfigurationReporter({ collect: async () => state(), send });
    expect(await fresh.reportNow()).toEqual({ status: 'accepted' });
    expect(seen.slice(5)).toEqual(['full:1', 'full:6']);
    expect(fresh.seq).toBe(6);
    expect(errors).toEqual([]);
  });

  it('keeps running when a collection fails, reporting the error, and the next report is full', async () => {
    const ledger = new ConfigurationLedger();
    const { seen, send } = center(ledger);
    let calls = 0;
    const rep = new ConfigurationReporter({
      collect: async () => {
        calls++;
        if (calls === 2) throw new Error('dpkg status unreadable');
        return state();
      },
      send,
      intervalMs: 15,
    });
    reporters.push(rep);
    const errors: unknown[] = [];
    rep.on('error', (e) => errors.push(e));
    rep.start();
    for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await rep.stop();
    expect((errors[0] as Error).message).toBe('dpkg status unreadable');
    // the failed collection used no number; reports go on as deltas
    expect(seen.slice(0, 3)).toEqual(['full:1', 'delta:2', 'delta:3']);
    expect(() => rep.start()).toThrow(/state stopped/);
    expect(() => new ConfigurationReporter({ collect: async () => state(), send, intervalMs: 0 })).toThrow(/intervalMs/);
  });
});
