// Module hooks that let Node run the benchmarks' TypeScript (bench/ and the
// src/ it imports) by stripping types with esbuild — and nothing more.
//
// Why not tsx: tsx always compiles with esbuild's `keepNames`, which wraps
// every named function and arrow in `__name(fn, "…")` (an
// Object.defineProperty per closure created). That costs CPU on hot paths
// and memory per object, and the built package (tsup, no keepNames) has
// neither, so benchmarks run under tsx measured code users never run.
// Tests still run under vitest; only `npm run bench` and its workers and
// child processes load through these hooks (scripts/ts-register.mjs).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const TS = /\.[cm]?ts$/;

/** `./x.js` written in TypeScript source means `./x.ts` when no `x.js` exists. */
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !relative || !/\.[cm]?js$/.test(specifier)) throw error;
    return next(specifier.replace(/js$/, 'ts'), context);
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !TS.test(url)) return next(url, context);
  const file = fileURLToPath(url);
  const { code } = await transform(await readFile(file, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: file,
    sourcemap: 'inline',
  });
  return { format: 'module', source: code, shortCircuit: true };
}
