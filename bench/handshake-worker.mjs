// Worker side of bench/handshakes.ts: the initiators. Plain JavaScript so the
// worker can register tsx before it loads the TypeScript sources.
import { register } from 'tsx/esm/api';

register();
await import('./handshake-initiators.ts');
