import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import {
  decodeLogRecord,
  decodeSpan,
  jsonToProtobuf,
  LOG_STRIDE,
  logSampled,
  otlpType,
  protobufToJson,
  SPAN_STRIDE,
  scanEnvelope,
  scanLogsRequest,
  scanTraceRequest,
  spanHasParent,
  spanTraceIdOffset,
  TYPE,
  WireError,
  withoutRejected,
} from '../../src/wire/index.ts';

const hex = (n: number) => randomBytes(n).toString('hex');

function request(spans: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{ scope: { name: 'lib', version: '1' }, spans, schemaUrl: 'https://s' }],
        schemaUrl: 'https://r',
        ...extra,
      },
    ],
  };
}

describe('wire scanner', () => {
  it('finds every span, its trace id and whether it has a parent, like a full decode', () => {
    const t1 = hex(16);
    const t2 = hex(16);
    const root = hex(8);
    const spans = [
      { traceId: t1, spanId: root, name: 'root', attributes: [{ key: 'k', value: { stringValue: 'v'.repeat(300) } }] },
      { traceId: t1, spanId: hex(8), parentSpanId: root, name: 'child', events: [{ name: 'e' }], kind: 3 },
      { traceId: t2, spanId: hex(8), parentSpanId: hex(8), name: 'orphan', status: { code: 2, message: 'x' } },
    ];
    const buf = jsonToProtobuf('traces', JSON.stringify(request(spans)));
    const scan = scanTraceRequest(buf);
    expect(scan.spanCount).toBe(3);
    expect(scan.rejected).toBe(0);
    const s = scan.resources[0]!.scopes[0]!.spans;
    const found: Array<{ trace: string; parent: boolean; name: string }> = [];
    for (let i = 0; i < s.length; i += SPAN_STRIDE) {
      const t = spanTraceIdOffset(s, i);
      const span = otlpType(TYPE.span).decode(buf.subarray(s[i]!, s[i + 1]!)) as unknown as { name: string };
      found.push({ trace: buf.subarray(t, t + 16).toString('hex'), parent: spanHasParent(s, i), name: span.name });
    }
    expect(found).toEqual([
      { trace: t1, parent: false, name: 'root' },
      { trace: t1, parent: true, name: 'child' },
      { trace: t2, parent: true, name: 'orphan' },
    ]);
  });

  it('treats an all-zero parent span id as no parent', () => {
    const buf = jsonToProtobuf('traces', JSON.stringify(request([{ traceId: hex(16), spanId: hex(8), parentSpanId: '0000000000000000' }])));
    const s = scanTraceRequest(buf).resources[0]!.scopes[0]!.spans;
    expect(spanHasParent(s, 0)).toBe(false);
  });

  it('rejects spans with missing, short or all-zero ids and keeps the rest', () => {
    const good = { traceId: hex(16), spanId: hex(8), name: 'good' };
    const spans = [
      good,
      { spanId: hex(8), name: 'no trace id' },
      { traceId: hex(16), name: 'no span id' },
      { traceId: '00000000000000000000000000000000', spanId: hex(8) },
      { traceId: hex(8), spanId: hex(8) },
      { traceId: hex(16), spanId: '0000000000000000' },
    ];
    const buf = jsonToProtobuf('traces', JSON.stringify(request(spans)));
    const scan = scanTraceRequest(buf);
    expect(scan.spanCount).toBe(6);
    expect(scan.rejected).toBe(5);
    expect(scan.rejectReason).toMatch(/trace_id/);
    const kept = withoutRejected(buf, scan);
    const json = protobufToJson('traces', kept) as { resourceSpans: Array<Record<string, unknown>> };
    const rs = json.resourceSpans[0] as { scopeSpans: Array<{ spans: Array<{ name: string }>; schemaUrl: string; scope: unknown }>; schemaUrl: string; resource: unknown };
    expect(rs.scopeSpans[0]!.spans.map((x) => x.name)).toEqual(['good']);
    expect(rs.schemaUrl).toBe('https://r');
    expect(rs.scopeSpans[0]!.schemaUrl).toBe('https://s');
    expect(rs.scopeSpans[0]!.scope).toEqual({ name: 'lib', version: '1' });
    expect(rs.resource).toEqual({ attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] });
  });

  it('refuses truncated and malformed protobuf with the byte offset', () => {
    const buf = jsonToProtobuf('traces', JSON.stringify(request([{ traceId: hex(16), spanId: hex(8), name: 'x'.repeat(50) }])));
    for (const cut of [1, 5, buf.length - 3, buf.length - 1]) {
      expect(() => scanTraceRequest(buf.subarray(0, cut))).toThrow(WireError);
    }
    expect(() => scanTraceRequest(Buffer.from([0x0b]))).toThrow(/wire type|field/); // group start
    expect(() => scanTraceRequest(Buffer.from([0x00, 0x01]))).toThrow(/field number 0/);
    try {
      scanTraceRequest(buf.subarray(0, buf.length - 1));
    } catch (e) {
      expect((e as WireError).code).toBe('INVALID_PROTOBUF');
      expect((e as WireError).message).toMatch(/at byte \d+/);
    }
  });

  it('accepts an empty request and skips unknown fields', () => {
    expect(scanTraceRequest(Buffer.alloc(0)).spanCount).toBe(0);
    // field 15 varint, then a real request
    const real = jsonToProtobuf('traces', JSON.stringify(request([{ traceId: hex(16), spanId: hex(8) }])));
    const withUnknown = Buffer.concat([Buffer.from([0x78, 0x05]), real]);
    expect(scanTraceRequest(withUnknown).spanCount).toBe(1);
  });

  it('counts log records and metrics without decoding them', () => {
    const logs = jsonToProtobuf(
      'logs',
      JSON.stringify({
        resourceLogs: [
          { scopeLogs: [{ logRecords: [{ body: { stringValue: 'a' } }, { body: { stringValue: 'b' } }] }, { logRecords: [{}] }] },
        ],
      }),
    );
    expect(scanEnvelope(logs, [1, 2, 2])).toBe(3);
    const metrics = jsonToProtobuf(
      'metrics',
      JSON.stringify({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm1', gauge: { dataPoints: [{ asDouble: 1 }] } }, { name: 'm2' }] }] }] }),
    );
    expect(scanEnvelope(metrics, [1, 2, 2])).toBe(2);
    expect(() => scanEnvelope(metrics.subarray(0, metrics.length - 2), [1, 2, 2])).toThrow(WireError);
  });
});

describe('log scanner', () => {
  const logsRequest = (records: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) =>
    jsonToProtobuf(
      'logs',
      JSON.stringify({
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
            scopeLogs: [{ scope: { name: 'genai', version: '2' }, logRecords: records, schemaUrl: 'https://s' }],
            schemaUrl: 'https://r',
            ...extra,
          },
        ],
      }),
    );

  it('finds every log record, its trace id and span id, like a full decode', () => {
    const t1 = hex(16);
    const s1 = hex(8);
    const records = [
      {
        timeUnixNano: '1700000000000000001',
        severityNumber: 9,
        traceId: t1,
        spanId: s1,
        eventName: 'gen_ai.user.message',
        body: { kvlistValue: { values: [{ key: 'content', value: { stringValue: 'q'.repeat(300) } }] } },
        attributes: [{ key: 'gen_ai.system', value: { stringValue: 'openai' } }],
        flags: 1,
      },
      { body: { stringValue: 'no trace context' }, observedTimeUnixNano: '5' },
      { traceId: t1, body: { stringValue: 'trace, no span' } },
      { traceId: '00000000000000000000000000000000', spanId: hex(8), body: { stringValue: 'zero trace id' } },
      { traceId: hex(8), spanId: s1, body: { stringValue: 'short trace id' } },
      { traceId: t1, spanId: '0000000000000000', body: { stringValue: 'zero span id' } },
    ];
    const buf = logsRequest(records);
    const scan = scanLogsRequest(buf);
    expect(scan.logCount).toBe(6);
    expect(scan.withTraceId).toBe(3);
    const rl = scan.resources[0]!;
    expect(buf.subarray(rl.schemaUrl.start, rl.schemaUrl.end).toString()).toBe('https://r');
    const sl = rl.scopes[0]!;
    expect(buf.subarray(sl.schemaUrl.start, sl.schemaUrl.end).toString()).toBe('https://s');
    const l = sl.logs;
    expect(l).toHaveLength(6 * LOG_STRIDE);
    const res = { bytes: buf.subarray(rl.resource.start, rl.resource.end), schemaUrl: null, experimentHeader: undefined };
    const scope = { bytes: buf.subarray(sl.scope.start, sl.scope.end), schemaUrl: null };
    const found = [];
    for (let i = 0; i < l.length; i += LOG_STRIDE) {
      const rec = decodeLogRecord(buf.subarray(l[i]!, l[i + 1]!), res, scope);
      const t = l[i + 2]!;
      const s = l[i + 3]!;
      found.push({
        body: typeof rec.body === 'string' ? rec.body : 'kv',
        trace: t < 0 ? null : buf.subarray(t, t + 16).toString('hex'),
        span: s < 0 ? null : buf.subarray(s, s + 8).toString('hex'),
      });
      if (t >= 0) expect(rec.traceId).toBe(buf.subarray(t, t + 16).toString('hex'));
    }
    expect(found).toEqual([
      { body: 'kv', trace: t1, span: s1 },
      { body: 'no trace context', trace: null, span: null },
      { body: 'trace, no span', trace: t1, span: null },
      { body: 'zero trace id', trace: null, span: expect.any(String) },
      { body: 'short trace id', trace: null, span: s1 },
      { body: 'zero span id', trace: t1, span: null },
    ]);
    const first = decodeLogRecord(buf.subarray(l[0]!, l[1]!), res, scope);
    expect(first).toMatchObject({
      traceId: t1,
      spanId: s1,
      eventName: 'gen_ai.user.message',
      severityNumber: 9,
      timeUnixNano: 1700000000000000001n,
      body: { content: 'q'.repeat(300) },
      attributes: { 'gen_ai.system': 'openai' },
      resource: { 'service.name': 'svc' },
      scope: { name: 'genai', version: '2' },
    });
    // A zero span id reads as none, as for parent span ids.
    const zeroSpan = 5 * LOG_STRIDE;
    expect(decodeLogRecord(buf.subarray(l[zeroSpan]!, l[zeroSpan + 1]!), res, scope).spanId).toBe('');
    // Trace flags: only the first record carries the sampled bit.
    expect(Array.from({ length: 6 }, (_, k) => logSampled(l, k * LOG_STRIDE))).toEqual([true, false, false, false, false, false]);
  });

  it('refuses truncated and malformed log requests with the byte offset, and accepts empty ones', () => {
    const buf = logsRequest([{ traceId: hex(16), spanId: hex(8), body: { stringValue: 'x'.repeat(50) } }]);
    for (let cut = 1; cut < buf.length; cut += 7) {
      expect(() => scanLogsRequest(buf.subarray(0, cut))).toThrow(WireError);
    }
    expect(() => scanLogsRequest(buf.subarray(0, buf.length - 1))).toThrow(/at byte \d+/);
    expect(() => scanLogsRequest(Buffer.from([0x00, 0x01]))).toThrow(/field number 0/);
    expect(scanLogsRequest(Buffer.alloc(0))).toMatchObject({ logCount: 0, withTraceId: 0 });
    // An unknown top-level field before a real request is skipped.
    expect(scanLogsRequest(Buffer.concat([Buffer.from([0x78, 0x05]), buf])).logCount).toBe(1);
    // The count agrees with the envelope walk the scan replaced.
    const many = logsRequest(Array.from({ length: 7 }, () => ({ body: { stringValue: 'y' } })));
    expect(scanLogsRequest(many).logCount).toBe(scanEnvelope(many, [1, 2, 2]));
  });
});

