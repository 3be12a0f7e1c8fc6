// Groups the spans of one request by trace, without a buffer or timers: for tests, replays
// and workers that receive whole traces at once. An ExportLogsServiceRequest may come along: its
// records carrying the trace id of one of those traces join it, as the assembler joins them.
import {
  LOG_STRIDE,
  type ResourceRef,
  type ScopeRef,
  SPAN_STRIDE,
  scanLogsRequest,
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
  /**
   * An encoded ExportLogsServiceRequest: its log records join the traces of the span request by
   * trace id (records of other traces, or without one, are left out).
   */
  logs?: Uint8Array;
}

interface Entry {
  spans: Uint8Array[];
  resources: ResourceRef[];
  scopes: ScopeRef[];
  logs: Uint8Array[];
  logResources: ResourceRef[];
  logScopes: ScopeRef[];
  hasRoot: boolean;
  bytes: number;
}

/** Every trace of an ExportTraceServiceRequest, in order of first appearance. */
export function tracesFromRequest(buf: Uint8Array, opts: CollectOptions = {}): CompleteTrace[] {
  const scan = scanTraceRequest(buf);
  const now = opts.nowMs ?? Date.now();
  const byId = new Map<string, Entry>();
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
          entry = { spans: [], resources: [], scopes: [], logs: [], logResources: [], logScopes: [], hasRoot: false, bytes: 0 };
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
  if (opts.logs) joinLogs(opts.logs, byId, opts.experimentHeader);
  return [...byId].map(([traceId, e]) => ({
    traceId,
    spans: e.spans,
    resources: e.resources,
    scopes: e.scopes,
    logs: e.logs,
    logResources: e.logResources,
    logScopes: e.logScopes,
    reason: opts.reason ?? 'root',
    hasRoot: e.hasRoot,
    firstSeenMs: now,
    completedMs: now,
    wireBytes: e.bytes,
  }));
}

function joinLogs(buf: Uint8Array, byId: Map<string, Entry>, experimentHeader: string | undefined): void {
  const scan = scanLogsRequest(buf);
  for (const rl of scan.resources) {
    const res: ResourceRef = {
      bytes: copyRange(buf, rl.resource),
      schemaUrl: copyRange(buf, rl.schemaUrl),
      experimentHeader,
    };
    for (const sl of rl.scopes) {
      const scope: ScopeRef = { bytes: copyRange(buf, sl.scope), schemaUrl: copyRange(buf, sl.schemaUrl) };
      const l = sl.logs;
      for (let i = 0; i < l.length; i += LOG_STRIDE) {
        const t = l[i + 2]!;
        if (t < 0) continue;
        const entry = byId.get(Buffer.from(buf.buffer, buf.byteOffset + t, 16).toString('hex'));
        if (!entry) continue;
        const record = buf.slice(l[i]!, l[i + 1]!);
        entry.logs.push(record);
        entry.logResources.push(res);
        entry.logScopes.push(scope);
        entry.bytes += record.length;
      }
    }
  }
}
