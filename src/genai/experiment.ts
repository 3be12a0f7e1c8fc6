// Which experiment a trace belongs to. Resolution rules are tried in order, first hit wins:
//   resource:<attr>  a resource attribute (first resource of the trace that has it)
//   header:<name>    a request header; only x-mlflow-experiment-id is captured by the receivers,
//                    into ResourceRef.experimentHeader
//   span:<attr>      an attribute of the root span (MLflow's JSON-encoded strings are unquoted)
// Default order (DESIGN.md, config experiments.resolution): resource:mlflow.experimentId,
// header:x-mlflow-experiment-id, resource:service.name; else the configured default.
// Cheap by design: resources are decoded once per distinct ResourceRef (decode.ts caches them),
// and spans are read only when a span: rule is reached, and then only the root span's ids, start
// time and the attributes the span: rules name (found by a scan of each span's bytes for a
// parent id): never a full decode on the completion edge.
import type { CompleteTrace } from '../assembly/index.ts';
import {
  type AttrValue,
  DEFAULT_VIEW_LIMITS,
  decodeResource,
  decodeSpanHead,
  type ResourceRef,
  type SpanData,
  type SpanHead,
  type ViewLimits,
} from '../wire/index.ts';
import { unquote } from './values.ts';

export const MLFLOW_EXPERIMENT_HEADER = 'x-mlflow-experiment-id';

function text(v: AttrValue | undefined): string | undefined {
  if (typeof v === 'string') {
    const s = unquote(v).trim();
    return s === '' ? undefined : s;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let mult = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return [-1, -1];
    const b = buf[pos++]!;
    result += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return [result, pos];
    mult *= 128;
  }
  return [-1, -1];
}

/**
 * Whether an encoded Span has a non-empty, non-zero parent_span_id (field 4). Malformed bytes
 * count as "has a parent", so they never win the root election.
 */
export function encodedSpanHasParent(buf: Uint8Array): boolean {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    if (p1 < 0) return true;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    pos = p1;
    if (wire === 0) {
      const [, p2] = readVarint(buf, pos);
      if (p2 < 0) return true;
      pos = p2;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      if (p2 < 0 || p2 + len > buf.length) return true;
      if (field === 4) {
        for (let i = p2; i < p2 + len; i++) if (buf[i] !== 0) return true;
        return false;
      }
      pos = p2 + len;
    } else return true;
  }
  return false;
}

/**
 * The root span of an undecoded trace, chosen as buildTraceView chooses it: the earliest-starting
 * parentless span; without one, the earliest-starting span whose parent is missing, else the
 * earliest. Only the ids, start times and the attributes `keys` names are read (decodeSpanHead),
 * so this costs one length read per field on the completion edge whatever the spans carry.
 */
function decodeRoot(trace: CompleteTrace, keys: readonly string[], limits: Readonly<ViewLimits>): SpanHead | undefined {
  const earlier = (a: SpanHead, b: SpanHead | undefined) => !b || a.startTimeUnixNano < b.startTimeUnixNano;
  let best: SpanHead | undefined;
  for (let i = 0; i < trace.spans.length; i++) {
    if (encodedSpanHasParent(trace.spans[i]!)) continue;
    const s = decodeSpanHead(trace.spans[i]!, keys, limits);
    if (earlier(s, best)) best = s;
  }
  if (best) return best;
  const all = trace.spans.map((b) => decodeSpanHead(b, keys, limits));
  const ids = new Set(all.map((s) => s.spanId));
  let orphan: SpanHead | undefined;
  for (const s of all) {
    if (!ids.has(s.parentSpanId) && earlier(s, orphan)) orphan = s;
    if (earlier(s, best)) best = s;
  }
  return orphan ?? best;
}

/** A resolution rule split into its kind and attribute/header name; undefined when malformed. */
function parseRule(rule: string): { kind: string; name: string } | undefined {
  const colon = rule.indexOf(':');
  if (colon <= 0 || colon === rule.length - 1) return undefined;
  return { kind: rule.slice(0, colon), name: rule.slice(colon + 1) };
}

/** What a resource: or header: rule reads from these resources (first one that has it). */
function fromResources(kind: string, name: string, refs: Iterable<ResourceRef>): string | undefined {
  if (kind === 'resource') {
    for (const ref of refs) {
      let v: string | undefined;
      try {
        v = text(decodeResource(ref)[name]);
      } catch {
        v = undefined; // an undecodable resource never names an experiment
      }
      if (v !== undefined) return v;
    }
  } else if (kind === 'header' && name.toLowerCase() === MLFLOW_EXPERIMENT_HEADER) {
    for (const ref of refs) {
      const v = ref.experimentHeader?.trim();
      if (v) return v;
    }
  }
  return undefined;
}

/**
 * Resolution with a root-span supplier, so buildTraceView can reuse the root it already decoded.
 * Unknown rule kinds and headers other than x-mlflow-experiment-id never match.
 */
export function resolveExperimentWith(
  trace: CompleteTrace,
  resolution: readonly string[],
  defaultExperiment: string,
  root: () => Pick<SpanData, 'attributes'> | undefined,
): string {
  const distinct = [...new Set(trace.resources)];
  for (const r of resolution) {
    const rule = parseRule(r);
    if (!rule) continue;
    if (rule.kind === 'span') {
      let span: Pick<SpanData, 'attributes'> | undefined;
      try {
        span = root();
      } catch {
        span = undefined;
      }
      const v = span ? text(span.attributes[rule.name]) : undefined;
      if (v !== undefined) return v;
    } else {
      const v = fromResources(rule.kind, rule.name, distinct);
      if (v !== undefined) return v;
    }
  }
  return defaultExperiment;
}

/**
 * The experiment of a completed trace (see the module header for the rules). A `span:` rule
 * decodes root candidates under `limits` (the view limits), so it costs no more than the view.
 */
export function resolveExperiment(
  trace: CompleteTrace,
  resolution: readonly string[],
  defaultExperiment: string,
  limits: Readonly<ViewLimits> = DEFAULT_VIEW_LIMITS,
): string {
  let cached: SpanHead | undefined | null = null;
  return resolveExperimentWith(trace, resolution, defaultExperiment, () => {
    if (cached === null) {
      const keys = resolution.filter((r) => r.startsWith('span:')).map((r) => r.slice('span:'.length));
      cached = decodeRoot(trace, keys, limits);
    }
    return cached;
  });
}

/**
 * The experiment one resource (and its request's header) names, before any span is seen: the
 * rules are tried in order up to the first `span:` rule, which needs the root span; undefined
 * when that rule is reached (the experiment is not known yet). Used to decide, when a trace's
 * first span arrives, whether the trace is worth buffering at all.
 */
export function experimentOfResource(
  ref: ResourceRef,
  resolution: readonly string[],
  defaultExperiment: string,
): string | undefined {
  for (const r of resolution) {
    const rule = parseRule(r);
    if (!rule) continue;
    if (rule.kind === 'span') return undefined;
    const v = fromResources(rule.kind, rule.name, [ref]);
    if (v !== undefined) return v;
  }
  return defaultExperiment;
}
