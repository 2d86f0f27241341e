/**
 * The worker thread of {@link ParallelReedSolomon}: for each posted job
 * (blocks of `outputs = rows · inputs` over `SharedArrayBuffer`-backed
 * shards) takes items (a block, or a byte range of one) with the calling
 * thread and the other workers until none is left, computing them with the
 * same kernel, then answers with the job's id (and an error message if it
 * threw). Says `{ ready: true }` once, when loaded.
 * Built as its own entry, `dist/fec/parallel-worker.js`; not a public import.
 *
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { runBlockJob, type BlockJob } from './parallel.js';

const port = parentPort;
if (!port) throw new Error('gatesock: parallel-worker.js runs only as a worker thread of ParallelReedSolomon');

port.on('message', (job: BlockJob) => {
  try {
    runBlockJob(job);
    port.postMessage({ id: job.id });
  } catch (e) {
    port.postMessage({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
// Loaded and listening: the pool starts handing out work.
port.postMessage({ ready: true });
