// The security center's conditional writes give up after a bounded number of lost races
// (16), with a clear outcome and nothing half-stored, instead of looping while other writers
// keep changing a host's records. A store decorator plays "another center": just before each
// of the center's conditional writes it changes the host's entry (its lastSeen), so every
// compare-and-swap loses — the storm the limits are for.
//   - A report under the storm is answered `need-full` after exactly 16 lost commits, with an
//     `error` event saying so; the stored latest report is unchanged. Once the storm ends the
//     same report is accepted: nothing is wedged.
//   - An enrolment under the storm throws after 16 lost swaps and binds nothing.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors/index.js';
import type { AgentConnector } from '../../src/delivery/dispatch/index.js';
import { signReportMessage } from '../../src/delivery/security/channel/index.js';
import { MemoryConfigurationStore, SecurityCenter, type ConfigurationStore, type HostEntry } from '../../src/delivery/security/center/index.js';
import { collectConfiguration } from '../../src/delivery/security/collect/index.js';
import { encodeConfigurationReport } from '../../src/delivery/security/report/index.js';
import { createServerIdentity, generateIdentityKey, type Identity } from '../../src/session/index.js';
import { collectFor, tempDir, writeRoot } from './fixtures/center/harness.js';

const offline: AgentConnector = {
  async connect(): Promise<never> {
    throw new RelayError('GS_ERR_SERVER_OFFLINE', 'agents are offline (test)');
  },
};

/** The memory store, with "another writer" touching `hostId`'s entry before each conditional write while `storm` is on. */
function stormy(inner: MemoryConfigurationStore, hostId: string) {
  const counts = { commitReport: 0, replaceHost: 0 };
  const state = { storm: false };
  const touch = async (): Promise<void> => {
    const entry = await inner.getHost(hostId);
    if (state.storm && entry) await inner.putHost({ ...entry, lastSeen: entry.lastSeen + 1 });
  };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'commitReport' || prop === 'replaceHost') {
        return async (...args: unknown[]) => {
          counts[prop]++;
          await touch();
          return (target[prop] as (...a: unknown[]) => Promise<boolean>).apply(target, args);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as ConfigurationStore;
  return { store, counts, state };
}

const roots = tempDir('center-retry-limits');
async function message(host: string, identity: Identity, seq: number) {
  const root = writeRoot(path.join(roots, `${host}-${seq}`), [{ name: 'openssl', version: '3.0.9-1' }]);
  const { report } = await collectConfiguration({ ...collectFor(root, ['10.0.0.9']), hostMsid: identity.msid });
  return signReportMessage({ host, pcid: `agent-${host}`, device: 'server' }, encodeConfigurationReport({ ...report, seq }), identity);
}

describe('security center retry limits', () => {
  it('a report whose host records change under every commit is answered need-full after 16 tries, nothing stored; accepted once the storm ends', async () => {
    const inner = new MemoryConfigurationStore();
    const { store, counts, state } = stormy(inner, 'h-1');
    const center = await SecurityCenter.open({ key: generateIdentityKey(), connector: offline, configStore: store });
    try {
      const errors: string[] = [];
      center.on('error', (e) => errors.push(e.message));
      const agent = createServerIdentity();
      expect((await center.receiveReport(await message('h-1', agent, 1))).status).toBe('accepted');
      state.storm = true;
      counts.commitReport = 0;
      const answer = await center.receiveReport(await message('h-1', agent, 2));
      expect(answer.status).toBe('need-full');
      expect(answer.message).toMatch(/changed under it 16 times/);
      expect(counts.commitReport).toBe(16);
      expect(errors).toHaveLength(1);
      expect((await inner.latest('h-1'))?.seq).toBe(1);
      state.storm = false;
      expect((await center.receiveReport(await message('h-1', agent, 2))).status).toBe('accepted');
      expect((await inner.latest('h-1'))?.seq).toBe(2);
    } finally {
      await center.close();
    }
  });

  it('an enrolment whose host entry changes under every swap throws after 16 tries and binds nothing', async () => {
    const inner = new MemoryConfigurationStore();
    const { store, counts, state } = stormy(inner, 'h-2');
    const center = await SecurityCenter.open({ key: generateIdentityKey(), connector: offline, configStore: store });
    try {
      const first = createServerIdentity();
      await center.enrollHost('h-2', first.msid, 'agent-h-2');
      const before: HostEntry | undefined = await inner.getHost('h-2');
      state.storm = true;
      counts.replaceHost = 0;
      const next = createServerIdentity();
      await expect(center.enrollHost('h-2', next.msid, 'agent-h-2')).rejects.toThrow(/changed under the enrolment 16 times/);
      expect(counts.replaceHost).toBe(16);
      expect((await inner.getHost('h-2'))?.msid).toBe(before?.msid);
      expect(await inner.hostByMsid(next.msid)).toBeUndefined();
    } finally {
      await center.close();
    }
  });
});
