// The bounded view decoder (wire/decode.ts) and the view limits (genai.viewLimits): it decodes
// what protobufjs decodes, item for item; each limit keeps the first items on the wire, skips
// the rest undecoded and counts them (on the view, on each span, as work); the view and its jobs
// are sized by what was decoded; the selection stage builds views on a real view worker thread.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type CompleteTrace, tracesFromRequest } from '../../src/assembly/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { buildTraceView, resolveExperiment, traceViewJson, traceViewJsonText } from '../../src/genai/index.ts';
import { type ActiveScorer, compileFilter, type SelectedJob, TraceSelector } from '../../src/select/index.ts';
import { MetricsRegistry, silentLogger } from '../../src/util/index.ts';
import {
  type AttrValue,
  DEFAULT_VIEW_LIMITS,
  DEPTH_MARKER,
  decodeLogRecord,
  decodeSpan,
  decodeSpanHead,
  otlpType,
  type ResourceRef,
  type ScopeRef,
  TYPE,
  ViewDecoder,
  type ViewLimits,
} from '../../src/wire/index.ts';
import { ld, str, sv } from '../support/protowrite.ts';
import { Sink } from '../support/sink.ts';

const VIEW_OPTS = { resolution: ['resource:service.name'], defaultExperiment: 'default' };
const NO_RESOURCE: ResourceRef = { bytes: null, schemaUrl: null, experimentHeader: undefined };
const NO_SCOPE: ScopeRef = { bytes: null, schemaUrl: null };
const limits = (l: Partial<ViewLimits>): ViewLimits => ({ ...DEFAULT_VIEW_LIMITS, ...l });

// ------------------------------------------------------------------ protobufjs as the reference

type PbValue = Record<string, unknown>;
const spanType = otlpType(TYPE.span);
const logType = otlpType(TYPE.logRecord);
const requestType = otlpType(TYPE.traceRequest);

function encodeSpan(span: Record<string, unknown>): Uint8Array {
  return spanType.encode(spanType.fromObject(span)).finish();
}

/** What the decoder should make of an AnyValue, read from protobufjs's own decode. */
function reference(v: PbValue | undefined | null): AttrValue {
  if (!v) return null;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue as string;
    case 'boolValue':
      return v.boolValue as boolean;
    case 'intValue': {
      const n = v.intValue as number | { toNumber(): number };
      return typeof n === 'number' ? n : n.toNumber();
    }
    case 'doubleValue':
      return v.doubleValue as number;
    case 'bytesValue':
      return new Uint8Array(v.bytesValue as Uint8Array);
    case 'arrayValue':
      return ((v.arrayValue as { values?: PbValue[] }).values ?? []).map(reference);
    case 'kvlistValue':
      return referenceAttrs((v.kvlistValue as { values?: PbValue[] }).values);
    default:
      return null;
  }
}

function referenceAttrs(kvs: PbValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) out[kv.key as string] = reference(kv.value as PbValue);
  return out;
}

const values: Array<[string, PbValue]> = [
  ['s', { stringValue: 'plain' }],
  ['unicode', { stringValue: 'Grüße, 世界 🌍 — and a long tail '.repeat(4) }],
  ['empty', { stringValue: '' }],
  ['t', { boolValue: true }],
  ['f', { boolValue: false }],
  ['zero', { intValue: 0 }],
  ['int', { intValue: 1_234_567_890_123 }],
  ['neg', { intValue: -42 }],
  ['negBig', { intValue: -9_007_199_254_740_991 }],
  ['big', { intValue: '1152921504606846976' }],
  ['dbl', { doubleValue: 3.25 }],
  ['negZero', { doubleValue: -0 }],
  ['inf', { doubleValue: Number.POSITIVE_INFINITY }],
  ['bytes', { bytesValue: Buffer.from([0, 1, 2, 250, 255]) }],
  ['arr', { arrayValue: { values: [{ stringValue: 'a' }, { intValue: 2 }, { arrayValue: { values: [{ boolValue: true }] } }] } }],
  ['map', { kvlistValue: { values: [{ key: 'x', value: { doubleValue: 1.5 } }, { key: 'y', value: { kvlistValue: { values: [{ key: 'z', value: { stringValue: 'deep' } }] } } }] } }],
  ['none', {}],
];

