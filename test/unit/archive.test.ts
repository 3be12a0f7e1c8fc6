// The archive's parts in-process: Delta log rules (put-if-absent races, what conflicts, what a
// table must be to be appended to, retention and vacuum), exact file statistics, the transfer
// form of a trace, the writer's dedup window and failure handling, and the archive stage with its
// writer on the same thread (accounting, refusal, enable/disable persistence).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ARCHIVAL_FILE_NAME,
  Archiver,
  ArchiveWriter,
  assessmentFromRow,
  assessmentRow,
  attributesFromMap,
  attributesMap,
  DeltaTable,
  fileStats,
  packTrace,
  RecentIds,
  schemaString,
  compactTable,
  TableWriter,
  TRACES_SCHEMA,
  TraceArchiveReader,
  traceFromRow,
  unpackTrace,
  versionFileName,
  WriterHost,
} from '../../src/archive/index.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { buildTraceView } from '../../src/genai/index.ts';
import { MetricsRegistry, ScorecarError, silentLogger } from '../../src/util/index.ts';
import { DEFAULT_VIEW_OPTIONS, fixtureTraces } from '../support/fixtures.ts';

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `scorecar-unit-${name}-`));

const HOST = {
  engineInfo: 'scorecar unit',
  commitIntervalMs: 60_000,
  commitMaxRows: 1_000_000,
  dedupWindow: 1000,
  resolution: DEFAULT_VIEW_OPTIONS.resolution,
  defaultExperiment: 'default',
  retentionDays: 0,
  vacuumRetainMs: 3_600_000,
};

const traces = () => fixtureTraces('mlflow', 'python-rag');

function assessment(over: Partial<Assessment> = {}): Assessment {
  return {
    assessmentId: 'a-1',
    name: 'len',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    experimentId: 'exp',
    scorer: { name: 'len', version: 2 },
    source: { type: 'CODE', id: 'len' },
    value: 'ünïcode',
    rationale: 'because',
    error: { code: 'TIMEOUT', message: 'slow' },
    metadata: { k: 'v' },
    sampleRate: 0.25,
    createdAt: '2025-02-03T04:05:06.789Z',
    ...over,
  };
}

