// The shared assessment store: PostgreSQL (storage.postgres.url). Same contract as the SQLite
// store (store.ts; the contract tests run against both), same columns, values kept as the same
// JSON text so every reader sees what SQLite would return. Every replica writes here: ids are
// deterministic and a write is INSERT ... ON CONFLICT DO NOTHING, so two replicas scoring the
// same trace (or a replay) store it once. A batch is one statement (arrays unnested), whatever
// its size: one round trip per emitter flush.
import type { PostgresDatabase } from '../postgres/index.ts';
import { type AggregateQuery, type AggregateRow, type AssessmentStore, fromRow, type RecentQuery, type Row, type UsageTotals } from './store.ts';
import type { Assessment, ScoredAssessment } from './types.ts';

const MIGRATIONS = [
  {
    version: 1,
    name: 'assessments',
    sql: `
      CREATE TABLE assessments (
        assessment_id  TEXT COLLATE "C" PRIMARY KEY,
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
        sample_rate    DOUBLE PRECISION NOT NULL,
        input_tokens   BIGINT NOT NULL DEFAULT 0,
        output_tokens  BIGINT NOT NULL DEFAULT 0,
        cost           DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at     TEXT COLLATE "C" NOT NULL,
        latency_ms     DOUBLE PRECISION
      );
      CREATE INDEX assessments_trace ON assessments (trace_id);
      CREATE INDEX assessments_experiment_time ON assessments (experiment_id, created_at);
    `,
  },
];

// As the SQLite store reads a value (booleans and yes/no as 1/0, numbers as themselves).
const Y = `(CASE WHEN error_code IS NOT NULL THEN NULL
  WHEN value_json IN ('true', '"yes"') THEN 1.0 WHEN value_json IN ('false', '"no"') THEN 0.0
  WHEN jsonb_typeof(value_json::jsonb) = 'number' THEN value_json::double precision END)`;
const BINARY = `(error_code IS NULL AND value_json IN ('true', 'false', '"yes"', '"no"'))`;
const W = '(CASE WHEN sample_rate > 0 THEN 1.0 / sample_rate ELSE 1.0 END)';

const COLUMNS =
  'assessment_id, trace_id, span_id, experiment_id, scorer_name, scorer_version, name, source_type, source_id, value_json, ' +
  'rationale, error_code, error_message, metadata_json, sample_rate, input_tokens, output_tokens, cost, created_at, latency_ms';
const TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'int',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'float8',
  'int8',
  'int8',
  'float8',
  'text',
  'float8',
];
const INSERT = `INSERT INTO assessments (${COLUMNS})
  SELECT * FROM unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
  ON CONFLICT (assessment_id) DO NOTHING`;

const ifY = (expr: string) => `COALESCE(SUM(CASE WHEN ${Y} IS NOT NULL THEN ${expr} ELSE 0 END), 0)::float8`;
const AGGREGATE = `
  SELECT scorer_name AS "scorerName", scorer_version AS "scorerVersion", name,
    ($5::bigint + ((floor(extract(epoch FROM created_at::timestamptz))::bigint - $5::bigint) / $6::bigint) * $6::bigint)::float8 AS bucket,
    COUNT(*)::int AS count, COUNT(*) FILTER (WHERE error_code IS NOT NULL)::int AS errors,
    COUNT(*) FILTER (WHERE ${Y} IS NOT NULL)::int AS valued, COUNT(*) FILTER (WHERE ${BINARY})::int AS "binary",
    ${ifY(W)} AS "sumW", ${ifY(`${W} * ${W}`)} AS "sumW2", ${ifY(`${W} * ${Y}`)} AS "sumWY",
    ${ifY(`${W} * ${W} * ${Y}`)} AS "sumW2Y", ${ifY(`${W} * ${W} * ${Y} * ${Y}`)} AS "sumW2Y2",
    SUM(input_tokens)::float8 AS "inputTokens", SUM(output_tokens)::float8 AS "outputTokens", SUM(cost)::float8 AS cost,
    AVG(latency_ms)::float8 AS "latencyMs"
  FROM assessments
  WHERE experiment_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4::text IS NULL OR scorer_name = $4)
  GROUP BY scorer_name, scorer_version, name, 4
  ORDER BY scorer_name COLLATE "C", scorer_version, name COLLATE "C", 4`;

