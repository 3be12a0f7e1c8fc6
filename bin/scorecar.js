#!/usr/bin/env node
// Entry point of the `scorecar` command. Needs Node >= 24 (package.json `engines`; the `node`
// dev dependency pins it for npm scripts): the sources are TypeScript run directly by Node's type
// stripping, and the code relies on process.threadCpuUsage and zlib.zstdDecompress, which older
// release lines lack or keep experimental. A built copy in dist/ is preferred when present.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

process.removeAllListeners('warning');
process.on('warning', (w) => {
  // node:sqlite still reports itself experimental; everything else is shown as usual.
  if (w.name === 'ExperimentalWarning') return;
  console.warn(`${w.name}: ${w.message}`);
});
const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { main } = await import(existsSync(built) ? built : '../src/cli/main.ts');
await main(process.argv.slice(2));
