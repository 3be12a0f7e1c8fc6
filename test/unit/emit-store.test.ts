// The emit stage (assessments/emitter.ts) over fake store and exporter, the SQLite assessment
// store, and the judge budgets that read it back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Assessment,
  AssessmentEmitter,
  type AssessmentStore,
  type EmitItem,
  type OtlpSink,
  type ScoredAssessment,
  PostgresAssessmentStore,
  SqliteAssessmentStore,
} from '../../src/assessments/index.ts';
import { databaseFor, STORE_KINDS } from '../support/stores.ts';
import { JudgeBudgets } from '../../src/scoring/index.ts';
import { createLogger, MetricsRegistry } from '../../src/util/index.ts';

function assessment(i: number, over: Partial<Assessment> = {}): Assessment {
  return {
    assessmentId: `a-${i}`,
    name: 'judge',
    traceId: `${String(i).padStart(32, '0')}`,
    spanId: '0000000000000001',
    experimentId: 'exp',
    scorer: { name: 'judge', version: 1 },
    source: { type: 'LLM_JUDGE', id: 'openai:/m' },
    value: 'yes',
    metadata: {},
    sampleRate: 0.5,
    createdAt: '2026-03-01T10:00:00.000Z',
    ...over,
  };
}

function item(i: number, usage?: ScoredAssessment['usage']): EmitItem {
  return { assessment: assessment(i), usage, startedMs: Date.parse('2026-03-01T10:00:00Z') };
}

class FakeStore implements AssessmentStore {
  readonly kind = 'fake';
  readonly puts: ScoredAssessment[][] = [];
  fail = false;
  failLookups = false;
  async put(batch: readonly ScoredAssessment[]): Promise<void> {
    if (this.fail) throw new Error('disk full');
    this.puts.push([...batch]);
  }
  async existing(ids: readonly string[]): Promise<Set<string>> {
    if (this.failLookups) throw new Error('connection refused');
    const stored = new Set(this.puts.flat().map((s) => s.assessment.assessmentId));
    return new Set(ids.filter((id) => stored.has(id)));
  }
  async byTrace(): Promise<Assessment[]> {
    return [];
  }
  async recent(): Promise<Assessment[]> {
    return [];
  }
  async aggregate() {
    return [];
  }
  async tracesAssessedBy(): Promise<Set<string>> {
    return new Set();
  }
  async usageSince() {
    return { inputTokens: 0, outputTokens: 0, cost: 0 };
  }
  async count(): Promise<number> {
    return this.puts.flat().length;
  }
  async close(): Promise<void> {}
}

class FakeExport implements OtlpSink {
  readonly enabled = true;
  full = false;
  readonly sent: Array<{ signal: string; items: number }> = [];
  enqueue(signal: 'traces' | 'logs', _body: Buffer, items: number): string {
    if (this.full) return 'full';
    this.sent.push({ signal, items });
    return 'queued';
  }
}

function emitter() {
  const store = new FakeStore();
  const otlp = new FakeExport();
  const lines: string[] = [];
  const metrics = new MetricsRegistry();
  const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  const e = new AssessmentEmitter({ store, otlp, metrics, log, version: 'test' });
  const metric = (name: string) => (metrics.get(name) as unknown as { total(): number }).total();
  return { e, store, otlp, lines, metric };
}

