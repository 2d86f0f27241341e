// Worker side of bench/handshakes.ts: the initiators. Plain JavaScript so the
// worker can register tsx before it loads the TypeScript sources.
import '../scripts/ts-register.mjs';
await import('./handshake-initiators.ts');
