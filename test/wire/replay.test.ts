// A crash and a replay, with real processes: `scorecar start` scores traces, its assessments
// reach a capture downstream and its store, then it is killed with SIGKILL (no shutdown, no
// flush). A new `scorecar start` on the same storage dir receives the same traces again (as
// senders retry after an outage): their assessments have the same deterministic ids, the store
// already holds them, so they are not sent downstream a second time nor counted again. Every
// assessment reaches downstream exactly once.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { decodeSpan, jsonToProtobuf, protobufToJson } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { type ChildScorecar, scrape, startChild } from '../support/child.ts';
import { waitFor } from '../support/scorecar.ts';

const EXP = 'replay';
const N = 40;

interface Trace {
  traceId: string;
  spanId: string;
  output: string;
}

const makeTraces = (n: number, tag: string): Trace[] =>
  Array.from({ length: n }, (_, i) => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), output: `${tag} answer ${i}` }));

async function send(url: string, traces: readonly Trace[]): Promise<void> {
  const spans = traces.map((t) => ({
    traceId: t.traceId,
    spanId: t.spanId,
    name: 'root',
    startTimeUnixNano: '1',
    endTimeUnixNano: '2',
    attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: JSON.stringify(t.output) } }],
  }));
  const body = jsonToProtobuf(
    'traces',
    JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: EXP } }] }, scopeSpans: [{ spans }] }] }),
  );
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
  expect(res.status).toBe(200);
}

/** How many times each assessment id reached the capture, as a log event and as an evaluation span. */
function downstream(capture: CaptureServer): { logs: Map<string, number>; spans: Map<string, number> } {
  const logs = new Map<string, number>();
  const spans = new Map<string, number>();
  const bump = (m: Map<string, number>, id: string) => m.set(id, (m.get(id) ?? 0) + 1);
  for (const r of capture.requests) {
    if (r.signal === 'logs') {
      const json = protobufToJson('logs', r.body) as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ eventName?: string; attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
      for (const rl of json.resourceLogs) {
        for (const sl of rl.scopeLogs) {
          for (const lr of sl.logRecords) {
            if (lr.eventName !== 'gen_ai.evaluation.result') continue;
            bump(logs, String(lr.attributes.find((a) => a.key === 'scorecar.assessment_id')?.value.stringValue));
          }
        }
      }
    } else if (r.signal === 'traces') {
      for (const t of tracesFromRequest(r.body)) {
        t.spans.forEach((s, i) => {
          const d = decodeSpan(s, t.resources[i]!, t.scopes[i]!);
          if (d.name.startsWith('evaluation ')) bump(spans, String(d.attributes['scorecar.assessment_id']));
        });
      }
    }
  }
  return { logs, spans };
}

/** The stored assessment ids of a trace (GET /api/v1/traces/{id}); [] when none. */
async function stored(adminUrl: string, traceId: string): Promise<string[]> {
  const res = await fetch(`${adminUrl}/api/v1/traces/${traceId}`);
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { assessments: Array<{ assessmentId: string }> }).assessments.map((a) => a.assessmentId);
}

function exited(child: ChildScorecar): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.proc.once('exit', () => r()));
}

describe('kill -9, restart on the same storage, replay', () => {
  const children: ChildScorecar[] = [];
  let capture: CaptureServer | undefined;
  afterAll(async () => {
    for (const c of children) c.kill();
    await capture?.close();
  });

  it('sends every assessment downstream once, and counts the replayed ones as duplicates', async () => {
    capture = await startHttpCapture();
    // One export request at a time: what the capture holds is in the order it was sent, so the
    // marker's arrival (below) proves everything sent before it has arrived.
    const yaml = `exporters: {otlp: {endpoint: "${capture.url}", queue: {concurrency: 1}}}
assembler: {settleMs: 20}
scorers:
  - {experiment: ${EXP}, name: answer_length, definition: {type: code, source: "(ctx) => String(ctx.outputs).length"}, sampleRate: 1}
`;
    const first = await startChild(yaml);
    children.push(first);
    const traces = makeTraces(N, 'first');
    await send(first.httpUrl, traces);

    // Scored, stored and delivered: then the crash.
    const ids = new Map<string, string>(); // traceId -> assessmentId
    await waitFor(
      async () => {
        for (const t of traces) {
          if (ids.has(t.traceId)) continue;
          const s = await stored(first.adminUrl, t.traceId);
          if (s.length === 0) return false;
          ids.set(t.traceId, s[0]!);
        }
        const d = downstream(capture!);
        return [...ids.values()].every((id) => d.logs.get(id) === 1 && d.spans.get(id) === 1);
      },
      60_000,
      'assessments stored and delivered by the first process',
    );
    first.proc.kill('SIGKILL');
    await exited(first);
    expect(first.proc.signalCode).toBe('SIGKILL');

    // The same storage dir, the same traces again.
    const second = await startChild(yaml, { SCORECAR_STORAGE__DIR: first.dir });
    children.push(second);
    await send(second.httpUrl, traces);
    // Every replayed trace scored (the job finished and its assessments went to the emitter)...
    await waitFor(
      async () => (await scrape(second.adminUrl, 'scorecar_scoring_job_seconds_count', { experiment: EXP })) >= N,
      60_000,
      'the replayed traces to be scored',
    );
    // ...then a new trace: once its assessment is downstream, anything the replay was going to
    // send is downstream too (the emitter flushes in order and the exporter sends one at a time).
    const [marker] = makeTraces(1, 'marker');
    await send(second.httpUrl, [marker!]);
    let markerId = '';
    await waitFor(
      async () => {
        markerId = (await stored(second.adminUrl, marker!.traceId))[0] ?? '';
        if (!markerId) return false;
        const d = downstream(capture!);
        return d.logs.get(markerId) === 1 && d.spans.get(markerId) === 1;
      },
      60_000,
      'the marker assessment downstream',
    );

    const d = downstream(capture);
    for (const [traceId, id] of ids) {
      expect(d.logs.get(id), `log event of ${traceId}`).toBe(1);
      expect(d.spans.get(id), `evaluation span of ${traceId}`).toBe(1);
      // Still the one stored by the first process (not replaced by the re-score).
      expect(await stored(second.adminUrl, traceId)).toEqual([id]);
    }
    expect([...d.logs.values()].reduce((a, b) => a + b, 0)).toBe(N + 1);
    expect([...d.spans.values()].reduce((a, b) => a + b, 0)).toBe(N + 1);
    // Metrics of the second process: the marker is new, the replayed ones are duplicates.
    expect(await scrape(second.adminUrl, 'scorecar_assessments_total', { experiment: EXP })).toBe(1);
    expect(await scrape(second.adminUrl, 'scorecar_assessments_duplicate_total', { experiment: EXP, scorer: 'answer_length' })).toBe(N);
    expect(await second.terminate()).toBe(0);
  }, 180_000);
});
