// The pieces a buffered span is kept as: its own encoded bytes plus shared references to the
// encoded Resource and InstrumentationScope it arrived under. Requests are rebuilt from these
// pieces by re-framing, never by re-encoding span contents.
import { lenFieldSize, type ScanResult, SPAN_STRIDE, spanTraceIdOffset, writeLenHeader } from './scan.ts';

export interface ResourceRef {
  /** Encoded Resource message (without its field header), or null when the request had none. */
  readonly bytes: Uint8Array | null;
  readonly schemaUrl: Uint8Array | null;
  /** Experiment named by the request's x-mlflow-experiment-id header, if any. */
  readonly experimentHeader: string | undefined;
}

export interface ScopeRef {
  readonly bytes: Uint8Array | null;
  readonly schemaUrl: Uint8Array | null;
}

function sizeOfOptional(b: Uint8Array | null): number {
  return b === null ? 0 : lenFieldSize(b.length);
}

/**
 * Builds an ExportTraceServiceRequest from spans and their parts. Consecutive spans that share
 * the same resource and scope objects go into one ResourceSpans / ScopeSpans, so a trace's spans
 * that arrived together are framed together again.
 */
export function encodeSpans(
  spans: readonly Uint8Array[],
  resources: readonly ResourceRef[],
  scopes: readonly ScopeRef[],
): Buffer {
  // Group runs: resource run -> scope runs -> spans.
  interface ScopeRun {
    scope: ScopeRef;
    from: number;
    to: number;
    size: number;
  }
  interface ResRun {
    res: ResourceRef;
    scopes: ScopeRun[];
    size: number;
  }
  const runs: ResRun[] = [];
  let cur: ResRun | undefined;
  let sc: ScopeRun | undefined;
  for (let i = 0; i < spans.length; i++) {
    const r = resources[i]!;
    const s = scopes[i]!;
    if (cur === undefined || cur.res !== r) {
      cur = { res: r, scopes: [], size: 0 };
      runs.push(cur);
      sc = undefined;
    }
    if (sc === undefined || sc.scope !== s) {
      sc = { scope: s, from: i, to: i, size: 0 };
      cur.scopes.push(sc);
    }
    sc.to = i + 1;
  }
  let total = 0;
  for (const run of runs) {
    let rsize = sizeOfOptional(run.res.bytes) + sizeOfOptional(run.res.schemaUrl);
    for (const s of run.scopes) {
      let ssize = sizeOfOptional(s.scope.bytes) + sizeOfOptional(s.scope.schemaUrl);
      for (let i = s.from; i < s.to; i++) ssize += lenFieldSize(spans[i]!.length);
      s.size = ssize;
      rsize += lenFieldSize(ssize);
    }
    run.size = rsize;
    total += lenFieldSize(rsize);
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  const put = (field: number, b: Uint8Array | null): void => {
    if (b === null) return;
    at = writeLenHeader(out, at, field, b.length);
    out.set(b, at);
    at += b.length;
  };
  for (const run of runs) {
    at = writeLenHeader(out, at, 1, run.size);
    put(1, run.res.bytes);
    for (const s of run.scopes) {
      at = writeLenHeader(out, at, 2, s.size);
      put(1, s.scope.bytes);
      for (let i = s.from; i < s.to; i++) put(2, spans[i]!);
      put(3, s.scope.schemaUrl);
    }
    put(3, run.res.schemaUrl);
  }
  return out;
}

/**
 * Re-frames a scanned request keeping only its valid spans: used when part of a request is
 * refused (partial_success), so the rejected spans are not sent downstream either.
 */
export function withoutRejected(buf: Uint8Array, scan: ScanResult): Buffer {
  const spans: Uint8Array[] = [];
  const resources: ResourceRef[] = [];
  const scopes: ScopeRef[] = [];
  const slice = (r: { start: number; end: number }): Uint8Array | null =>
    r.start < 0 ? null : buf.subarray(r.start, r.end);
  for (const rs of scan.resources) {
    const res: ResourceRef = {
      bytes: slice(rs.resource),
      schemaUrl: slice(rs.schemaUrl),
      experimentHeader: undefined,
    };
    for (const ss of rs.scopes) {
      const scope: ScopeRef = { bytes: slice(ss.scope), schemaUrl: slice(ss.schemaUrl) };
      const s = ss.spans;
      for (let i = 0; i < s.length; i += SPAN_STRIDE) {
        if (spanTraceIdOffset(s, i) < 0) continue;
        spans.push(buf.subarray(s[i]!, s[i + 1]!));
        resources.push(res);
        scopes.push(scope);
      }
    }
  }
  return encodeSpans(spans, resources, scopes);
}
