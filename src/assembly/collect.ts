// Groups the spans of one request by trace, without a buffer or timers: for tests, replays
// and workers that receive whole traces at once.
import {
  type ResourceRef,
  type ScopeRef,
  SPAN_STRIDE,
  scanTraceRequest,
  spanHasParent,
  spanTraceIdOffset,
} from '../wire/index.ts';
import type { CompleteTrace, CompletionReason } from './types.ts';

const copyRange = (buf: Uint8Array, r: { start: number; end: number }): Uint8Array | null =>
  r.start < 0 ? null : Uint8Array.prototype.slice.call(buf, r.start, r.end);

export interface CollectOptions {
  experimentHeader?: string;
  reason?: CompletionReason;
  nowMs?: number;
}

/** Every trace of an ExportTraceServiceRequest, in order of first appearance. */
export function tracesFromRequest(buf: Uint8Array, opts: CollectOptions = {}): CompleteTrace[] {
  const scan = scanTraceRequest(buf);
  const now = opts.nowMs ?? Date.now();
  const byId = new Map<
    string,
    { spans: Uint8Array[]; resources: ResourceRef[]; scopes: ScopeRef[]; hasRoot: boolean; bytes: number }
  >();
  for (const rs of scan.resources) {
    const res: ResourceRef = {
      bytes: copyRange(buf, rs.resource),
      schemaUrl: copyRange(buf, rs.schemaUrl),
      experimentHeader: opts.experimentHeader,
    };
    for (const ss of rs.scopes) {
      const scope: ScopeRef = { bytes: copyRange(buf, ss.scope), schemaUrl: copyRange(buf, ss.schemaUrl) };
      const s = ss.spans;
      for (let i = 0; i < s.length; i += SPAN_STRIDE) {
        const t = spanTraceIdOffset(s, i);
        if (t < 0) continue;
        const id = Buffer.from(buf.buffer, buf.byteOffset + t, 16).toString('hex');
        let entry = byId.get(id);
        if (!entry) {
          entry = { spans: [], resources: [], scopes: [], hasRoot: false, bytes: 0 };
          byId.set(id, entry);
        }
        const span = buf.slice(s[i]!, s[i + 1]!);
        entry.spans.push(span);
        entry.resources.push(res);
        entry.scopes.push(scope);
        entry.bytes += span.length;
        if (!spanHasParent(s, i)) entry.hasRoot = true;
      }
    }
  }
  return [...byId].map(([traceId, e]) => ({
    traceId,
    spans: e.spans,
    resources: e.resources,
    scopes: e.scopes,
    reason: opts.reason ?? 'root',
    hasRoot: e.hasRoot,
    firstSeenMs: now,
    completedMs: now,
    wireBytes: e.bytes,
  }));
}
