// Every item scorecar takes on is somewhere in its metrics, at every scrape: per signal,
//   accepted = sent + dropped + queued + in flight
// where accepted counts what the receivers took (and the emitter's assessment items, transport
// "internal"), sent what reached the downstream, dropped what never will (any reason), queued
// what waits in the export queue and in flight what is being sent or waiting to be retried.
// Checked under overload (slow downstream, many senders, a small queue, both whenFull modes)
// from single scrapes taken while traffic is in flight, and once everything has drained.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, type Signal } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const SIGNALS: readonly Signal[] = ['traces', 'logs'];

/** One /metrics page, summed per family and signal (every other label summed over). */
async function scrapeOnce(adminUrl: string): Promise<(name: string, signal?: Signal, labels?: Record<string, string>) => number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const rows: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([^{ #]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    rows.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return (name, signal, labels = {}) =>
    rows
      .filter((r) => r.name === name && (signal === undefined || r.labels.signal === signal) && Object.entries(labels).every(([k, v]) => r.labels[k] === v))
      .reduce((n, r) => n + r.value, 0);
}

interface Books {
  accepted: number;
  sent: number;
  dropped: number;
  queued: number;
  inFlight: number;
}

function books(m: Awaited<ReturnType<typeof scrapeOnce>>, signal: Signal): Books {
  return {
    accepted: m('scorecar_receiver_accepted_items_total', signal),
    sent: m('scorecar_exporter_sent_items_total', signal),
    dropped: m('scorecar_exporter_dropped_items_total', signal),
    queued: m('scorecar_exporter_queue_items', signal),
    inFlight: m('scorecar_exporter_inflight_items', signal),
  };
}

function tracesBody(spans: number): Buffer {
  const traceId = randomBytes(16).toString('hex');
  const ids = Array.from({ length: spans }, () => randomBytes(8).toString('hex'));
  return jsonToProtobuf(
    'traces',
    JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: ids.map((spanId, i) => ({
                traceId,
                spanId,
                ...(i ? { parentSpanId: ids[0] } : {}),
                name: `s${i}`,
                startTimeUnixNano: '1000',
                endTimeUnixNano: '2000',
                attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(1000) } }],
              })),
            },
          ],
        },
      ],
    }),
  );
}

function logsBody(records: number): Buffer {
  return jsonToProtobuf(
    'logs',
    JSON.stringify({
      resourceLogs: [{ scopeLogs: [{ logRecords: Array.from({ length: records }, (_, i) => ({ body: { stringValue: `r${i} ${'y'.repeat(800)}` } })) }] }],
    }),
  );
}

function post(url: string, body: Buffer, agent: http.Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

describe('exporter accounting under overload', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  for (const whenFull of ['refuse', 'drop'] as const) {
    it(`accepted = sent + dropped + queued + in flight, per signal, at every scrape (whenFull: ${whenFull})`, async () => {
      const capture: CaptureServer = await startHttpCapture();
      cleanups.push(() => capture.close());
      capture.setDelay(400); // a slow downstream: batches stay in flight
      // A code scorer on every trace, so the emitter's assessment items go through the queue too.
      const sc: TestScorecar = await startScorecar(
        `exporters: {otlp: {endpoint: "${capture.url}", queue: {maxBytes: 300000, whenFull: ${whenFull}, concurrency: 2}}}
assembler: {settleMs: 50}
scorers:
  - {experiment: default, name: one, definition: {type: code, source: "(ctx) => 1"}, sampleRate: 1.0}
`,
      );
      cleanups.push(() => sc.stop());

      let stop = false;
      const statuses: Record<number, number> = {};
      const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
      const httpSender = async (i: number): Promise<void> => {
        while (!stop) {
          const traces = i % 3 !== 0;
          const s = await post(`${sc.httpUrl}/v1/${traces ? 'traces' : 'logs'}`, traces ? tracesBody(8) : logsBody(8), agent);
          statuses[s] = (statuses[s] ?? 0) + 1;
          // Pacing after a refusal (not synchronisation): keeps 24 refused senders from spinning.
          if (s !== 200) await new Promise((r) => setTimeout(r, 20));
        }
      };
      const client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure());
      const identity = (b: Buffer): Buffer => b;
      const grpcSender = async (): Promise<void> => {
        while (!stop) {
          const err = await new Promise<grpc.ServiceError | null>((resolve) =>
            client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', identity, identity, tracesBody(8), new grpc.Metadata(), {}, (e) => resolve(e)),
          );
          if (err) await new Promise((r) => setTimeout(r, 20));
        }
      };
      const traffic = Promise.all([...Array.from({ length: 20 }, (_, i) => httpSender(i)), ...Array.from({ length: 4 }, grpcSender)]);

      // Scrapes while traffic flows, until several of them saw items in flight.
      let withInFlight = 0;
      let scrapes = 0;
      try {
        await waitFor(
          async () => {
            const m = await scrapeOnce(sc.adminUrl);
            scrapes++;
            for (const signal of SIGNALS) {
              const b = books(m, signal);
              expect(b.accepted, `${signal} at scrape ${scrapes}: ${JSON.stringify(b)}`).toBe(b.sent + b.dropped + b.queued + b.inFlight);
              if (signal === 'traces' && b.inFlight > 0 && b.queued > 0) withInFlight++;
            }
            // Assessments were handed to the queue: accepted (queued, or dropped under whenFull
            // drop), or refused while it was full (whenFull refuse: not accepted, the emitter counts them).
            const assessments = m('scorecar_receiver_accepted_items_total', undefined, { transport: 'internal' }) + m('scorecar_assessment_export_dropped_total');
            return withInFlight >= 5 && assessments > 0;
          },
          60_000,
          'scrapes with items in flight and assessments queued',
        );
      } finally {
        stop = true;
        await traffic;
        client.close();
        agent.destroy();
      }

      // Overload really happened: refusals (refuse) or drops (drop).
      if (whenFull === 'refuse') expect(statuses[503] ?? 0, JSON.stringify(statuses)).toBeGreaterThan(0);
      else {
        const m = await scrapeOnce(sc.adminUrl);
        expect(m('scorecar_exporter_dropped_items_total', undefined, { reason: 'queue_full' })).toBeGreaterThan(0);
      }

      // After the end: everything sent or dropped, and the books still balance.
      capture.setDelay(0);
      await sc.app.whenIdle();
      const m = await scrapeOnce(sc.adminUrl);
      for (const signal of SIGNALS) {
        const b = books(m, signal);
        expect(b.queued + b.inFlight, signal).toBe(0);
        expect(b.accepted, `${signal} after the end: ${JSON.stringify(b)}`).toBe(b.sent + b.dropped);
      }
      expect(m('scorecar_exporter_sent_items_total', 'traces')).toBe(capture.spanIds().length);
      if (process.env.SCORECAR_TEST_VERBOSE) console.log(whenFull, scrapes, JSON.stringify(statuses), SIGNALS.map((s) => JSON.stringify(books(m, s))).join(' '), m('scorecar_exporter_dropped_items_total'));
    }, 120_000);
  }
});
