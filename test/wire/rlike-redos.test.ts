// Issue 8 item 3 over the wire: an active scorer's RLIKE filter is the textbook catastrophic
// backtracking pattern, and one sender names a span so that V8's RegExp would need ~2^29 steps
// (~20 s of main thread, during which no receiver answers anyone). With the linear-time matcher
// the pathological trace is simply decided (filtered out), a second sender sending at the same
// time gets every request answered and every trace scored, and the matcher's work — counted in
// steps, never timed — is linear in the length of what it read.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assessment } from '../../src/assessments/index.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const EXPERIMENT = 'redos';
const PATHOLOGICAL = `${'a'.repeat(29)}b`;
const B_TRACES = 40;

function traceJson(traceId: string, name: string): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'mlflow.experimentId', value: { stringValue: EXPERIMENT } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId,
                spanId: randomBytes(8).toString('hex'),
                name,
                startTimeUnixNano: '1',
                endTimeUnixNano: '2',
                attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: '"ok"' } }],
              },
            ],
          },
        ],
      },
    ],
  });
}

describe('RLIKE on sender-controlled span names', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;
  const assessments: Assessment[] = [];

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}
assembler: {settleMs: 50}
scorers:
  - experiment: ${EXPERIMENT}
    name: only_as
    definition: {type: code, source: "(ctx) => 1"}
    sampleRate: 1.0
    filterString: "span.name RLIKE '^(a+)+$'"
`,
      { onAssessment: (a) => assessments.push(a) },
    );
  }, 60_000);
  afterAll(async () => {
    await sc?.stop();
    await capture?.close();
  });

  it('decides the pathological trace while a second sender is served and scored', async () => {
    const badId = randomBytes(16).toString('hex');
    // Sender A: one trace whose span name makes ^(a+)+$ backtrack exponentially (OTLP protobuf).
    const senderA = async (): Promise<number> => {
      const body = jsonToProtobuf('traces', traceJson(badId, PATHOLOGICAL));
      const res = await fetch(`${sc.httpUrl}/v1/traces`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-protobuf' },
      });
      return res.status;
    };
    // Sender B, at the same time: ordinary traces one request after another (OTLP JSON), with
    // span names the filter selects ('a', 'aa', ...), so the same matcher decides them too.
    const goodIds: string[] = [];
    const senderB = async (): Promise<number[]> => {
      const statuses: number[] = [];
      for (let k = 1; k <= B_TRACES; k++) {
        const id = randomBytes(16).toString('hex');
        goodIds.push(id);
        const res = await fetch(`${sc.httpUrl}/v1/traces`, {
          method: 'POST',
          body: traceJson(id, 'a'.repeat(k)),
          headers: { 'content-type': 'application/json' },
        });
        statuses.push(res.status);
      }
      return statuses;
    };
    const [statusA, statusesB] = await Promise.all([senderA(), senderB()]);
    expect(statusA).toBe(200);
    expect(statusesB).toEqual(new Array(B_TRACES).fill(200));

    // Every trace of sender B scored; the pathological one decided: filtered out, not scored.
    const filtered = () =>
      sc.metric('scorecar_sampler_filtered_out_total', { experiment: EXPERIMENT, scorer: 'only_as' });
    await waitFor(
      async () => assessments.length >= B_TRACES && (await filtered()) === 1,
      30_000,
      "sender B's traces scored and the pathological trace decided",
    );
    await sc.app.whenIdle();
    expect(new Set(assessments.map((a) => a.traceId))).toEqual(new Set(goodIds));
    expect(assessments).toHaveLength(B_TRACES);
    expect(
      await sc.metric('scorecar_sampler_selected_total', { experiment: EXPERIMENT, scorer: 'only_as' }),
    ).toBe(B_TRACES);
    expect(await filtered()).toBe(1);
    // Spans pass through untouched whatever the filters decide, the pathological one included.
    await waitFor(
      async () =>
        (await sc.metric('scorecar_exporter_sent_items_total', { signal: 'traces' })) >= B_TRACES + 1,
      30_000,
      'every span forwarded',
    );

    // The work the running scorer's matcher did for all of it: linear in what it read. After its
    // few DFA states are built, ^(a+)+$ costs one step per character; backtracking would have
    // taken ~2^29 steps for the pathological name alone.
    const scorer = sc.app.registry.activeFor(EXPERIMENT).find((s) => s.name === 'only_as')!;
    const chars = PATHOLOGICAL.length + (B_TRACES * (B_TRACES + 1)) / 2;
    const steps = scorer.filter!.regexSteps();
    expect(steps).toBeGreaterThanOrEqual(chars); // it read every character of every name
    expect(steps).toBeLessThanOrEqual(chars + 2 * (B_TRACES + 1) + 200);
  }, 90_000);

  it('refuses, at registration, a pattern the matcher cannot run in linear time, at its position', async () => {
    const base = `${sc.adminUrl}/api/v1/experiments/${EXPERIMENT}/scorers`;
    const reg = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'repeated', definition: { type: 'code', source: '(ctx) => 1' } }),
    });
    expect(reg.status).toBe(201);
    const filterString = "span.name RLIKE '^(a+)\\1$'"; // a backreference
    const res = await fetch(`${base}/repeated/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sampleRate: 1, filterString }),
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as {
      error: { code: string; message: string; details: { position: number } };
    };
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.details.position).toBe(filterString.indexOf('\\1'));
    expect(error.message).toContain('backreferences are not supported');
    // Nothing changed: the scorer is not active, so no trace is filtered through that pattern.
    expect(sc.app.registry.activeFor(EXPERIMENT).map((s) => s.name)).toEqual(['only_as']);
  });
});
