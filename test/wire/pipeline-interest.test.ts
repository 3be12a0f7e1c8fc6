// The pipeline over the wire (real receivers, in-process): only traces some scorer may select
// are buffered (the rest are forwarded and never assembled); traces cut by a stop follow
// assembler.onShutdown, and the reason is on their assessments.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Assessment } from '../../src/assessments/index.ts';
import { isSelected } from '../../src/select/index.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startHttpCapture } from '../support/capture.ts';
import { startScorecar, waitFor } from '../support/scorecar.ts';

const SALT = 'scorecar/sampling/v1';

/** `n` traces of 3 spans (root last) in an experiment; returns their ids. */
async function send(url: string, n: number, experiment: string): Promise<string[]> {
  const ids: string[] = [];
  const spans = [];
  for (let i = 0; i < n; i++) {
    const traceId = randomBytes(16).toString('hex');
    ids.push(traceId);
    const root = randomBytes(8).toString('hex');
    for (let k = 0; k < 2; k++) spans.push({ traceId, spanId: randomBytes(8).toString('hex'), parentSpanId: root, name: `child-${k}` });
    spans.push({ traceId, spanId: root, name: 'root', startTimeUnixNano: '1', endTimeUnixNano: '2', attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: '"hi"' } }] });
  }
  const body = jsonToProtobuf(
    'traces',
    JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: experiment } }] }, scopeSpans: [{ spans }] }] }),
  );
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
  expect(res.status).toBe(200);
  return ids;
}

const code = (experiment: string, name: string, rate: number, filter?: string) =>
  `  - {experiment: ${experiment}, name: ${name}, definition: {type: code, source: "(ctx) => 1"}, sampleRate: ${rate}${filter ? `, filterString: "${filter}"` : ''}}\n`;

describe('reassemble only what may be read', () => {
  it('buffers exactly the traces under the highest rate of their experiment; forwards everything', async () => {
    const capture = await startHttpCapture();
    const sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 50}\nscorers:\n` +
        code('chat', 'low', 0.02) +
        code('chat', 'high', 0.1, "trace.name = 'nothing'") +
        code('quiet', 'stopped', 0),
    );
    try {
      const chat = await send(sc.httpUrl, 400, 'chat');
      const quiet = await send(sc.httpUrl, 200, 'quiet');
      const none = await send(sc.httpUrl, 200, 'no-scorers');
      const buffered = chat.filter((id) => isSelected(id, 0.1, SALT)).length;
      await waitFor(async () => (await sc.metric('scorecar_exporter_sent_items_total', { signal: 'traces' })) >= 2400, 20_000, 'all spans forwarded');
      expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'buffered' })).toBe(buffered * 3);
      expect(await sc.metric('scorecar_assembler_spans_total', { outcome: 'not_sampled' })).toBe((400 - buffered) * 3 + (quiet.length + none.length) * 3);
      // Completed, and every view built (selection is final once none waits).
      await waitFor(
        async () =>
          (await sc.metric('scorecar_sampler_traces_total', { experiment: 'chat' })) === buffered &&
          (await sc.metric('scorecar_sampler_queue_traces')) === 0,
        20_000,
        'buffered traces to complete and be selected',
      );
      expect(await sc.metric('scorecar_sampler_selected_total', { experiment: 'chat', scorer: 'low' })).toBe(
        chat.filter((id) => isSelected(id, 0.02, SALT)).length,
      );
      // Every span still reached the downstream, buffered or not.
      expect(capture.spanIds().length).toBeGreaterThanOrEqual(2400);
    } finally {
      await sc.stop();
      await capture.close();
    }
  });
});

describe('traces cut by a stop', () => {
  for (const policy of ['complete', 'drop'] as const) {
    it(`assembler.onShutdown: ${policy}`, async () => {
      const got: Assessment[] = [];
      const sc = await startScorecar(`assembler: {settleMs: 600000, onShutdown: ${policy}}\nscorers:\n${code('cut', 'len', 1)}`, {
        onAssessment: (a) => got.push(a),
      });
      const ids = await send(sc.httpUrl, 20, 'cut');
      await waitFor(async () => (await sc.metric('scorecar_assembler_buffer_traces')) === 20, 10_000, 'twenty buffered traces');
      await sc.stop();
      if (policy === 'complete') {
        expect(got.map((a) => a.traceId).sort()).toEqual([...ids].sort());
        expect(new Set(got.map((a) => a.metadata['scorecar.trace.completion']))).toEqual(new Set(['shutdown']));
      } else {
        expect(got).toEqual([]);
        // The admin server is closed with the pipeline: read the counter from the registry.
        expect((sc.app.metrics.get('scorecar_assembler_traces_dropped_at_shutdown_total') as unknown as { render(): string }).render()).toMatch(
          /scorecar_assembler_traces_dropped_at_shutdown_total 20/,
        );
      }
    });
  }

  it('traces completed normally carry no completion mark', async () => {
    const got: Assessment[] = [];
    const sc = await startScorecar(`assembler: {settleMs: 50}\nscorers:\n${code('ok', 'len', 1)}`, { onAssessment: (a) => got.push(a) });
    try {
      await send(sc.httpUrl, 5, 'ok');
      await waitFor(() => got.length === 5, 10_000, 'five assessments');
      expect(got.every((a) => a.metadata['scorecar.trace.completion'] === undefined)).toBe(true);
    } finally {
      await sc.stop();
    }
  });
});