describe('the bounded decoder decodes what protobufjs decodes', () => {
  it('spans: ids, times, names, status, every kind of attribute value, events, links, dropped counts', () => {
    const span = {
      traceId: randomBytes(16),
      spanId: randomBytes(8),
      parentSpanId: randomBytes(8),
      traceState: 'k=v',
      flags: 257,
      name: 'chat gpt-4.1',
      kind: 3,
      startTimeUnixNano: '1700000000123456789',
      endTimeUnixNano: '1700000001000000001',
      attributes: values.map(([key, value]) => ({ key, value })),
      droppedAttributesCount: 2,
      events: [
        { timeUnixNano: '1700000000200000000', name: 'gen_ai.user.message', attributes: [{ key: 'content', value: { stringValue: 'hi' } }], droppedAttributesCount: 1 },
        { name: 'no time' },
      ],
      droppedEventsCount: 3,
      links: [{ traceId: randomBytes(16), spanId: randomBytes(8), attributes: [{ key: 'l', value: { intValue: 7 } }] }],
      droppedLinksCount: 4,
      status: { code: 2, message: 'boom' },
    };
    const bytes = encodeSpan(span);
    const ref = spanType.decode(bytes) as unknown as Record<string, PbValue[] & PbValue>;
    const got = decodeSpan(bytes, NO_RESOURCE, NO_SCOPE);
    expect(got.traceId).toBe(span.traceId.toString('hex'));
    expect(got.spanId).toBe(span.spanId.toString('hex'));
    expect(got.parentSpanId).toBe(span.parentSpanId.toString('hex'));
    expect([got.traceState, got.flags, got.name, got.kind]).toEqual(['k=v', 257, 'chat gpt-4.1', 3]);
    expect(got.startTimeUnixNano).toBe(1700000000123456789n);
    expect(got.endTimeUnixNano).toBe(1700000001000000001n);
    expect(got.startTimeMs).toBeCloseTo(1700000000123.4568, 3);
    expect(got.attributes).toEqual(referenceAttrs(ref.attributes as PbValue[]));
    expect(Object.keys(got.attributes)).toEqual(values.map(([k]) => k));
    expect(got.attributes.negBig).toBe(-9_007_199_254_740_991);
    expect(got.attributes.big).toBe(2 ** 60);
    expect(Object.is(got.attributes.negZero, -0)).toBe(true);
    expect(got.events).toEqual([
      { name: 'gen_ai.user.message', timeUnixNano: 1700000000200000000n, attributes: { content: 'hi' }, droppedAttributesCount: 1 },
      { name: 'no time', timeUnixNano: 0n, attributes: {}, droppedAttributesCount: 0 },
    ]);
    expect(got.links).toEqual([
      { traceId: span.links[0]!.traceId.toString('hex'), spanId: span.links[0]!.spanId.toString('hex'), attributes: { l: 7 }, droppedAttributesCount: 0 },
    ]);
    expect(got.status).toEqual({ code: 2, message: 'boom' });
    expect([got.droppedAttributesCount, got.droppedEventsCount, got.droppedLinksCount]).toEqual([2, 3, 4]);
  });

  it('a zero parent id is no parent; unknown fields are skipped; truncated bytes are an error', () => {
    const bytes = encodeSpan({ traceId: randomBytes(16), spanId: randomBytes(8), parentSpanId: Buffer.alloc(8), name: 'r' });
    // An unknown field (99, a string) appended: skipped, as protobuf readers must.
    const withUnknown = Buffer.concat([bytes, str(99, 'future field')]);
    const s = decodeSpan(withUnknown, NO_RESOURCE, NO_SCOPE);
    expect([s.parentSpanId, s.name]).toEqual(['', 'r']);
    expect(() => decodeSpan(bytes.subarray(0, bytes.length - 1), NO_RESOURCE, NO_SCOPE)).toThrow(/INVALID|past the end|truncated/i);
  });

  it('log records, resources and scopes', () => {
    const rec = {
      timeUnixNano: '1700000000000000001',
      observedTimeUnixNano: '1700000000000000002',
      severityNumber: 9,
      severityText: 'INFO',
      body: { kvlistValue: { values: [{ key: 'content', value: { stringValue: 'hello' } }] } },
      attributes: [{ key: 'event.name', value: { stringValue: 'gen_ai.user.message' } }],
      droppedAttributesCount: 5,
      traceId: randomBytes(16),
      spanId: randomBytes(8),
      eventName: 'gen_ai.user.message',
    };
    const bytes = logType.encode(logType.fromObject(rec)).finish();
    const resource: ResourceRef = {
      bytes: otlpType(TYPE.resource).encode(otlpType(TYPE.resource).fromObject({ attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] })).finish(),
      schemaUrl: null,
      experimentHeader: 'exp-h',
    };
    const scope: ScopeRef = {
      bytes: otlpType(TYPE.scope).encode(otlpType(TYPE.scope).fromObject({ name: 'lib', version: '1.2', attributes: [{ key: 'a', value: { boolValue: true } }] })).finish(),
      schemaUrl: null,
    };
    const got = decodeLogRecord(bytes, resource, scope);
    expect(got).toEqual({
      traceId: rec.traceId.toString('hex'),
      spanId: rec.spanId.toString('hex'),
      timeUnixNano: 1700000000000000001n,
      observedTimeUnixNano: 1700000000000000002n,
      severityNumber: 9,
      severityText: 'INFO',
      eventName: 'gen_ai.user.message',
      body: { content: 'hello' },
      attributes: { 'event.name': 'gen_ai.user.message' },
      resource: { 'service.name': 'svc' },
      scope: { name: 'lib', version: '1.2', attributes: { a: true } },
      droppedAttributesCount: 5,
    });
  });
});

