#!/usr/bin/env node
// Entry point of the `scorecar` command. The sources are TypeScript run directly by Node's type
// stripping (Node >= 22.18 / 24); a built copy in dist/ is preferred when present.
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
