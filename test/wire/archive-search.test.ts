// Trace search and GET /traces/{id} over a real archive: traces of every recorded convention sent
// over the wire, committed to Delta tables, then searched through the admin API. What each query
// must return is computed independently: the same filter compiled over the GenAI views of what was
// sent, ordered and paged by hand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTraceView, type TraceView } from '../../src/genai/index.ts';
import { compileFilter, DEFAULT_SAMPLING_SALT, isSelected } from '../../src/select/index.ts';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { fixtureBatches, sendBatch } from '../support/archive.ts';
import { DEFAULT_VIEW_OPTIONS } from '../support/fixtures.ts';
import type { Json } from '../support/python.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const EXP = 'search-app';

describe('trace search over the archive', () => {
  let sc: TestScorecar;
  const views: TraceView[] = [];
  let spansSent = 0;

  const api = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${sc.adminUrl}/api/v1${path}`, init);
    return { status: res.status, body: (await res.json()) as Record<string, Json> };
  };
  /** A trace's request time in µs: its root's start, else its earliest span's. */
  const startUs = (v: TraceView): number => {
    let ns = v.rootSpan.startTimeUnixNano;
    if (v.rootSpan.parentSpanId !== '') for (const s of v.spans) if (s.startTimeUnixNano < ns) ns = s.startTimeUnixNano;
    return Number(ns / 1000n);
  };

  /** Every page of a search, followed through nextPageToken. */
  const all = async (query: Record<string, string>) => {
    const out: Array<Record<string, Json>> = [];
    let token: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const qs = new URLSearchParams({ ...query, ...(token ? { pageToken: token } : {}) });
      const r = await api(`/experiments/${EXP}/traces?${qs}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      out.push(...r.body.traces);
      token = r.body.nextPageToken;
      if (!token) break;
    }
    return out;
  };

  beforeAll(async () => {
    sc = await startScorecar(
      `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 100, idleTimeoutMs: 1000 }
archive: { commitIntervalMs: 200, commitMaxRows: 150 }
scorers:
  - experiment: ${EXP}
    name: spans
    definition: { type: code, source: "(ctx) => 1" }
    sampleRate: 0.5
`,
    );
    // Enabled through the API (not the config): the archive starts with the first trace after it.
    const on = await api(`/experiments/${EXP}/archival`, { method: 'POST', headers: { 'x-scorecar-request': '1' } });
    expect(on.status).toBe(200);
    for (const b of fixtureBatches(20, 5, 'search')) {
      await sendBatch(sc.httpUrl, b.body, EXP);
      for (const t of tracesFromRequest(b.body, { experimentHeader: EXP })) spansSent += t.spans.length;
      for (const t of tracesFromRequest(b.body, { experimentHeader: EXP })) views.push(buildTraceView(t, { ...DEFAULT_VIEW_OPTIONS, defaultExperiment: EXP }));
    }
    await sc.app.whenIdle();
    await sc.app.pipeline.archiver.flush();
  }, 300_000);

  afterAll(async () => {
    await sc?.stop();
  });

  it('pages through every archived trace once, newest first, with assessments', async () => {
    const got = await all({ maxResults: '37' });
    expect(got.length).toBe(views.length);
    expect(new Set(got.map((t) => t.traceId)).size).toBe(views.length);
    const order = [...views].sort((a, b) => startUs(b) - startUs(a) || (a.traceId < b.traceId ? 1 : -1)).map((v) => v.traceId);
    expect(got.map((t) => t.traceId)).toEqual(order);
    const scored = got.filter((t) => t.assessments.length > 0);
    expect(scored.length).toBeGreaterThan(0);
    for (const t of scored) expect(t.assessments[0].traceId).toBe(t.traceId);
    expect(got[0]?.experimentId).toBe(EXP);
  });

  it.each([
    "span.type = 'RETRIEVER'",
    'trace.execution_time_ms > 1500',
    "trace.name LIKE '%chat%'",
    "span.name RLIKE '^(ChatOpenAI|openai)' AND trace.status = 'OK'",
  ])('filters with the scorer filter language: %s', async (filter) => {
    const f = compileFilter(filter);
    const expected = views.filter((v) => f.matches(v)).map((v) => v.traceId).sort();
    const got = (await all({ filter, maxResults: '50' })).map((t) => t.traceId).sort();
    expect(got).toEqual(expected);
  });

  it('bounds by time and orders by execution time', async () => {
    const times = views.map(startUs).sort((a, b) => a - b);
    const from = Math.floor(times[Math.floor(times.length / 4)]! / 1000);
    const to = Math.floor(times[Math.floor((3 * times.length) / 4)]! / 1000);
    const expected = views
      .filter((v) => startUs(v) >= from * 1000 && startUs(v) < to * 1000)
      .sort((a, b) => Math.floor(a.executionTimeMs) - Math.floor(b.executionTimeMs) || (a.traceId < b.traceId ? -1 : 1))
      .map((v) => v.traceId);
    expect(expected.length).toBeGreaterThan(10);
    const got = await all({ startTime: String(from), endTime: new Date(to).toISOString(), orderBy: 'execution_time_ms ASC', maxResults: '9' });
    expect(got.map((t) => t.traceId)).toEqual(expected);
  });

  it('GET /traces/{id} returns the spans, request, response and assessments of an archived trace', async () => {
    const v = views[7]!;
    const r = await api(`/traces/${v.traceId}`);
    expect(r.status).toBe(200);
    expect(r.body.spans.map((s: { spanId: string }) => s.spanId).sort()).toEqual(v.spans.map((s) => s.spanId).sort());
    expect(r.body.info.experimentId).toBe(EXP);
    expect(r.body.request).toEqual(JSON.parse(JSON.stringify(v.inputs ?? null)) ?? undefined);
    const root = r.body.spans.find((s: { parentSpanId: string | null }) => s.parentSpanId === null);
    if (root) expect(root.startTimeUnixMicros).toBe(Number(v.rootSpan.startTimeUnixNano / 1000n));
    expect(Array.isArray(r.body.assessments)).toBe(true);
    // Unknown everywhere: 404.
    expect((await api(`/traces/${'e'.repeat(32)}`)).status).toBe(404);
  });

  it('refuses a bad filter with its position, a foreign page token, and an experiment not archived', async () => {
    const bad = await api(`/experiments/${EXP}/traces?filter=${encodeURIComponent("trace.status = 'OK' AND")}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_FILTER');
    expect(typeof bad.body.error.details.position).toBe('number');
    const page = await api(`/experiments/${EXP}/traces?maxResults=2`);
    const token = page.body.nextPageToken as string;
    const other = await api(`/experiments/${EXP}/traces?maxResults=2&orderBy=execution_time_ms&pageToken=${token}`);
    expect(other.status).toBe(400);
    expect(other.body.error.code).toBe('INVALID_ARGUMENT');
    expect((await api('/experiments/nope/traces')).status).toBe(404);
    const order = await api(`/experiments/${EXP}/traces?orderBy=${encodeURIComponent('name ASC')}`);
    expect(order.status).toBe(400);
  });

  it('reassembles every trace of the archived experiment, and none of an experiment nobody reads', async () => {
    // The scorer samples half of the traces; the archive wants them all.
    expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'buffered' })).toBe(spansSent);
    expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'not_sampled' })).toBe(0);
    const other = fixtureBatches(1, 1, 'other')[0]!;
    await sendBatch(sc.httpUrl, other.body, 'not-archived');
    await sc.app.whenIdle();
    const otherSpans = tracesFromRequest(other.body).reduce((n, t) => n + t.spans.length, 0);
    expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'not_sampled' })).toBe(otherSpans);
    expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'buffered' })).toBe(spansSent);
  });

  it('a backfill at the live rate over live-scored traffic scores nothing twice', async () => {
    // The live scorer `spans` at 0.5 scored its sample as the traces arrived.
    const live = views.filter((v) => isSelected(v.traceId, 0.5, DEFAULT_SAMPLING_SALT)).length;
    expect((await sc.app.pipeline.store.count())).toBe(live);
    const manager = sc.app.pipeline.backfills;
    const job = await manager.create(EXP, { scorers: ['spans'], startTimeMs: 0 });
    const done = await manager.whenDone(job.jobId);
    expect(done).toMatchObject({ state: 'succeeded', selected: live, skipped: live, scored: 0, errors: 0 });
    expect((await sc.app.pipeline.store.count())).toBe(live);
  });

  it('archival status, listing and disable through the API', async () => {
    const st = await api(`/experiments/${EXP}/archival`);
    expect(st.status).toBe(200);
    expect(st.body.source).toBe('api');
    expect(st.body.traces.version).toBeGreaterThanOrEqual(1);
    expect((await api('/archival')).body.archivals.map((a: { experimentId: string }) => a.experimentId)).toEqual([EXP]);
    const off = await api(`/experiments/${EXP}/archival`, { method: 'DELETE', headers: { 'x-scorecar-request': '1' } });
    expect(off.body).toEqual({ experimentId: EXP, archived: false });
    expect((await api(`/experiments/${EXP}/archival`)).status).toBe(404);
    expect((await api(`/experiments/${EXP}/archival`, { method: 'DELETE', headers: { 'x-scorecar-request': '1' } })).status).toBe(404);
    // The tables stay: enabling again resumes at the next version.
    const again = await api(`/experiments/${EXP}/archival`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(again.status).toBe(200);
    expect(again.body.traces.version).toBe(st.body.traces.version);
  });
});