// ------------------------------------------------------------------ limits

function attrs(n: number, prefix = 'k'): Array<{ key: string; value: PbValue }> {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, value: { stringValue: `v${i}` } }));
}

function traceOf(spans: Array<Record<string, unknown>>, resourceAttrs = attrs(0)): CompleteTrace {
  const traceId = randomBytes(16);
  const body = requestType
    .encode(
      requestType.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }, ...resourceAttrs] },
            scopeSpans: [{ scope: { name: 's' }, spans: spans.map((s, i) => ({ traceId, startTimeUnixNano: 1000 + i, endTimeUnixNano: 2000, ...s })) }],
          },
        ],
      }),
    )
    .finish();
  const [t] = tracesFromRequest(Buffer.from(body), { nowMs: 0 });
  return t!;
}

describe('view limits', () => {
  it('attributes, events, links and attributes per event: the first on the wire kept, the rest skipped and counted', () => {
    const span = encodeSpan({
      traceId: randomBytes(16),
      spanId: randomBytes(8),
      name: 's',
      attributes: attrs(10),
      droppedAttributesCount: 2,
      events: Array.from({ length: 5 }, (_, i) => ({ name: `e${i}`, attributes: attrs(4) })),
      links: Array.from({ length: 3 }, () => ({ traceId: randomBytes(16), spanId: randomBytes(8), attributes: attrs(4) })),
    });
    const dec = new ViewDecoder(limits({ attributeCount: 3, eventsPerSpan: 2, linksPerSpan: 1, attributesPerEvent: 1 }));
    const s = dec.span(span, NO_RESOURCE, NO_SCOPE);
    expect(Object.keys(s.attributes)).toEqual(['k0', 'k1', 'k2']);
    expect(s.droppedAttributesCount).toBe(2 + 7);
    expect(s.events.map((e) => [e.name, Object.keys(e.attributes), e.droppedAttributesCount])).toEqual([
      ['e0', ['k0'], 3],
      ['e1', ['k0'], 3],
    ]);
    expect(s.droppedEventsCount).toBe(3);
    expect(s.links.map((l) => [Object.keys(l.attributes), l.droppedAttributesCount])).toEqual([[['k0'], 3]]);
    expect(s.droppedLinksCount).toBe(2);
    expect(dec.cuts).toMatchObject({ attributes: 7 + 2 * 3 + 3, events: 3, links: 2 });
    // Work: 3 span attributes, 2 x 1 event attribute, 1 link attribute.
    expect(dec.work.values).toBe(6);
  });

  it('array items, map entries, nesting depth and value length', () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ intValue: i }));
    let deep: PbValue = { stringValue: 'bottom' };
    for (let i = 0; i < 6; i++) deep = { arrayValue: { values: [deep] } };
    const span = encodeSpan({
      traceId: randomBytes(16),
      spanId: randomBytes(8),
      name: 'é'.repeat(10),
      attributes: [
        { key: 'arr', value: { arrayValue: { values: items(10) } } },
        { key: 'map', value: { kvlistValue: { values: attrs(10) } } },
        { key: 'deep', value: deep },
        { key: 'long', value: { stringValue: 'aé'.repeat(10) } },
        { key: 'bin', value: { bytesValue: Buffer.alloc(10, 7) } },
      ],
    });
    const dec = new ViewDecoder(limits({ arrayItems: 4, valueDepth: 2, attributeValueLength: 5 }));
    const s = dec.span(span, NO_RESOURCE, NO_SCOPE);
    expect(s.attributes.arr).toEqual([0, 1, 2, 3]);
    expect(Object.keys(s.attributes.map as object)).toEqual(['k0', 'k1', 'k2', 'k3']);
    // Two levels of arrays kept, the third replaced by the marker.
    expect(s.attributes.deep).toEqual([[DEPTH_MARKER]]);
    // Cut at 5 bytes, back to a character boundary: 'aé' is 3 bytes, 'aéa' 4, 'aéaé' would be 6.
    expect(s.attributes.long).toBe('aéa');
    expect(s.attributes.bin).toEqual(new Uint8Array(5).fill(7));
    expect(s.name).toBe('éé');
    expect(dec.cuts).toMatchObject({ arrayItems: 12, depth: 1, truncatedValues: 3 });
  });

  it('a value nested past protobufjs’s recursion limit keeps its span, cut at the depth limit', () => {
    let v = sv('bottom');
    for (let i = 0; i < 200; i++) v = ld(6, ld(1, Buffer.concat([str(1, `l${i}`), ld(2, v)])));
    const span = Buffer.concat([ld(1, randomBytes(16)), ld(2, randomBytes(8)), str(5, 'root'), ld(9, str(1, 'deep'), ld(2, v))]);
    expect(() => spanType.decode(span)).toThrow(/max depth/);
    const dec = new ViewDecoder(limits({ valueDepth: 3 }));
    const s = dec.span(span, NO_RESOURCE, NO_SCOPE);
    expect(s.name).toBe('root');
    expect(s.attributes.deep).toEqual({ l199: { l198: { l197: DEPTH_MARKER } } });
    expect(dec.cuts.depth).toBe(1);
  });

  it('the values budget is per trace; spans past spansPerTrace are cut, parentless ones kept first', () => {
    const rootId = randomBytes(8);
    // The root arrives last; five children carry 5 attributes each.
    const children = Array.from({ length: 5 }, (_, i) => ({ spanId: randomBytes(8), parentSpanId: rootId, name: `c${i}`, attributes: attrs(5) }));
    const trace = traceOf([...children, { spanId: rootId, name: 'root', attributes: attrs(2, 'r') }]);
    const v = buildTraceView(trace, { ...VIEW_OPTS, limits: limits({ spansPerTrace: 3, valuesPerTrace: 7 }) });
    expect(v.rootSpan.name).toBe('root');
    expect(v.spans.map((s) => s.name).sort()).toEqual(['c0', 'c1', 'root']);
    // Arrival order: c0 (5 values), c1 (2, then the budget is spent), root (0).
    const byName = Object.fromEntries(v.spans.map((s) => [s.name, Object.keys(s.attributes).length]));
    expect(byName).toEqual({ c0: 5, c1: 2, root: 0 });
    expect(v.truncated).toMatchObject({ spans: 3, attributes: 3 + 2 });
  });

  it('log records past logRecordsPerTrace are cut (after duplicates are dropped)', () => {
    const spanId = randomBytes(8);
    const trace = traceOf([{ spanId, name: 'root' }]);
    const rec = (i: number) =>
      logType.encode(logType.fromObject({ timeUnixNano: 10 + i, body: { stringValue: `m${i}` }, traceId: Buffer.from(trace.traceId, 'hex'), spanId })).finish();
    const logs = [rec(0), rec(0), rec(1), rec(2)];
    const withLogs: CompleteTrace = {
      ...trace,
      logs,
      logResources: logs.map(() => trace.resources[0]!),
      logScopes: logs.map(() => trace.scopes[0]!),
    };
    const v = buildTraceView(withLogs, { ...VIEW_OPTS, limits: limits({ logRecordsPerTrace: 2 }) });
    expect(v.rootSpan.logs!.map((l) => l.body)).toEqual(['m0', 'm1']);
    expect(v.truncated).toMatchObject({ logRecords: 1 });
  });

  it('a resource cut to the limits marks every view that uses it', () => {
    const a = traceOf([{ spanId: randomBytes(8), name: 'a' }], attrs(5, 'res'));
    const opts = { ...VIEW_OPTS, limits: limits({ attributeCount: 2 }) };
    const first = buildTraceView(a, opts);
    const again = buildTraceView(a, opts);
    expect(Object.keys(first.resource)).toEqual(['service.name', 'res0']);
    expect(first.truncated?.attributes).toBe(4);
    expect(again.truncated?.attributes).toBe(4);
    expect(buildTraceView(a, VIEW_OPTS).truncated).toBeUndefined();
  });

  it('work and size follow the limits, not the input; ctx.trace shows the cut', () => {
    const n = 50_000;
    const trace = traceOf([{ spanId: randomBytes(8), name: 'root', attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: '"ok"' } }, ...attrs(n)] }]);
    const dec = new ViewDecoder(limits({ attributeCount: 10 }));
    const v = buildTraceView(trace, VIEW_OPTS, dec);
    expect(dec.work.values).toBe(10);
    expect(v.outputs).toBe('ok');
    // Sized by what was decoded: a few KiB, where the wire estimate would say 3 x the wire size.
    expect(trace.wireBytes).toBeGreaterThan(500_000);
    expect(v.approxBytes).toBeGreaterThan(0);
    expect(v.approxBytes!).toBeLessThan(20_000);
    const json = traceViewJson(v) as { truncated: Record<string, number>; rootSpan: Record<string, unknown> };
    expect(json.truncated).toMatchObject({ attributes: n + 1 - 10, spans: 0 });
    expect(json.rootSpan.droppedAttributesCount).toBe(n + 1 - 10);
    expect(json.rootSpan.droppedEventsCount).toBe(0);
    // Untouched views say so.
    const small = buildTraceView(traceOf([{ spanId: randomBytes(8), name: 'r', attributes: attrs(3) }]), VIEW_OPTS);
    expect(small.truncated).toBeUndefined();
    expect((traceViewJson(small) as { truncated: unknown }).truncated).toBeNull();
  });

  it('a span: experiment rule reads only the root’s ids, start and the named attribute', () => {
    const rootId = randomBytes(8);
    const trace = traceOf([
      { spanId: randomBytes(8), parentSpanId: rootId, name: 'child', attributes: [{ key: 'exp.ü', value: { stringValue: 'not me' } }] },
      { spanId: rootId, name: 'root', attributes: [...attrs(30_000), { key: 'exp.ü', value: { stringValue: '"from-root"' } }] },
    ]);
    expect(resolveExperiment(trace, ['span:exp.ü', 'resource:service.name'], 'default')).toBe('from-root');
    expect(resolveExperiment(trace, ['span:missing', 'resource:service.name'], 'default')).toBe('svc');
    const head = decodeSpanHead(trace.spans[1]!, ['exp.ü', 'k7']);
    expect(head).toEqual({ spanId: rootId.toString('hex'), parentSpanId: '', startTimeUnixNano: 1001n, attributes: { k7: 'v7', 'exp.ü': '"from-root"' } });
    // Without a parentless span, the earliest span whose parent is missing.
    const orphans = traceOf([
      { spanId: randomBytes(8), parentSpanId: randomBytes(8), name: 'a', startTimeUnixNano: 5, attributes: [{ key: 'e', value: { stringValue: 'late' } }] },
      { spanId: randomBytes(8), parentSpanId: randomBytes(8), name: 'b', startTimeUnixNano: 3, attributes: [{ key: 'e', value: { stringValue: 'early' } }] },
    ]);
    expect(resolveExperiment(orphans, ['span:e'], 'default')).toBe('early');
  });

  it('the config defaults are the decoder defaults, and the sample config lists them', () => {
    const c = loadConfig({ env: {} });
    expect(c.genai.viewLimits).toEqual(DEFAULT_VIEW_LIMITS);
    expect(c.genai.viewWorkers).toBe(1);
    const set = loadConfig({ text: 'genai: {viewWorkers: 0, viewLimits: {attributeCount: 16, valueDepth: 4}}', env: {} });
    expect(set.genai.viewLimits).toEqual({ ...DEFAULT_VIEW_LIMITS, attributeCount: 16, valueDepth: 4 });
    expect(() => loadConfig({ text: 'genai: {viewLimits: {attributeCount: -1}}', env: {} })).toThrow(/attributeCount/);
  });
});

