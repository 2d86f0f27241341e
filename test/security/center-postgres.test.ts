// A security center whose configuration and security databases are one PostgreSQL
// database (a throwaway server from test/helpers/postgres.ts): agents report over a memory
// link, an advisory import finds the affected host, the countermeasure is dispatched only
// there and confirmed by its next report; a second center opened on the same database
// sees the same hosts, advisory and actions. Skipped with the reason printed where no
// PostgreSQL server can be started.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { registerCenterCommands } from '../../src/cli/center.js';
import { InlineExecutor, MemoryAgentConnector } from '../../src/delivery/dispatch/index.js';
import { parseOsv } from '../../src/delivery/security/advisories/index.js';
import { SecurityAgent } from '../../src/delivery/security/agent/index.js';
import { SecurityCenter } from '../../src/delivery/security/center/index.js';
import { createServerIdentity, generateIdentityKey } from '../../src/session/index.js';
import { postgresForFile } from '../helpers/postgres.js';
import { FAKE_UPGRADE, collectFor, installedVersion, memoryCenterLink, tempDir, until, writeRoot } from './fixtures/center/harness.js';

const { server, closers, dirs, skip } = await postgresForFile('SecurityCenter on PostgreSQL');

const OSV = JSON.stringify({
  schema_version: '1.6.0',
  id: 'T-PG-1',
  modified: '2026-11-20T10:00:00Z',
  affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.11-1~deb12u2' }] }] }],
});

describe('SecurityCenter on PostgreSQL stores', () => {
  it.skipIf(skip !== undefined)('ingests reports, imports an advisory, acts on the affected host only, and a second center sees it all', async () => {
    const url = await server.database();
    const d = tempDir('center-pg');
    dirs.push(d);
    const key = generateIdentityKey();
    const connector = new MemoryAgentConnector();
    const roots = {
      old: writeRoot(path.join(d, 'old'), [{ name: 'openssl', version: '3.0.9-1' }]),
      fixed: writeRoot(path.join(d, 'fixed'), [{ name: 'openssl', version: '3.0.11-1~deb12u2' }]),
    };
    const upgrade = (root: string) => ({ upgradeCommand: [process.execPath, FAKE_UPGRADE, root, '{package}', '{version}'] });
    const center = await SecurityCenter.open({
      key,
      connector,
      configStore: url,
      securityStore: url,
      dispatch: { retries: 0, connectTimeoutMs: 2_000, waves: [1, 0.5] },
      countermeasureTimeoutMs: 5_000,
      policy: { policy: null, defaults: {}, hosts: { old: upgrade(roots.old), fixed: upgrade(roots.fixed) } },
    });
    let open = true;
    closers.push(() => (open ? center.close() : Promise.resolve()));
    const link = memoryCenterLink(() => center);
    const orders: Record<string, number> = { old: 0, fixed: 0 };
    for (const [id, root] of Object.entries(roots)) {
      const agent = await SecurityAgent.open({
        identity: createServerIdentity(),
        centerKey: key.publicKey,
        stateDir: path.join(d, `${id}-state`),
        workDir: path.join(d, `${id}-work`),
        executor: new InlineExecutor(),
        syncState: false,
        host: id,
        center: link,
        collect: collectFor(root, [id === 'old' ? '10.0.0.1' : '10.0.0.2']),
        intervalMs: 600_000,
      });
      closers.push(() => agent.close());
      connector.register(agent.msid, (sock) => void agent.dispatch.serve(sock));
      agent.dispatch.on('accepted', () => orders[id]!++);
      await agent.start({ pcid: `agent-${id}`, listen: false });
    }
    // the reports are in PostgreSQL
    expect((await center.hosts()).map((h) => h.hostId)).toEqual(['fixed', 'old']);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query('SELECT host_id FROM reports WHERE slot = 0 ORDER BY host_id')).rows.map((r: { host_id: string }) => r.host_id)).toEqual(['fixed', 'old']);
    } finally {
      await c.end();
    }

    const result = await center.importAdvisories(parseOsv(OSV, 'T-PG-1.json'));
    expect(result.affected).toEqual([{ advisoryId: 'T-PG-1', hosts: ['old'] }]);
    await until(async () => (await center.actions()).length === 1 && (await center.actions())[0]!.state === 'confirmed', 'the fix confirmed by the next report', 15_000);
    expect(orders).toEqual({ old: 1, fixed: 0 });
    expect(installedVersion(roots.old, 'openssl')).toBe('3.0.11-1~deb12u2');
    await center.settled();
    await center.close();
    open = false;

    // A second center on the same database: hosts, the advisory and the confirmed action are there.
    const again = await SecurityCenter.open({ key, connector, configStore: url, securityStore: url });
    closers.push(() => again.close());
    expect((await again.hosts()).map((h) => h.hostId)).toEqual(['fixed', 'old']);
    expect((await again.security.getAdvisory('T-PG-1'))?.id).toBe('T-PG-1');
    expect((await again.actions('old')).map((a) => [a.advisoryId, a.state])).toEqual([['T-PG-1', 'confirmed']]);
    expect(again.findings()).toEqual([]);
    expect(again.engine.affectedHosts('T-PG-1').hosts).toEqual([]);
    await again.close();

    // The command line reads the same database with --postgres (and writes no database files).
    const cliDir = path.join(d, 'cli-center');
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      registerCenterCommands(program, { print: (l) => out.push(l), note: () => undefined });
      await program.parseAsync(['node', 'gatesock', ...args]);
      return out;
    };
    const hosts = await cli('center', 'hosts', '--dir', cliDir, '--postgres', url);
    const table = hosts.slice(hosts.findIndex((l) => /^host\s+msid/.test(l)) + 1);
    expect(table.map((l) => l.split(/\s+/)[0])).toEqual(['fixed', 'old']);
    const actions = await cli('center', 'actions', 'old', '--dir', cliDir, '--postgres', url);
    expect(actions.join('\n')).toMatch(/old\s+advisory\s+automatic\s+confirmed\s+vulnerable T-PG-1 openssl/);
    expect(fs.existsSync(path.join(cliDir, 'config.db')) || fs.existsSync(path.join(cliDir, 'security.db'))).toBe(false);
    await expect(cli('center', 'hosts', '--dir', cliDir, '--postgres', 'config.db')).rejects.toThrow(/--postgres must be a postgres:\/\//);
  });
});