describe('Delta log', () => {
  it('creates a table once, even when two writers race, and refuses a foreign schema', async () => {
    const root = join(tmp('create'), 't');
    const [a, b] = await Promise.all([DeltaTable.open(root), DeltaTable.open(root)]);
    await Promise.all([a.create(TRACES_SCHEMA, 'a'), b.create(TRACES_SCHEMA, 'b')]);
    expect(readdirSync(join(root, '_delta_log')).filter((n) => n.endsWith('.json') && !n.startsWith('.'))).toEqual([versionFileName(0)]);
    expect(a.version).toBe(0);
    expect(b.version).toBe(0);
    // A table of another shape is never appended to.
    const other = join(tmp('other'), 't');
    const t = await DeltaTable.open(other);
    await t.create({ ...TRACES_SCHEMA, partitionColumn: 'experiment_id' }, 'x');
    const again = await DeltaTable.open(other);
    await expect(again.create(TRACES_SCHEMA, 'y')).rejects.toMatchObject({ code: 'TABLE_INCOMPATIBLE' });
  });

  it('refuses protocols and features it does not write, and logs without commit 0', async () => {
    const root = join(tmp('proto'), 't');
    mkdirSync(join(root, '_delta_log'), { recursive: true });
    const meta = { id: 'x', format: { provider: 'parquet', options: {} }, schemaString: schemaString(TRACES_SCHEMA), partitionColumns: ['request_date'], configuration: {} };
    writeFileSync(
      join(root, '_delta_log', versionFileName(0)),
      `${JSON.stringify({ protocol: { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['deletionVectors'], writerFeatures: ['deletionVectors'] } })}\n${JSON.stringify({ metaData: meta })}\n`,
    );
    const t = await DeltaTable.open(root);
    expect(() => t.checkWritable(TRACES_SCHEMA)).toThrow(/deletionVectors/);
    const cleaned = join(tmp('cleaned'), 't');
    mkdirSync(join(cleaned, '_delta_log'), { recursive: true });
    writeFileSync(join(cleaned, '_delta_log', versionFileName(12)), '{}\n');
    await expect(DeltaTable.open(cleaned)).rejects.toMatchObject({ code: 'TABLE_INCOMPATIBLE' });
    const broken = join(tmp('broken'), 't');
    mkdirSync(join(broken, '_delta_log'), { recursive: true });
    writeFileSync(join(broken, '_delta_log', versionFileName(0)), 'not json\n');
    await expect(DeltaTable.open(broken)).rejects.toThrow(/not valid JSON/);
  });

  it('retries a lost race at the next version, and gives up when the race changed the schema', async () => {
    const root = join(tmp('race'), 't');
    const a = await DeltaTable.open(root);
    await a.create(TRACES_SCHEMA, 'a');
    const b = await DeltaTable.open(root);
    const add = (p: string) => ({ add: { path: p, partitionValues: { request_date: '2025-01-01' }, size: 1, modificationTime: 1, dataChange: true } });
    expect(await a.commit([add('x.parquet')])).toBe(1);
    // b has not seen version 1: it loses the race for it and lands on 2.
    expect(await b.commit([add('y.parquet')])).toBe(2);
    expect(b.files().map((f) => f.path).sort()).toEqual(['x.parquet', 'y.parquet']);
    // Someone changes the metadata: a blind append built for the old schema is refused.
    await b.commit([{ metaData: { ...b.metadata!, schemaString: '{"type":"struct","fields":[]}' } }]);
    await expect(a.commit([add('z.parquet')])).rejects.toMatchObject({ code: 'TABLE_INCOMPATIBLE' });
  });

  it('retention removes old partitions once, even when two replicas race; vacuum deletes the files later', async () => {
    const dir = tmp('retention');
    const w = await TableWriter.open('traces', join(dir, 't'), 'unit');
    const views = traces().map((t) => buildTraceView(t, DEFAULT_VIEW_OPTIONS));
    const { traceRow } = await import('../../src/archive/index.ts');
    const r = traceRow(views[0]!);
    w.add({ ...r.row, trace_id: 'a'.repeat(32) }, '2020-01-01', 10, 0);
    w.add({ ...r.row, trace_id: 'b'.repeat(32) }, '2030-01-01', 10, 0);
    const rep = await w.flush('exp', 0);
    expect(rep).toMatchObject({ rows: 2, files: 2, releasedBytes: 20 });
    // An orphan: written by a writer that crashed before its commit.
    const orphan = join(dir, 't', 'request_date=2020-01-01', 'part-orphan.parquet');
    writeFileSync(orphan, 'x');
    const old = (Date.now() - 10 * 3_600_000) / 1000;
    utimesSync(orphan, old, old);
    const a = await DeltaTable.open(join(dir, 't'));
    const b = await DeltaTable.open(join(dir, 't'));
    const now = Date.parse('2025-06-01T00:00:00Z');
    const [ra, rb] = await Promise.all([a.removePartitionsBefore('request_date', '2025-01-01', 'a', now), b.removePartitionsBefore('request_date', '2025-01-01', 'b', now)]);
    expect(ra.files + rb.files).toBe(1);
    expect((await DeltaTable.open(join(dir, 't'))).files().map((f) => f.partitionValues.request_date)).toEqual(['2030-01-01']);
    // Tombstoned at `now` (June 2025) and the orphan 10 h old: both older than 1 h.
    expect(await a.vacuum(3_600_000)).toBe(2);
    expect(readdirSync(join(dir, 't', 'request_date=2020-01-01'))).toEqual([]);
    expect(readdirSync(join(dir, 't', 'request_date=2030-01-01')).length).toBe(1);
    expect(await a.removePartitionsBefore('request_date', '2025-01-01', 'a')).toEqual({ version: -1, files: 0 });
  });
});

