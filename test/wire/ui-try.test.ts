// "Try before you start" on recent traffic: with admin.ui.recentTraces, the dry run scores the
// newest completed traces of the experiment kept in memory (real traces over OTLP), honours the
// filter and the limit, and emits and stores nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendBatch } from '../support/archive.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';
import { fixturesNow } from '../support/ui.ts';

const EXP = 'recent-app';

describe('dry run on recent traces', () => {
  let sc: TestScorecar;
  let sent: string[] = [];
  const emitted: string[] = [];
  const tryIt = async (body: Record<string, unknown>) => {
    const res = await fetch(`${sc.adminUrl}/api/v1/experiments/${EXP}/scorers:try`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked field by field
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    sc = await startScorecar(
      `
admin: { ui: { recentTraces: 4 } }
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 100, idleTimeoutMs: 1000 }
`,
      { onAssessment: (a) => emitted.push(a.assessmentId) },
    );
    const other = fixturesNow('other');
    await sendBatch(sc.httpUrl, other.body, 'other-app');
    // Completed before ours are sent: the four kept at the end are all of this experiment.
    await sc.app.whenIdle();
    const mine = fixturesNow('recent');
    await sendBatch(sc.httpUrl, mine.body, EXP);
    sent = mine.traceIds;
    await sc.app.whenIdle();
  });

  afterAll(async () => {
    await sc?.stop();
  });

  it("scores the newest of the experiment's kept traces, and emits and stores nothing", async () => {
    expect(sent.length).toBeGreaterThanOrEqual(4);
    const r = await tryIt({ definition: { type: 'code', source: '(ctx) => 1' }, source: 'recent', limit: 3 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.results).toHaveLength(3);
    // Only four traces are kept, the last ones completed: all of this experiment (sent last).
    for (const t of r.body.results) {
      expect(sent).toContain(t.traceId);
      expect(t.assessments).toHaveLength(1);
      expect(t.assessments[0]).toMatchObject({
        value: 1,
        scorer: { name: 'dry_run', version: 0 },
        sampleRate: 1,
      });
    }
    expect((await sc.app.pipeline.store.count())).toBe(0);
    expect(emitted).toEqual([]);
  });

  it('applies the filter string to the kept traces', async () => {
    const none = await tryIt({
      definition: { type: 'code', source: '(ctx) => 1' },
      source: 'recent',
      filterString: "span.name = 'no-such-span'",
    });
    expect(none.status).toBe(200);
    expect(none.body.results).toEqual([]);
  });

  it('scores a registered scorer by name and leaves it registered, not started', async () => {
    await sc.app.registry.register(EXP, 'len', {
      type: 'code',
      source: "(ctx) => String(ctx.outputs ?? '').length",
    });
    const r = await tryIt({ name: 'len', source: 'recent' });
    expect(r.status).toBe(200);
    expect(r.body.results.length).toBe(4);
    expect(r.body.results[0].assessments[0].scorer).toEqual({ name: 'len', version: 1 });
    expect((await sc.app.registry.get(EXP, 'len')).status).toBe('registered');
    expect((await sc.app.pipeline.store.count())).toBe(0);
  });
});
