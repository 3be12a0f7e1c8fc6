// The emit stage (assessments/emitter.ts) over fake store and exporter, the SQLite assessment
// store, and the judge budgets that read it back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Assessment,
  AssessmentEmitter,
  type AssessmentStore,
  type EmitItem,
  type OtlpSink,
  type ScoredAssessment,
  SqliteAssessmentStore,
} from '../../src/assessments/index.ts';
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
  readonly puts: ScoredAssessment[][] = [];
  fail = false;
  put(batch: readonly ScoredAssessment[]): void {
    if (this.fail) throw new Error('disk full');
    this.puts.push([...batch]);
  }
  existing(ids: readonly string[]): Set<string> {
    const stored = new Set(this.puts.flat().map((s) => s.assessment.assessmentId));
    return new Set(ids.filter((id) => stored.has(id)));
  }
  byTrace(): Assessment[] {
    return [];
  }
  usageSince() {
    return { inputTokens: 0, outputTokens: 0, cost: 0 };
  }
  count(): number {
    return this.puts.flat().length;
  }
  close(): void {}
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
  it('writes each flush in one store batch with typed usage, and sends one log + one span request downstream', () => {
    const { e, store, otlp, metric } = emitter();
    e.consume([item(1, { inputTokens: 5, outputTokens: 2, attempts: 1 }), item(2)]);
    e.consume([item(3)]);
    expect(store.puts).toEqual([]);
    e.flush();
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

  it('warns once per burst while the export queue is full, and says when it has room again', () => {
    const { e, otlp, lines, metric } = emitter();
    otlp.full = true;
    for (let i = 0; i < 5; i++) {
      e.consume([item(i)]);
      e.flush();
    }
    expect(lines.filter((l) => l.includes('WARN') && l.includes('export queue full')).length).toBe(1);
    expect(metric('scorecar_assessment_export_dropped_total')).toBe(5);
    otlp.full = false;
    e.consume([item(9)]);
    e.flush();
    expect(lines.filter((l) => l.includes('export queue has room again') && l.includes('notSent=5')).length).toBe(1);
    otlp.full = true;
    e.consume([item(10)]);
    e.flush();
    expect(lines.filter((l) => l.includes('WARN') && l.includes('export queue full')).length).toBe(2);
  });

  it('a failing store or listener is counted and logged; the other outputs still get the batch', () => {
    const { e, store, otlp, metric } = emitter();
    store.fail = true;
    const seen: string[] = [];
    e.onAssessment(() => {
      throw new Error('listener bug');
    });
    e.onAssessment((a) => seen.push(a.assessmentId));
    e.consume([item(1)]);
    e.flush();
    expect(metric('scorecar_assessment_store_errors_total')).toBe(1);
    expect(seen).toEqual(['a-1']);
    expect(otlp.sent.length).toBe(2);
  });

  it('emits an assessment once: an id already stored, or earlier in the batch, is not stored, sent, counted or heard again', () => {
    const { e, store, otlp, metric } = emitter();
    const heard: string[] = [];
    e.onAssessment((a) => heard.push(a.assessmentId));
    e.consume([item(1)]);
    e.flush();
    // A replay of 1 (after a restart) and a job retried within one flush (2 twice).
    e.consume([item(1), item(2)]);
    e.consume([item(2)]);
    e.flush();
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
    e.flush();
    expect(otlp.sent.length).toBe(4);
    expect(metric('scorecar_assessments_duplicate_total')).toBe(4);
  });

  it('labels: fixed verdicts, judge choices and a few string verdicts per scorer; the rest is other', () => {
    const metrics = new MetricsRegistry();
    const e = new AssessmentEmitter({ metrics, log: createLogger({ level: 'error' }), version: 'test' });
    let n = 0;
    const emit = (over: Partial<Assessment>) => e.consume([{ assessment: assessment(n++, over), startedMs: 0 }]);
    const code = { source: { type: 'CODE' as const, id: 'c' }, scorer: { name: 'code', version: 1 } };
    for (let i = 0; i < 30; i++) emit({ ...code, value: `verdict ${i}` });
    emit({ ...code, value: 'x'.repeat(65) });
    emit({ ...code, value: 'yes' });
    emit({ ...code, value: true });
    emit({ ...code, value: 3.5 });
    emit({ ...code, value: null, error: { code: 'SOMETHING_ELSE', message: 'x' } });
    // A code scorer cannot pass its strings off as judge choices through metadata.
    for (let i = 0; i < 5; i++) emit({ ...code, value: `meta ${i}`, metadata: { 'scorecar.label': `meta ${i}` } });
    // A prompt judge's choices (the parser only lets declared ones through) are all kept.
    for (let i = 0; i < 20; i++) emit({ value: `choice_${i}`, metadata: { 'scorecar.label': `choice_${i}` } });
    e.flush();
    const total = metrics.get('scorecar_assessments_total')!.render();
    const labelsOf = (scorer: string) =>
      [...total.matchAll(new RegExp(`scorer="${scorer}",label="([^"]*)"\\} (\\d+)`, 'g'))].map((m) => [m[1], Number(m[2])]);
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

describe('SQLite assessment store and judge budgets', () => {
  it('upserts by id, lists a trace, sums judge usage since a time; budgets read it back on a new day', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorecar-assessments-'));
    const store = new SqliteAssessmentStore({ dir });
    try {
      const usage = { inputTokens: 100, outputTokens: 20, cost: 0.25, attempts: 1 };
      store.put([
        { assessment: assessment(1), usage },
        { assessment: assessment(2, { createdAt: '2026-02-28T23:00:00.000Z' }), usage },
        { assessment: assessment(3, { source: { type: 'CODE', id: 'c' } }), usage },
      ]);
      // The same id again: replaced, never duplicated.
      store.put([{ assessment: assessment(1, { value: 'no' }), usage }]);
      expect(store.count()).toBe(3);
      expect(store.byTrace(assessment(1).traceId).map((a) => a.value)).toEqual(['no']);
      // Judges only, from the given time on.
      expect(store.usageSince('exp', '2026-03-01T00:00:00.000Z')).toEqual({ inputTokens: 100, outputTokens: 20, cost: 0.25 });
      let now = Date.parse('2026-03-01T12:00:00Z');
      const budgets = new JudgeBudgets({ '*': { tokensPerDay: 150 } }, store, () => now);
      expect(budgets.exhausted('exp')).toBeUndefined();
      budgets.add('exp', 40, 0);
      expect(budgets.exhausted('exp')).toContain('daily token budget of 150 spent (160 used on 2026-03-01 UTC)');
      now = Date.parse('2026-03-02T00:00:01Z');
      expect(budgets.exhausted('exp')).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('a cost budget applies to the experiment named, "*" to the others', () => {
    const budgets = new JudgeBudgets({ '*': { costPerDay: 1 }, big: { costPerDay: 100 } }, undefined, () => 0);
    budgets.add('small', 0, 1.5);
    budgets.add('big', 0, 1.5);
    expect(budgets.exhausted('small')).toContain('daily cost budget of 1 spent');
    expect(budgets.exhausted('big')).toBeUndefined();
  });
});
