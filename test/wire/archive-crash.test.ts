// Crash safety and several writers, with real processes and independent readers:
//  - a scorecar archiving under steady traffic is SIGKILLed in the middle of its commits; the
//    table it leaves is readable, and after a restart on the same storage, with every trace sent
//    again (senders retrying what the dead process had acknowledged), each trace is in the table
//    exactly once;
//  - two writer processes append to one table at the same time: no commit is lost, versions are
//    contiguous, every row is there.
// Both tables are read by delta-rs and DuckDB in one Python process.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compactTable, DeltaTable, TRACES_SCHEMA } from '../../src/archive/index.ts';
import { fixtureBatches, type SentTrace, sendBatch } from '../support/archive.ts';
import { NODE, startChild } from '../support/child.ts';
import { deltaPython, type Json, readDelta } from '../support/python.ts';
import { waitFor } from '../support/scorecar.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXP = 'crash-app';
const YAML = `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 50, idleTimeoutMs: 1000 }
archive: { tables: { ${EXP}: {} }, commitIntervalMs: 100, commitMaxRows: 50 }
`;

const python = await deltaPython();

function runWriter(table: string, name: string, commits: number, rows: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(NODE, ['--disable-warning=ExperimentalWarning', join(ROOT, 'test/support/append-writer.ts'), table, name, String(commits), String(rows)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${name} exited ${code}: ${err}`))));
  });
}

describe.skipIf(python === undefined)('archive crash safety and concurrent writers', () => {
  // Tables to read, read by one Python process in the last test (interpreter start-up is the cost).
  const tables: Record<string, string> = {};
  const expectations: Array<(r: Record<string, Json>) => void> = [];

  it('SIGKILL during commits leaves a readable table; after a restart and a full re-send, every trace once', async () => {
    const batches = fixtureBatches(100, 1, 'crash');
    const sent: SentTrace[] = batches.flatMap((b) => b.traces);
    let child = await startChild(YAML);
    const dir = child.dir;
    const table = join(dir, 'archive', EXP, 'traces');
    const log = join(table, '_delta_log');
    const versions = () => readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n)).length;
    // Traffic, then a kill as soon as a few commits are in while the writer is still busy.
    for (const b of batches) await sendBatch(child.httpUrl, b.body, EXP);
    await waitFor(() => versions() >= 3, 60_000, 'a few commits');
    child.kill();
    await new Promise((r) => child.proc.once('exit', r));
    // The table as the crash left it, read at the end.
    tables.atCrash = join(mkdtempSync(join(tmpdir(), 'scorecar-crash-')), 'traces');
    cpSync(table, tables.atCrash, { recursive: true });
    // Restart on the same storage and send everything again.
    child = await startChild(YAML, { SCORECAR_STORAGE__DIR: dir });
    for (const b of batches) await sendBatch(child.httpUrl, b.body, EXP);
    const c = child;
    await waitFor(
      async () => {
        const r = await fetch(`${c.adminUrl}/api/v1/experiments/${EXP}/archival`).then((x) => x.json() as Promise<{ traces: { pendingRows: number } }>);
        const m = await (await fetch(`${c.adminUrl}/metrics`)).text();
        const num = (re: RegExp) => Number(re.exec(m)?.[1] ?? 0);
        const received = num(/scorecar_archive_received_total\{experiment="crash-app",table="traces"\} (\d+)/);
        const rows = num(/scorecar_archive_rows_total\{experiment="crash-app",table="traces"\} (\d+)/);
        const dup = num(/scorecar_archive_dropped_total\{experiment="crash-app",table="traces",reason="duplicate"\} (\d+)/);
        return received === sent.length && rows + dup === received && r.traces.pendingRows === 0;
      },
      60_000,
      'every re-sent trace committed or recognised as archived',
    );
    expect(await child.terminate()).toBe(0);
    tables.afterRestart = table;
    expectations.push((more) => {
      const atCrash = more.atCrash;
      expect(atCrash.rows).toBeGreaterThan(0);
      // Killed in the middle: rows were still buffered (lost with the process).
      expect(atCrash.rows).toBeLessThan(sent.length);
      expect(atCrash.duplicates).toBe(0);
      expect(atCrash.duck.count).toBe(atCrash.rows);
      const after = more.afterRestart;
      expect(after.duplicates).toBe(0);
      expect(after.rows).toBe(sent.length);
      expect(Object.keys(after.digests).sort()).toEqual(sent.map((s) => s.traceId).sort());
      expect(sent.filter((s) => after.digests[s.traceId] !== s.digest)).toEqual([]);
      expect(after.duck.count).toBe(sent.length);
      expect(after.version).toBeGreaterThan(atCrash.version);
    });
  }, 300_000);

  it('two writer processes appending to one table lose no commit', async () => {
    const table = join(mkdtempSync(join(tmpdir(), 'scorecar-delta-')), 'traces');
    const commits = 25;
    const rows = 4;
    await Promise.all([runWriter(table, 'w1', commits, rows), runWriter(table, 'w2', commits, rows)]);
    tables.concurrent = table;
    // A copy of it compacted (OPTIMIZE): the readers must see the same rows in one file.
    tables.compacted = join(mkdtempSync(join(tmpdir(), 'scorecar-compact-')), 'traces');
    cpSync(table, tables.compacted, { recursive: true });
    const copy = await DeltaTable.open(tables.compacted);
    expect(await compactTable(copy, TRACES_SCHEMA, 'scorecar-test')).toEqual({ replaced: 2 * commits, written: 1 });
    expectations.push((more) => {
      const r = more.concurrent;
      // Commit 0 creates the table (whichever writer won; the other found it), then 2 x 25 appends.
      expect(r.version).toBe(2 * commits);
      expect(r.rows).toBe(2 * commits * rows);
      expect(r.distinct).toBe(2 * commits * rows);
      expect(r.files).toBe(2 * commits);
      expect(r.duck.count).toBe(2 * commits * rows);
      const c = more.compacted;
      expect(c.version).toBe(2 * commits + 1);
      expect(c.files).toBe(1);
      expect(c.rows).toBe(2 * commits * rows);
      expect(c.distinct).toBe(2 * commits * rows);
      expect(c.digests).toEqual(r.digests);
      expect(c.duck.count).toBe(2 * commits * rows);
      expect(c.sqlCount).toBe(2 * commits * rows);
    });
    expect(readdirSync(join(table, '_delta_log')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  }, 120_000);

  it('delta-rs and DuckDB read every table as expected', async () => {
    expect(Object.keys(tables).sort()).toEqual(['afterRestart', 'atCrash', 'compacted', 'concurrent']);
    const r = await readDelta(python!, { more: tables });
    for (const check of expectations) check(r.more);
  }, 120_000);
});
