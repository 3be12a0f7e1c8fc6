// The select stage (select/selector.ts) with a fake registry snapshot, a hand-driven scheduler
// and a fake clock: which traces become jobs, which traces are worth buffering (wants), the
// bounded view-building slices, admission and the queue bound, shutdown.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type CompleteTrace, tracesFromRequest } from '../../src/assembly/index.ts';
import {
  type ActiveScorer,
  type ActiveScorerSource,
  compileFilter,
  isSelected,
  type JobAdmission,
  type SelectedJob,
  TraceSelector,
} from '../../src/select/index.ts';
import { MetricsRegistry, silentLogger } from '../../src/util/index.ts';
import { jsonToProtobuf, type ResourceRef } from '../../src/wire/index.ts';
import { Sink } from '../support/sink.ts';

const SALT = 'test-salt';

function scorer(experimentId: string, name: string, sampleRate: number, filter?: string): ActiveScorer {
  return {
    experimentId,
    name,
    version: 1,
    definition: { type: 'code', source: '(ctx) => 1' },
    sampleRate,
    filterString: filter ?? null,
    filter: filter ? compileFilter(filter) : null,
    updatedAt: '2026-01-01T00:00:00Z',
  };
}

class FakeRegistry implements ActiveScorerSource {
  snapshot: Map<string, ActiveScorer[]> = new Map();
  set(scorers: ActiveScorer[]): void {
    const m = new Map<string, ActiveScorer[]>();
    for (const s of scorers) m.set(s.experimentId, [...(m.get(s.experimentId) ?? []), s]);
    this.snapshot = m; // a new map on every change, as the registry publishes it
  }
  activeScorers() {
    return this.snapshot;
  }
  activeFor(exp: string) {
    return this.snapshot.get(exp) ?? [];
  }
}

/** `n` one-span traces of an experiment (resource mlflow.experimentId), named `name`. */
function traces(n: number, experiment: string, name = 'root', reason: CompleteTrace['reason'] = 'root'): CompleteTrace[] {
  const spans = Array.from({ length: n }, () => ({
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name,
    startTimeUnixNano: '1000000',
    endTimeUnixNano: '2000000',
  }));
  const body = jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [{ resource: { attributes: [{ key: 'mlflow.experimentId', value: { stringValue: experiment } }] }, scopeSpans: [{ spans }] }],
    }),
  );
  return tracesFromRequest(body, { reason });
}

function setup(opts: { admission?: JobAdmission; queueMaxBytes?: number; resolution?: string[] } = {}) {
  const registry = new FakeRegistry();
  const out = new Sink<SelectedJob>();
  const slices: Array<() => void> = [];
  let clock = 0;
  const metrics = new MetricsRegistry();
  const selector = new TraceSelector({
    registry,
    next: out,
    admission: opts.admission,
    resolution: opts.resolution ?? ['resource:mlflow.experimentId'],
    defaultExperiment: 'default',
    salt: SALT,
    metrics,
    log: silentLogger,
    queueMaxBytes: opts.queueMaxBytes,
    sliceMs: 5,
    schedule: (fn) => slices.push(fn),
    // Every clock read moves 1 ms: a slice then builds about 5 views.
    now: () => clock++,
  });
  const runSlice = (): boolean => {
    const fn = slices.shift();
    fn?.();
    return fn !== undefined;
  };
  const metric = (name: string, labels: Record<string, string>) =>
    (metrics.get(name) as unknown as { get(l: Record<string, string>): number }).get(labels);
  return { registry, out, selector, runSlice, slices, metric };
}

function idBytes(traceId: string): Uint8Array {
  return Buffer.from(traceId, 'hex');
}

