// Worker side of bench/relay-thread.ts. Plain JavaScript so the worker can
// register the TypeScript hooks before it loads the TypeScript sources.
import '../scripts/ts-register.mjs';
await import('./relay-thread-main.ts');
