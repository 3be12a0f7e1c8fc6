// The emitter over the embedded SQLite store, in-process: the hot path the store contract sits
// on (one existing() lookup and one put() per flush of up to 500). Assessments/s and CPU per
// assessment for the checkout given (default this one), so a change to the contract can be
// measured before/after:
//   node bench/emitter-store.ts [<checkout root>]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
const a = await import(pathToFileURL(join(root, 'src/assessments/index.ts')).href);
const u = await import(pathToFileURL(join(root, 'src/util/index.ts')).href);

const N = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'scorecar-emit-bench-'));
const store = new a.SqliteAssessmentStore({ dir });
const emitter = new a.AssessmentEmitter({ store, metrics: new u.MetricsRegistry(), log: u.createLogger({ level: 'error' }), version: 'bench' });
const item = (i: number) => ({
  assessment: {
    assessmentId: `id-${i}`,
    name: 'len',
    traceId: String(i).padStart(32, '0'),
    spanId: '00000000000000aa',
    experimentId: 'bench',
    scorer: { name: 'len', version: 1 },
    source: { type: 'CODE', id: 'len' },
    value: i % 97,
    metadata: { 'scorecar.completion': 'root' },
    sampleRate: 1,
    createdAt: new Date(Date.UTC(2026, 2, 1) + i).toISOString(),
  },
  startedMs: 0,
});
const cpu0 = process.cpuUsage();
const t0 = performance.now();
// As the engine hands them on: one job's assessments at a time; the emitter flushes at 500.
for (let i = 0; i < N; i++) {
  emitter.consume([item(i)]);
  // Let a flush started at 500 pending complete, as the event loop would between jobs.
  if (i % 500 === 499) await new Promise<void>((r) => setImmediate(r));
}
await emitter.close();
const secs = (performance.now() - t0) / 1000;
const c = process.cpuUsage(cpu0);
const stored = await store.count();
console.log(
  `${root}: ${Math.round(N / secs).toLocaleString()} assessments/s, ${(((c.user + c.system) / N) * 1).toFixed(1)} us CPU each, ${stored} stored`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
