// Realistic GenAI trace payloads for benchmarks: ~8 spans per trace (a chain root, a retriever,
// an embedding call, LLM calls, tools), ~0.8 KB per span on average, root inputs/outputs of
// 1-2 KB, MLflow/OpenInference-style attributes. Encoded once with protobufjs.
import { randomBytes } from 'node:crypto';
import { otlpType, TYPE } from '../src/wire/index.ts';

const words = 'the a retrieval answer customer order shipping refund policy model context token latency vector'.split(' ');
function text(bytes: number, seed: number): string {
  let s = '';
  let i = seed;
  while (s.length < bytes) {
    i = (i * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[i % words.length]} `;
  }
  return s.slice(0, bytes);
}

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const int = (key: string, v: number) => ({ key, value: { intValue: v } });

export interface PayloadOptions {
  tracesPerRequest: number;
  spansPerTrace?: number;
}

/** One ExportTraceServiceRequest with fresh random ids; returns the bytes and the span count. */
export function makeRequest(opts: PayloadOptions, seed = 1): { body: Buffer; spans: number; traceIds: Buffer[] } {
  const spansPerTrace = opts.spansPerTrace ?? 8;
  const spans: Record<string, unknown>[] = [];
  const traceIds: Buffer[] = [];
  const t0 = BigInt(Date.now()) * 1_000_000n;
  for (let t = 0; t < opts.tracesPerRequest; t++) {
    const traceId = randomBytes(16);
    traceIds.push(traceId);
    const rootId = randomBytes(8);
    const q = text(1200, seed + t);
    const a = text(1500, seed + t + 7);
    spans.push({
      traceId,
      spanId: rootId,
      name: 'chat_pipeline',
      kind: 1,
      startTimeUnixNano: t0,
      endTimeUnixNano: t0 + 2_000_000_000n,
      attributes: [
        str('mlflow.spanType', '"CHAIN"'),
        str('mlflow.spanInputs', JSON.stringify({ question: q })),
        str('mlflow.spanOutputs', JSON.stringify(a)),
        str('session.id', `s-${t % 50}`),
        str('user.id', `u-${t % 97}`),
      ],
      status: { code: 1 },
    });
    for (let s = 1; s < spansPerTrace; s++) {
      const kind = s === 1 ? 'RETRIEVER' : s === 2 ? 'EMBEDDING' : s % 2 ? 'LLM' : 'TOOL';
      spans.push({
        traceId,
        spanId: randomBytes(8),
        parentSpanId: rootId,
        name: kind.toLowerCase(),
        kind: 3,
        startTimeUnixNano: t0 + BigInt(s) * 100_000_000n,
        endTimeUnixNano: t0 + BigInt(s) * 100_000_000n + 50_000_000n,
        attributes: [
          str('openinference.span.kind', kind),
          str('input.value', text(200, seed + s)),
          str('output.value', text(180, seed + s + 3)),
          str('llm.model_name', 'gpt-4.1-mini'),
          int('llm.token_count.prompt', 310 + s),
          int('llm.token_count.completion', 95 + s),
        ],
        status: { code: 0 },
      });
    }
  }
  const req = {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'chat-app'), str('telemetry.sdk.language', 'nodejs'), str('deployment.environment', 'prod')] },
        scopeSpans: [{ scope: { name: 'bench', version: '1.0.0' }, spans }],
      },
    ],
  };
  const type = otlpType(TYPE.traceRequest);
  return { body: Buffer.from(type.encode(type.fromObject(req)).finish()), spans: spans.length, traceIds };
}