// ------------------------------------------------------------------ the selection stage

function codeScorer(experimentId: string, name: string, source: string, filter?: string): ActiveScorer {
  return {
    experimentId,
    name,
    version: 1,
    definition: { type: 'code', source },
    sampleRate: 1,
    filterString: filter ?? null,
    filter: filter ? compileFilter(filter) : null,
    updatedAt: '2026-01-01T00:00:00Z',
  };
}

function selector(scorers: ActiveScorer[], opts: { viewWorkers?: number; viewLimits?: ViewLimits; viewInlineMaxBytes?: number } = {}) {
  const byExp = new Map<string, ActiveScorer[]>();
  for (const s of scorers) byExp.set(s.experimentId, [...(byExp.get(s.experimentId) ?? []), s]);
  const out = new Sink<SelectedJob>();
  const metrics = new MetricsRegistry();
  const sel = new TraceSelector({
    registry: { activeScorers: () => byExp, activeFor: (e) => byExp.get(e) ?? [] },
    next: out,
    resolution: VIEW_OPTS.resolution,
    defaultExperiment: 'default',
    salt: 'salt',
    metrics,
    log: silentLogger,
    ...opts,
  });
  const metric = (name: string, labels: Record<string, string>) =>
    (metrics.get(name) as unknown as { get(l: Record<string, string>): number }).get(labels);
  return { sel, out, metric };
}

