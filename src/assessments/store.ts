// Assessment store: every assessment, upserted by its deterministic id (a replay or a retried
// job never duplicates), listed per trace for GET /api/v1/traces/{traceId}, summed per
// experiment and day for judge budgets, and summed per scorer and time bucket for the quality
// views (GET /api/v1/experiments/{exp}/quality, the web UI). Embedded default: SQLite (node:sqlite), its own file
// next to the registry's so assessment writes never wait on registry transactions.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Assessment, AssessmentValue, ScoredAssessment } from './types.ts';

export const ASSESSMENTS_FILE_NAME = 'assessments.db';

export interface UsageTotals {
  inputTokens: number;
  outputTokens: number;
  cost: number;
}

/** Filters of the recent-assessments list. */
export interface RecentQuery {
  scorer?: string | undefined;
  /** At most this many, newest first. */
  limit: number;
}

export interface AggregateQuery {
  scorer?: string | undefined;
  /** ISO-8601, inclusive. */
  startIso: string;
  /** ISO-8601, exclusive. */
  endIso: string;
  /** Where the first bucket starts (epoch seconds); buckets are stepSeconds wide from there. */
  startSeconds: number;
  /** Bucket width in seconds. */
  stepSeconds: number;
}

/**
 * Sums over the assessments of one (scorer, version, assessment name, time bucket): enough to
 * compute an inclusion-weighted mean and its variance without the rows (w = 1 / sampleRate,
 * y = the value as a number: booleans and yes/no as 1/0; sums over valued rows only).
 */
export interface AggregateRow {
  scorerName: string;
  scorerVersion: number;
  name: string;
  /** Bucket start, epoch seconds. */
  bucket: number;
  count: number;
  errors: number;
  /** Rows with a numeric reading (not errors, not categorical strings). */
  valued: number;
  /** Of those, booleans or yes/no (the rest are numbers). */
  binary: number;
  sumW: number;
  sumW2: number;
  sumWY: number;
  sumW2Y: number;
  sumW2Y2: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  /** Mean scoring-job latency of the rows that recorded one (ms); null when none did. */
  latencyMs: number | null;
}

/**
 * The store contract, one for both implementations (SQLite embedded, PostgreSQL shared; the
 * contract tests run against both). Asynchronous because the shared store is a network round
 * trip; the SQLite store answers synchronously inside the promise, so the emitter's hot path
 * pays a microtask, not a thread hop.
 */
