// A multiplexed-session pair over two connected byte streams, with one
// connection opened, for suites that test connections as ByteStreams.
import { MuxSession, type MuxConnection } from '../../src/session/mux/index.js';
import type { ByteStream } from '../../src/transport/index.js';
import type { StreamPair } from '../transport/conformance.js';

/** Sessions over `[ta, tb]`, one connection opened by the initiator, and the responder's side of it. */
export async function connectionPair(ta: ByteStream, tb: ByteStream, cleanup?: () => Promise<void>): Promise<StreamPair> {
  const a = new MuxSession(ta, { role: 'initiator' });
  const b = new MuxSession(tb, { role: 'responder' });
  const accepted = new Promise<MuxConnection>((resolve) => b.once('connection', (conn) => resolve(conn)));
  const opened = a.open();
  // Make the OPEN arrive before the suite starts (it checks that nothing is lost while paused).
  const peer = await accepted;
  return {
    a: opened,
    b: peer,
    cleanup: async () => {
      a.destroy();
      b.destroy();
      await cleanup?.();
    },
  };
}

