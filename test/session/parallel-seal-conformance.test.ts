/**
 * A secure channel with parallel sealing is still a ByteStream: the
 * transport conformance suite over it on loopback TCP, both ends noble with
 * parallel sealing (the calling thread sealing too, and workers only), and a
 * multiplexed connection riding on it.
 *
 * The suite writes at most 64 KiB at a time, less than the two records a
 * write needs to go to the workers: over the bare channel it shows that the
 * option leaves small writes' behaviour alone. The multiplexed session writes
 * its 256 KiB batches, so over the mux every large transfer, backpressure
 * case, half-close and destroy of the suite runs through the seal workers.
 */
import { secureAccept, secureConnect, type SecureChannel } from '../../src/session/index.js';
import type { ParallelSealOptions } from '../../src/session/secure/parallel-seal.js';
import { tcpConnect, tcpListen, type ByteStream } from '../../src/transport/index.js';
import { describeByteStreamConformance } from '../transport/conformance.js';
import { connectionPair } from '../helpers/mux-pair.js';
import { fakeIdentity, fakeVerifier } from '../helpers/fake-identity.js';
import { sealWorkerUrl } from './parallel-seal-helpers.js';

async function tcpSecurePair(parallelSeal: ParallelSealOptions): Promise<{ a: SecureChannel; b: SecureChannel; close: () => Promise<void> }> {
  let accept!: (s: ByteStream) => void;
  const accepted = new Promise<ByteStream>((resolve) => (accept = resolve));
  const listener = await tcpListen({ host: '127.0.0.1', port: 0 }, accept);
  const ta = await tcpConnect({ host: '127.0.0.1', port: listener.port });
  const tb = await accepted;
  const [a, b] = await Promise.all([
    secureConnect(ta, { identity: fakeIdentity('a'), verifyPeer: fakeVerifier(), backend: 'noble', parallelSeal }),
    secureAccept(tb, { identity: fakeIdentity('b'), verifyPeer: fakeVerifier(), backend: 'noble', parallelSeal }),
  ]);
  return { a, b, close: () => listener.close() };
}

for (const callerSeals of [true, false]) {
  describeByteStreamConformance(`secure channel, noble with parallel sealing (callerSeals ${callerSeals}), over tcp 127.0.0.1`, async () => {
    const { a, b, close } = await tcpSecurePair({ workerUrl: sealWorkerUrl, threads: 1, callerSeals });
    return { a, b, cleanup: async () => (a.destroy(), b.destroy(), await close()) };
  }, { kinds: ['secure', 'secure'], halfClose: true });
}

describeByteStreamConformance('mux over a secure channel with parallel sealing over tcp 127.0.0.1', async () => {
  const { a, b, close } = await tcpSecurePair({ workerUrl: sealWorkerUrl, threads: 1 });
  return connectionPair(a, b, close);
}, { kinds: ['mux', 'mux'], halfClose: true });
