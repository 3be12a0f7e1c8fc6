// `npm run bench:store`: the stores behind storage.dir (SQLite) and storage.postgres (PostgreSQL),
// issue 14:
//   1. assessment store writes/s, both stores, in the emitter's batch sizes (one put per flush:
//      up to 500, and 50 for a light load), fresh ids (inserts) and replayed ids (conflicts);
//   2. registry change propagation: a change committed through one Registry until another
//      Registry (another pool, as another replica) has rebuilt its snapshot: PostgreSQL
//      LISTEN/NOTIFY, and SQLite's revision polling (two processes on one file) for comparison.
// PostgreSQL: SCORECAR_BENCH_POSTGRES_URL, else a throwaway server from scripts/postgres.sh.
// Method and figures: bench/README.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AssessmentStore, PostgresAssessmentStore, type ScoredAssessment, SqliteAssessmentStore } from '../src/assessments/index.ts';
import { PostgresDatabase } from '../src/postgres/index.ts';
import { PostgresRegistryStore, Registry, type RegistryStore, SqliteRegistryStore } from '../src/registry/index.ts';

const SCRIPT = fileURLToPath(new URL('../scripts/postgres.sh', import.meta.url));

function assessments(n: number, seed: string): ScoredAssessment[] {
  const out: ScoredAssessment[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      assessment: {
        assessmentId: `${seed}-${i}`,
        name: 'relevance',
        traceId: (seed + i).padStart(32, '0').slice(-32),
        spanId: '00000000000000aa',
        experimentId: 'bench',
        scorer: { name: 'relevance', version: 3 },
        source: { type: 'LLM_JUDGE', id: 'openai:/gpt-4.1-mini' },
        value: i % 3 === 0 ? 'no' : 'yes',
        rationale: 'The response answers the question asked, citing the retrieved passage about pricing tiers.',
        metadata: { 'scorecar.usage.input_tokens': '812', 'scorecar.usage.output_tokens': '64', 'scorecar.completion': 'root' },
        sampleRate: 0.1,
        createdAt: new Date(Date.UTC(2026, 2, 1) + i).toISOString(),
      },
      usage: { inputTokens: 812, outputTokens: 64, cost: 0.0004, attempts: 1 },
      latencyMs: 900,
    });
  }
  return out;
}

async function writes(store: AssessmentStore, batch: number, total: number, seed: string): Promise<number> {
  const rows = assessments(total, seed);
  const t0 = performance.now();
  for (let i = 0; i < total; i += batch) await store.put(rows.slice(i, i + batch));
  return total / ((performance.now() - t0) / 1000);
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function propagation(a: RegistryStore, b: RegistryStore, changes: number): Promise<number[]> {
  const ra = await Registry.open({ store: a, pollIntervalMs: 0 });
  // b as another replica: pushed changes (PostgreSQL) or its default poll (SQLite, 250 ms).
  const rb = await Registry.open({ store: b });
  const CODE = { type: 'code', source: '(ctx) => 1' };
  await ra.register('bench', 'prop', CODE);
  await rb.refresh();
  const out: number[] = [];
  for (let i = 0; i < changes; i++) {
    const seen = new Promise<number>((resolve) => {
      const off = rb.onChange(() => {
        off();
        resolve(performance.now());
      });
    });
    const t0 = performance.now();
    await ra.start('bench', 'prop', { sampleRate: i % 2 === 0 ? 0.5 : 0.25 });
    out.push((await seen) - t0);
  }
  await ra.close();
  await rb.close();
  return out;
}

async function main(): Promise<void> {
  let url = process.env.SCORECAR_BENCH_POSTGRES_URL ?? '';
  let own: string | undefined;
  if (!url) {
    own = mkdtempSync(join(tmpdir(), 'scorecar-bench-pg-'));
    const line = execFileSync('bash', [SCRIPT, 'start', join(own, 'server')], { encoding: 'utf8' });
    url = /url=(\S+)/.exec(line)![1]!;
  }
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-bench-store-'));
  const schema = `bench_${process.pid}`;
  const db = await PostgresDatabase.open({ url, schema, poolSize: 4 });
  try {
    console.log(`shared-store bench (load ${loadavg()[0]!.toFixed(2)})`);
    const sqlite = new SqliteAssessmentStore({ dir });
    const postgres = await PostgresAssessmentStore.open(db);
    const TOTAL = 20_000;
    for (const [name, store] of [
      ['sqlite', sqlite],
      ['postgres', postgres],
    ] as const) {
      for (const batch of [500, 50]) {
        // Warm-up (statements prepared, pages cached), then the measured run on fresh ids.
        await writes(store, batch, 2_000, `warm-${name}-${batch}`);
        const fresh = await writes(store, batch, TOTAL, `run-${name}-${batch}`);
        const replay = await writes(store, batch, TOTAL, `run-${name}-${batch}`);
        console.log(
          `  assessment store ${name.padEnd(8)} batch ${String(batch).padStart(3)}: ${Math.round(fresh).toLocaleString()} writes/s new, ${Math.round(replay).toLocaleString()} writes/s replayed ids (load ${loadavg()[0]!.toFixed(2)})`,
        );
      }
    }
    await sqlite.close();

    const N = 100;
    const pgA = await PostgresRegistryStore.open(db);
    const dbB = await PostgresDatabase.open({ url, schema, poolSize: 2 });
    const pgB = await PostgresRegistryStore.open(dbB);
    const pgMs = await propagation(pgA, pgB, N);
    await dbB.close();
    console.log(
      `  registry propagation postgres (LISTEN/NOTIFY): p50 ${pct(pgMs, 0.5).toFixed(1)} ms, p95 ${pct(pgMs, 0.95).toFixed(1)} ms, max ${Math.max(...pgMs).toFixed(1)} ms over ${N} changes`,
    );
    const file = join(dir, 'scorecar.db');
    const sqMs = await propagation(new SqliteRegistryStore({ path: file }), new SqliteRegistryStore({ path: file }), 20);
    console.log(
      `  registry propagation sqlite (revision poll, 250 ms): p50 ${pct(sqMs, 0.5).toFixed(1)} ms, p95 ${pct(sqMs, 0.95).toFixed(1)} ms, max ${Math.max(...sqMs).toFixed(1)} ms over 20 changes`,
    );
  } finally {
    await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
    await db.close();
    rmSync(dir, { recursive: true, force: true });
    if (own) {
      execFileSync('bash', [SCRIPT, 'clean', join(own, 'server')]);
      rmSync(own, { recursive: true, force: true });
    }
  }
}

await main();