describe('compaction', () => {
  it('rewrites a partition of small files into one, with the same rows, and skips what changed meanwhile', async () => {
    const dir = tmp('compact');
    const w = new ArchiveWriter(HOST);
    await w.open('exp', dir);
    const ts = traces();
    // One commit per trace, over three rounds of distinct trace ids: many small files.
    let n = 0;
    for (let round = 0; round < 4; round++) {
      for (const t of ts) {
        const id = `${round}${t.traceId.slice(1)}`;
        w.addTrace('exp', packTrace({ ...t, traceId: id }), 1);
        await w.flush(true);
        n++;
      }
    }
    const a = w.archives.get('exp')!;
    const reader = new TraceArchiveReader(dir, 'exp');
    const before = await reader.search({ maxResults: 1000 }, async () => []);
    expect(a.traces.table.files().length).toBe(n);
    const r = await compactTable(a.traces.table, a.traces.schema, 'unit', { minFiles: 4 });
    expect(r).toEqual({ replaced: n, written: 1 });
    expect(a.traces.table.files().length).toBe(1);
    const after = await reader.search({ maxResults: 1000 }, async () => []);
    expect(after).toEqual(before);
    const one = await reader.get(`0${ts[0]!.traceId.slice(1)}`);
    expect(one?.spans.length).toBe(buildTraceView(ts[0]!, DEFAULT_VIEW_OPTIONS).spans.length);
    // Too few small files: nothing to do.
    expect(await compactTable(a.traces.table, a.traces.schema, 'unit', { minFiles: 4 })).toEqual({ replaced: 0, written: 0 });
    // A race lost to a commit that removed a source: nothing committed, the new file deleted.
    const t = a.traces.table;
    const sources = t.files();
    const other = await DeltaTable.open(t.root);
    await other.removePartitionsBefore('request_date', '9999-01-01', 'other');
    const v = await t.replace(sources, { ...sources[0]!, path: 'request_date=x/new.parquet' }, 'unit');
    expect(v).toBe(-1);
    await w.close('exp');
  });
});

describe('rows and statistics', () => {
  it('stats: exact counts, UTF-8 order for strings, floored/ceiled timestamps, long text left out', () => {
    const rows = [
      { trace_id: 'b', request_time: 1_700_000_000_123_456, state: 'OK', execution_duration_ms: 5n, request_preview: 'x'.repeat(100) },
      // 'é' (U+00E9) sorts above 'z' in UTF-8 and in UTF-16; '\u{1F600}' is a surrogate pair in
      // UTF-16 (0xD83D < 0xE000) but 4 bytes starting 0xF0 in UTF-8: the UTF-8 maximum.
      { trace_id: '\u{1F600}', request_time: 1_700_000_000_999_001, state: null, execution_duration_ms: 7n, request_preview: 'y' },
      { trace_id: '\uE000', request_time: 1_700_000_000_000_999, state: 'ERROR', execution_duration_ms: null, request_preview: null },
    ];
    const s = fileStats(TRACES_SCHEMA, rows);
    expect(s.numRecords).toBe(3);
    expect(s.nullCount).toMatchObject({ trace_id: 0, state: 1, execution_duration_ms: 1, client_request_id: 3 });
    expect(s.minValues.trace_id).toBe('b');
    expect(s.maxValues.trace_id).toBe('\u{1F600}');
    expect(s.minValues.request_time).toBe('2023-11-14T22:13:20.000Z');
    expect(s.maxValues.request_time).toBe('2023-11-14T22:13:21.000Z');
    expect(s.minValues.execution_duration_ms).toBe(5);
    expect(s.maxValues.state).toBe('OK');
    expect(s.minValues).not.toHaveProperty('request_preview');
  });

  it('attributes round-trip through their JSON-encoded map form', () => {
    const attrs = { s: 'x', n: 3, f: 1.5, b: true, a: [1, 'two'], m: { k: 'v' }, q: '"quoted"' };
    expect(attributesFromMap(attributesMap(attrs))).toEqual(attrs);
    expect(attributesFromMap({ raw: 'not json' })).toEqual({ raw: 'not json' });
    expect(attributesFromMap(null)).toEqual({});
  });

  it('an assessment row reads back as the assessment', () => {
    const a = assessment();
    const { row, date } = assessmentRow(a);
    expect(date).toBe('2025-02-03');
    expect(assessmentFromRow({ ...row, create_time: BigInt(row.create_time as number) })).toEqual(a);
    const plain = assessment({ rationale: undefined, error: undefined, value: 1 });
    delete plain.rationale;
    delete plain.error;
    expect(assessmentFromRow({ ...assessmentRow(plain).row, create_time: BigInt(Date.parse(plain.createdAt) * 1000), metadata: null })).toEqual({ ...plain, metadata: {} });
  });

  it('a packed trace unpacks to the same trace, and a row rebuilds the same view', () => {
    for (const t of traces()) {
      const u = unpackTrace(packTrace(t));
      const v1 = buildTraceView(t, DEFAULT_VIEW_OPTIONS);
      const v2 = buildTraceView(u, DEFAULT_VIEW_OPTIONS);
      expect(v2.spans.map((s) => [s.spanId, s.name, s.attributes])).toEqual(v1.spans.map((s) => [s.spanId, s.name, s.attributes]));
      expect(v2.inputs).toEqual(v1.inputs);
      expect(u.wireBytes).toBe(t.wireBytes);
    }
  });

  it('a trace rebuilt from its archived spans has the same view inputs, outputs and span types', async () => {
    const { traceRow } = await import('../../src/archive/index.ts');
    for (const t of traces()) {
      const v = buildTraceView(t, DEFAULT_VIEW_OPTIONS);
      const spans = (traceRow(v).row.spans as Array<Record<string, unknown>>).map((s) => ({ ...s }));
      const back = buildTraceView(traceFromRow(t.traceId, spans as never), DEFAULT_VIEW_OPTIONS);
      expect(back.inputs).toEqual(v.inputs);
      expect(back.outputs).toEqual(v.outputs);
      expect(back.spanTypes).toEqual(v.spanTypes);
      expect(back.retrievals.length).toBe(v.retrievals.length);
    }
  });
});

