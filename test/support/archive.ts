// Traffic for archive tests: the recorded GenAI fixtures replicated under fresh trace ids and
// shifted in time, sent as OTLP/protobuf, and what scorecar must have archived of each trace (the
// digest test/support/delta_read.py computes from a table).
import { createHash } from 'node:crypto';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { buildTraceView, toJsonSafe } from '../../src/genai/index.ts';
import { jsonToProtobuf, type SpanData } from '../../src/wire/index.ts';
import { ALL_FIXTURES, DEFAULT_VIEW_OPTIONS, loadFixture } from './fixtures.ts';

const KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

const attrs = (a: Record<string, unknown>): [string, string][] =>
  Object.entries(a)
    .map(([k, v]) => [k, JSON.stringify(toJsonSafe(v))] as [string, string])
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));

/** The digest delta_read.py computes over a trace's archived spans, from the spans sent. */
export function spansDigest(spans: readonly SpanData[]): string {
  const h = createHash('sha256');
  const sorted = [...spans].sort((a, b) => (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0));
  for (const s of sorted) {
    const fields = [
      s.spanId,
      s.parentSpanId,
      s.name,
      KINDS[s.kind]!,
      String(s.startTimeUnixNano / 1000n),
      String(s.endTimeUnixNano / 1000n),
      STATUS[s.status.code]!,
      s.status.message,
    ];
    for (const [k, v] of attrs(s.attributes)) fields.push(k, v);
    for (const e of s.events) {
      fields.push(e.name, String(e.timeUnixNano / 1000n));
      for (const [k, v] of attrs(e.attributes)) fields.push(k, v);
    }
    h.update(fields.join('\x1f'), 'utf8');
    h.update('\x1e');
  }
  return h.digest('hex');
}

export interface SentTrace {
  traceId: string;
  digest: string;
  spans: number;
  inputs: unknown;
  outputs: unknown;
}

/** One OTLP request and what it carries. */
export interface Batch {
  body: Buffer;
  traces: SentTrace[];
}

function shiftNs(v: unknown, byNs: bigint): string {
  return String(BigInt(v as string) + byNs);
}

/**
 * `copies` rounds of every recorded fixture: each copy under fresh deterministic trace ids
 * (seeded by `seed`) and shifted by `copy` minutes, `perBatch` copies per request.
 */
export function fixtureBatches(copies: number, perBatch: number, seed = 'archive'): Batch[] {
  const fixtures = ALL_FIXTURES.map((f) => loadFixture(f.convention, f.name));
  const batches: Batch[] = [];
  for (let start = 0; start < copies; start += perBatch) {
    const resourceSpans: unknown[] = [];
    for (let copy = start; copy < Math.min(copies, start + perBatch); copy++) {
      const shift = BigInt(copy) * 60_000_000_000n;
      for (const [fi, fx] of fixtures.entries()) {
        const doc = structuredClone(fx) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
        for (const rs of doc.resourceSpans) {
          for (const ss of rs.scopeSpans) {
            for (const sp of ss.spans) {
              sp.traceId = createHash('sha256').update(`${seed}:${copy}:${fi}:${sp.traceId as string}`).digest('hex').slice(0, 32);
              sp.startTimeUnixNano = shiftNs(sp.startTimeUnixNano, shift);
              sp.endTimeUnixNano = shiftNs(sp.endTimeUnixNano, shift);
              for (const ev of (sp.events as Array<Record<string, unknown>> | undefined) ?? []) {
                if (ev.timeUnixNano !== undefined) ev.timeUnixNano = shiftNs(ev.timeUnixNano, shift);
              }
            }
          }
          resourceSpans.push(rs);
        }
      }
    }
    const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans }));
    const traces = tracesFromRequest(body).map((t) => {
      const view = buildTraceView(t, DEFAULT_VIEW_OPTIONS);
      return { traceId: t.traceId, digest: spansDigest(view.spans), spans: view.spans.length, inputs: view.inputs, outputs: view.outputs };
    });
    batches.push({ body, traces });
  }
  return batches;
}

/** Traces one round of the fixtures holds. */
export function tracesPerCopy(): number {
  return fixtureBatches(1, 1)[0]!.traces.length;
}

/** POSTs a batch to scorecar's OTLP/HTTP receiver under an experiment header; retries 429/503. */
export async function sendBatch(httpUrl: string, body: Buffer, experiment: string): Promise<void> {
  const giveUp = Date.now() + 180_000;
  for (;;) {
    const res = await fetch(`${httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'x-mlflow-experiment-id': experiment },
      body,
    });
    await res.arrayBuffer();
    if (res.status === 200) return;
    // Refused for capacity (the archive catching up): retry, as an OTel SDK would.
    if ((res.status === 429 || res.status === 503) && Date.now() < giveUp) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    throw new Error(`OTLP export answered ${res.status}`);
  }
}
