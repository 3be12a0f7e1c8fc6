// Kafka never blocks the data plane: with no broker reachable, a kafka-mode sidecar keeps
// answering OTLP requests 200 and forwarding spans; selected jobs wait in the bounded buffer
// (counted in the memory budget) and, once it is full, are dropped and counted — every selected
// job is either buffered or counted as dropped.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { makeTraces, sendTraces } from '../support/kafka-traces.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('kafka mode with the brokers away', () => {
  let sc: TestScorecar;
  let capture: CaptureServer;

  beforeAll(async () => {
    capture = await startHttpCapture();
    sc = await startScorecar(
      `scoring: {mode: kafka}
kafka:
  brokers: ["127.0.0.1:${await deadPort()}"]
  requestTimeoutMs: 1000
  jobs: {bufferBytes: 60000}
exporters: {otlp: {endpoint: "${capture.url}"}}
assembler: {settleMs: 50}
scorers:
  - experiment: away
    name: answer_length
    definition: {type: code, source: "(ctx) => 1"}
    sampleRate: 1.0
`,
    );
  }, 120_000);

  afterAll(async () => {
    await sc?.stop();
    await capture?.close();
  });

  it('accepts and forwards everything, buffers jobs up to the bound, then drops and counts them', async () => {
    const traces = makeTraces(300, 'away');
    await sendTraces(sc.httpUrl, 'away', traces, 50); // throws on anything but 200 (429/503 retried)
    await waitFor(
      async () => (await sc.metric('scorecar_sampler_selected_total')) === 300,
      60_000,
      'every trace selected',
    );
    const published = await sc.metric('scorecar_kafka_jobs_total');
    const dropped = await sc.metric('scorecar_kafka_jobs_dropped_total', { reason: 'buffer_full' });
    expect(published + dropped).toBe(300);
    expect(dropped).toBeGreaterThan(0);
    expect(published).toBeGreaterThan(0);
    // What waits is bounded and counted in the memory budget.
    const buffered = await sc.metric('scorecar_kafka_buffer_bytes', { stream: 'jobs' });
    expect(buffered).toBeGreaterThan(0);
    expect(buffered).toBeLessThanOrEqual(60_000);
    expect(sc.app.pipeline.budget.used()).toBeGreaterThanOrEqual(buffered);
    // The writer keeps trying (with backoff) rather than giving up on what it holds.
    await waitFor(
      async () => (await sc.metric('scorecar_kafka_write_retries_total', { stream: 'jobs' })) > 0,
      30_000,
      'a retried write',
    );
    expect(await sc.metric('scorecar_kafka_written_total', { stream: 'jobs' })).toBe(0);
    // Every span went downstream regardless.
    await waitFor(() => capture.spanIds().length >= 600, 30_000, 'spans forwarded');
  }, 120_000);
});
