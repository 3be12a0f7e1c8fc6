// A strict downstream refuses a whole request (HTTP 400 / gRPC INVALID_ARGUMENT) as soon as it
// holds one span it dislikes. scorecar merges queued requests from different senders into one
// downstream request, so one bad request would take every good one merged with it down. It must
// not: a merged batch refused permanently is split and re-sent, and only the request the
// downstream refuses on its own is dropped and counted.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { spanIdsOf } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const MARKER = 'STRICT-DOWNSTREAM-REFUSES-THIS';
const SENDERS = 4;
const REQUESTS_PER_SENDER = 5;
const SPANS_PER_REQUEST = 10;

interface Strict {
  url: string;
  /** Until open, every request is answered retryable (503 / UNAVAILABLE). */
  open(): void;
  /** Requests refused because of the marker, with how many spans each held. */
  refused: number[];
  unavailable: number;
  accepted: Buffer[];
  close(): Promise<void>;
}

async function startStrictHttp(): Promise<Strict> {
  let isOpen = false;
  const s: Strict = { url: '', open: () => (isOpen = true), refused: [], unavailable: 0, accepted: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!isOpen) {
        s.unavailable++;
        res.writeHead(503, { 'retry-after': '0' }).end();
      } else if (body.includes(MARKER)) {
        s.refused.push(spanIdsOf([body]).length);
        res.writeHead(400).end();
      } else {
        s.accepted.push(body);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return s;
}

async function startStrictGrpc(): Promise<Strict> {
  let isOpen = false;
  const s: Strict = { url: '', open: () => (isOpen = true), refused: [], unavailable: 0, accepted: [], close: async () => {} };
  const identity = (b: Buffer): Buffer => b;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    } as grpc.ServiceDefinition,
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const body = call.request;
        if (!isOpen) {
          s.unavailable++;
          return cb({ code: grpc.status.UNAVAILABLE, details: 'not yet' });
        }
        if (body.includes(MARKER)) {
          s.refused.push(spanIdsOf([body]).length);
          return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad span' });
        }
        s.accepted.push(body);
        cb(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  s.url = `grpc://127.0.0.1:${port}`;
  s.close = () => new Promise((r) => server.tryShutdown(() => r()));
  return s;
}

function spansJson(n: number, bad = false): { json: string; ids: string[] } {
  const traceId = randomBytes(16).toString('hex');
  const ids = Array.from({ length: n }, () => randomBytes(8).toString('hex'));
  const spans = ids.map((spanId, i) => ({
    traceId,
    spanId,
    ...(i ? { parentSpanId: ids[0] } : {}),
    name: bad && i === n - 1 ? MARKER : `span-${i}`,
    attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(200) } }],
  }));
  return { json: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc-${n}` } }] }, scopeSpans: [{ spans }] }] }), ids };
}

/** The senders: two OTLP/HTTP protobuf clients (own connections), one OTLP/HTTP JSON, one OTLP/gRPC. */
function senders(sc: TestScorecar): Array<(json: string) => Promise<void>> {
  const agents = [new http.Agent({ keepAlive: true }), new http.Agent({ keepAlive: true }), new http.Agent({ keepAlive: true })];
  const httpPost = (agent: http.Agent, body: Buffer | string, type: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request(`${sc.httpUrl}/v1/traces`, { method: 'POST', agent, headers: { 'content-type': type } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  const client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  return [
    (json) => httpPost(agents[0]!, jsonToProtobuf('traces', json), 'application/x-protobuf'),
    (json) => httpPost(agents[1]!, jsonToProtobuf('traces', json), 'application/x-protobuf'),
    (json) => httpPost(agents[2]!, json, 'application/json'),
    (json) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', identity, identity, jsonToProtobuf('traces', json), new grpc.Metadata(), {}, (e) =>
          e ? reject(e) : resolve(),
        ),
      ),
  ];
}

describe('a strict downstream refusing one request of a merged batch', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  for (const kind of ['http', 'grpc'] as const) {
    it(`delivers every good span and drops only the bad request (downstream over ${kind})`, async () => {
      const strict = kind === 'http' ? await startStrictHttp() : await startStrictGrpc();
      cleanups.push(() => strict.close());
      // One worker: while it retries the first request against the closed downstream, every
      // other request waits in the queue, so they leave as one merged batch once it opens.
      const sc = await startScorecar(
        `exporters: {otlp: {endpoint: "${strict.url}", queue: {concurrency: 1}, retry: {initialIntervalMs: 20, maxIntervalMs: 50, randomizationFactor: 0}}}`,
      );
      cleanups.push(() => sc.stop());
      const send = senders(sc);
      const good: string[] = [];
      const first = spansJson(SPANS_PER_REQUEST);
      await send[0]!(first.json);
      good.push(...first.ids);
      await waitFor(() => strict.unavailable > 0, 20_000, 'the first request to be tried');

      // The rest, interleaved across the senders, with the bad request in the middle.
      const bad = spansJson(3, true);
      for (let r = 0; r < REQUESTS_PER_SENDER; r++) {
        await Promise.all(
          send.map(async (s, i) => {
            if (r === 0 && i === 0) return; // sent above
            const g = spansJson(SPANS_PER_REQUEST);
            await s(g.json);
            good.push(...g.ids);
          }),
        );
        if (r === 2) await send[1]!(bad.json);
      }
      expect(good.length).toBe(SENDERS * REQUESTS_PER_SENDER * SPANS_PER_REQUEST);
      const accepted = good.length + bad.ids.length;
      expect(await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'traces' })).toBe(accepted);

      strict.open();
      await waitFor(
        async () =>
          (await sc.metric('scorecar_exporter_sent_items_total', { signal: 'traces' })) +
            (await sc.metric('scorecar_exporter_dropped_items_total', { signal: 'traces' })) ===
          accepted,
        30_000,
        'every span sent or dropped',
      );

      // The merged batch was refused as a whole at least once, and the bad request on its own.
      expect(strict.refused.some((n) => n > bad.ids.length), JSON.stringify(strict.refused)).toBe(true);
      expect(strict.refused).toContain(bad.ids.length);
      const arrived = spanIdsOf(strict.accepted);
      expect(arrived.length).toBe(good.length);
      expect([...arrived].sort()).toEqual([...good].sort());
      expect(await sc.metric('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(good.length);
      expect(await sc.metric('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'rejected' })).toBe(bad.ids.length);
      expect(await sc.metric('scorecar_exporter_dropped_items_total')).toBe(bad.ids.length);
    }, 60_000);
  }
});