describe('the selection stage with view limits', () => {
  for (const viewWorkers of [0, 2]) {
    it(`${viewWorkers ? 'on view worker threads' : 'on the event loop'}: counts the work and the cuts, sizes jobs by the view`, async () => {
      const readsTrace = codeScorer('svc', 'reads_trace', '(ctx) => ctx.trace.spans.length');
      const plain = codeScorer('svc', 'plain', '(ctx) => 1', "trace.name = 'root'");
      const { sel, out, metric } = selector([readsTrace, plain], { viewWorkers, viewLimits: limits({ attributeCount: 100 }) });
      const big = traceOf([{ spanId: randomBytes(8), name: 'root', attributes: attrs(20_000) }]);
      const small = Array.from({ length: 150 }, (_, i) => traceOf([{ spanId: randomBytes(8), name: i % 2 ? 'root' : 'other', attributes: attrs(3) }]));
      for (const t of [big, ...small]) sel.consume(t);
      expect(sel.depth).toBe(151);
      expect(sel.bytes).toBeGreaterThan(big.wireBytes);
      await sel.whenIdle();
      expect(sel.depth).toBe(0);
      expect(sel.bytes).toBe(0);
      // reads_trace on every trace, plain on those named root.
      expect(out.items.filter((j) => j.scorer.name === 'reads_trace')).toHaveLength(151);
      expect(out.items.filter((j) => j.scorer.name === 'plain')).toHaveLength(1 + 75);
      const bigJobs = out.items.filter((j) => j.view.traceId === big.traceId);
      expect(bigJobs.map((j) => j.view.truncated?.attributes)).toEqual([20_000 - 100, 20_000 - 100]);
      expect(Object.keys(bigJobs[0]!.view.rootSpan.attributes)).toHaveLength(100);
      // A job's bytes are its share of the decoded view (and its ctx.trace text), far below the wire estimate.
      const text = traceViewJsonText(bigJobs[0]!.view);
      expect(bigJobs[0]!.approxBytes).toBeLessThan(big.wireBytes);
      expect(bigJobs[0]!.approxBytes * 2).toBeGreaterThanOrEqual(bigJobs[0]!.view.approxBytes! + (viewWorkers ? text.length : 0));
      expect(JSON.parse(text).truncated.attributes).toBe(20_000 - 100);
      expect(metric('scorecar_sampler_view_values_total', { experiment: 'svc' })).toBe(100 + 150 * 3);
      expect(metric('scorecar_sampler_view_items_cut_total', { experiment: 'svc', item: 'attributes' })).toBe(20_000 - 100);
      expect(metric('scorecar_sampler_views_truncated_total', { experiment: 'svc' })).toBe(1);
      await sel.shutdown(Date.now() + 10_000);
    });
  }

  it('a view at the limits is built while the event loop keeps turning (on a view worker), not in one turn of it', async () => {
    // 10,000 spans of 10 attributes: the values budget, hundreds of milliseconds of building.
    const rootId = randomBytes(8);
    const spans = Array.from({ length: 10_000 }, (_, i) => ({
      spanId: i === 0 ? rootId : randomBytes(8),
      ...(i === 0 ? {} : { parentSpanId: rootId }),
      name: `s${i}`,
      attributes: attrs(10),
    }));
    const big = traceOf(spans);
    const turnsUntilBuilt = async (viewWorkers: number): Promise<number> => {
      const { sel, out } = selector([codeScorer('svc', 's', '(ctx) => 1')], { viewWorkers });
      let turns = 0;
      sel.consume(big);
      // Count turns of the event loop (each setImmediate callback is one) until the job is out.
      while (out.items.length === 0) {
        await new Promise<void>((r) => setImmediate(r));
        turns++;
      }
      expect(out.items[0]!.view.spans).toHaveLength(10_000);
      await sel.shutdown(Date.now() + 10_000);
      return turns;
    };
    // On the event loop the whole view is one turn's work; on a worker the loop is free meanwhile.
    expect(await turnsUntilBuilt(0)).toBe(1);
    expect(await turnsUntilBuilt(1)).toBeGreaterThan(20);
  });

  it('with view workers, small traces get their view on the event loop in slices, big ones on a worker', async () => {
    const { sel, out, metric } = selector([codeScorer('svc', 's', '(ctx) => 1')], { viewWorkers: 1, viewInlineMaxBytes: 4096 });
    const rootId = randomBytes(8);
    const big = traceOf(
      Array.from({ length: 200 }, (_, i) => ({
        spanId: i === 0 ? rootId : randomBytes(8),
        ...(i === 0 ? {} : { parentSpanId: rootId }),
        name: `s${i}`,
        attributes: attrs(5),
      })),
    );
    expect(big.wireBytes).toBeGreaterThan(4096);
    const small = Array.from({ length: 300 }, () => traceOf([{ spanId: randomBytes(8), name: 'root', attributes: attrs(3) }]));
    expect(small.every((t) => t.wireBytes <= 4096)).toBe(true);
    // Big ones before, among and after the small ones: queue order is kept per path.
    for (const t of [big, ...small.slice(0, 150), { ...big, traceId: 'b'.repeat(32) }, ...small.slice(150)]) sel.consume(t);
    await sel.whenIdle();
    expect(out.items).toHaveLength(302);
    expect(out.items.filter((j) => j.view.spans.length === 200)).toHaveLength(2);
    expect(metric('scorecar_sampler_views_built_total', { where: 'event_loop' })).toBe(300);
    expect(metric('scorecar_sampler_views_built_total', { where: 'worker' })).toBe(2);
    expect(sel.depth).toBe(0);
    expect(sel.bytes).toBe(0);
    await sel.shutdown(Date.now() + 10_000);
  });

  it('with view workers, a trace whose view cannot be built is counted, and shutdown drops what is left (counted)', async () => {
    const { sel, out, metric } = selector([codeScorer('svc', 's', '(ctx) => 1')], { viewWorkers: 1 });
    // A span whose bytes end mid-field: no span decodes, so no view.
    const good = traceOf([{ spanId: randomBytes(8), name: 'root' }]);
    const broken: CompleteTrace = { ...good, spans: [good.spans[0]!.subarray(0, good.spans[0]!.length - 3)] };
    sel.consume(broken);
    sel.consume(good);
    await sel.whenIdle();
    expect(metric('scorecar_sampler_view_errors_total', { experiment: 'svc' })).toBe(1);
    expect(out.items.map((j) => j.view.traceId)).toEqual([good.traceId]);
    // Shutdown with an expired deadline: what still waits is dropped and counted.
    for (let i = 0; i < 5; i++) sel.consume(traceOf([{ spanId: randomBytes(8), name: 'root' }]));
    await sel.shutdown(Date.now() - 1);
    expect(metric('scorecar_sampler_dropped_traces_total', { experiment: 'svc', reason: 'shutdown' })).toBe(5);
    expect(sel.depth).toBe(0);
    await sel.whenIdle();
  });
});
