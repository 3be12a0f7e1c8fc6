// Where backfill jobs are remembered: one contract, two stores. SQLite (<storage.dir>/backfills.db,
// the default: one process owns the file) and PostgreSQL (storage.postgres.url, shared by every
// replica: any replica answers GET /backfills/{id}, one job per experiment across all of them,
// and a job is run by the replica that owns it — the one that created it, or, once that one's
// lease lapsed (it stopped or died), whichever replica claims it next).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type PostgresDatabase, sqlState } from '../postgres/index.ts';
import { ScorecarError } from '../util/index.ts';

export const BACKFILLS_FILE_NAME = 'backfills.db';

export type BackfillState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface BackfillRow {
  job_id: string;
  experiment_id: string;
  state: BackfillState;
  scorers_json: string;
  start_ms: number;
  end_ms: number;
  files_json: string;
  file_index: number;
  row_index: number;
  scanned: number;
  total: number;
  selected: number;
  skipped: number;
  scored: number;
  errors: number;
  error: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewBackfill {
  jobId: string;
  experimentId: string;
  scorersJson: string;
  startMs: number;
  endMs: number;
  filesJson: string;
  total: number;
  at: string;
}

export interface BackfillProgress {
  fileIndex: number;
  rowIndex: number;
  scanned: number;
  selected: number;
  skipped: number;
  scored: number;
  errors: number;
  at: string;
}

export interface BackfillJobStore {
  readonly kind: string;
  /** Adds a pending job owned by `owner`; BACKFILL_RUNNING when the experiment has one pending or running. */
  insert(job: NewBackfill, owner: string): Promise<void>;
  get(jobId: string): Promise<BackfillRow | undefined>;
  /** An experiment's jobs, newest first. */
  list(experimentId: string): Promise<BackfillRow[]>;
  progress(jobId: string, p: BackfillProgress): Promise<void>;
  setState(jobId: string, state: BackfillState, error: string | null, at: string): Promise<void>;
  /** Pending or running jobs nobody runs (no owner, or its lease lapsed), now owned by `owner`. */
  claimResumable(owner: string, leaseMs: number): Promise<string[]>;
  /** Extends the lease of the jobs `owner` runs (a heartbeat). */
  renew(owner: string, jobIds: readonly string[], leaseMs: number): Promise<void>;
  /** Gives jobs up (a clean stop): the next claim, on any replica, takes them at once. */
  release(owner: string, jobIds: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

function running(experimentId: string, jobId: string): ScorecarError {
  return new ScorecarError('BACKFILL_RUNNING', `backfill ${jobId} of experiment ${experimentId} is running; wait for it or cancel it`, {
    details: { jobId },
  });
}

/** One process owns the file: ownership and leases are moot (every unfinished job is this process's). */
export class SqliteBackfillStore implements BackfillJobStore {
  readonly kind = 'sqlite';
  private readonly db: DatabaseSync;
  private readonly q: Record<'insert' | 'get' | 'list' | 'active' | 'progress' | 'state' | 'resumable', StatementSync>;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new DatabaseSync(join(dir, BACKFILLS_FILE_NAME));
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(`CREATE TABLE IF NOT EXISTS backfills (
      job_id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, state TEXT NOT NULL, scorers_json TEXT NOT NULL,
      start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, files_json TEXT NOT NULL,
      file_index INTEGER NOT NULL DEFAULT 0, row_index INTEGER NOT NULL DEFAULT 0,
      scanned INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, selected INTEGER NOT NULL DEFAULT 0,
      skipped INTEGER NOT NULL DEFAULT 0, scored INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
      error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
    this.db.exec('CREATE INDEX IF NOT EXISTS backfills_experiment ON backfills (experiment_id, created_at)');
    this.q = {
      insert: this.db.prepare(
        `INSERT INTO backfills (job_id, experiment_id, state, scorers_json, start_ms, end_ms, files_json, total, created_at, updated_at)
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)`,
      ),
      get: this.db.prepare('SELECT * FROM backfills WHERE job_id = ?'),
      list: this.db.prepare('SELECT * FROM backfills WHERE experiment_id = ? ORDER BY created_at DESC, job_id'),
      active: this.db.prepare("SELECT job_id FROM backfills WHERE experiment_id = ? AND state IN ('pending', 'running')"),
      progress: this.db.prepare(
        `UPDATE backfills SET file_index = ?, row_index = ?, scanned = ?, selected = ?, skipped = ?, scored = ?, errors = ?, updated_at = ?
         WHERE job_id = ?`,
      ),
      state: this.db.prepare('UPDATE backfills SET state = ?, error = ?, updated_at = ? WHERE job_id = ?'),
      resumable: this.db.prepare("SELECT job_id FROM backfills WHERE state IN ('pending', 'running') ORDER BY created_at"),
    };
  }

  async insert(j: NewBackfill): Promise<void> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const active = this.q.active.get(j.experimentId) as { job_id: string } | undefined;
      if (active) throw running(j.experimentId, active.job_id);
      this.q.insert.run(j.jobId, j.experimentId, j.scorersJson, j.startMs, j.endMs, j.filesJson, j.total, j.at, j.at);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }
  async get(jobId: string): Promise<BackfillRow | undefined> {
    return this.q.get.get(jobId) as unknown as BackfillRow | undefined;
  }
  async list(experimentId: string): Promise<BackfillRow[]> {
    return this.q.list.all(experimentId) as unknown as BackfillRow[];
  }
  async progress(jobId: string, p: BackfillProgress): Promise<void> {
    this.q.progress.run(p.fileIndex, p.rowIndex, p.scanned, p.selected, p.skipped, p.scored, p.errors, p.at, jobId);
  }
  async setState(jobId: string, state: BackfillState, error: string | null, at: string): Promise<void> {
    this.q.state.run(state, error, at, jobId);
  }
  async claimResumable(): Promise<string[]> {
    return (this.q.resumable.all() as unknown as Array<{ job_id: string }>).map((r) => r.job_id);
  }
  async renew(): Promise<void> {}
  async release(): Promise<void> {}
  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

const MIGRATIONS = [
  {
    version: 1,
    name: 'backfill jobs',
    sql: `
      CREATE TABLE backfills (
        job_id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, state TEXT NOT NULL, scorers_json TEXT NOT NULL,
        start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL, files_json TEXT NOT NULL,
        file_index INTEGER NOT NULL DEFAULT 0, row_index INTEGER NOT NULL DEFAULT 0,
        scanned BIGINT NOT NULL DEFAULT 0, total BIGINT NOT NULL DEFAULT 0, selected BIGINT NOT NULL DEFAULT 0,
        skipped BIGINT NOT NULL DEFAULT 0, scored BIGINT NOT NULL DEFAULT 0, errors BIGINT NOT NULL DEFAULT 0,
        error TEXT, created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT NOT NULL,
        owner TEXT, lease_until TIMESTAMPTZ
      );
      CREATE INDEX backfills_experiment ON backfills (experiment_id, created_at);
      -- One pending or running job per experiment, across every replica, without a race.
      CREATE UNIQUE INDEX backfills_one_active ON backfills (experiment_id) WHERE state IN ('pending', 'running');
    `,
  },
];

const WHAT = 'backfill store';
const NUMERIC = ['start_ms', 'end_ms', 'scanned', 'total', 'selected', 'skipped', 'scored', 'errors'] as const;

function toRow(r: Record<string, unknown>): BackfillRow {
  const out = { ...r } as Record<string, unknown>;
  // BIGINT arrives as a string (exact); these counts and times fit a double.
  for (const k of NUMERIC) out[k] = Number(r[k]);
  delete out.owner;
  delete out.lease_until;
  return out as unknown as BackfillRow;
}

export class PostgresBackfillStore implements BackfillJobStore {
  readonly kind = 'postgres';
  private readonly db: PostgresDatabase;
  private readonly leaseMs: number;

  private constructor(db: PostgresDatabase, leaseMs: number) {
    this.db = db;
    this.leaseMs = leaseMs;
  }

  static async open(db: PostgresDatabase, leaseMs = 60_000): Promise<PostgresBackfillStore> {
    await db.migrate('backfills', MIGRATIONS);
    return new PostgresBackfillStore(db, leaseMs);
  }

  async insert(j: NewBackfill, owner: string): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO backfills (job_id, experiment_id, state, scorers_json, start_ms, end_ms, files_json, total, created_at, updated_at, owner, lease_until)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $8, $9, now() + $10 * interval '1 millisecond')`,
        [j.jobId, j.experimentId, j.scorersJson, j.startMs, j.endMs, j.filesJson, j.total, j.at, owner, this.leaseMs],
        WHAT,
      );
    } catch (e) {
      if (sqlState((e as { cause?: unknown }).cause) !== '23505') throw e;
      const { rows } = await this.db.query<{ job_id: string }>(
        "SELECT job_id FROM backfills WHERE experiment_id = $1 AND state IN ('pending', 'running')",
        [j.experimentId],
        WHAT,
      );
      throw running(j.experimentId, rows[0]?.job_id ?? '(finished meanwhile)');
    }
  }
  async get(jobId: string): Promise<BackfillRow | undefined> {
    const { rows } = await this.db.query('SELECT * FROM backfills WHERE job_id = $1', [jobId], WHAT);
    return rows[0] ? toRow(rows[0]) : undefined;
  }
  async list(experimentId: string): Promise<BackfillRow[]> {
    const { rows } = await this.db.query('SELECT * FROM backfills WHERE experiment_id = $1 ORDER BY created_at DESC, job_id COLLATE "C"', [experimentId], WHAT);
    return rows.map(toRow);
  }
  async progress(jobId: string, p: BackfillProgress): Promise<void> {
    await this.db.query(
      `UPDATE backfills SET file_index = $1, row_index = $2, scanned = $3, selected = $4, skipped = $5, scored = $6, errors = $7, updated_at = $8
       WHERE job_id = $9`,
      [p.fileIndex, p.rowIndex, p.scanned, p.selected, p.skipped, p.scored, p.errors, p.at, jobId],
      WHAT,
    );
  }
  async setState(jobId: string, state: BackfillState, error: string | null, at: string): Promise<void> {
    await this.db.query('UPDATE backfills SET state = $1, error = $2, updated_at = $3 WHERE job_id = $4', [state, error, at, jobId], WHAT);
  }
  async claimResumable(owner: string, leaseMs: number): Promise<string[]> {
    const { rows } = await this.db.query<{ job_id: string }>(
      `UPDATE backfills SET owner = $1, lease_until = now() + $2 * interval '1 millisecond'
       WHERE state IN ('pending', 'running') AND (owner IS NULL OR lease_until IS NULL OR lease_until < now() OR owner = $1)
       RETURNING job_id`,
      [owner, leaseMs],
      WHAT,
    );
    return rows.map((r) => r.job_id);
  }
  async renew(owner: string, jobIds: readonly string[], leaseMs: number): Promise<void> {
    if (jobIds.length === 0) return;
    await this.db.query(
      `UPDATE backfills SET lease_until = now() + $3 * interval '1 millisecond' WHERE owner = $1 AND job_id = ANY($2::text[])`,
      [owner, jobIds, leaseMs],
      WHAT,
    );
  }
  async release(owner: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.db.query('UPDATE backfills SET owner = NULL, lease_until = NULL WHERE owner = $1 AND job_id = ANY($2::text[])', [owner, jobIds], WHAT);
  }
  async close(): Promise<void> {}
}
