// `node --import ./scripts/ts-register.mjs …` (or importing it first): run
// TypeScript through scripts/ts-hooks.mjs. See there for why not tsx.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
