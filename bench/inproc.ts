// Runs one in-process bench (hot path or memory) in a fresh process and prints its result as one
// JSON line: `node --expose-gc bench/inproc.ts <hotpath|memory> <checkout> [hot path seconds]`.
//
// The in-process benches call scorecar's modules directly, so they can only measure the checkout
// they are part of: the checkout's own bench/hotpath.ts (hotPath) or bench/memory.ts
// (memoryPerSpan) is imported, which is how `--scorecar <dir>` measures another checkout's code
// here too (the two harness files are the same but for import paths from 7912dde to 5926788; a
// checkout without them or without those exports is reported as skipped). A fresh
// process also keeps the bench process's own heap out of the hot path's GC work.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [kind, dir, seconds] = process.argv.slice(2);
const root = resolve(dir ?? '.');
const file = join(root, 'bench', kind === 'memory' ? 'memory.ts' : 'hotpath.ts');
const skip = (why: string) => console.log(JSON.stringify({ skipped: why }));

if (kind !== 'hotpath' && kind !== 'memory') throw new Error('usage: inproc.ts <hotpath|memory> <checkout>');
if (!existsSync(file)) skip(`${file} not found`);
else {
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  if (kind === 'hotpath') {
    const f = mod.hotPath as ((seconds: number) => unknown) | undefined;
    if (typeof f !== 'function') skip(`${file} exports no hotPath`);
    else console.log(JSON.stringify(f(Number(seconds ?? 5))));
  } else {
    const f = mod.memoryPerSpan as ((spans: number) => Promise<unknown>) | undefined;
    if (typeof f !== 'function') skip(`${file} exports no memoryPerSpan`);
    else console.log(JSON.stringify(await f(200_000)));
  }
}