describe('select stage: completed traces to jobs', () => {
  it('selects by the salted hash per scorer and by the filter, on the view, in bounded slices', () => {
    const { registry, out, selector, runSlice, metric } = setup();
    registry.set([scorer('exp', 'half', 0.5), scorer('exp', 'all_named_x', 1, "trace.name = 'x'")]);
    const ts = [...traces(40, 'exp', 'x'), ...traces(40, 'exp', 'y')];
    for (const t of ts) selector.consume(t);
    // Nothing is built on the completion edge itself.
    expect(out.items).toEqual([]);
    expect(selector.depth).toBe(80);
    expect(runSlice()).toBe(true);
    const afterOne = 80 - selector.depth;
    expect(afterOne).toBeGreaterThan(0);
    expect(afterOne).toBeLessThanOrEqual(6);
    while (runSlice()) {}
    expect(selector.depth).toBe(0);
    const want = new Set<string>();
    for (const t of ts) {
      if (isSelected(t.traceId, 0.5, SALT)) want.add(`half ${t.traceId}`);
      if (ts.indexOf(t) < 40) want.add(`all_named_x ${t.traceId}`);
    }
    expect(new Set(out.items.map((j) => `${j.scorer.name} ${j.view.traceId}`))).toEqual(want);
    expect(metric('scorecar_sampler_filtered_out_total', { experiment: 'exp', scorer: 'all_named_x' })).toBe(40);
  });

  it('records the completion reason and the inclusion probability on every job', () => {
    const { registry, out, selector, runSlice } = setup();
    registry.set([scorer('exp', 's', 1)]);
    const [t] = traces(1, 'exp', 'n', 'shutdown');
    selector.consume(t!);
    while (runSlice()) {}
    expect(out.items.map((j) => [j.completion, j.sampleRate])).toEqual([['shutdown', 1]]);
  });

  it('refuses before building a view when the next stage has no room (counted there)', () => {
    const refused: string[] = [];
    const admission: JobAdmission = { hasRoom: () => false, refuse: (exp, s) => refused.push(`${exp}/${s}`) };
    const { registry, out, selector, slices } = setup({ admission });
    registry.set([scorer('exp', 's', 1)]);
    for (const t of traces(3, 'exp')) selector.consume(t);
    expect(slices.length).toBe(0);
    expect(out.items).toEqual([]);
    expect(refused).toEqual(['exp/s', 'exp/s', 'exp/s']);
  });

  it('bounds the traces waiting for their view by bytes and counts the drops', () => {
    const { registry, selector, metric } = setup({ queueMaxBytes: 1 });
    registry.set([scorer('exp', 's', 1)]);
    for (const t of traces(3, 'exp')) selector.consume(t);
    expect(selector.depth).toBe(1);
    expect(metric('scorecar_sampler_dropped_traces_total', { experiment: 'exp', reason: 'queue_full' })).toBe(2);
  });

  it('a job the next stage refuses is its to count; the others still go on', () => {
    const { registry, out, selector, runSlice } = setup();
    registry.set([scorer('exp', 's', 1)]);
    out.refuseWith = 'QUEUE_FULL';
    for (const t of traces(2, 'exp')) selector.consume(t);
    while (runSlice()) {}
    expect(out.refused).toBe(2);
    out.refuseWith = undefined;
    for (const t of traces(2, 'exp')) selector.consume(t);
    while (runSlice()) {}
    expect(out.items.length).toBe(2);
  });

  it('shutdown builds what waits, then drops (counted) what came too late', async () => {
    const { registry, out, selector, metric } = setup();
    registry.set([scorer('exp', 's', 1)]);
    for (const t of traces(12, 'exp')) selector.consume(t);
    await selector.shutdown(Date.now() + 60_000);
    expect(out.items.length).toBe(12);
    selector.consume(traces(1, 'exp')[0]!);
    expect(metric('scorecar_sampler_dropped_traces_total', { experiment: 'exp', reason: 'shutdown' })).toBe(1);
    await selector.whenIdle();
  });
});

describe('select stage: which traces are worth buffering', () => {
  const resource = (experiment: string): ResourceRef => {
    const [t] = traces(1, experiment);
    return t!.resources[0]!;
  };

  it('nothing without active scorers; per experiment, exactly the ids below its highest rate', () => {
    const { registry, selector } = setup();
    const exp = resource('exp');
    const other = resource('other');
    const ids = Array.from({ length: 2000 }, () => randomBytes(16).toString('hex'));
    expect(ids.some((id) => selector.wants(idBytes(id), 0, exp))).toBe(false);
    registry.set([scorer('exp', 'a', 0.05), scorer('exp', 'b', 0.2, "trace.name = 'x'")]);
    for (const id of ids) {
      expect(selector.wants(idBytes(id), 0, exp)).toBe(isSelected(id, 0.2, SALT));
      expect(selector.wants(idBytes(id), 0, other)).toBe(false);
    }
    const kept = ids.filter((id) => selector.wants(idBytes(id), 0, exp)).length;
    expect(kept).toBeGreaterThan(2000 * 0.2 - 4 * Math.sqrt(2000 * 0.2 * 0.8));
    expect(kept).toBeLessThan(2000 * 0.2 + 4 * Math.sqrt(2000 * 0.2 * 0.8));
    // A registry change applies to the next trace.
    registry.set([scorer('other', 'c', 1)]);
    expect(selector.wants(idBytes(ids[0]!), 0, other)).toBe(true);
    expect(ids.some((id) => selector.wants(idBytes(id), 0, exp))).toBe(false);
  });

  it('with a span: rule first, the experiment is not known yet: the highest rate of any experiment applies', () => {
    const { registry, selector } = setup({ resolution: ['span:mlflow.experimentId', 'resource:mlflow.experimentId'] });
    registry.set([scorer('a', 's', 0.1), scorer('b', 's', 0.3)]);
    const r = resource('a');
    for (let i = 0; i < 500; i++) {
      const id = randomBytes(16).toString('hex');
      expect(selector.wants(idBytes(id), 0, r)).toBe(isSelected(id, 0.3, SALT));
    }
  });
});
