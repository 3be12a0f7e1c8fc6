// Bad input over the wire: each gets the right status, scorecar keeps running, the next good
// request goes through, and nothing else is lost.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, otlpType, protobufToJson, retryDelayFromStatus, TYPE } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const MiB = 1024 * 1024;

function goodRequest(spans = 2): { body: Buffer; spanIds: string[] } {
  const traceId = randomBytes(16).toString('hex');
  const spanIds = Array.from({ length: spans }, () => randomBytes(8).toString('hex'));
  const body = jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [{ scopeSpans: [{ spans: spanIds.map((spanId, i) => ({ traceId, spanId, name: `s${i}`, ...(i ? { parentSpanId: spanIds[0] } : {}) })) }] }],
    }),
  );
  return { body, spanIds };
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Raw HTTP POST that reads the response even when the server stops reading the body early. */
function post(url: string, body: Buffer | ((req: http.ClientRequest) => void), headers: Record<string, string | number>, method = 'POST'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      // The server may close the socket while a huge body is still being written after it
      // answered; the response was already delivered in that case.
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e);
    });
    if (typeof body === 'function') body(req);
    else req.end(body);
  });
}

describe('bad input over OTLP/HTTP', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;
  let sentGood: string[] = [];

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 100}`);
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  async function expectGoodRequestWorks(): Promise<void> {
    const g = goodRequest();
    const res = await post(`${sc.httpUrl}/v1/traces`, g.body, { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    sentGood = sentGood.concat(g.spanIds);
  }

  const cases: Array<[string, () => Promise<Res>, number, RegExp]> = [
    ['truncated protobuf', async () => post(`${sc.httpUrl}/v1/traces`, goodRequest(3).body.subarray(0, 40), { 'content-type': 'application/x-protobuf' }), 400, /truncated|past the end/],
    ['wrong content type', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.from('hello'), { 'content-type': 'text/plain' }), 415, /content-type/],
    ['invalid JSON', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.from('{"resourceSpans": [}'), { 'content-type': 'application/json' }), 400, /JSON/],
    ['JSON that is not OTLP', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.from('{"resourceSpans": 7}'), { 'content-type': 'application/json' }), 400, /OTLP schema/],
    ['zero-length JSON body', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.alloc(0), { 'content-type': 'application/json' }), 400, /empty body/],
    ['unknown content-encoding', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.from('x'), { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' }), 415, /content-encoding/],
    ['corrupt gzip', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.from('not gzip at all'), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }), 400, /decompress/],
    ['GET', async () => post(`${sc.httpUrl}/v1/traces`, Buffer.alloc(0), {}, 'GET'), 405, /method/],
    ['unknown path', async () => post(`${sc.httpUrl}/v1/spans`, Buffer.alloc(0), { 'content-type': 'application/x-protobuf' }), 404, /no such path/],
    [
      '100 MiB body (declared)',
      async () => post(`${sc.httpUrl}/v1/traces`, Buffer.alloc(100 * MiB), { 'content-type': 'application/x-protobuf', 'content-length': 100 * MiB }),
      413,
      /exceeds the limit/,
    ],
    [
      '100 MiB body (chunked, no length)',
      async () =>
        post(
          `${sc.httpUrl}/v1/traces`,
          (req) => {
            const chunk = Buffer.alloc(MiB);
            let sent = 0;
            const write = (): void => {
              while (sent < 100) {
                sent++;
                if (!req.write(chunk)) return void req.once('drain', write);
              }
              req.end();
            };
            req.on('close', () => {
              sent = 100;
            });
            write();
          },
          { 'content-type': 'application/x-protobuf', 'transfer-encoding': 'chunked' },
        ),
      413,
      /exceeds the limit/,
    ],
    [
      'gzip bomb (1 GiB of zeros in ~1 MiB)',
      async () => {
        // Built from 1 MiB of compressed zeros repeated: gzip members concatenate.
        const member = gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
        return post(`${sc.httpUrl}/v1/traces`, Buffer.concat(Array(16).fill(member)), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
      },
      413,
      /decompressed body exceeds/,
    ],
  ];

  it.each(cases)('%s gets the right status, and the next good request goes through', async (_name, send, status, message) => {
    const res = await send();
    expect(res.status).toBe(status);
    const ct = String(res.headers['content-type']);
    const text = ct.includes('json') ? String((JSON.parse(res.body.toString()) as { message: string }).message) : (otlpType(TYPE.rpcStatus).decode(res.body) as unknown as { message: string }).message;
    expect(text).toMatch(message);
    if (status === 405) expect(res.headers.allow).toBe('POST');
    await expectGoodRequestWorks();
  });

  it('accepts a zero-length protobuf body as an empty request (the spec says success)', async () => {
    const res = await post(`${sc.httpUrl}/v1/traces`, Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    const js = await post(`${sc.httpUrl}/v1/logs`, Buffer.from('{}'), { 'content-type': 'application/json' });
    expect([js.status, js.body.toString()]).toEqual([200, '{}']);
  });

  it('refuses spans with missing ids through partial_success and forwards only the valid ones', async () => {
    const traceId = randomBytes(16).toString('hex');
    const valid = randomBytes(8).toString('hex');
    const body = {
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: valid, name: 'ok' }, { traceId, name: 'no span id' }, { spanId: randomBytes(8).toString('hex'), name: 'no trace id' }] }] }],
    };
    const pb = await post(`${sc.httpUrl}/v1/traces`, jsonToProtobuf('traces', JSON.stringify(body)), { 'content-type': 'application/x-protobuf' });
    expect(pb.status).toBe(200);
    const decoded = otlpType(TYPE.traceResponse).decode(pb.body) as unknown as { partialSuccess: { rejectedSpans: { toNumber(): number } | number; errorMessage: string } };
    expect(Number(decoded.partialSuccess.rejectedSpans)).toBe(2);
    expect(decoded.partialSuccess.errorMessage).toMatch(/2 span\(s\) refused: .*span_id/);
    const js = await post(`${sc.httpUrl}/v1/traces`, Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, name: 'x' }] }] }] })), { 'content-type': 'application/json' });
    expect(js.status).toBe(200);
    expect(JSON.parse(js.body.toString())).toEqual({ partialSuccess: { rejectedSpans: '1', errorMessage: expect.stringMatching(/span_id/) } });
    sentGood.push(valid);
    await expectGoodRequestWorks();
  });

  it('lost nothing that was accepted: every good span arrived downstream exactly once', async () => {
    await waitFor(() => capture.spanIds().length >= sentGood.length, 10_000, 'good spans downstream');
    expect(capture.spanIds().sort()).toEqual([...sentGood].sort());
    expect(await sc.metric('scorecar_receiver_rejected_items_total')).toBe(3);
  });
});

describe('bad input over OTLP/gRPC', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;
  let client: grpc.Client;
  const sent: string[] = [];
  const path = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
  const identity = (b: Buffer): Buffer => b;

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}`);
    client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  });
  afterAll(async () => {
    client.close();
    await sc.stop();
    await capture.close();
  });

  function call(body: Buffer, c: grpc.Client = client): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }> {
    return new Promise((resolve) => c.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), {}, (err, res) => resolve({ err, res })));
  }

  async function good(): Promise<void> {
    const g = goodRequest();
    const { err } = await call(g.body);
    expect(err).toBeNull();
    sent.push(...g.spanIds);
  }

  it('truncated protobuf -> INVALID_ARGUMENT, then a good request works', async () => {
    const { err } = await call(goodRequest(3).body.subarray(0, 30));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/truncated|past the end/);
    await good();
  });

  it('a message over the size limit -> RESOURCE_EXHAUSTED, also when it only grows past it once decompressed', async () => {
    const big = await call(Buffer.alloc(6 * MiB));
    expect(big.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const gz = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.default_compression_algorithm': 2 });
    try {
      const bomb = await call(Buffer.alloc(64 * MiB), gz);
      expect(bomb.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      gz.close();
    }
    await good();
  });

  it('spans with missing ids -> partial_success, valid spans forwarded', async () => {
    const traceId = randomBytes(16).toString('hex');
    const valid = randomBytes(8).toString('hex');
    const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: valid }, { traceId }] }] }] }));
    const { err, res } = await call(body);
    expect(err).toBeNull();
    const decoded = otlpType(TYPE.traceResponse).decode(res!) as unknown as { partialSuccess: { rejectedSpans: number | { toNumber(): number } } };
    expect(Number(decoded.partialSuccess.rejectedSpans)).toBe(1);
    sent.push(valid);
    await good();
  });

  it('an empty request succeeds; everything accepted arrived downstream once', async () => {
    expect((await call(Buffer.alloc(0))).err).toBeNull();
    await waitFor(() => capture.spanIds().length >= sent.length, 10_000, 'spans downstream');
    expect(capture.spanIds().sort()).toEqual([...sent].sort());
  });

  it('RetryInfo helper reads what the receiver writes', () => {
    // Unit-level guard for the trailer the overload test relies on.
    expect(retryDelayFromStatus(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('OTLP/JSON integers are checked against their field types', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}`);
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  const traceId = randomBytes(16).toString('hex');
  /** Four spans; the last one gets `fields`. */
  function traces(fields: Record<string, unknown>): Record<string, unknown> {
    const spans = Array.from({ length: 4 }, (_, i) => ({ traceId, spanId: randomBytes(8).toString('hex'), name: `s${i}`, ...(i === 3 ? fields : {}) }));
    return { resourceSpans: [{ scopeSpans: [{ spans }] }] };
  }
  const SPAN = 'resourceSpans[0].scopeSpans[0].spans[3]';
  const LOG = 'resourceLogs[0].scopeLogs[0].logRecords[0]';
  const POINT = 'resourceMetrics[0].scopeMetrics[0].metrics[0]';
  const logs = (fields: Record<string, unknown>) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'x' }, ...fields }] }] }] });
  const sum = (point: Record<string, unknown>) => ({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm', sum: { dataPoints: [point] } }] }] }] });
  const histogram = (point: Record<string, unknown>) => ({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'h', histogram: { dataPoints: [point] } }] }] }] });

  const bad: Array<[string, 'traces' | 'logs' | 'metrics', Record<string, unknown>, string]> = [
    ['letters', 'traces', traces({ startTimeUnixNano: 'abc' }), `${SPAN}.startTimeUnixNano: "abc" is not an integer`],
    ['trailing garbage', 'traces', traces({ startTimeUnixNano: '12abc' }), `${SPAN}.startTimeUnixNano: "12abc" is not an integer`],
    ['2^70', 'traces', traces({ endTimeUnixNano: String(2n ** 70n) }), `${SPAN}.endTimeUnixNano: "${2n ** 70n}" is out of range for fixed64`],
    ['2^64 (one past uint64)', 'traces', traces({ endTimeUnixNano: String(2n ** 64n) }), `${SPAN}.endTimeUnixNano: "${2n ** 64n}" is out of range for fixed64`],
    ['negative unsigned (string)', 'traces', traces({ startTimeUnixNano: '-1' }), `${SPAN}.startTimeUnixNano: "-1" must not be negative`],
    ['negative unsigned (number)', 'traces', traces({ droppedAttributesCount: -1 }), `${SPAN}.droppedAttributesCount: -1 must not be negative`],
    ['a fraction', 'traces', traces({ startTimeUnixNano: 1.5 }), `${SPAN}.startTimeUnixNano: 1.5 is not an integer`],
    ['a boolean', 'traces', traces({ start_time_unix_nano: true }), `${SPAN}.startTimeUnixNano: true is not an integer`],
    ['uint32 overflow', 'traces', traces({ droppedEventsCount: 2 ** 32 }), `${SPAN}.droppedEventsCount: 4294967296 is out of range for uint32`],
    ['int64 one past the top', 'traces', traces({ attributes: [{ key: 'k', value: { intValue: '9223372036854775808' } }] }), `${SPAN}.attributes[0].value.intValue: "9223372036854775808" is out of range for int64`],
    ['int64 one past the bottom', 'traces', traces({ events: [{ name: 'e', attributes: [{ key: 'k', value: { intValue: '-9223372036854775809' } }] }] }), `${SPAN}.events[0].attributes[0].value.intValue: "-9223372036854775809" is out of range for int64`],
    ['exponent form', 'metrics', sum({ asInt: '1e3' }), `${POINT}.sum.dataPoints[0].asInt: "1e3" is not an integer`],
    ['a repeated uint64', 'metrics', histogram({ count: '3', bucketCounts: ['1', '-2'] }), `${POINT}.histogram.dataPoints[0].bucketCounts[1]: "-2" must not be negative`],
    ['a log timestamp', 'logs', logs({ timeUnixNano: '17e8' }), `${LOG}.timeUnixNano: "17e8" is not an integer`],
  ];

  it.each(bad)('%s: 400 naming the field and the value, nothing forwarded', async (_name, signal, body, message) => {
    const before = capture.requests.length;
    const res = await post(`${sc.httpUrl}/v1/${signal}`, Buffer.from(JSON.stringify(body)), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect((JSON.parse(res.body.toString()) as { message: string }).message).toContain(message);
    // A good request after it is forwarded, and it is the only thing forwarded since.
    const ok = await post(`${sc.httpUrl}/v1/logs`, Buffer.from(JSON.stringify(logs({}))), { 'content-type': 'application/json' });
    expect(ok.status).toBe(200);
    await waitFor(() => capture.requests.length > before, 10_000, 'the good request downstream');
    expect(capture.requests.slice(before).map((r) => r.signal)).toEqual(['logs']);
  });

  it('edge values, as strings and as numbers, reach downstream unchanged', async () => {
    const U64_MAX = '18446744073709551615';
    const spanFields = {
      startTimeUnixNano: U64_MAX,
      endTimeUnixNano: 1700000000123, // number form
      droppedAttributesCount: 4294967295,
      attributes: [
        { key: 'min', value: { intValue: '-9223372036854775808' } },
        { key: 'max', value: { intValue: '9223372036854775807' } },
        { key: 'safe', value: { intValue: Number.MAX_SAFE_INTEGER } },
        { key: 'zero', value: { intValue: '0' } },
      ],
    };
    const before = capture.requests.length;
    const tr = await post(`${sc.httpUrl}/v1/traces`, Buffer.from(JSON.stringify(traces(spanFields))), { 'content-type': 'application/json' });
    expect(tr.status).toBe(200);
    const point = { asInt: '-9223372036854775808', timeUnixNano: U64_MAX, startTimeUnixNano: '0' };
    const ms = await post(`${sc.httpUrl}/v1/metrics`, Buffer.from(JSON.stringify(sum(point))), { 'content-type': 'application/json' });
    expect(ms.status).toBe(200);
    await waitFor(() => capture.requests.length >= before + 2, 10_000, 'both requests downstream');
    const got = capture.requests.slice(before);
    type Tree = { [k: string]: Tree } & Tree[];
    const span = (protobufToJson('traces', got.find((r) => r.signal === 'traces')!.body) as unknown as Tree).resourceSpans![0]!.scopeSpans![0]!.spans![3];
    expect(span).toMatchObject({
      startTimeUnixNano: U64_MAX,
      endTimeUnixNano: '1700000000123',
      droppedAttributesCount: 4294967295,
      attributes: [
        { key: 'min', value: { intValue: '-9223372036854775808' } },
        { key: 'max', value: { intValue: '9223372036854775807' } },
        { key: 'safe', value: { intValue: String(Number.MAX_SAFE_INTEGER) } },
        { key: 'zero', value: { intValue: '0' } },
      ],
    });
    const dp = (protobufToJson('metrics', got.find((r) => r.signal === 'metrics')!.body) as unknown as Tree).resourceMetrics![0]!.scopeMetrics![0]!.metrics![0]!.sum!.dataPoints![0];
    expect(dp).toMatchObject({ asInt: '-9223372036854775808', timeUnixNano: U64_MAX });
  });
});
