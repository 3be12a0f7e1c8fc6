// Both receivers over real sockets, with a next stage that refuses (each code of the error table
// a stage may refuse with) or fails with a bug: one status per code on HTTP and on gRPC, from the
// one table, with a retry hint exactly when a retry can help; a bug answers retryable (503 /
// UNAVAILABLE + RetryInfo) so senders keep their data, and the next request still goes through.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from '../../src/component/index.ts';
import { MemoryBudget, OtlpGrpcReceiver, OtlpHttpReceiver, OtlpIngest } from '../../src/receivers/index.ts';
import { type ErrorCode, ERRORS, MetricsRegistry, ScorecarError, silentLogger } from '../../src/util/index.ts';
import { jsonToProtobuf, type OtlpBatch, retryDelayFromStatus } from '../../src/wire/index.ts';

/** The next stage: refuses with a code, fails with a plain Error (a bug), or takes the batch. */
let behaviour: { refuse?: ErrorCode; bug?: boolean } = {};
const taken: OtlpBatch[] = [];
const next: Consumer<OtlpBatch> = {
  consume(batch) {
    if (behaviour.bug) throw new TypeError("Cannot read properties of undefined (reading 'x')");
    if (behaviour.refuse) throw new ScorecarError(behaviour.refuse, `refused: ${behaviour.refuse}`);
    taken.push(batch);
  },
};

let http: OtlpHttpReceiver;
let rpc: OtlpGrpcReceiver;
let client: grpc.Client;
const identity = (b: Buffer): Buffer => b;
const PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function body(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex') }] }] }] }));
}

function callGrpc(b: Buffer): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.makeUnaryRequest(PATH, identity, identity, b, new grpc.Metadata(), {}, (err) => resolve(err)));
}

async function postHttp(b: Buffer): Promise<Response> {
  return fetch(`http://127.0.0.1:${http.address()!.port}/v1/traces`, { method: 'POST', body: b, headers: { 'content-type': 'application/x-protobuf' } });
}

beforeAll(async () => {
  const metrics = new MetricsRegistry();
  const ingest = new OtlpIngest({ next, metrics, log: silentLogger });
  const budget = new MemoryBudget(64 * 1024 * 1024);
  http = new OtlpHttpReceiver({ endpoint: '127.0.0.1:0', maxRequestBodyBytes: 1 << 20, retryAfterSeconds: 2 }, ingest, budget, metrics, silentLogger);
  rpc = new OtlpGrpcReceiver({ endpoint: '127.0.0.1:0', maxRecvMsgSizeBytes: 1 << 20, retryAfterSeconds: 2 }, ingest, budget, metrics, silentLogger);
  await http.start();
  await rpc.start();
  client = new grpc.Client(`127.0.0.1:${rpc.address()!.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await Promise.all([http?.shutdown(), rpc?.shutdown()]);
});

const REFUSALS: ErrorCode[] = ['QUEUE_FULL', 'MEMORY_BUDGET_FULL', 'SHUTTING_DOWN', 'OVERLOADED', 'PAYLOAD_TOO_LARGE', 'INVALID_ARGUMENT'];

describe('receiver statuses come from the one error table', () => {
  it.each(REFUSALS)('a %s refusal: its HTTP status and gRPC code, a retry hint only when retryable', async (code) => {
    behaviour = { refuse: code };
    const spec = ERRORS[code];
    const res = await postHttp(body());
    await res.arrayBuffer();
    expect(res.status).toBe(spec.http);
    expect(res.headers.get('retry-after')).toBe(spec.retryable ? '2' : null);
    const err = await callGrpc(body());
    expect(err?.code).toBe(spec.grpc);
    const details = err?.metadata.get('grpc-status-details-bin')[0];
    expect(details instanceof Buffer ? retryDelayFromStatus(details) : undefined).toBe(spec.retryable ? 2000 : undefined);
  });

  it('a bug of ours answers retryable: 503 + Retry-After and UNAVAILABLE + RetryInfo, and the next request goes through', async () => {
    behaviour = { bug: true };
    const res = await postHttp(body());
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.text()).toContain('retry later');
    const err = await callGrpc(body());
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    const details = err?.metadata.get('grpc-status-details-bin')[0];
    expect(details instanceof Buffer ? retryDelayFromStatus(details) : undefined).toBe(2000);
    behaviour = {};
    const n = taken.length;
    expect((await postHttp(body())).status).toBe(200);
    expect(await callGrpc(body())).toBeNull();
    expect(taken.length).toBe(n + 2);
  });
});
