// Acceptance of the archive over the wire, read back by independent readers: 20,000 traces of the
// recorded conventions sent to a scorecar with archival on, then the Delta tables read with
// delta-rs (deltalake) and DuckDB's delta extension (delta-kernel-rs) from a repo-managed venv.
// Every trace must be there exactly once with its spans intact (a digest over every span field
// and attribute), the assessments table must equal the store, and both readers must agree on
// counts and time bounds, use our statistics (numRecords for count(*), min/max to skip files)
// and time-travel.
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBatches, type SentTrace, sendBatch, tracesPerCopy } from '../support/archive.ts';
import { deltaPython, type Json, readDelta } from '../support/python.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const TRACES = Number(process.env.SCORECAR_ARCHIVE_TEST_TRACES ?? 20_000);
const EXP = 'chat-app';

const python = await deltaPython();

describe.skipIf(python === undefined)('archive tables read by delta-rs and DuckDB', () => {
  let sc: TestScorecar;
  const sent: SentTrace[] = [];
  let report: Record<string, Json>;
  let storeRows: Array<Record<string, unknown>>;

  beforeAll(async () => {
    sc = await startScorecar(
      `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 100, idleTimeoutMs: 1000 }
archive:
  tables: { ${EXP}: {} }
  commitIntervalMs: 400
  commitMaxRows: 4000
scorers:
  - experiment: ${EXP}
    name: span_count
    definition: { type: code, source: "(ctx) => ctx.trace === null ? -1 : ctx.trace.spans.length" }
    sampleRate: 0.2
`,
    );
    const copies = Math.ceil(TRACES / tracesPerCopy());
    const batches = fixtureBatches(copies, 25);
    for (const b of batches) {
      await sendBatch(sc.httpUrl, b.body, EXP);
      sent.push(...b.traces);
    }
    await sc.app.whenIdle();
    await sc.app.pipeline.archiver.flush();
    const archival = sc.app.pipeline.archiver.get(EXP)!;
    const db = new DatabaseSync(join(sc.app.config.storage.dir, 'assessments.db'), { readOnly: true });
    storeRows = db.prepare('SELECT * FROM assessments ORDER BY assessment_id').all() as Array<Record<string, unknown>>;
    db.close();
    const step = Math.max(1, Math.floor(sent.length / 40));
    const sample = sent.filter((_, i) => i % step === 0).map((t) => t.traceId);
    report = await readDelta(python!, { traces: archival.tracesTable, assessments: archival.assessmentsTable, sample });
  }, 600_000);

  afterAll(async () => {
    await sc?.stop();
  });

  it('accounts for every trace in the metrics: received = committed rows, nothing dropped', async () => {
    expect(sent.length).toBeGreaterThanOrEqual(TRACES);
    expect(await sc.metric('scorecar_archive_received_total', { experiment: EXP, table: 'traces' })).toBe(sent.length);
    expect(await sc.metric('scorecar_archive_rows_total', { experiment: EXP, table: 'traces' })).toBe(sent.length);
    expect(await sc.metric('scorecar_archive_buffer_bytes')).toBe(0);
  });

  it('delta-rs reads every trace exactly once, with its spans intact', () => {
    const t = report.traces;
    expect(t.protocol).toEqual([1, 2, null, null]);
    expect(t.requestTimeType).toBe('timestamp[us, tz=UTC]');
    expect(t.rows).toBe(sent.length);
    expect(t.distinct).toBe(sent.length);
    expect(t.duplicates).toBe(0);
    const wrong = sent.filter((s) => t.digests[s.traceId] !== s.digest).map((s) => s.traceId);
    expect(wrong).toEqual([]);
  });

  it('request and response are the trace view inputs and outputs, as JSON', () => {
    const sample = report.traces.sample as Record<string, Record<string, unknown>>;
    const byId = new Map(sent.map((s) => [s.traceId, s]));
    expect(Object.keys(sample).length).toBeGreaterThan(10);
    for (const [id, row] of Object.entries(sample)) {
      const s = byId.get(id)!;
      expect(row.experiment_id).toBe(EXP);
      expect(row.request === null ? undefined : JSON.parse(row.request as string)).toEqual(s.inputs ?? undefined);
      expect(row.response === null ? undefined : JSON.parse(row.response as string)).toEqual(s.outputs ?? undefined);
      if (typeof s.inputs === 'string') expect(row.request_preview).toBe(s.inputs.slice(0, 1000));
    }
  });

  it('statistics are exact and used: count(*) from numRecords, files skipped by min/max', () => {
    const t = report.traces;
    expect(t.numRecordsSum).toBe(sent.length);
    expect(t.sqlCount).toBe(sent.length);
    expect(t.fragments).toBeGreaterThan(1);
    // A filter above the greatest request_time leaves no file to read (min/max pruning).
    expect(t.fragmentsAboveMax).toBe(0);
  });

  it('DuckDB (delta-kernel-rs) agrees: count, exact microsecond bounds, a point lookup', () => {
    const t = report.traces;
    expect(t.duck.count).toBe(sent.length);
    expect(t.duck.distinct).toBe(sent.length);
    expect(t.duck.minUs).toBe(t.minRequestUs);
    expect(t.duck.maxUs).toBe(t.maxRequestUs);
    // DuckDB skips files by our min/max (strings and longs): none read above the maxima.
    const files = t.duck.filesScanned;
    expect(files.all[0]).toBe(t.files);
    expect(files.traceIdAboveMax).toEqual([0, t.files]);
    expect(files.durationAboveMax).toEqual([0, t.files]);
    const [probe, rows] = t.duck.probe as [string, Array<[string, number]>];
    const s = sent.find((x) => x.traceId === probe)!;
    expect(rows).toEqual([[probe, s.spans]]);
  });

  it('time travel: version 0 is the empty table, version 1 the first commit', () => {
    const t = report.traces;
    expect(t.version).toBeGreaterThanOrEqual(2);
    expect(t.timeTravelV0Rows).toBe(0);
    expect(t.timeTravelV1Rows).toBeGreaterThan(0);
    expect(t.timeTravelV1Rows).toBeLessThan(sent.length);
  });

  it('the assessments table equals the assessment store', () => {
    const rows = report.assessments.rows as Array<Record<string, Json>>;
    expect(storeRows.length).toBeGreaterThan(100);
    expect(report.assessments.duckCount).toBe(storeRows.length);
    const archived = new Map(rows.map((r) => [r.assessment_id as string, r]));
    expect(archived.size).toBe(storeRows.length);
    for (const s of storeRows) {
      const a = archived.get(s.assessment_id as string);
      expect(a, `assessment ${s.assessment_id}`).toBeDefined();
      expect({
        trace: a!.trace_id,
        span: a!.span_id,
        exp: a!.experiment_id,
        name: a!.name,
        scorer: [a!.scorer_name, a!.scorer_version],
        source: [a!.source.source_type, a!.source.source_id],
        value: a!.value,
        error: a!.error ? [a!.error.error_code, a!.error.error_message] : null,
        metadata: a!.metadata,
        rate: a!.sample_rate,
        created: a!.create_us,
      }).toEqual({
        trace: s.trace_id,
        span: s.span_id,
        exp: s.experiment_id,
        name: s.name,
        scorer: [s.scorer_name, s.scorer_version],
        source: [s.source_type, s.source_id],
        value: s.value_json,
        error: s.error_code === null ? null : [s.error_code, s.error_message],
        metadata: JSON.parse(s.metadata_json as string),
        rate: s.sample_rate,
        created: Date.parse(s.created_at as string) * 1000,
      });
    }
  });
});
