// Hostile but legal spans over the wire (issue 8 items 1 and 8).
//
// 1. One span with 300,000 attributes (~4.5 MiB) in a sampled trace: its GenAI view is built
//    within the view limits (genai.viewLimits) — the decoded values are counted and stay under
//    the limits, whatever the input — what was cut is counted, the trace is still scored (the
//    scorer sees the cut view and its markers), a second sender's requests keep completing and
//    their traces keep being scored while the hostile one is handled, and the process's peak
//    RSS stays bounded (a real scorecar process).
// 2. A root span with an attribute nested 100 kvlist levels deep (legal OTLP): the span is
//    decoded with the too-deep part replaced by a marker and counted, never dropped, so the
//    trace is scored on its real root span.
//
// Requests are encoded by hand (support/protowrite.ts): protobufjs refuses to encode messages
// nested past 100 levels, and building 300,000 attribute objects for it would dominate the test.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assessment } from '../../src/assessments/index.ts';
import { DEFAULT_VIEW_LIMITS, DEPTH_MARKER } from '../../src/wire/index.ts';
import { type ChildScorecar, scrape, startChild } from '../support/child.ts';
import { kv, nestedKvlist, traceRequest as request, sv } from '../support/protowrite.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const MiB = 1024 * 1024;

function post(url: string, body: Buffer, agent?: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/traces`,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function assessmentsOf(adminUrl: string, traceId: Buffer): Promise<Assessment[]> {
  const r = await fetch(`${adminUrl}/api/v1/traces/${traceId.toString('hex')}`);
  if (r.status === 404) return [];
  return ((await r.json()) as { assessments: Assessment[] }).assessments;
}

// ------------------------------------------------------------------ 1. 300k attributes

const FILLER = 300_000;

describe('a span with 300,000 attributes', () => {
  let sc: ChildScorecar;
  let baselineRss = 0;

  beforeAll(async () => {
    sc = await startChild(
      `assembler: {settleMs: 200}
logging: {level: warn}
scorers:
  - experiment: hostile
    name: root_view
    definition:
      type: code
      source: "(ctx) => { const r = ctx.trace.rootSpan; return { value: Object.keys(r.attributes).length, metadata: { dropped: r.droppedAttributesCount, truncated: ctx.trace.truncated, outputs: ctx.outputs } }; }"
    sampleRate: 1.0
  - experiment: bystander
    name: answer_length
    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length"}
    sampleRate: 1.0
`,
    );
    baselineRss = sc.rss();
  }, 60_000);
  afterAll(() => sc?.kill());

  it('is viewed within the limits, counted, still scored, and stalls neither the receivers nor memory', async () => {
    // The hostile trace: a root span whose inputs and outputs come first, then 300,000 filler
    // attributes; and a child span.
    const traceId = randomBytes(16);
    const rootId = randomBytes(8);
    const attributes = [kv('mlflow.spanInputs', sv('{"question":"q"}')), kv('mlflow.spanOutputs', sv('"the answer"'))];
    for (let i = 0; i < FILLER; i++) attributes.push(kv(`k${i}`, sv('x')));
    const hostile = request('hostile', [
      { traceId, spanId: rootId, name: 'root', attributes },
      { traceId, spanId: randomBytes(8), parentSpanId: rootId, name: 'llm', attributes: [kv('gen_ai.operation.name', sv('chat'))] },
    ]);
    expect(hostile.length).toBeGreaterThan(4 * MiB);

    // The second sender: one small trace per request, each sent when the previous one was
    // answered, from before the hostile request until its assessment is in.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const bystanders: { traceId: Buffer; afterHostile: boolean }[] = [];
    let hostileAccepted = false;
    let hostileScored = false;
    const statuses: number[] = [];
    const second = (async () => {
      while (!hostileScored) {
        const id = randomBytes(16);
        const body = request('bystander', [
          { traceId: id, spanId: randomBytes(8), name: 'chat', attributes: [kv('mlflow.spanOutputs', sv('"fine"'))] },
        ]);
        const after = hostileAccepted;
        statuses.push(await post(sc.httpUrl, body, agent));
        bystanders.push({ traceId: id, afterHostile: after });
      }
    })();
    await waitFor(() => bystanders.length >= 3, 30_000, 'the second sender to get going');
    // Warm: the sandbox and view workers run once the first trace is scored. Memory is measured
    // from here.
    await waitFor(async () => (await assessmentsOf(sc.adminUrl, bystanders[0]!.traceId)).length === 1, 30_000, 'the first bystander trace to be scored');
    const warmRss = sc.rss();

    expect(await post(sc.httpUrl, hostile)).toBe(200);
    hostileAccepted = true;
    let scored: Assessment[] = [];
    await waitFor(
      async () => {
        scored = await assessmentsOf(sc.adminUrl, traceId);
        return scored.length > 0;
      },
      60_000,
      'the hostile trace to be scored',
    );
    // The second sender keeps going until it has had requests answered after the hostile one
    // was accepted (the hostile trace has been handled by then: it is scored).
    await waitFor(() => bystanders.filter((b) => b.afterHostile).length >= 5, 30_000, 'the second sender after the hostile trace');
    hostileScored = true;
    await second;
    agent.destroy();

    // Every request of the second sender was answered, and its traces, those sent while and
    // after the hostile trace was handled included, are scored.
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const later = bystanders.filter((b) => b.afterHostile);
    await waitFor(
      async () => (await scrape(sc.adminUrl, 'scorecar_assessments_total', { experiment: 'bystander' })) === bystanders.length,
      60_000,
      'every bystander trace to be scored',
    );
    let last: Assessment[] = [];
    await waitFor(
      async () => {
        last = await assessmentsOf(sc.adminUrl, later.at(-1)!.traceId);
        return last.length > 0;
      },
      30_000,
      'the last bystander assessment in the store',
    );
    expect(last.map((a) => a.value)).toEqual([4]);

    // The hostile trace is scored on its root span, on a view cut to the limits.
    const limit = DEFAULT_VIEW_LIMITS.attributeCount;
    expect(scored).toHaveLength(1);
    const a = scored[0]!;
    expect(a.error).toBeUndefined();
    expect(a.spanId).toBe(rootId.toString('hex'));
    expect(a.value).toBe(limit);
    expect(a.metadata.outputs).toBe('the answer');
    expect(Number(a.metadata.dropped)).toBe(FILLER + 2 - limit);
    expect(JSON.parse(a.metadata.truncated!)).toMatchObject({ attributes: FILLER + 2 - limit, spans: 0, depth: 0 });

    // The work done for its view, in counts: values decoded stay within the limit (the root's
    // kept attributes and the child's one), whatever the input held; the cut is counted.
    const values = await scrape(sc.adminUrl, 'scorecar_sampler_view_values_total', { experiment: 'hostile' });
    expect(values).toBeGreaterThan(0);
    expect(values).toBeLessThanOrEqual(limit + 1);
    expect(await scrape(sc.adminUrl, 'scorecar_sampler_view_items_cut_total', { experiment: 'hostile', item: 'attributes' })).toBe(FILLER + 2 - limit);
    expect(await scrape(sc.adminUrl, 'scorecar_sampler_views_truncated_total', { experiment: 'hostile' })).toBe(1);
    expect(await scrape(sc.adminUrl, 'scorecar_sampler_views_truncated_total', { experiment: 'bystander' })).toBe(0);

    // Memory: the request, its buffering and its copy for the view worker, and a view of 1,024
    // attributes — not 300,000 decoded ones (peak RSS 600 MiB over the start before the limits).
    const peak = sc.peakRss();
    console.log(
      `hostile span: ${(hostile.length / MiB).toFixed(1)} MiB, ${values} values decoded, ${later.length} second-sender requests answered after it; RSS ${(baselineRss / MiB).toFixed(0)} MiB at start, ${(warmRss / MiB).toFixed(0)} MiB warm, peak ${(peak / MiB).toFixed(0)} MiB`,
    );
    expect(peak - warmRss).toBeLessThan(100 * MiB);
  }, 180_000);
});

// ------------------------------------------------------------------ 8. deep nesting

describe('a root span with an attribute nested 100 levels deep', () => {
  let sc: TestScorecar;
  const assessments: Assessment[] = [];

  beforeAll(async () => {
    sc = await startScorecar(
      `assembler: {settleMs: 100}
scorers:
  - experiment: deep
    name: deepest
    definition:
      type: code
      source: "(ctx) => { let v = ctx.trace.rootSpan.attributes.deep; let n = 0; while (v !== null && typeof v === 'object') { v = Object.values(v)[0]; n++; } return { value: n, rationale: String(v), metadata: { outputs: ctx.outputs } }; }"
    sampleRate: 1.0
`,
      { onAssessment: (a) => assessments.push(a) },
    );
  }, 60_000);
  afterAll(() => sc?.stop());

  it('is scored on its root span, the too-deep part replaced by a marker and counted', async () => {
    const traceId = randomBytes(16);
    const rootId = randomBytes(8);
    const childId = randomBytes(8);
    const body = request('deep', [
      {
        traceId,
        spanId: rootId,
        name: 'agent',
        attributes: [kv('mlflow.spanOutputs', sv('"root answer"')), kv('deep', nestedKvlist(100))],
      },
      { traceId, spanId: childId, parentSpanId: rootId, name: 'llm', attributes: [kv('mlflow.spanOutputs', sv('"child answer"'))] },
    ]);
    expect(await post(sc.httpUrl, body)).toBe(200);
    await waitFor(() => assessments.length > 0, 30_000, 'the assessment');
    await sc.app.whenIdle();

    expect(assessments).toHaveLength(1);
    const a = assessments[0]!;
    expect(a.error).toBeUndefined();
    expect(a.traceId).toBe(traceId.toString('hex'));
    // The root span, not its child promoted for want of a decodable root.
    expect(a.spanId).toBe(rootId.toString('hex'));
    expect(a.metadata.outputs).toBe('root answer');
    // valueDepth levels of maps kept, then the marker.
    expect(a.value).toBe(DEFAULT_VIEW_LIMITS.valueDepth);
    expect(a.rationale).toBe(DEPTH_MARKER);
    expect(await sc.metric('scorecar_sampler_view_items_cut_total', { experiment: 'deep', item: 'depth' })).toBe(1);
    expect(await sc.metric('scorecar_sampler_views_truncated_total', { experiment: 'deep' })).toBe(1);
  }, 60_000);
});