describe('OTLP/JSON mapping', () => {
  it('reads hex ids (any case), int64 as strings or numbers, snake_case keys, integer enums', () => {
    const t = hex(16).toUpperCase();
    const body = JSON.stringify({
      resource_spans: [
        {
          scope_spans: [
            {
              spans: [
                {
                  trace_id: t,
                  span_id: 'ABCDEF0123456789',
                  start_time_unix_nano: '1700000000000000001',
                  endTimeUnixNano: 1700000000500000000,
                  kind: 2,
                  attributes: [{ key: 'n', value: { intValue: '12345678901' } }, { key: 'd', value: { doubleValue: 0.5 } }],
                  status: { code: 2, message: 'boom' },
                },
              ],
            },
          ],
        },
      ],
    });
    const [trace] = tracesFromRequest(jsonToProtobuf('traces', body));
    const span = decodeSpan(trace!.spans[0]!, trace!.resources[0]!, trace!.scopes[0]!);
    expect(span.traceId).toBe(t.toLowerCase());
    expect(span.spanId).toBe('abcdef0123456789');
    expect(span.startTimeUnixNano).toBe(1700000000000000001n);
    expect(span.kind).toBe(2);
    expect(span.attributes).toEqual({ n: 12345678901, d: 0.5 });
    expect(span.status).toEqual({ code: 2, message: 'boom' });
  });

  it('refuses invalid JSON, non-objects, non-hex ids and schema mismatches with INVALID_JSON', () => {
    for (const bad of ['{', '[]', '"x"', '{"resourceSpans": 5}', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}']) {
      expect(() => jsonToProtobuf('traces', bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_JSON' }));
    }
  });

  it('round-trips protobuf -> JSON -> protobuf', () => {
    const obj = request([{ traceId: hex(16), spanId: hex(8), name: 'n', startTimeUnixNano: '5', attributes: [{ key: 'b', value: { boolValue: true } }] }]);
    const pb = jsonToProtobuf('traces', JSON.stringify(obj));
    const again = jsonToProtobuf('traces', JSON.stringify(protobufToJson('traces', pb)));
    expect(Buffer.compare(pb, again)).toBe(0);
  });
});
