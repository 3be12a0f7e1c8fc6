// Metric label cardinality over the wire: code scorers whose verdicts are a distinct string per
// trace (long text, and short category-like strings) scored on 2,000 traces, then /metrics read
// as Prometheus would. The series stay few and short, and no assessment goes uncounted.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STRING_LABELS } from '../../src/assessments/emitter.ts';
import { DEFAULT_SERIES_LIMITS } from '../../src/util/metrics.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const TRACES = 2000;
const EXP = 'cardinality';

/** Traces of one root span each whose output is `out-<i>`, sent in requests of 250. */
async function sendTraces(url: string, n: number): Promise<void> {
  for (let start = 0; start < n; start += 250) {
    const spans = [];
    for (let i = start; i < Math.min(n, start + 250); i++) {
      spans.push({
        traceId: randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        name: 'root',
        startTimeUnixNano: '1',
        endTimeUnixNano: '2',
        attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: JSON.stringify(`out-${i}`) } }],
      });
    }
    const body = jsonToProtobuf(
      'traces',
      JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: EXP } }] }, scopeSpans: [{ spans }] }] }),
    );
    const res = await fetch(`${url}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
    expect(res.status).toBe(200);
  }
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a Prometheus text page (label values unescaped). */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line.slice(0, 200)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

describe('assessment labels on /metrics', () => {
  let sc: TestScorecar;
  let page: string;
  beforeAll(async () => {
    sc = await startScorecar(
      `assembler: {settleMs: 20}\nscorers:\n` +
        // A distinct 3,000-character text per trace (a scorer that returns the answer it read).
        `  - {experiment: ${EXP}, name: long_text, definition: {type: code, source: "(ctx) => String(ctx.outputs) + ' ' + 'x'.repeat(3000)"}, sampleRate: 1}\n` +
        // A distinct short string per trace: looks like a category, is not one.
        `  - {experiment: ${EXP}, name: short_text, definition: {type: code, source: "(ctx) => 'v-' + String(ctx.outputs)"}, sampleRate: 1}\n`,
    );
    await sendTraces(sc.httpUrl, TRACES);
    await sc.app.whenIdle();
    page = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  }, 180_000);
  afterAll(async () => {
    await sc.stop();
  });

  it('every assessment is counted, under a bounded set of labels per scorer', () => {
    const total = samples(page).filter((s) => s.name === 'scorecar_assessments_total' && s.labels.experiment === EXP);
    const of = (scorer: string) => total.filter((s) => s.labels.scorer === scorer);
    const sum = (xs: Sample[]) => xs.reduce((a, s) => a + s.value, 0);
    expect(sum(of('long_text'))).toBe(TRACES);
    expect(sum(of('short_text'))).toBe(TRACES);
    // Long text is never a label.
    expect(of('long_text').map((s) => s.labels.label)).toEqual(['other']);
    // Short strings: the first few distinct ones keep their name, the rest share `other`.
    const short = of('short_text');
    expect(short.length).toBe(MAX_STRING_LABELS + 1);
    expect(short.find((s) => s.labels.label === 'other')!.value).toBe(TRACES - MAX_STRING_LABELS);
    for (const s of short.filter((x) => x.labels.label !== 'other')) {
      expect(s.labels.label).toMatch(/^v-out-\d+$/);
      expect(s.value).toBe(1);
    }
  });

  it('no label value on the page is long, no metric has more series than the cap, and the page stays small', () => {
    const all = samples(page);
    const series = new Map<string, number>();
    for (const s of all) {
      for (const [k, v] of Object.entries(s.labels)) expect(v.length, `${s.name}{${k}}`).toBeLessThanOrEqual(DEFAULT_SERIES_LIMITS.maxLabelValueLength);
      series.set(s.name, (series.get(s.name) ?? 0) + 1);
    }
    for (const [name, n] of series) expect(n, name).toBeLessThanOrEqual(DEFAULT_SERIES_LIMITS.maxSeries + 1);
    // 2,000 distinct verdicts as labels would be megabytes (and never freed).
    expect(page.length).toBeLessThan(256 * 1024);
    expect(all.filter((s) => s.name === 'scorecar_assessments_total').length).toBeLessThan(20);
  });
});
