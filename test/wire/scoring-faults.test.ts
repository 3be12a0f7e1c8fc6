// Scoring under faults: a judge model failing with 429 / 500 / timeouts for 20 s, code scorers
// that loop, allocate without bound or throw, and a daily judge budget that runs out.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

function traceBody(experiment: string, n: number, answer = (i: number) => `answer ${i}`): { body: Buffer; ids: string[] } {
  const ids: string[] = [];
  const spans = [];
  for (let i = 0; i < n; i++) {
    const traceId = randomBytes(16).toString('hex');
    ids.push(traceId);
    spans.push({
      traceId,
      spanId: randomBytes(8).toString('hex'),
      name: 'chat',
      startTimeUnixNano: '1000000',
      endTimeUnixNano: '2000000',
      attributes: [
        { key: 'mlflow.spanInputs', value: { stringValue: JSON.stringify({ question: `q${i}` }) } },
        { key: 'mlflow.spanOutputs', value: { stringValue: JSON.stringify(answer(i)) } },
      ],
    });
  }
  const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'mlflow.experimentId', value: { stringValue: experiment } }] }, scopeSpans: [{ spans }] }] }));
  return { body, ids };
}

async function send(sc: TestScorecar, body: Buffer): Promise<void> {
  const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
  expect(res.status).toBe(200);
}

function config(model: ModelServer, retry: string, extra: string): string {
  return `assembler: {settleMs: 100}
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "k"}}
  defaultModel: "openai:/judge"
  timeoutMs: 1500
  retry: ${retry}
  sandbox: {timeoutMs: 500, memoryBytes: 16777216}
${extra}`;
}