const WHAT = 'assessment store';

export class PostgresAssessmentStore implements AssessmentStore {
  readonly kind = 'postgres';
  private readonly db: PostgresDatabase;

  private constructor(db: PostgresDatabase) {
    this.db = db;
  }

  static async open(db: PostgresDatabase): Promise<PostgresAssessmentStore> {
    await db.migrate('assessments', MIGRATIONS);
    return new PostgresAssessmentStore(db);
  }

  async put(batch: readonly ScoredAssessment[]): Promise<void> {
    if (batch.length === 0) return;
    const cols: unknown[][] = TYPES.map(() => new Array(batch.length));
    batch.forEach(({ assessment: a, usage, latencyMs }, i) => {
      const row = [
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
        JSON.stringify(a.metadata),
        a.sampleRate,
        usage?.inputTokens ?? 0,
        usage?.outputTokens ?? 0,
        usage?.cost ?? 0,
        a.createdAt,
        latencyMs ?? null,
      ];
      for (let c = 0; c < row.length; c++) cols[c]![i] = row[c];
    });
    await this.db.query(INSERT, cols, WHAT);
  }

  async existing(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.db.query<{ id: string }>('SELECT assessment_id AS id FROM assessments WHERE assessment_id = ANY($1::text[])', [ids], WHAT);
    return new Set(rows.map((r) => r.id));
  }

  async byTrace(traceId: string): Promise<Assessment[]> {
    const { rows } = await this.db.query<Row>('SELECT * FROM assessments WHERE trace_id = $1 ORDER BY created_at, assessment_id COLLATE "C"', [traceId.toLowerCase()], WHAT);
    return rows.map(fromRow);
  }

  async recent(experimentId: string, q: RecentQuery): Promise<Assessment[]> {
    const { rows } =
      q.scorer === undefined
        ? await this.db.query<Row>('SELECT * FROM assessments WHERE experiment_id = $1 ORDER BY created_at DESC, assessment_id COLLATE "C" LIMIT $2', [experimentId, q.limit], WHAT)
        : await this.db.query<Row>(
            'SELECT * FROM assessments WHERE experiment_id = $1 AND scorer_name = $2 ORDER BY created_at DESC, assessment_id COLLATE "C" LIMIT $3',
            [experimentId, q.scorer, q.limit],
            WHAT,
          );
    return rows.map(fromRow);
  }

  async aggregate(experimentId: string, q: AggregateQuery): Promise<AggregateRow[]> {
    const step = Math.max(1, Math.floor(q.stepSeconds));
    const { rows } = await this.db.query<AggregateRow>(AGGREGATE, [experimentId, q.startIso, q.endIso, q.scorer ?? null, Math.floor(q.startSeconds), step], WHAT);
    return rows;
  }

  async tracesAssessedBy(scorerName: string, scorerVersion: number, experimentId: string, traceIds: readonly string[]): Promise<Set<string>> {
    if (traceIds.length === 0) return new Set();
    const { rows } = await this.db.query<{ id: string }>(
      `SELECT DISTINCT trace_id AS id FROM assessments
       WHERE trace_id = ANY($1::text[]) AND experiment_id = $2 AND scorer_name = $3 AND scorer_version = $4`,
      [traceIds, experimentId, scorerName, scorerVersion],
      WHAT,
    );
    return new Set(rows.map((r) => r.id));
  }

  async usageSince(experimentId: string, sinceIso: string): Promise<UsageTotals> {
    const { rows } = await this.db.query<{ i: number; o: number; c: number }>(
      `SELECT COALESCE(SUM(input_tokens), 0)::float8 AS i, COALESCE(SUM(output_tokens), 0)::float8 AS o, COALESCE(SUM(cost), 0)::float8 AS c
       FROM assessments WHERE experiment_id = $1 AND created_at >= $2 AND source_type = 'LLM_JUDGE'`,
      [experimentId, sinceIso],
      WHAT,
    );
    const r = rows[0]!;
    return { inputTokens: r.i, outputTokens: r.o, cost: r.c };
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM assessments', [], WHAT);
    return rows[0]!.n;
  }

  /** The database is the process's, shared with the other stores: the pipeline closes it. */
  async close(): Promise<void> {}
}
