// kill -9 with the downstream down: with exporters.otlp.queue.storage disk, every span scorecar
// acknowledged arrives downstream exactly once after a restart (replayed from the spool, whose
// segments are deleted once sent); with memory, the queued spans are lost, and the last scrape
// before the crash said how many (queue + in flight), as the README's crash table documents.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { type ChildScorecar, scrape, startChild } from '../support/child.ts';
import { waitFor } from '../support/scorecar.ts';

const REQUESTS = 40;
const SPANS_PER_REQUEST = 10;

function request(spans: number): { body: Buffer; ids: string[] } {
  const traceId = randomBytes(16).toString('hex');
  const ids = Array.from({ length: spans }, () => randomBytes(8).toString('hex'));
  const json = {
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: ids.map((spanId, i) => ({
              traceId,
              spanId,
              ...(i ? { parentSpanId: ids[0] } : {}),
              name: `span-${i}`,
              attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(500) } }],
            })),
          },
        ],
      },
    ],
  };
  return { body: jsonToProtobuf('traces', JSON.stringify(json)), ids };
}

async function send(sc: ChildScorecar, spans: number): Promise<string[]> {
  const { body, ids } = request(spans);
  const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return ids;
}

const segments = (dir: string): string[] => {
  try {
    return readdirSync(join(dir, 'export-queue')).filter((f) => f.endsWith('.seg'));
  } catch {
    return [];
  }
};

describe('export queue across kill -9', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  for (const storage of ['disk', 'memory'] as const) {
    it(`storage ${storage}: ${storage === 'disk' ? 'every acknowledged span arrives exactly once after a restart' : 'what was queued is lost, as the last scrape said'}`, async () => {
      const capture: CaptureServer = await startHttpCapture();
      cleanups.push(() => capture.close());
      await capture.stop(); // the downstream is down
      const dir = mkdtempSync(join(tmpdir(), `scorecar-spool-${storage}-`));
      // One worker, so requests leave in queue order: a request sent after the restart arrives
      // after everything replayed before it.
      const yaml =
        `exporters: {otlp: {endpoint: "${capture.url}", queue: {storage: ${storage}, concurrency: 1}, ` +
        `retry: {initialIntervalMs: 100, maxIntervalMs: 400, maxElapsedMs: 600000}}}\nlogging: {level: warn}`;
      const env = { SCORECAR_STORAGE__DIR: dir };

      const first = await startChild(yaml, env);
      cleanups.push(() => first.kill());
      const acknowledged: string[] = [];
      for (let i = 0; i < REQUESTS; i++) acknowledged.push(...(await send(first, SPANS_PER_REQUEST)));
      await waitFor(async () => (await scrape(first.adminUrl, 'scorecar_exporter_retries_total')) > 0, 30_000, 'the downstream to be found down');
      // What a crash would lose now: everything accepted is queued or in flight.
      const text = await (await fetch(`${first.adminUrl}/metrics`)).text();
      const sum = (name: string): number =>
        text
          .split('\n')
          .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
          .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      expect(sum('scorecar_receiver_accepted_items_total')).toBe(acknowledged.length);
      expect(sum('scorecar_exporter_sent_items_total')).toBe(0);
      expect(sum('scorecar_exporter_queue_items') + sum('scorecar_exporter_inflight_items')).toBe(acknowledged.length);
      const spooled = segments(dir);
      if (storage === 'disk') expect(spooled.length).toBeGreaterThan(0);
      else expect(spooled).toEqual([]);

      first.kill(); // SIGKILL
      await waitFor(() => first.proc.exitCode !== null || first.proc.signalCode !== null, 30_000, 'the child to die');
      expect(first.proc.signalCode).toBe('SIGKILL');
      await capture.restart(); // the downstream is back

      const second = await startChild(yaml, env);
      cleanups.push(async () => {
        await second.terminate();
      });
      const probe = await send(second, 1);
      await waitFor(() => capture.spanIds().includes(probe[0]!), 60_000, 'the probe span to arrive');
      const arrived = capture.spanIds();
      if (storage === 'disk') {
        // Replayed first (queue order), then the probe: each exactly once.
        expect(arrived.length).toBe(acknowledged.length + 1);
        expect([...arrived].sort()).toEqual([...acknowledged, ...probe].sort());
        expect(await scrape(second.adminUrl, 'scorecar_receiver_accepted_items_total', { transport: 'spool' })).toBe(acknowledged.length);
        await waitFor(async () => (await scrape(second.adminUrl, 'scorecar_exporter_sent_items_total')) === acknowledged.length + 1, 10_000, 'sent to be counted');
        // The replayed segments are gone once sent.
        for (const f of spooled) expect(segments(dir)).not.toContain(f);
      } else {
        expect(arrived).toEqual(probe);
        expect(await scrape(second.adminUrl, 'scorecar_receiver_accepted_items_total', { transport: 'spool' })).toBe(0);
      }
      expect(await scrape(second.adminUrl, 'scorecar_exporter_dropped_items_total')).toBe(0);
    }, 120_000);
  }
});