export interface AssessmentStore {
  /** 'sqlite' or 'postgres' (logs, /healthz). */
  readonly kind: string;
  /**
   * Stores a batch in one transaction. Idempotent by assessmentId: an id stored already keeps
   * its first row (a replayed trace, a retried job, another replica scoring the same trace).
   */
  put(batch: readonly ScoredAssessment[]): Promise<void>;
  /** Which of these assessment ids are stored already (one query for the whole list). */
  existing(ids: readonly string[]): Promise<Set<string>>;
  byTrace(traceId: string): Promise<Assessment[]>;
  /** An experiment's newest assessments (optionally one scorer's), newest first. */
  recent(experimentId: string, q: RecentQuery): Promise<Assessment[]>;
  /** Sums per scorer version, assessment name and time bucket (see AggregateRow). */
  aggregate(experimentId: string, q: AggregateQuery): Promise<AggregateRow[]>;
  /** Which of these traces already have an assessment of this scorer version (backfills skip them). */
  tracesAssessedBy(scorerName: string, scorerVersion: number, experimentId: string, traceIds: readonly string[]): Promise<Set<string>>;
  /** Judge token usage and cost of one experiment since a time (ISO-8601). */
  usageSince(experimentId: string, sinceIso: string): Promise<UsageTotals>;
  count(): Promise<number>;
  close(): Promise<void>;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE assessments (
     assessment_id  TEXT PRIMARY KEY,
     trace_id       TEXT NOT NULL,
     span_id        TEXT NOT NULL,
     experiment_id  TEXT NOT NULL,
     scorer_name    TEXT NOT NULL,
     scorer_version INTEGER NOT NULL,
     name           TEXT NOT NULL,
     source_type    TEXT NOT NULL,
     source_id      TEXT NOT NULL,
     value_json     TEXT NOT NULL,
     rationale      TEXT,
     error_code     TEXT,
     error_message  TEXT,
     metadata_json  TEXT NOT NULL,
     sample_rate    REAL NOT NULL,
     input_tokens   INTEGER NOT NULL DEFAULT 0,
     output_tokens  INTEGER NOT NULL DEFAULT 0,
     cost           REAL NOT NULL DEFAULT 0,
     created_at     TEXT NOT NULL
   )`,
  'CREATE INDEX assessments_trace ON assessments (trace_id)',
  'CREATE INDEX assessments_experiment_time ON assessments (experiment_id, created_at)',
  // The scoring job's duration, for judge latency over time (null for rows written before).
  'ALTER TABLE assessments ADD COLUMN latency_ms REAL',
];

// The numeric reading of value_json, as scoreValue() reads an assessment (booleans and yes/no
// as 1/0, numbers as themselves); NULL for errors and categorical strings.
const Y = `(CASE WHEN error_code IS NOT NULL THEN NULL
  WHEN value_json IN ('true', '"yes"') THEN 1.0 WHEN value_json IN ('false', '"no"') THEN 0.0
  WHEN json_type(value_json) IN ('integer', 'real') THEN CAST(value_json AS REAL) END)`;
const BINARY = `(error_code IS NULL AND value_json IN ('true', 'false', '"yes"', '"no"'))`;
// Inclusion weight: 1 / inclusion probability (a rate of 0 cannot select a trace; 1 guards it).
const W = '(CASE WHEN sample_rate > 0 THEN 1.0 / sample_rate ELSE 1.0 END)';

export interface Row {
  assessment_id: string;
  trace_id: string;
  span_id: string;
  experiment_id: string;
  scorer_name: string;
  scorer_version: number;
  name: string;
  source_type: string;
  source_id: string;
  value_json: string;
  rationale: string | null;
  error_code: string | null;
  error_message: string | null;
  metadata_json: string;
  sample_rate: number;
  created_at: string;
}

export class SqliteAssessmentStore implements AssessmentStore {
  readonly kind = 'sqlite';
  private readonly db: DatabaseSync;
  private readonly insert: StatementSync;
  private readonly selectTrace: StatementSync;
  private readonly selectUsage: StatementSync;
  private readonly selectExisting: StatementSync;
  private readonly selectAssessedBy: StatementSync;
  private readonly selectRecent: StatementSync;
  private readonly selectRecentScorer: StatementSync;
  private readonly selectAggregate: StatementSync;

  constructor(opts: { dir?: string; path?: string }) {
    const path = opts.path ?? join(opts.dir ?? '.', ASSESSMENTS_FILE_NAME);
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.migrate();
    // First write wins (as ON CONFLICT DO NOTHING in PostgreSQL): ids are deterministic, so a
    // second row with the same id is the same verdict coming back.
    this.insert = this.db.prepare(
      `INSERT OR IGNORE INTO assessments (assessment_id, trace_id, span_id, experiment_id, scorer_name, scorer_version,
         name, source_type, source_id, value_json, rationale, error_code, error_message, metadata_json, sample_rate,
         input_tokens, output_tokens, cost, created_at, latency_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // (experiment_id, created_at) is indexed: a time range of one experiment is one index range.
    this.selectRecent = this.db.prepare(
      'SELECT * FROM assessments WHERE experiment_id = ? ORDER BY created_at DESC, assessment_id LIMIT ?',
    );
    this.selectRecentScorer = this.db.prepare(
      'SELECT * FROM assessments WHERE experiment_id = ? AND scorer_name = ? ORDER BY created_at DESC, assessment_id LIMIT ?',
    );
    const ifY = (expr: string) => `SUM(CASE WHEN ${Y} IS NOT NULL THEN ${expr} ELSE 0 END)`;
    this.selectAggregate = this.db.prepare(
      `SELECT scorer_name AS scorerName, scorer_version AS scorerVersion, name,
         CAST(:origin AS INTEGER) + ((CAST(strftime('%s', created_at) AS INTEGER) - CAST(:origin AS INTEGER)) / CAST(:step AS INTEGER)) * CAST(:step AS INTEGER) AS bucket,
         COUNT(*) AS count, SUM(error_code IS NOT NULL) AS errors, SUM(${Y} IS NOT NULL) AS valued,
         SUM(${BINARY}) AS binary,
         ${ifY(W)} AS sumW, ${ifY(`${W} * ${W}`)} AS sumW2, ${ifY(`${W} * ${Y}`)} AS sumWY,
         ${ifY(`${W} * ${W} * ${Y}`)} AS sumW2Y, ${ifY(`${W} * ${W} * ${Y} * ${Y}`)} AS sumW2Y2,
         SUM(input_tokens) AS inputTokens, SUM(output_tokens) AS outputTokens, SUM(cost) AS cost,
         AVG(latency_ms) AS latencyMs
       FROM assessments
       WHERE experiment_id = :exp AND created_at >= :start AND created_at < :end
         AND (:scorer IS NULL OR scorer_name = :scorer)
       GROUP BY scorer_name, scorer_version, name, bucket
       ORDER BY scorer_name, scorer_version, name, bucket`,
    );
    this.selectTrace = this.db.prepare('SELECT * FROM assessments WHERE trace_id = ? ORDER BY created_at, assessment_id');
    this.selectUsage = this.db.prepare(
      `SELECT COALESCE(SUM(input_tokens), 0) AS i, COALESCE(SUM(output_tokens), 0) AS o, COALESCE(SUM(cost), 0) AS c
       FROM assessments WHERE experiment_id = ? AND created_at >= ? AND source_type = 'LLM_JUDGE'`,
    );
    // The ids go in as one JSON array: one statement and one primary-key probe per id, whatever
    // the batch size (no statement per id, no SQLITE_MAX_VARIABLE_NUMBER to stay under).
    this.selectExisting = this.db.prepare(
      'SELECT assessment_id AS id FROM assessments WHERE assessment_id IN (SELECT value FROM json_each(?))',
    );
    // trace_id is indexed: one probe per trace id.
    this.selectAssessedBy = this.db.prepare(
      `SELECT DISTINCT trace_id AS id FROM assessments
       WHERE trace_id IN (SELECT value FROM json_each(?)) AND experiment_id = ? AND scorer_name = ? AND scorer_version = ?`,
    );
  }

