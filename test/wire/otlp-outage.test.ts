// Downstream outage: with the downstream stopped for 30 s and restarted, spans within the queue
// bound arrive afterwards, exactly once; beyond it, refusals (default) or drops are counted.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const OUTAGE_MS = 30_000;
const REQUESTS = 40;
const SPANS_PER_REQUEST = 10;

function request(): { body: Buffer; ids: string[] } {
  const traceId = randomBytes(16).toString('hex');
  const ids = Array.from({ length: SPANS_PER_REQUEST }, () => randomBytes(8).toString('hex'));
  const spans = ids.map((spanId, i) => ({
    traceId,
    spanId,
    ...(i ? { parentSpanId: ids[0] } : {}),
    name: `span-${i}`,
    attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(900) } }],
  }));
  return { body: jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] })), ids };
}

describe('downstream outage', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('keeps what fits in the queue across a 30 s outage and counts the rest, in both queue modes', async () => {
    const setups: Array<{ mode: 'refuse' | 'drop'; capture: CaptureServer; sc: TestScorecar }> = [];
    for (const mode of ['refuse', 'drop'] as const) {
      const capture = await startHttpCapture();
      const sc = await startScorecar(
        `exporters: {otlp: {endpoint: "${capture.url}", queue: {maxBytes: 150000, whenFull: ${mode}, concurrency: 2}, ` +
          `retry: {initialIntervalMs: 200, maxIntervalMs: 1000, maxElapsedMs: 120000}}}`,
      );
      cleanups.push(async () => {
        await sc.stop();
        await capture.close();
      });
      setups.push({ mode, capture, sc });
    }
    const outageStart = Date.now();
    for (const s of setups) await s.capture.stop();

    const results = new Map<string, { accepted: string[]; refused: string[]; statuses: number[] }>();
    for (const { mode, sc } of setups) {
      const r = { accepted: [] as string[], refused: [] as string[], statuses: [] as number[] };
      for (let i = 0; i < REQUESTS; i++) {
        const { body, ids } = request();
        const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
        await res.arrayBuffer();
        r.statuses.push(res.status);
        if (res.status === 200) r.accepted.push(...ids);
        else {
          expect(res.status).toBe(503);
          expect(res.headers.get('retry-after')).toBe('1');
          r.refused.push(...ids);
        }
      }
      results.set(mode, r);
    }
    // Downstream still down: the exporter keeps retrying.
    await new Promise((w) => setTimeout(w, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
    for (const s of setups) expect(await s.sc.metric('scorecar_exporter_retries_total')).toBeGreaterThan(5);
    for (const s of setups) await s.capture.restart();

    // refuse (default): every accepted span arrives exactly once; refused ones stayed with the sender.
    const refuse = setups[0]!;
    const rr = results.get('refuse')!;
    expect(rr.refused.length).toBeGreaterThan(0);
    expect(rr.accepted.length).toBeGreaterThan(0);
    await waitFor(() => refuse.capture.spanIds().length >= rr.accepted.length, 20_000, 'queued spans to arrive');
    await new Promise((w) => setTimeout(w, 300));
    expect(refuse.capture.spanIds().sort()).toEqual([...rr.accepted].sort());
    expect(await refuse.sc.metric('scorecar_receiver_requests_total', { outcome: '503' })).toBe(rr.refused.length / SPANS_PER_REQUEST);
    expect(await refuse.sc.metric('scorecar_exporter_dropped_items_total')).toBe(0);

    // drop: every request accepted; what fit arrives once, the rest is counted as dropped.
    const drop = setups[1]!;
    const dr = results.get('drop')!;
    expect(dr.statuses.every((s) => s === 200)).toBe(true);
    await waitFor(async () => (await drop.sc.metric('scorecar_exporter_sent_items_total')) + (await drop.sc.metric('scorecar_exporter_dropped_items_total')) === dr.accepted.length, 20_000, 'every span sent or counted');
    await new Promise((w) => setTimeout(w, 300));
    const arrived = drop.capture.spanIds();
    expect(new Set(arrived).size).toBe(arrived.length);
    expect(arrived.length).toBeGreaterThan(0);
    expect(arrived.length).toBeLessThan(dr.accepted.length);
    expect(await drop.sc.metric('scorecar_exporter_dropped_items_total', { reason: 'queue_full' })).toBe(dr.accepted.length - arrived.length);
    expect(await drop.sc.metric('scorecar_exporter_sent_items_total')).toBe(arrived.length);
  }, 90_000);
});
