// The backfill job store contract, against SQLite (<storage.dir>/backfills.db) and PostgreSQL
// (shared by replicas: one active job per experiment across all of them, jobs owned under a lease).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BackfillJobStore,
  type NewBackfill,
  PostgresBackfillStore,
  SqliteBackfillStore,
} from '../../src/archive/index.ts';
import type { PostgresDatabase } from '../../src/postgres/index.ts';
import { ScorecarError } from '../../src/util/index.ts';
import { databaseFor, STORE_KINDS } from '../support/stores.ts';

function job(id: string, exp = 'exp', at = '2026-03-01T10:00:00.000Z'): NewBackfill {
  return {
    jobId: id,
    experimentId: exp,
    scorersJson: '[{"name":"s","version":1}]',
    startMs: 1000,
    endMs: 2000,
    filesJson: '["a.parquet"]',
    total: 42,
    at,
  };
}

describe.each(STORE_KINDS)('backfill job store over %s', (kind) => {
  let store: BackfillJobStore;
  let db: PostgresDatabase | undefined;
  let done: () => Promise<void>;
  beforeEach(async () => {
    if (kind === 'sqlite') {
      store = new SqliteBackfillStore(mkdtempSync(join(tmpdir(), 'scorecar-bf-')));
      done = () => store.close();
    } else {
      const d = await databaseFor(kind);
      db = d.db;
      store = await PostgresBackfillStore.open(d.db!, 60_000);
      done = d.close;
    }
  });
  afterEach(async () => {
    await done();
  });

  it('stores a job, its progress and state; one pending or running job per experiment', async () => {
    await store.insert(job('bf-1'), 'r1');
    const row = await store.get('bf-1');
    expect(row).toMatchObject({
      job_id: 'bf-1',
      experiment_id: 'exp',
      state: 'pending',
      start_ms: 1000,
      end_ms: 2000,
      total: 42,
      scanned: 0,
      error: null,
    });
    const refused = await store.insert(job('bf-2'), 'r2').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ScorecarError);
    expect((refused as ScorecarError).code).toBe('BACKFILL_RUNNING');
    expect((refused as ScorecarError).details).toEqual({ jobId: 'bf-1' });
    // Another experiment is not held up.
    await store.insert(job('bf-3', 'other'), 'r2');
    await store.setState('bf-1', 'running', null, '2026-03-01T10:00:01.000Z');
    await store.progress('bf-1', {
      fileIndex: 1,
      rowIndex: 7,
      scanned: 30,
      selected: 20,
      skipped: 5,
      scored: 15,
      errors: 1,
      at: '2026-03-01T10:00:02.000Z',
    });
    expect(await store.get('bf-1')).toMatchObject({
      state: 'running',
      file_index: 1,
      row_index: 7,
      scanned: 30,
      selected: 20,
      skipped: 5,
      scored: 15,
      errors: 1,
      updated_at: '2026-03-01T10:00:02.000Z',
    });
    await store.setState('bf-1', 'failed', 'boom', '2026-03-01T10:00:03.000Z');
    await store.insert(job('bf-4', 'exp', '2026-03-01T11:00:00.000Z'), 'r1');
    expect((await store.list('exp')).map((r) => [r.job_id, r.state, r.error])).toEqual([
      ['bf-4', 'pending', null],
      ['bf-1', 'failed', 'boom'],
    ]);
    expect(await store.get('nope')).toBeUndefined();
  });

  it('hands unfinished jobs to a claimant: all of them (SQLite), or those whose owner is gone (PostgreSQL)', async () => {
    await store.insert(job('bf-1', 'a'), 'r1');
    await store.insert(job('bf-2', 'b'), 'r2');
    await store.insert(job('bf-3', 'c'), 'r2');
    await store.setState('bf-3', 'succeeded', null, '2026-03-01T10:00:01.000Z');
    if (kind === 'sqlite') {
      expect((await store.claimResumable('r3', 60_000)).sort()).toEqual(['bf-1', 'bf-2']);
      return;
    }
    // Both owners hold live leases: nothing for r3; an owner claims its own back (a restart).
    expect(await store.claimResumable('r3', 60_000)).toEqual([]);
    expect(await store.claimResumable('r1', 60_000)).toEqual(['bf-1']);
    // r2 stops cleanly: its job is free at once.
    await store.release('r2', ['bf-2']);
    expect(await store.claimResumable('r3', 60_000)).toEqual(['bf-2']);
    // r1 renews (a heartbeat), then dies: once its lease has passed (moved on in the database
    // rather than waited for), r3 takes the job.
    await store.renew('r1', ['bf-1'], 60_000);
    expect(await store.claimResumable('r3', 60_000)).toEqual(['bf-2']);
    await db!.query("UPDATE backfills SET lease_until = now() - interval '1 second' WHERE owner = 'r1'");
    expect((await store.claimResumable('r3', 60_000)).sort()).toEqual(['bf-1', 'bf-2']);
  });
});