describe('emit stage', () => {
  it('writes each flush in one store batch with typed usage, and sends one log + one span request downstream', async () => {
    const { e, store, otlp, metric } = emitter();
    e.consume([item(1, { inputTokens: 5, outputTokens: 2, attempts: 1 }), item(2)]);
    e.consume([item(3)]);
    expect(store.puts).toEqual([]);
    await e.flush();
    expect(store.puts.length).toBe(1);
    expect(store.puts[0]!.map((s) => [s.assessment.assessmentId, s.usage?.inputTokens])).toEqual([
      ['a-1', 5],
      ['a-2', undefined],
      ['a-3', undefined],
    ]);
    expect(otlp.sent).toEqual([
      { signal: 'logs', items: 3 },
      { signal: 'traces', items: 3 },
    ]);
    expect(metric('scorecar_assessments_total')).toBe(3);
  });

  it('warns once per burst while the export queue is full, and says when it has room again', async () => {
    const { e, otlp, lines, metric } = emitter();
    otlp.full = true;
    for (let i = 0; i < 5; i++) {
      e.consume([item(i)]);
      await e.flush();
    }
    expect(lines.filter((l) => l.includes('WARN') && l.includes('export queue full')).length).toBe(1);
    expect(metric('scorecar_assessment_export_dropped_total')).toBe(5);
    otlp.full = false;
    e.consume([item(9)]);
    await e.flush();
    expect(
      lines.filter((l) => l.includes('export queue has room again') && l.includes('notSent=5')).length,
    ).toBe(1);
    otlp.full = true;
    e.consume([item(10)]);
    await e.flush();
    expect(lines.filter((l) => l.includes('WARN') && l.includes('export queue full')).length).toBe(2);
  });

  it('a failing store or listener is counted and logged; the other outputs still get the batch', async () => {
    const { e, store, otlp, metric } = emitter();
    store.fail = true;
    const seen: string[] = [];
    e.onAssessment(() => {
      throw new Error('listener bug');
    });
    e.onAssessment((a) => seen.push(a.assessmentId));
    e.consume([item(1)]);
    await e.flush();
    expect(metric('scorecar_assessment_store_errors_total')).toBe(1);
    expect(seen).toEqual(['a-1']);
    expect(otlp.sent.length).toBe(2);
  });

  it('keeps what a failing store did not take and writes it once the store is back, never twice', async () => {
    const { e, store, otlp, metric } = emitter();
    store.fail = true;
    store.failLookups = true;
    e.consume([item(1), item(2)]);
    await e.flush();
    expect(store.puts).toEqual([]);
    expect(e.unstoredCount).toBe(2);
    expect(e.unstoredCount).toBe(2);
    // A retried job of an assessment still waiting for the store is a duplicate, not a new one.
    e.consume([item(2), item(3)]);
    await e.flush();
    expect(e.unstoredCount).toBe(3);
    expect(metric('scorecar_assessments_duplicate_total')).toBe(1);
    store.fail = false;
    store.failLookups = false;
    await e.flush();
    expect(e.unstoredCount).toBe(0);
    expect(
      store.puts
        .flat()
        .map((s) => s.assessment.assessmentId)
        .sort(),
    ).toEqual(['a-1', 'a-2', 'a-3']);
    // Sent downstream once each, when first emitted.
    expect(otlp.sent.filter((x) => x.signal === 'logs').reduce((n, x) => n + x.items, 0)).toBe(3);
  });

  it('flushes never overlap: a flush asked for during a slow store write runs after it', async () => {
    const { e, store } = emitter();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let firstStarted!: () => void;
    const started = new Promise<void>((r) => {
      firstStarted = r;
    });
    const order: string[] = [];
    const put = store.put.bind(store);
    store.put = async (batch) => {
      order.push(`start ${batch.length}`);
      if (order.length === 1) {
        firstStarted();
        await gate;
      }
      await put(batch);
      order.push(`end ${batch.length}`);
    };
    e.consume([item(1)]);
    const first = e.flush();
    await started;
    e.consume([item(2), item(3)]);
    const second = e.flush();
    expect(order).toEqual(['start 1']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('emits an assessment once: an id already stored, or earlier in the batch, is not stored, sent, counted or heard again', async () => {
    const { e, store, otlp, metric } = emitter();
    const heard: string[] = [];
    e.onAssessment((a) => heard.push(a.assessmentId));
    e.consume([item(1)]);
    await e.flush();
    // A replay of 1 (after a restart) and a job retried within one flush (2 twice).
    e.consume([item(1), item(2)]);
    e.consume([item(2)]);
    await e.flush();
    expect(store.puts.map((b) => b.map((s) => s.assessment.assessmentId))).toEqual([['a-1'], ['a-2']]);
    expect(otlp.sent).toEqual([
      { signal: 'logs', items: 1 },
      { signal: 'traces', items: 1 },
      { signal: 'logs', items: 1 },
      { signal: 'traces', items: 1 },
    ]);
    expect(heard).toEqual(['a-1', 'a-2']);
    expect(metric('scorecar_assessments_total')).toBe(2);
    expect(metric('scorecar_assessments_duplicate_total')).toBe(2);
    // A batch of duplicates only sends nothing at all.
    e.consume([item(1), item(2)]);
    await e.flush();
    expect(otlp.sent.length).toBe(4);
    expect(metric('scorecar_assessments_duplicate_total')).toBe(4);
  });

  it('labels: fixed verdicts, judge choices and a few string verdicts per scorer; the rest is other', async () => {
    const metrics = new MetricsRegistry();
    const e = new AssessmentEmitter({ metrics, log: createLogger({ level: 'error' }), version: 'test' });
    let n = 0;
    const emit = (over: Partial<Assessment>) =>
      e.consume([{ assessment: assessment(n++, over), startedMs: 0 }]);
    const code = { source: { type: 'CODE' as const, id: 'c' }, scorer: { name: 'code', version: 1 } };
    for (let i = 0; i < 30; i++) emit({ ...code, value: `verdict ${i}` });
    emit({ ...code, value: 'x'.repeat(65) });
    emit({ ...code, value: 'yes' });
    emit({ ...code, value: true });
    emit({ ...code, value: 3.5 });
    emit({ ...code, value: null, error: { code: 'SOMETHING_ELSE', message: 'x' } });
    // A code scorer cannot pass its strings off as judge choices through metadata.
    for (let i = 0; i < 5; i++)
      emit({ ...code, value: `meta ${i}`, metadata: { 'scorecar.label': `meta ${i}` } });
    // A prompt judge's choices (the parser only lets declared ones through) are all kept.
    for (let i = 0; i < 20; i++)
      emit({ value: `choice_${i}`, metadata: { 'scorecar.label': `choice_${i}` } });
    await e.flush();
    const total = metrics.get('scorecar_assessments_total')!.render();
    const labelsOf = (scorer: string) =>
      [...total.matchAll(new RegExp(`scorer="${scorer}",label="([^"]*)"\\} (\\d+)`, 'g'))].map((m) => [
        m[1],
        Number(m[2]),
      ]);
    expect(labelsOf('code')).toEqual([
      ...Array.from({ length: 10 }, (_, i) => [`verdict ${i}`, 1]),
      ['other', 20 + 1 + 5],
      ['yes', 1],
      ['true', 1],
      ['numeric', 1],
      ['error', 1],
    ]);
    expect(labelsOf('judge')).toEqual(Array.from({ length: 20 }, (_, i) => [`choice_${i}`, 1]));
    expect(metrics.get('scorecar_assessment_errors_total')!.render()).toContain('code="other"} 1');
  });

  it('shutdown flushes what is pending and stops the timer (twice is fine)', async () => {
    const { e, store } = emitter();
    e.start();
    e.consume([item(1)]);
    await e.shutdown(Date.now());
    await e.shutdown(Date.now());
    expect(store.puts.flat().length).toBe(1);
  });
});

describe.each(STORE_KINDS)('assessment store contract over %s', (kind) => {
  let store: AssessmentStore;
  let done: () => Promise<void>;
  beforeEach(async () => {
    if (kind === 'sqlite') {
      const s = new SqliteAssessmentStore({ dir: mkdtempSync(join(tmpdir(), 'scorecar-assessments-')) });
      store = s;
      done = () => s.close();
    } else {
      const d = await databaseFor(kind);
      store = await PostgresAssessmentStore.open(d.db!);
      done = d.close;
    }
  });
  afterEach(async () => {
    await done();
  });

  it('keeps the first row of an id, lists a trace, sums judge usage since a time; budgets read it back on a new day', async () => {
    const usage = { inputTokens: 100, outputTokens: 20, cost: 0.25, attempts: 1 };
    await store.put([
      { assessment: assessment(1), usage },
      { assessment: assessment(2, { createdAt: '2026-02-28T23:00:00.000Z' }), usage },
      { assessment: assessment(3, { source: { type: 'CODE', id: 'c' } }), usage },
    ]);
    // The same id again (a replay, another replica): kept once, the first verdict stays.
    await store.put([{ assessment: assessment(1, { value: 'no' }), usage }]);
    expect(await store.count()).toBe(3);
    expect((await store.byTrace(assessment(1).traceId)).map((a) => a.value)).toEqual(['yes']);
    expect(await store.byTrace(assessment(1).traceId.toUpperCase())).toEqual([assessment(1)]);
    expect([...(await store.existing(['a-1', 'a-3', 'a-9']))].sort()).toEqual(['a-1', 'a-3']);
    expect(await store.existing([])).toEqual(new Set());
    // Judges only, from the given time on.
    expect(await store.usageSince('exp', '2026-03-01T00:00:00.000Z')).toEqual({
      inputTokens: 100,
      outputTokens: 20,
      cost: 0.25,
    });
    let now = Date.parse('2026-03-01T12:00:00Z');
    const budgets = new JudgeBudgets({ '*': { tokensPerDay: 150 } }, store, () => now);
    expect(await budgets.admit('exp')).toMatchObject({ ok: true });
    budgets.add('exp', 40, 0);
    expect(await budgets.admit('exp')).toMatchObject({
      ok: false,
      code: 'BUDGET_EXHAUSTED',
      reason: expect.stringContaining('daily token budget of 150 spent (160 used on 2026-03-01 UTC)'),
    });
    now = Date.parse('2026-03-02T00:00:01Z');
    expect(await budgets.admit('exp')).toMatchObject({ ok: true });
  });

  it('values, errors and metadata come back as they were put; recent is newest first', async () => {
    const rows: Assessment[] = [
      assessment(1, {
        value: 0.75,
        rationale: 'why',
        metadata: { k: 'v' },
        createdAt: '2026-03-01T10:00:01.000Z',
      }),
      assessment(2, { value: true, createdAt: '2026-03-01T10:00:03.000Z' }),
      assessment(3, {
        value: null,
        error: { code: 'TIMEOUT', message: 'slow' },
        createdAt: '2026-03-01T10:00:02.000Z',
      }),
      assessment(4, {
        value: 'blue',
        scorer: { name: 'other', version: 2 },
        createdAt: '2026-03-01T10:00:04.000Z',
      }),
    ];
    await store.put(rows.map((a) => ({ assessment: a })));
    expect(await store.byTrace(rows[0]!.traceId)).toEqual([rows[0]]);
    expect(await store.byTrace(rows[2]!.traceId)).toEqual([rows[2]]);
    expect((await store.recent('exp', { limit: 3 })).map((a) => a.assessmentId)).toEqual([
      'a-4',
      'a-2',
      'a-3',
    ]);
    expect((await store.recent('exp', { scorer: 'judge', limit: 10 })).map((a) => a.assessmentId)).toEqual([
      'a-2',
      'a-3',
      'a-1',
    ]);
    expect([
      ...(await store.tracesAssessedBy('judge', 1, 'exp', [
        rows[0]!.traceId,
        rows[3]!.traceId,
        'f'.repeat(32),
      ])),
    ]).toEqual([rows[0]!.traceId]);
    expect(await store.tracesAssessedBy('judge', 1, 'exp', [])).toEqual(new Set());
  });

  it('aggregates per scorer version, name and time bucket with inclusion weights', async () => {
    const at = (s: number) => new Date(Date.parse('2026-03-01T10:00:00Z') + s * 1000).toISOString();
    await store.put([
      {
        assessment: assessment(1, { value: 'yes', sampleRate: 0.5, createdAt: at(1) }),
        usage: { inputTokens: 10, outputTokens: 1, cost: 0.5, attempts: 1 },
        latencyMs: 100,
      },
      { assessment: assessment(2, { value: 'no', sampleRate: 0.5, createdAt: at(2) }), latencyMs: 300 },
      {
        assessment: assessment(3, {
          value: 4,
          sampleRate: 1,
          createdAt: at(70),
          scorer: { name: 'len', version: 1 },
        }),
      },
      {
        assessment: assessment(4, {
          value: null,
          error: { code: 'TIMEOUT', message: 'x' },
          createdAt: at(75),
        }),
      },
      { assessment: assessment(5, { value: 'free text', createdAt: at(80) }) },
    ]);
    const rows = await store.aggregate('exp', {
      startIso: at(0),
      endIso: at(120),
      startSeconds: Date.parse(at(0)) / 1000,
      stepSeconds: 60,
    });
    const base = Date.parse(at(0)) / 1000;
    expect(rows).toEqual([
      {
        scorerName: 'judge',
        scorerVersion: 1,
        name: 'judge',
        bucket: base,
        count: 2,
        errors: 0,
        valued: 2,
        binary: 2,
        sumW: 4,
        sumW2: 8,
        sumWY: 2,
        sumW2Y: 4,
        sumW2Y2: 4,
        inputTokens: 10,
        outputTokens: 1,
        cost: 0.5,
        latencyMs: 200,
      },
      {
        scorerName: 'judge',
        scorerVersion: 1,
        name: 'judge',
        bucket: base + 60,
        count: 2,
        errors: 1,
        valued: 0,
        binary: 0,
        sumW: 0,
        sumW2: 0,
        sumWY: 0,
        sumW2Y: 0,
        sumW2Y2: 0,
        inputTokens: 0,
        outputTokens: 0,
        cost: 0,
        latencyMs: null,
      },
      {
        scorerName: 'len',
        scorerVersion: 1,
        name: 'judge',
        bucket: base + 60,
        count: 1,
        errors: 0,
        valued: 1,
        binary: 0,
        sumW: 1,
        sumW2: 1,
        sumWY: 4,
        sumW2Y: 4,
        sumW2Y2: 16,
        inputTokens: 0,
        outputTokens: 0,
        cost: 0,
        latencyMs: null,
      },
    ]);
    expect(
      await store.aggregate('exp', {
        scorer: 'len',
        startIso: at(0),
        endIso: at(120),
        startSeconds: base,
        stepSeconds: 60,
      }),
    ).toHaveLength(1);
  });
});

describe('judge budgets', () => {
  it('a cost budget applies to the experiment named, "*" to the others', async () => {
    const budgets = new JudgeBudgets(
      { '*': { costPerDay: 1 }, big: { costPerDay: 100 } },
      undefined,
      () => 0,
    );
    budgets.add('small', 0, 1.5);
    budgets.add('big', 0, 1.5);
    expect(budgets.exhausted('small')).toContain('daily cost budget of 1 spent');
    expect(budgets.exhausted('big')).toBeUndefined();
  });
});
