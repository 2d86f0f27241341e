/**
 * The loader process of {@link ProcessExecutor} (the seed's
 * 配付コードロード・起動部.exe): takes its one job from the IPC pipe, runs
 * {@link Loader} on it, and answers each run with its result; re-runs come
 * the same way. Targets stay in this process's group, which the agent kills
 * whole on a timeout or a new dispatch. When the agent goes away (the pipe
 * closes) it kills its group — itself, its targets and their children. Built as its own entry,
 * `dist/delivery/dispatch-loader.js`; not a public import.
 *
 * @packageDocumentation
 */
import { Loader } from './loader.js';
import type { FromLoader, ToLoader } from './executor.js';

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('gatesock: dispatch-loader runs only as the loader process of a dispatch agent (ProcessExecutor)\n');
  process.exit(2);
}
process.title = 'gatesock-dispatch-loader';

let loader: Loader | undefined;
let current = 0;
let jobTaken = false;
let queue: Promise<void> = Promise.resolve();

const tell = (m: FromLoader): void => {
  try {
    send(m);
  } catch {
    // The agent is gone; 'disconnect' ends this process.
  }
};

async function handle(m: ToLoader): Promise<void> {
  if (m.t === 'job' && !jobTaken) {
    jobTaken = true;
    const out = await Loader.load(m.job, {
      targetGroup: 'inherit',
      log: (message) => tell({ t: 'log', message }),
      spawned: (pid) => tell({ t: 'spawned', id: current, pid }),
      loaded: (l) => (loader = l),
    });
    tell({ t: 'result', id: 0, result: out.result, loaded: loader !== undefined });
  } else if (m.t === 'rerun' && loader !== undefined && Number.isSafeInteger(m.id) && m.id > current) {
    current = m.id;
    const result = await loader.rerun(m.binding);
    tell({ t: 'result', id: m.id, result, loaded: true });
  } else {
    throw new Error(`unexpected ${String((m as { t?: unknown }).t)} message`);
  }
}

process.on('message', (raw: unknown) => {
  queue = queue.then(() => handle(raw as ToLoader)).catch((e: unknown) => {
    // A job this process cannot act on: say so on stderr (the agent keeps
    // its last line as the crash reason) and end.
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
});

process.on('disconnect', () => {
  // The agent is gone: end this loader's whole process group (it leads one
  // when started by ProcessExecutor), targets and their children included.
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    loader?.kill();
    process.exit(0);
  }
});