describe('writer', () => {
  it('RecentIds forgets the oldest beyond its window', () => {
    const r = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'a', 'd']) r.add(id);
    expect(['a', 'b', 'c', 'd'].map((id) => r.has(id))).toEqual([false, true, true, true]);
    expect(r.size).toBe(3);
    const none = new RecentIds(0);
    none.add('a');
    expect(none.has('a')).toBe(false);
  });

  it('skips a trace archived before, even by a previous process, and commits on time or size', async () => {
    const path = tmp('writer');
    let now = 1_000;
    const w = new ArchiveWriter({ ...HOST, commitIntervalMs: 500, commitMaxRows: 3, now: () => now });
    await w.open('exp', path);
    const ts = traces();
    expect(ts.length).toBeGreaterThanOrEqual(2);
    expect(w.addTrace('exp', packTrace(ts[0]!), 10)).toBeUndefined();
    expect(w.addTrace('exp', packTrace(ts[0]!), 10)).toBe('duplicate');
    expect(w.addTrace('other', packTrace(ts[0]!), 10)).toBe('not_archived');
    expect(await w.flush()).toEqual([]);
    now += 500;
    const [rep] = await w.flush();
    expect(rep).toMatchObject({ table: 'traces', rows: 1, version: 1 });
    // A new writer (a restarted process) reads the ids back from the table.
    const w2 = new ArchiveWriter({ ...HOST, dedupWindow: 10 });
    await w2.open('exp', path);
    expect(w2.addTrace('exp', packTrace(ts[0]!), 10)).toBe('duplicate');
    expect(w2.addTrace('exp', packTrace(ts[1]!), 10)).toBeUndefined();
    expect(w2.addAssessment(assessment({ experimentId: 'exp' }), 5)).toBeUndefined();
    expect(w2.addAssessment(assessment({ experimentId: 'nope' }), 5)).toBe('not_archived');
    const reports = await w2.close('exp');
    expect(reports.map((r) => [r.table, r.rows])).toEqual([
      ['traces', 1],
      ['assessments', 1],
    ]);
    expect(await w2.close('exp')).toEqual([]);
    // A reader over it finds both traces.
    const reader = new TraceArchiveReader(path, 'exp');
    const page = await reader.search({ maxResults: 10 }, async () => []);
    expect(page.traces.map((t) => t.traceId).sort()).toEqual([ts[0]!.traceId, ts[1]!.traceId].sort());
    expect((await reader.get(ts[1]!.traceId))?.spans.length).toBe(buildTraceView(ts[1]!, DEFAULT_VIEW_OPTIONS).spans.length);
    expect(await reader.get('f'.repeat(32))).toBeUndefined();
    await expect(reader.search({ maxResults: 1, orderBy: 'name' }, async () => [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(reader.search({ maxResults: 1, pageToken: 'garbage' }, async () => [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('keeps rows buffered when a commit fails, and commits them once the disk lets it', async () => {
    const path = tmp('fail');
    const w = new ArchiveWriter(HOST);
    await w.open('exp', path);
    w.addTrace('exp', packTrace(traces()[0]!), 10);
    // The partition directory is a file: writing the data file fails.
    const a = w.archives.get('exp')!;
    const { traceRow } = await import('../../src/archive/index.ts');
    const date = traceRow(buildTraceView(traces()[0]!, DEFAULT_VIEW_OPTIONS)).date;
    writeFileSync(join(path, 'traces', `request_date=${date}`), 'blocker');
    const [failed] = await w.flush(true);
    expect(failed?.error).toBeTruthy();
    expect(a.traces.pendingRows).toBe(1);
    const { rmSync } = await import('node:fs');
    rmSync(join(path, 'traces', `request_date=${date}`));
    const [ok] = await w.flush(true);
    expect(ok).toMatchObject({ rows: 1, releasedBytes: 10 });
  });

  it('WriterHost: items in order, requests one at a time, a report of what happened', async () => {
    const path = tmp('host');
    const host = new WriterHost({ ...HOST, sliceMs: 0 });
    expect((await host.request({ op: 'open', experimentId: 'exp', tablePath: path })).ok).toBe(true);
    for (const t of traces()) host.item({ op: 'trace', experimentId: 'exp', packed: packTrace(t), est: 7 });
    host.item({ op: 'trace', experimentId: 'exp', packed: packTrace(traces()[0]!), est: 7 });
    host.item({ op: 'assessment', assessment: assessment({ experimentId: 'nope' }), est: 3 });
    expect(host.backlog).toBeGreaterThan(0);
    expect((await host.request({ op: 'flush' })).ok).toBe(true);
    const r = host.takeReport()!;
    expect(r.flushes.map((f) => [f.table, f.rows])).toEqual([['traces', traces().length]]);
    expect(r.skipped.map((s) => [s.table, s.reason, s.count, s.est])).toEqual([
      ['traces', 'duplicate', 1, 7],
      ['assessments', 'not_archived', 1, 3],
    ]);
    const status = await host.request({ op: 'status' });
    expect(status.ok && (status.value as Array<{ traces: { version: number } }>)[0]!.traces.version).toBe(1);
    expect(await host.tick()).toBeUndefined();
    expect((await host.request({ op: 'maintain' })).ok).toBe(true);
    expect((await host.request({ op: 'close', experimentId: 'exp' })).ok).toBe(true);
    // A table path under a file cannot be created: the request fails, with its code.
    writeFileSync(join(path, 'a-file'), 'x');
    const bad = await host.request({ op: 'open', experimentId: 'x', tablePath: join(path, 'a-file', 'archive') });
    expect(bad).toMatchObject({ ok: false, code: 'INTERNAL' });
  });
});

describe('archive stage (writer on this thread)', () => {
  const start = async (storage: string, yaml: string) => {
    const config = loadConfig({ text: yaml, env: {} });
    const metrics = new MetricsRegistry();
    let upstream = 0;
    const a = new Archiver({
      config: config.archive,
      storageDir: storage,
      resolution: DEFAULT_VIEW_OPTIONS.resolution,
      defaultExperiment: 'default',
      engineInfo: 'unit',
      metrics,
      log: silentLogger,
      inline: true,
      upstreamBytes: () => upstream,
    });
    await a.start();
    return { a, metrics, setUpstream: (n: number) => (upstream = n) };
  };
  const metric = (m: MetricsRegistry, name: string) =>
    m
      .render()
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('\n');

  it('archives config-declared and API-enabled experiments, remembers the latter, and counts everything', async () => {
    const storage = tmp('stage');
    const ts = traces();
    const exp = buildTraceView(ts[0]!, DEFAULT_VIEW_OPTIONS).experimentId;
    const { a, metrics, setUpstream } = await start(storage, `archive: { tables: { cfg: {} }, maxBufferBytes: 1000000 }`);
    expect(a.list().map((x) => [x.experimentId, x.source])).toEqual([['cfg', 'config']]);
    const en = await a.enable(exp);
    expect(en.tablePath).toBe(a.defaultTablePath(exp));
    expect(await a.enable(exp)).toBe(en);
    expect(JSON.parse(readFileSync(join(storage, ARCHIVAL_FILE_NAME), 'utf8')).experiments[exp].tablePath).toBe(en.tablePath);
    expect(a.wants(new Uint8Array(16), 0, ts[0]!.resources[0]!)).toBe(true);
    for (const t of ts) a.consume(t);
    a.onAssessment(assessment({ experimentId: exp }));
    a.onAssessment(assessment({ experimentId: 'not-archived' }));
    expect(a.bytes).toBeGreaterThan(0);
    // Over three quarters of the buffer with what is still assembling: refuse trace requests.
    setUpstream(1_000_000);
    expect(() => a.precheck('traces', 10)).toThrow(ScorecarError);
    expect(() => a.precheck('logs', 10)).not.toThrow();
    setUpstream(0);
    await a.flush();
    expect(a.bytes).toBe(0);
    expect(metric(metrics, 'scorecar_archive_rows_total')).toContain(`scorecar_archive_rows_total{experiment="${exp}",table="traces"} ${ts.length}`);
    expect(metric(metrics, 'scorecar_archive_rows_total')).toContain(`table="assessments"} 1`);
    const st = await a.status();
    expect(st.find((s) => s.experimentId === exp)?.traces.committedRows).toBe(ts.length);
    const page = await a.search(exp, { maxResults: 100 }, async () => []);
    expect(page.traces.length).toBe(ts.length);
    expect((await a.getTrace(ts[0]!.traceId))?.traceId).toBe(ts[0]!.traceId);
    await expect(a.search('nope', { maxResults: 1 }, async () => [])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await a.maintain()).toEqual({ removedFiles: 0, deletedFiles: 0, compactedFiles: 0 });
    expect(await a.disable(exp)).toBe(true);
    expect(await a.disable(exp)).toBe(false);
    expect(a.wants(new Uint8Array(16), 0, ts[0]!.resources[0]!)).toBe(false);
    await a.enable(exp);
    await a.shutdown(Date.now() + 5000);
    // Shut down: nothing more is taken, and it is counted.
    a.consume(ts[0]!);
    expect(metric(metrics, 'scorecar_archive_dropped_total')).toContain('reason="shutdown"');
    await expect(a.enable('x')).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    // A restart reads the remembered experiments back.
    const again = await start(storage, '');
    expect(again.a.list().map((x) => [x.experimentId, x.source])).toEqual([[exp, 'api']]);
    await again.a.shutdown(Date.now() + 5000);
  });

  it('drops (and counts) completed traces beyond the buffer, and refuses an incompatible table', async () => {
    const storage = tmp('full');
    const ts = traces();
    const exp = buildTraceView(ts[0]!, DEFAULT_VIEW_OPTIONS).experimentId;
    const { a, metrics } = await start(storage, `archive: { maxBufferBytes: 1 }`);
    await a.enable(exp);
    a.consume(ts[0]!);
    expect(metric(metrics, 'scorecar_archive_dropped_total')).toContain('reason="buffer_full"');
    const bad = join(storage, 'bad');
    const t = await DeltaTable.open(join(bad, 'traces'));
    await t.create({ ...TRACES_SCHEMA, partitionColumn: 'state' }, 'x');
    await expect(a.enable('other', bad)).rejects.toMatchObject({ code: 'TABLE_INCOMPATIBLE' });
    await a.shutdown(Date.now() + 5000);
  });
});
