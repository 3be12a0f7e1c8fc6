// A view worker thread (view-workers.ts is the host side): builds the GenAI views of the traces
// it is sent, under the view limits, and sends each view back with what its decode did (values
// decoded, items cut) and, when a code scorer that reads ctx.trace will score it, its ctx.trace
// text. Nothing here touches the event loop of the receivers.
import { parentPort, workerData } from 'node:worker_threads';
import type { CompleteTrace } from '../assembly/index.ts';
import { buildTraceView, traceViewJsonText } from '../genai/index.ts';
import { isScorecarError } from '../util/index.ts';
import { type ResourceRef, type ScopeRef, ViewDecoder } from '../wire/index.ts';
import type { ViewBatch, ViewBatchResult, ViewOutcome, ViewThreadInit } from './view-workers.ts';

const init = workerData as ViewThreadInit;

function build(batch: ViewBatch): ViewOutcome[] {
  const bytes = new Uint8Array(batch.buf);
  const piece = (off: number, len: number): Uint8Array => bytes.subarray(off, off + len);
  const resources: ResourceRef[] = batch.resources.map((r) => ({
    bytes: r.off < 0 ? null : piece(r.off, r.len),
    schemaUrl: null,
    experimentHeader: r.experimentHeader,
  }));
  const scopes: ScopeRef[] = batch.scopes.map((s) => ({ bytes: s.off < 0 ? null : piece(s.off, s.len), schemaUrl: null }));
  return batch.traces.map((t): ViewOutcome => {
    const spans: Uint8Array[] = [];
    for (let i = 0; i < t.spans.length; i += 2) spans.push(piece(t.spans[i]!, t.spans[i + 1]!));
    const logs: Uint8Array[] = [];
    for (let i = 0; i < t.logs.length; i += 2) logs.push(piece(t.logs[i]!, t.logs[i + 1]!));
    const trace: CompleteTrace = {
      traceId: t.traceId,
      spans,
      resources: t.spanResources.map((i) => resources[i]!),
      scopes: t.spanScopes.map((i) => scopes[i]!),
      logs,
      logResources: t.logResources.map((i) => resources[i]!),
      logScopes: t.logScopes.map((i) => scopes[i]!),
      reason: t.reason,
      hasRoot: t.hasRoot,
      firstSeenMs: t.firstSeenMs,
      completedMs: t.completedMs,
      wireBytes: t.wireBytes,
    };
    const dec = new ViewDecoder(init.limits);
    try {
      const view = buildTraceView(trace, { resolution: init.resolution, defaultExperiment: init.defaultExperiment }, dec);
      const traceJson = t.withJson ? traceViewJsonText(view) : undefined;
      return { ok: true, view, traceJson, values: dec.work.values, cuts: { ...dec.cuts } };
    } catch (e) {
      return {
        ok: false,
        code: isScorecarError(e) ? e.code : 'INTERNAL',
        message: e instanceof Error ? e.message : String(e),
      };
    }
  });
}

const port = parentPort;
if (port) {
  port.on('message', (batch: ViewBatch) => {
    const result: ViewBatchResult = { id: batch.id, outcomes: build(batch) };
    port.postMessage(result);
  });
}