  /**
   * Which of these traces already have an assessment of this scorer version (backfills skip
   * them: a re-run adds nothing, and a live + backfill overlap never scores twice).
   */
  async tracesAssessedBy(scorerName: string, scorerVersion: number, experimentId: string, traceIds: readonly string[]): Promise<Set<string>> {
    if (traceIds.length === 0) return new Set();
    const rows = this.selectAssessedBy.all(JSON.stringify(traceIds), experimentId, scorerName, scorerVersion) as unknown as Array<{ id: string }>;
    return new Set(rows.map((r) => r.id));
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const row = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number };
    for (let v = row.v; v < MIGRATIONS.length; v++) {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        this.db.exec(MIGRATIONS[v]!);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v + 1, new Date().toISOString());
        this.db.exec('COMMIT');
      } catch (e) {
        this.db.exec('ROLLBACK');
        throw e;
      }
    }
  }

  async put(batch: readonly ScoredAssessment[]): Promise<void> {
    if (batch.length === 0) return;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const { assessment: a, usage, latencyMs } of batch) {
        const md = a.metadata;
        this.insert.run(
          a.assessmentId,
          a.traceId,
          a.spanId,
          a.experimentId,
          a.scorer.name,
          a.scorer.version,
          a.name,
          a.source.type,
          a.source.id,
          JSON.stringify(a.value),
          a.rationale ?? null,
          a.error?.code ?? null,
          a.error?.message ?? null,
          JSON.stringify(md),
          a.sampleRate,
          usage?.inputTokens ?? 0,
          usage?.outputTokens ?? 0,
          usage?.cost ?? 0,
          a.createdAt,
          latencyMs ?? null,
        );
      }
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  async existing(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = this.selectExisting.all(JSON.stringify(ids)) as unknown as Array<{ id: string }>;
    return new Set(rows.map((r) => r.id));
  }

  async byTrace(traceId: string): Promise<Assessment[]> {
    return (this.selectTrace.all(traceId.toLowerCase()) as unknown as Row[]).map(fromRow);
  }

  /** An experiment's newest assessments (optionally one scorer's), newest first. */
  async recent(experimentId: string, q: RecentQuery): Promise<Assessment[]> {
    const rows =
      q.scorer === undefined
        ? this.selectRecent.all(experimentId, q.limit)
        : this.selectRecentScorer.all(experimentId, q.scorer, q.limit);
    return (rows as unknown as Row[]).map(fromRow);
  }

  /** Sums per scorer version, assessment name and time bucket (see AggregateRow). */
  async aggregate(experimentId: string, q: AggregateQuery): Promise<AggregateRow[]> {
    const step = Math.max(1, Math.floor(q.stepSeconds));
    return this.selectAggregate.all({
      exp: experimentId,
      start: q.startIso,
      end: q.endIso,
      step,
      origin: Math.floor(q.startSeconds),
      scorer: q.scorer ?? null,
    }) as unknown as AggregateRow[];
  }

  async usageSince(experimentId: string, sinceIso: string): Promise<UsageTotals> {
    const r = this.selectUsage.get(experimentId, sinceIso) as { i: number; o: number; c: number };
    return { inputTokens: r.i, outputTokens: r.o, cost: r.c };
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM assessments').get() as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

export function fromRow(r: Row): Assessment {
  const a: Assessment = {
    assessmentId: r.assessment_id,
    name: r.name,
    traceId: r.trace_id,
    spanId: r.span_id,
    experimentId: r.experiment_id,
    scorer: { name: r.scorer_name, version: r.scorer_version },
    source: { type: r.source_type as Assessment['source']['type'], id: r.source_id },
    value: JSON.parse(r.value_json) as AssessmentValue,
    metadata: JSON.parse(r.metadata_json) as Record<string, string>,
    sampleRate: r.sample_rate,
    createdAt: r.created_at,
  };
  if (r.rationale !== null) a.rationale = r.rationale;
  if (r.error_code !== null) a.error = { code: r.error_code, message: r.error_message ?? '' };
  return a;
}
