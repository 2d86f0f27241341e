/**
 * Reading advisory files from disk: OSV documents and countermeasure files,
 * told apart by content (a countermeasure file has
 * `"format": "gatesock-countermeasures/1"`). Each file is checked whole; a
 * file that fails contributes nothing and is listed with its reason, and the
 * others still import (the caller stores the result in one transaction).
 */
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SecurityCenterError } from '../../../errors/index.js';
import { COUNTERMEASURE_FORMAT, parseCountermeasureDocument, type Countermeasure } from './countermeasures.js';
import { ADVISORY_LIMITS, isObject, malformed, parseJsonText } from './limits.js';
import type { Advisory } from './model.js';
import { parseOsvDocument, type OsvImportOptions } from './osv.js';

/** What {@link importAdvisoryFiles} read. @public */
export interface ImportReport {
  /** Advisories from the files that passed. */
  readonly advisories: Advisory[];
  /** Countermeasures by advisory ID from the files that passed (a later file overrides an earlier one). */
  readonly countermeasures: Map<string, readonly Countermeasure[]>;
  /** Files read whole. */
  readonly files: string[];
  /** Files refused, with the error saying why (a `SecurityCenterError`, or the I/O error). */
  readonly rejected: { readonly file: string; readonly error: Error }[];
}

async function readBounded(file: string, max: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw malformed(file, 'not a regular file');
    if (st.size > max) throw malformed(file, `${st.size} bytes, more than the limit of ${max}`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/**
 * Read OSV and countermeasure files. A directory contributes its `*.json`
 * regular files (not recursively; symbolic links are not followed), in name
 * order.
 * @public
 */
export async function importAdvisoryFiles(paths: readonly string[], opts: OsvImportOptions = {}): Promise<ImportReport> {
  const files: string[] = [];
  const rejected: { file: string; error: Error }[] = [];
  for (const p of paths) {
    const st = await lstat(p).catch((err: Error) => err);
    if (st instanceof Error) {
      rejected.push({ file: p, error: st });
    } else if (st.isDirectory()) {
      const names = (await readdir(p)).filter((n) => n.endsWith('.json')).sort();
      for (const n of names) {
        const f = join(p, n);
        if ((await lstat(f)).isFile()) files.push(f);
      }
    } else {
      files.push(p);
    }
  }
  const advisories: Advisory[] = [];
  const countermeasures = new Map<string, readonly Countermeasure[]>();
  const ok: string[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    try {
      const doc = parseJsonText(await readBounded(file, ADVISORY_LIMITS.fileBytes), file);
      if (isObject(doc) && doc.format === COUNTERMEASURE_FORMAT) {
        for (const [id, steps] of parseCountermeasureDocument(doc, file)) countermeasures.set(id, steps);
      } else {
        const list = parseOsvDocument(doc, file, opts);
        for (const a of list) {
          const other = seen.get(a.id);
          if (other !== undefined) throw malformed(`${file}: ${a.id}`, `also defined in ${other}`);
        }
        for (const a of list) seen.set(a.id, file);
        advisories.push(...list);
      }
      ok.push(file);
    } catch (err) {
      if (!(err instanceof SecurityCenterError) && !(err instanceof Error && 'code' in err)) throw err;
      rejected.push({ file, error: err as Error });
    }
  }
  return { advisories, countermeasures, files: ok, rejected };
}
