// Worker side of bench/relay-thread.ts. Plain JavaScript so the worker can
// register tsx before it loads the TypeScript sources.
import { register } from 'tsx/esm/api';

register();
await import('./relay-thread-main.ts');