describe('scoring faults', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('a judge failing for 20 s: retried assessments arrive after recovery, or as errors after the retry budget; runaway code scorers give errors while others flow', async () => {
    const patient = await startModelServer();
    const impatient = await startModelServer();
    cleanup.push(() => patient.close(), () => impatient.close());
    const got = { patient: [] as Assessment[], impatient: [] as Assessment[] };
    const scorers = (exp: string) => `scorers:
  - {experiment: ${exp}, name: judge, definition: {type: builtin, judge: relevance_to_query}, sampleRate: 1.0}
  - {experiment: ${exp}, name: ok_len, definition: {type: code, source: "(ctx) => String(ctx.outputs).length"}, sampleRate: 1.0}
  - {experiment: ${exp}, name: loops, definition: {type: code, source: "(ctx) => { while (true) {} }"}, sampleRate: 0.3}
  - {experiment: ${exp}, name: hogs, definition: {type: code, source: "(ctx) => { const a = []; for (;;) a.push(new Array(1e6).fill(a.length)); }"}, sampleRate: 0.3}
  - {experiment: ${exp}, name: throws, definition: {type: code, source: "(ctx) => { throw new Error('scorer bug ' + ctx.outputs) }"}, sampleRate: 1.0}`;
    const a = await startScorecar(config(patient, '{initialIntervalMs: 300, maxIntervalMs: 2000, maxElapsedMs: 90000}', scorers('f')), { onAssessment: (x) => got.patient.push(x) });
    const b = await startScorecar(config(impatient, '{initialIntervalMs: 200, maxIntervalMs: 500, maxElapsedMs: 3000}', scorers('f')), { onAssessment: (x) => got.impatient.push(x) });
    cleanup.push(() => a.stop(), () => b.stop());

    // 20 s of faults: 429 with Retry-After, then 500s, then responses slower than the timeout.
    const t0 = Date.now();
    const schedule = async (m: ModelServer): Promise<void> => {
      m.setFault({ kind: '429', retryAfterSeconds: 1, durationMs: 7000 });
      await new Promise((r) => setTimeout(r, 7000));
      m.setFault({ kind: '500', durationMs: 7000 });
      await new Promise((r) => setTimeout(r, 7000));
      m.setFault({ kind: 'slow', delayMs: 4000, durationMs: 6000 });
    };
    const faults = Promise.all([schedule(patient), schedule(impatient)]);
    const sent = traceBody('f', 60);
    await send(a, sent.body);
    await send(b, sent.body);
    await faults;
    await waitFor(() => Date.now() - t0 > 20_000, 25_000, 'the end of the fault window');

    const complete = (list: Assessment[]) => {
      const per = new Map<string, number>();
      for (const x of list) per.set(x.scorer.name, (per.get(x.scorer.name) ?? 0) + 1);
      return per;
    };
    const expectedSampled = (name: string, list: Assessment[]) => list.filter((x) => x.scorer.name === name).length;
    await waitFor(() => (complete(got.patient).get('judge') ?? 0) >= 60 && (complete(got.impatient).get('judge') ?? 0) >= 60, 60_000, 'every judge assessment');
    // Every job of both processes done: the lists below are final.
    await Promise.all([a.app.whenIdle(), b.app.whenIdle()]);

    for (const [label, list] of [['patient', got.patient], ['impatient', got.impatient]] as const) {
      // None missing, none duplicated: exactly one assessment per (trace, scorer).
      const keys = list.map((x) => `${x.traceId}/${x.scorer.name}`);
      expect(new Set(keys).size, label).toBe(keys.length);
      const per = complete(list);
      expect(per.get('judge'), label).toBe(60);
      expect(per.get('ok_len'), label).toBe(60);
      expect(per.get('throws'), label).toBe(60);
      expect(new Set(list.filter((x) => x.scorer.name === 'judge').map((x) => x.traceId))).toEqual(new Set(sent.ids));
      // Runaway code scorers: error assessments, and the others kept producing values.
      for (const x of list.filter((y) => y.scorer.name === 'loops')) expect(x.error?.code, 'loops').toBe('TIMEOUT');
      for (const x of list.filter((y) => y.scorer.name === 'hogs')) expect(x.error?.code, 'hogs').toBe('OUT_OF_MEMORY');
      for (const x of list.filter((y) => y.scorer.name === 'throws')) {
        expect(x.error?.code).toBe('CODE_SCORER_ERROR');
        expect(x.error?.message).toMatch(/scorer bug/);
      }
      expect(expectedSampled('loops', list)).toBeGreaterThan(5);
      expect(expectedSampled('hogs', list)).toBeGreaterThan(5);
      for (const x of list.filter((y) => y.scorer.name === 'ok_len')) expect(x.error).toBeUndefined();
    }
    // Patient retry budget: every judge verdict arrived after recovery.
    const pj = got.patient.filter((x) => x.scorer.name === 'judge');
    expect(pj.filter((x) => x.error)).toEqual([]);
    expect(pj.every((x) => x.value === 'yes')).toBe(true);
    expect(pj.some((x) => Number(x.metadata['scorecar.attempts']) > 1)).toBe(true);
    // Impatient retry budget: the ones that ran out of retries are error assessments.
    const ij = got.impatient.filter((x) => x.scorer.name === 'judge');
    expect(ij.filter((x) => x.error).length).toBeGreaterThan(0);
    for (const x of ij.filter((y) => y.error)) expect(['RATE_LIMITED', 'PROVIDER_UNAVAILABLE', 'TIMEOUT']).toContain(x.error!.code);
    expect(await a.metric('scorecar_scoring_jobs_dropped_total')).toBe(0);
    expect(await b.metric('scorecar_scoring_jobs_dropped_total')).toBe(0);
  }, 150_000);

  it('a tiny daily budget stops judge calls once spent, says why, and code scorers keep running', async () => {
    const model = await startModelServer();
    cleanup.push(() => model.close());
    const got: Assessment[] = [];
    const sc = await startScorecar(
      config(
        model,
        '{initialIntervalMs: 100, maxIntervalMs: 200, maxElapsedMs: 1000}',
        `  budgets: {tight: {tokensPerDay: 1500}}
scorers:
  - {experiment: tight, name: judge, definition: {type: builtin, judge: safety}, sampleRate: 1.0}
  - {experiment: tight, name: len, definition: {type: code, source: "(ctx) => String(ctx.outputs).length"}, sampleRate: 1.0}`,
      ),
      { onAssessment: (x) => got.push(x) },
    );
    cleanup.push(() => sc.stop());
    // One trace at a time until the budget is spent.
    let sent = 0;
    while ((await sc.metric('scorecar_scoring_jobs_dropped_total', { reason: 'budget_exhausted' })) === 0) {
      await send(sc, traceBody('tight', 1).body);
      sent++;
      await waitFor(() => got.filter((x) => x.scorer.name === 'len').length === sent, 10_000, 'the code assessment');
      // The judge job (and its usage, which the budget counts) is done too before the next trace.
      await sc.app.whenIdle();
      expect(sent).toBeLessThan(40);
    }
    const callsAtExhaustion = model.stats().requests;
    const judged = got.filter((x) => x.scorer.name === 'judge');
    const tokens = judged.reduce((n, x) => n + Number(x.metadata['scorecar.usage.input_tokens']) + Number(x.metadata['scorecar.usage.output_tokens']), 0);
    expect(tokens).toBeGreaterThanOrEqual(1500);
    // Twenty more traces: no judge call reaches the model, code scorers still score all of them.
    await send(sc, traceBody('tight', 20).body);
    await waitFor(() => got.filter((x) => x.scorer.name === 'len').length === sent + 20, 10_000, 'code assessments after the budget');
    await sc.app.whenIdle(); // every job done: no judge call can still come
    expect(model.stats().requests).toBe(callsAtExhaustion);
    expect(got.filter((x) => x.scorer.name === 'judge')).toHaveLength(judged.length);
    expect(await sc.metric('scorecar_judge_budget_exhausted', { experiment: 'tight' })).toBe(1);
    expect(await sc.metric('scorecar_scoring_jobs_dropped_total', { reason: 'budget_exhausted' })).toBe(21);
    const s = (await (await fetch(`${sc.adminUrl}/api/v1/experiments/tight/scorers/judge`)).json()) as { health?: { state: string; code: string; message: string } };
    expect(s.health).toMatchObject({ state: 'paused', code: 'BUDGET_EXHAUSTED' });
    expect(s.health?.message).toMatch(/daily token budget of 1500 spent/);
  }, 60_000);

  it('an authentication failure is not retried and shows as the scorer health', async () => {
    const model = await startModelServer({ apiKey: 'the-right-key' });
    cleanup.push(() => model.close());
    const got: Assessment[] = [];
    const sc = await startScorecar(
      config(model, '{initialIntervalMs: 100, maxIntervalMs: 200, maxElapsedMs: 5000}', `scorers:
  - {experiment: auth, name: judge, definition: {type: builtin, judge: safety}, sampleRate: 1.0}`).replace('apiKey: "k"', 'apiKey: "wrong"'),
      { onAssessment: (x) => got.push(x) },
    );
    cleanup.push(() => sc.stop());
    await send(sc, traceBody('auth', 3).body);
    await waitFor(() => got.length === 3, 10_000, 'three error assessments');
    expect(got.map((x) => x.error?.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect(model.stats().requests).toBe(3); // one request each: no retries
    const s = (await (await fetch(`${sc.adminUrl}/api/v1/experiments/auth/scorers/judge`)).json()) as { health?: { state: string; code: string } };
    expect(s.health).toMatchObject({ state: 'error', code: 'UNAUTHENTICATED' });
  });
});
