// Zip bombs under the size limit, many at once, against a real scorecar process: each body is a
// valid OTLP request of ~19 MiB that compresses to a few KiB. The receiver charges the memory
// budget for the inflated bytes as they are produced, so the process's peak resident memory stays
// bounded by the budget (plus the process's own footprint) however many arrive together; those
// that do not fit are refused with a retryable status, and every one is accounted for.
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, retryDelayFromStatus } from '../../src/wire/index.ts';
import { type ChildScorecar, scrape, startChild } from '../support/child.ts';

const MiB = 1024 * 1024;
const BUDGET = 64 * MiB;
const SENDERS = 100;

/** A trace request of one span whose attribute is `bytes` of one repeated letter. */
function bomb(bytes: number): { raw: number; gz: Buffer; body: Buffer } {
  const traceId = 'ab'.repeat(16);
  const body = jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: 'cd'.repeat(8), name: 'bomb', attributes: [{ key: 'filler', value: { stringValue: 'a'.repeat(bytes) } }] }] }] }],
    }),
  );
  return { raw: body.length, gz: gzipSync(body, { level: 9 }), body };
}

function post(url: string, body: Buffer, agent: http.Agent): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('concurrent zip bombs over OTLP/HTTP', () => {
  let sc: ChildScorecar;

  beforeAll(async () => {
    sc = await startChild(`limits: {memoryBytes: ${BUDGET}, retryAfterSeconds: 3}\nlogging: {level: warn}`);
  }, 60_000);
  afterAll(() => sc?.kill());

  it(`${SENDERS} senders of 19 MiB bodies in a few KiB: bounded memory, retryable refusals, every one counted`, async () => {
    const b = bomb(19 * MiB);
    expect(b.gz.length).toBeLessThan(64 * 1024);
    const before = sc.rss();
    const agent = new http.Agent({ keepAlive: true, maxSockets: SENDERS });
    const results = await Promise.all(Array.from({ length: SENDERS }, () => post(`${sc.httpUrl}/v1/traces`, b.gz, agent)));
    agent.destroy();
    const peak = sc.peakRss();
    const byStatus: Record<number, number> = {};
    for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    console.log(
      `zip bombs (HTTP): ${JSON.stringify(byStatus)}, ${(b.raw / MiB).toFixed(1)} MiB each from ${(b.gz.length / 1024).toFixed(0)} KiB; RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (budget ${BUDGET / MiB} MiB)`,
    );
    // Taken or refused with a retry hint: nothing else.
    expect(Object.keys(byStatus).sort()).toEqual(['200', '429']);
    expect(results.filter((r) => r.status === 429 && r.retryAfter !== '3')).toEqual([]);
    // What was taken and what was refused adds up, in the receiver's own counters.
    expect(await scrape(sc.adminUrl, 'scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'http' })).toBe(byStatus[200]);
    expect(await scrape(sc.adminUrl, 'scorecar_receiver_refused_requests_total', { transport: 'http', reason: 'memory_budget_full' })).toBe(byStatus[429]);
    expect(await scrape(sc.adminUrl, 'scorecar_memory_budget_used_bytes')).toBe(0);
    // Unbounded, 100 bodies inflated at once would take ~2 GB. Bounded: the budget, the copy the
    // scan makes of a body being taken, and the process itself.
    expect(peak - before).toBeLessThan(5 * BUDGET);
  }, 120_000);
});

describe('concurrent zip bombs over OTLP/gRPC', () => {
  let sc: ChildScorecar;

  beforeAll(async () => {
    sc = await startChild(`limits: {memoryBytes: ${BUDGET}, retryAfterSeconds: 3}\nlogging: {level: warn}`);
  }, 60_000);
  afterAll(() => sc?.kill());

  it(`${SENDERS} calls of 4 MiB messages gzipped to a few KiB: bounded memory, retryable refusals, every one counted`, async () => {
    // Just under the default 4 MiB message limit, which applies after decompression.
    const b = bomb(4 * MiB - 1024);
    const identity = (x: Buffer): Buffer => x;
    // gzip on the wire: the client compresses each message (grpc.default_compression_algorithm 2).
    const clients = Array.from({ length: 10 }, () =>
      new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2, 'grpc.max_send_message_length': -1 }),
    );
    const before = sc.rss();
    const results = await Promise.all(
      Array.from(
        { length: SENDERS },
        (_, i) =>
          new Promise<grpc.ServiceError | null>((resolve) =>
            clients[i % clients.length]!.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', identity, identity, b.body, new grpc.Metadata(), {}, (e) => resolve(e)),
          ),
      ),
    );
    for (const c of clients) c.close();
    const peak = sc.peakRss();
    const byCode: Record<string, number> = {};
    for (const e of results) byCode[e ? grpc.status[e.code]! : 'OK'] = (byCode[e ? grpc.status[e.code]! : 'OK'] ?? 0) + 1;
    console.log(
      `zip bombs (gRPC): ${JSON.stringify(byCode)}, ${(b.raw / MiB).toFixed(1)} MiB messages; RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (budget ${BUDGET / MiB} MiB)`,
    );
    expect(Object.keys(byCode).sort()).toEqual(['OK', 'UNAVAILABLE']);
    // Every refusal carries its retry hint.
    const hints = results.filter((e) => e !== null).map((e) => retryDelayFromStatus(e!.metadata.get('grpc-status-details-bin')[0] as Buffer));
    expect(new Set(hints)).toEqual(new Set([3000]));
    expect(await scrape(sc.adminUrl, 'scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'grpc' })).toBe(byCode.OK);
    expect(await scrape(sc.adminUrl, 'scorecar_receiver_refused_requests_total', { transport: 'grpc', reason: 'memory_budget_full' })).toBe(byCode.UNAVAILABLE);
    expect(await scrape(sc.adminUrl, 'scorecar_memory_budget_used_bytes')).toBe(0);
    // Unbounded, 100 messages inflated at once take ~600 MiB more (grpc-js did, refusing them all).
    expect(peak - before).toBeLessThan(5 * BUDGET);
  }, 120_000);
});
