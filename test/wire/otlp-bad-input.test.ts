// Bad input over the wire: each gets the right status, scorecar keeps running, the next good
// request goes through, and nothing else is lost.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, otlpType, retryDelayFromStatus, TYPE } from '../../src/wire/index.ts';
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
