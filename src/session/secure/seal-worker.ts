/**
 * The worker thread of parallel sealing (parallel-seal.ts): for each posted
 * job (`{ id, buffer }`, a job buffer laid out as parallel-seal-job.ts
 * draws) takes and seals records with the calling thread and the other
 * workers until none is left, with @noble/ciphers, then answers with the
 * job's id (and an error message if sealing threw). Says `{ ready: true }`
 * once, when loaded.
 * Built as its own entry, `dist/session/seal-worker.js`; not a public import.
 *
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { sealJobItems } from './parallel-seal-job.js';

const port = parentPort;
if (!port) throw new Error('gatesock: seal-worker.js runs only as a worker thread of the secure channel');

port.on('message', (job: { id: number; buffer: SharedArrayBuffer }) => {
  try {
    sealJobItems(job.buffer);
    port.postMessage({ id: job.id });
  } catch (e) {
    port.postMessage({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
// Loaded and listening.
port.postMessage({ ready: true });
