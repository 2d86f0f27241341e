/**
 * One agent process of the relay dispatch figure (started by
 * bench/dispatch-relay.ts with the bench's TypeScript hooks). It does
 * nothing until the parent sends a command over IPC (`{ id, command, args }`)
 * and answers each with `{ id, ok, value | error }`; it exits when the parent
 * goes away.
 *
 * Commands:
 *   ping
 *   agents  {pki, controller, centerKey, from, count, prefix, work}: `count`
 *           DispatchAgents (cached identities from `from`, InlineExecutor,
 *           syncState false), each a relay server with the end-to-end layer
 *           on and the PCID `<prefix><i>`; answers their {msid, pcid}
 *   plain   {pki, controller, from, count, prefix}: `count` plain relay
 *           servers (same options) answering the plain exchange
 *           (bench/dispatch-plain.ts); answers their {msid, pcid}
 *   close   closes every server and agent
 */
import { join } from 'node:path';
import { DispatchAgent, InlineExecutor } from '../src/delivery/dispatch/index.js';
import { loadPki, type LoadedPki } from '../src/relay/index.js';
import { serverStart, type SockServer } from '../src/socket/index.js';
import { lanes, plainServe } from './dispatch-plain.js';
import { serverIdentities } from './relay-procs.js';

const LINK = { backend: 'native' as const };
const pkis = new Map<string, Promise<LoadedPki>>();
const pkiOf = (dir: string): Promise<LoadedPki> => {
  let p = pkis.get(dir);
  if (!p) pkis.set(dir, (p = loadPki(dir)));
  return p;
};

const servers: SockServer[] = [];
const agents: DispatchAgent[] = [];
/** Servers come online this many at a time (logins are CPU work at the controller). */
const START_LANES = 8;
const START_TIMEOUT_MS = 60_000;

interface Start {
  pki: string;
  controller: string;
  from: number;
  count: number;
  prefix: string;
}

type Handler = (args: any) => Promise<unknown> | unknown;

const commands: Record<string, Handler> = {
  ping: () => process.pid,

  async agents(a: Start & { centerKey: string; work: string }) {
    const pki = await pkiOf(a.pki);
    const ids = serverIdentities(a.from, a.count);
    const executor = new InlineExecutor();
    const out: { msid: string; pcid: string }[] = [];
    await lanes(a.count, START_LANES, async (i) => {
      const agent = await DispatchAgent.open({
        identity: ids[i]!,
        centerKey: a.centerKey,
        stateDir: join(a.work, String(i), 'state'),
        workDir: join(a.work, String(i), 'work'),
        executor,
        syncState: false,
      });
      agents.push(agent);
      const pcid = `${a.prefix}${i}`;
      const server = await agent.listen({ controller: a.controller, roots: [pki.root], identity: ids[i]!, pcid, endToEnd: true, link: LINK, startTimeoutMs: START_TIMEOUT_MS });
      servers.push(server);
      out[i] = { msid: agent.msid, pcid: await named(server, pcid) };
    });
    return out;
  },

  async plain(a: Start) {
    const pki = await pkiOf(a.pki);
    const ids = serverIdentities(a.from, a.count);
    const out: { msid: string; pcid: string }[] = [];
    await lanes(a.count, START_LANES, async (i) => {
      const identity = ids[i]!;
      const pcid = `${a.prefix}${i}`;
      const server = await serverStart({ controller: a.controller, roots: [pki.root], identity, pcid, endToEnd: true, link: LINK, startTimeoutMs: START_TIMEOUT_MS }, (sock) =>
        plainServe(sock, identity.msid),
      );
      servers.push(server);
      out[i] = { msid: identity.msid, pcid: await named(server, pcid) };
    });
    return out;
  },

  async close() {
    await Promise.allSettled(servers.splice(0).map((s) => s.close()));
    await Promise.allSettled(agents.splice(0).map((a) => a.close()));
    return true;
  },
};

/** The server's PCID once the controller gave it the one asked for (bounded wait). */
async function named(server: SockServer, pcid: string): Promise<string> {
  for (let i = 0; i < 200 && server.pcid !== pcid; i++) await new Promise((r) => setTimeout(r, 25));
  if (server.pcid !== pcid) throw new Error(`server ${server.msid} is "${server.pcid}", not "${pcid}"`);
  return pcid;
}

process.on('message', (m: { id: number; command: string; args?: unknown }) => {
  const handler = commands[m.command];
  void (async () => {
    try {
      if (!handler) throw new Error(`unknown command ${m.command}`);
      process.send!({ id: m.id, ok: true, value: await handler(m.args) });
    } catch (e) {
      process.send!({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  })();
});
process.on('disconnect', () => {
  void Promise.resolve(commands.close!({})).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
});
