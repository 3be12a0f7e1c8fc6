// GenAI traces for the Kafka tests and the bench: deterministic ids, an MLflow-tagged root span
// carrying inputs and outputs (every 4th answer carries the word the local model server judges
// as failing the guideline), one child span; sent over OTLP/HTTP in requests of `perRequest`.
import { createHash } from 'node:crypto';
import { isSelected } from '../../src/select/index.ts';
import { kv, type RawSpan, sv, traceRequest } from './protowrite.ts';

export const SALT = 'scorecar/sampling/v1';

export interface TestTrace {
  i: number;
  traceId: string;
  rootSpanId: string;
}

const id = (seed: string, bytes: number): Buffer =>
  createHash('sha256').update(seed).digest().subarray(0, bytes);

export function makeTraces(n: number, seed = 'kafka'): TestTrace[] {
  return Array.from({ length: n }, (_, i) => ({
    i,
    traceId: id(`${seed}/trace/${i}`, 16).toString('hex'),
    rootSpanId: id(`${seed}/root/${i}`, 8).toString('hex'),
  }));
}

export function answerOf(i: number): string {
  return i % 4 === 0 ? `WRONG answer ${i}` : `answer number ${i}`;
}

export function requestOf(experiment: string, traces: readonly TestTrace[]): Buffer {
  const spans: RawSpan[] = [];
  for (const t of traces) {
    const traceId = Buffer.from(t.traceId, 'hex');
    const root = Buffer.from(t.rootSpanId, 'hex');
    spans.push({
      traceId,
      spanId: root,
      name: 'chat',
      attributes: [
        kv('mlflow.spanInputs', sv(JSON.stringify({ question: `question ${t.i}` }))),
        kv('mlflow.spanOutputs', sv(JSON.stringify(answerOf(t.i)))),
      ],
    });
    spans.push({
      traceId,
      spanId: id(`child/${t.traceId}`, 8),
      parentSpanId: root,
      name: 'llm',
      attributes: [kv('gen_ai.system', sv('openai'))],
    });
  }
  return traceRequest(experiment, spans);
}

/** Sends the traces to an OTLP/HTTP endpoint, retrying what scorecar asks to be retried. */
export async function sendTraces(
  httpUrl: string,
  experiment: string,
  traces: readonly TestTrace[],
  perRequest = 100,
): Promise<void> {
  for (let i = 0; i < traces.length; i += perRequest) {
    const body = requestOf(experiment, traces.slice(i, i + perRequest));
    for (;;) {
      const r = await fetch(`${httpUrl}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body,
      });
      await r.arrayBuffer();
      if (r.status === 200) break;
      if (r.status !== 429 && r.status !== 503) throw new Error(`OTLP/HTTP answered ${r.status}`);
      await new Promise((res) => setTimeout(res, Number(r.headers.get('retry-after') ?? 1) * 1000));
    }
  }
}

/** The (trace, scorer) pairs a code scorer at 1.0 and a judge at `judgeRate` must yield. */
export function expectedPairs(
  traces: readonly TestTrace[],
  code: string,
  judge: string,
  judgeRate: number,
): Set<string> {
  const out = new Set<string>();
  for (const t of traces) {
    out.add(`${t.traceId}/${code}`);
    if (isSelected(t.traceId, judgeRate, SALT)) out.add(`${t.traceId}/${judge}`);
  }
  return out;
}
