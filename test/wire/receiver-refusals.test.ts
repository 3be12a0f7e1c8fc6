// Every request refused with a retryable status is counted, by reason, on both receivers:
// scorecar_receiver_refused_requests_total carries those refused before their body was read (a
// full export queue seen by the precheck, a full memory budget, a shutdown), whose items are not
// known; scorecar_receiver_refused_items_total carries the items of those refused after it was.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from '../../src/component/index.ts';
import { MemoryBudget, OtlpGrpcReceiver, OtlpHttpReceiver, OtlpIngest } from '../../src/receivers/index.ts';
import { type Counter, MetricsRegistry, ScorecarError, silentLogger } from '../../src/util/index.ts';
import { jsonToProtobuf, type OtlpBatch, retryDelayFromStatus } from '../../src/wire/index.ts';

const SPANS = 3;
let mode: 'take' | 'precheck-queue-full' | 'budget-full' | 'consume-queue-full' = 'take';
const next: Consumer<OtlpBatch> = {
  consume() {
    if (mode === 'consume-queue-full') throw new ScorecarError('QUEUE_FULL', 'the downstream export queue is full; retry later');
  },
};
const precheck = {
  precheck(): void {
    if (mode === 'precheck-queue-full') throw new ScorecarError('QUEUE_FULL', 'the downstream export queue is full; retry later');
  },
};

const metrics = new MetricsRegistry();
const budget = new MemoryBudget(1 << 20);
budget.addHolder(() => (mode === 'budget-full' ? budget.limit : 0));
let http: OtlpHttpReceiver;
let rpc: OtlpGrpcReceiver;
let client: grpc.Client;
const identity = (b: Buffer): Buffer => b;

function body(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  const spans = Array.from({ length: SPANS }, () => ({ traceId, spanId: randomBytes(8).toString('hex') }));
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }));
}

async function postHttp(): Promise<{ status: number; retryAfter: string | null }> {
  const res = await fetch(`http://127.0.0.1:${http.address()!.port}/v1/traces`, { method: 'POST', body: body(), headers: { 'content-type': 'application/x-protobuf' } });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
}

function callGrpc(): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) =>
    client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', identity, identity, body(), new grpc.Metadata(), {}, (e) => resolve(e)),
  );
}

function refusedRequests(transport: string, reason: string): number {
  return (metrics.get('scorecar_receiver_refused_requests_total') as Counter | undefined)?.get({ signal: 'traces', transport, reason }) ?? 0;
}
function refusedItems(transport: string, reason: string): number {
  return (metrics.get('scorecar_receiver_refused_items_total') as Counter | undefined)?.get({ signal: 'traces', transport, reason }) ?? 0;
}

beforeAll(async () => {
  const ingest = new OtlpIngest({ next, precheck: [precheck], metrics, log: silentLogger });
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

describe('refused requests are counted by reason, whenever they are refused', () => {
  it('a full export queue seen before the body is read: counted as a request, no items', async () => {
    mode = 'precheck-queue-full';
    expect(await postHttp()).toEqual({ status: 503, retryAfter: '2' });
    const e = await callGrpc();
    expect(e?.code).toBe(grpc.status.UNAVAILABLE);
    expect(retryDelayFromStatus(e!.metadata.get('grpc-status-details-bin')[0] as Buffer)).toBe(2000);
    expect([refusedRequests('http', 'export_queue_full'), refusedRequests('grpc', 'export_queue_full')]).toEqual([1, 1]);
    expect([refusedItems('http', 'export_queue_full'), refusedItems('grpc', 'export_queue_full')]).toEqual([0, 0]);
  });

  it('a full export queue seen once the body is read: counted as a request and as its items', async () => {
    mode = 'consume-queue-full';
    expect((await postHttp()).status).toBe(503);
    expect((await callGrpc())?.code).toBe(grpc.status.UNAVAILABLE);
    expect([refusedRequests('http', 'export_queue_full'), refusedRequests('grpc', 'export_queue_full')]).toEqual([2, 2]);
    expect([refusedItems('http', 'export_queue_full'), refusedItems('grpc', 'export_queue_full')]).toEqual([SPANS, SPANS]);
  });

  it('a full memory budget', async () => {
    mode = 'budget-full';
    expect(await postHttp()).toEqual({ status: 429, retryAfter: '2' });
    expect((await callGrpc())?.code).toBe(grpc.status.UNAVAILABLE);
    expect([refusedRequests('http', 'memory_budget_full'), refusedRequests('grpc', 'memory_budget_full')]).toEqual([1, 1]);
  });

  it('a refusal that is not retryable is not a refused request (it is in requests_total)', async () => {
    mode = 'take';
    const res = await fetch(`http://127.0.0.1:${http.address()!.port}/v1/traces`, { method: 'POST', body: 'not protobuf', headers: { 'content-type': 'application/x-protobuf' } });
    await res.arrayBuffer();
    expect(res.status).toBe(400);
    const total = (metrics.get('scorecar_receiver_refused_requests_total') as Counter).total();
    expect(total).toBe(6);
    expect((metrics.get('scorecar_receiver_requests_total') as Counter).get({ signal: 'traces', transport: 'http', outcome: '400' })).toBe(1);
  });

  it('shutting down', async () => {
    http.beginDrain();
    rpc.beginDrain();
    expect((await postHttp()).status).toBe(503);
    expect((await callGrpc())?.code).toBe(grpc.status.UNAVAILABLE);
    expect([refusedRequests('http', 'shutting_down'), refusedRequests('grpc', 'shutting_down')]).toEqual([1, 1]);
  });
});
