// Every content encoding both receivers take, inflated as it streams in: the bytes forwarded
// downstream are the original protobuf; a body that does not inflate is 400 / INVALID_ARGUMENT;
// one that inflates past the size limit is 413 / RESOURCE_EXHAUSTED; one that inflates past the
// memory budget is refused with a retry hint (429 / UNAVAILABLE + RetryInfo).
import { randomBytes } from 'node:crypto';
import { deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, otlpType, retryDelayFromStatus, TYPE } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const MiB = 1024 * 1024;
const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer): Buffer => b;

/** A trace request with a filler attribute of `filler` bytes (compresses to almost nothing). */
function request(filler = 0): Buffer {
  const traceId = randomBytes(16).toString('hex');
  const attributes = filler > 0 ? [{ key: 'filler', value: { stringValue: 'z'.repeat(filler) } }] : [];
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex'), name: 'enc', attributes }] }] }] }));
}

const COMPRESS: Record<string, (b: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync, zstd: zstdCompressSync };

function message(res: Response, body: Buffer): string {
  return (otlpType(TYPE.rpcStatus).decode(body) as unknown as { message: string }).message ?? String(res.status);
}

describe('content encodings', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nlimits: {memoryBytes: ${24 * MiB}, retryAfterSeconds: 2}\nreceivers: {otlp: {http: {maxRequestBodyBytes: ${16 * MiB}}, grpc: {maxRecvMsgSizeBytes: ${16 * MiB}}}}`,
    );
    // Stands for whatever else holds memory (export queue, buffered traces) when a test says so.
    sc.app.pipeline.budget.addHolder(() => occupied);
  });
  let occupied = 0;
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  async function postHttp(body: Buffer, encoding: string): Promise<{ res: Response; body: Buffer }> {
    const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': encoding } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  it.each(Object.keys(COMPRESS))('OTLP/HTTP %s: inflated as it streams, forwarded as the original bytes', async (enc) => {
    const original = request(256 * 1024);
    const before = capture.requests.length;
    const { res } = await postHttp(COMPRESS[enc]!(original), enc);
    expect(res.status).toBe(200);
    await waitFor(() => capture.requests.length > before, 10_000, 'the request downstream');
    expect(capture.requests[before]!.body.equals(original)).toBe(true);
  });

  it.each(['gzip', 'deflate'])('OTLP/gRPC %s: inflated as it streams, forwarded as the original bytes', async (enc) => {
    const original = request(256 * 1024);
    const client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': enc === 'gzip' ? 2 : 1 });
    const before = capture.requests.length;
    const err = await new Promise<grpc.ServiceError | null>((resolve) => client.makeUnaryRequest(EXPORT, identity, identity, original, new grpc.Metadata(), {}, (e) => resolve(e)));
    client.close();
    expect(err).toBeNull();
    await waitFor(() => capture.requests.length > before, 10_000, 'the request downstream');
    expect(capture.requests[before]!.body.equals(original)).toBe(true);
  });

  it.each(Object.keys(COMPRESS))('OTLP/HTTP %s that is not %s: 400', async (enc) => {
    const { res, body } = await postHttp(Buffer.from('this is not compressed at all, not even a little'), enc);
    expect(res.status).toBe(400);
    expect(message(res, body)).toMatch(new RegExp(`cannot decompress ${enc} body`));
  });

  // (Node's zstd decoder does not report a truncated frame; gzip and deflate do.)
  it.each(['gzip', 'deflate'])('OTLP/HTTP %s cut short: 400', async (enc) => {
    const whole = COMPRESS[enc]!(request(64 * 1024));
    const { res, body } = await postHttp(whole.subarray(0, whole.length - 8), enc);
    expect(res.status).toBe(400);
    expect(message(res, body)).toMatch(/unexpected end of file/);
  });

  it('OTLP/HTTP: past the size limit once inflated: 413; past the budget: 429 with Retry-After', async () => {
    const tooBig = await postHttp(gzipSync(request(17 * MiB)), 'gzip');
    expect(tooBig.res.status).toBe(413);
    expect(message(tooBig.res, tooBig.body)).toMatch(/decompressed body exceeds the limit of 16777216 bytes/);
    occupied = 12 * MiB;
    const overBudget = await postHttp(gzipSync(request(14 * MiB)), 'gzip');
    occupied = 0;
    expect(overBudget.res.status).toBe(429);
    expect(overBudget.res.headers.get('retry-after')).toBe('2');
    expect(await sc.metric('scorecar_receiver_refused_requests_total', { transport: 'http', reason: 'memory_budget_full' })).toBe(1);
  });

  it('OTLP/gRPC: past the size limit once inflated: RESOURCE_EXHAUSTED; past the budget: UNAVAILABLE + RetryInfo', async () => {
    const client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2, 'grpc.max_send_message_length': -1 });
    const call = (b: Buffer): Promise<grpc.ServiceError | null> =>
      new Promise((resolve) => client.makeUnaryRequest(EXPORT, identity, identity, b, new grpc.Metadata(), {}, (e) => resolve(e)));
    const tooBig = await call(request(17 * MiB));
    expect(tooBig?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(tooBig?.details).toMatch(/decompressed message exceeds the limit of 16777216 bytes/);
    occupied = 12 * MiB;
    const overBudget = await call(request(14 * MiB));
    occupied = 0;
    expect(overBudget?.code).toBe(grpc.status.UNAVAILABLE);
    expect(retryDelayFromStatus(overBudget!.metadata.get('grpc-status-details-bin')[0] as Buffer)).toBe(2000);
    // A good call right after on the same channel.
    expect(await call(request(1024))).toBeNull();
    client.close();
    expect(await sc.metric('scorecar_memory_budget_used_bytes')).toBe(0);
  });
});
