// The metrics registry's bounds: label values cut to a length, at most maxSeries label sets per
// metric with one overflow series beyond (sums kept), and the overflow counted per metric.
import { describe, expect, it } from 'vitest';
import { capLabelValue, MetricsRegistry, OVERFLOW_LABEL_VALUE } from '../../src/util/metrics.ts';

const lines = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('metric series bounds', () => {
  it('folds label sets beyond maxSeries into one overflow series and counts them', () => {
    const m = new MetricsRegistry({ limits: { maxSeries: 3 } });
    const c = m.counter('t_total', 'test', ['who']);
    for (let i = 0; i < 10; i++) c.inc({ who: `w${i}` }, 2);
    c.inc({ who: 'w1' }); // a kept label set stays itself
    const page = m.render();
    expect(lines(page, 't_total')).toEqual([
      't_total{who="w0"} 2',
      't_total{who="w1"} 3',
      't_total{who="w2"} 2',
      `t_total{who="${OVERFLOW_LABEL_VALUE}"} 14`,
    ]);
    expect(c.total()).toBe(21);
    expect(lines(page, 'scorecar_metrics_series_overflow_total')).toEqual(['scorecar_metrics_series_overflow_total{metric="t_total"} 7']);

    const h = m.histogram('t_seconds', 'test', [1], ['who']);
    for (let i = 0; i < 5; i++) h.observe(0.5, { who: `w${i}` });
    expect(h.count({ who: OVERFLOW_LABEL_VALUE })).toBe(2);
    const g = m.gauge('t_gauge', 'test', ['who']);
    for (let i = 0; i < 5; i++) g.set(i, { who: `w${i}` });
    expect(g.get({ who: OVERFLOW_LABEL_VALUE })).toBe(4);
    expect(lines(m.render(), 'scorecar_metrics_series_overflow_total')).toEqual([
      'scorecar_metrics_series_overflow_total{metric="t_total"} 7',
      'scorecar_metrics_series_overflow_total{metric="t_seconds"} 2',
      'scorecar_metrics_series_overflow_total{metric="t_gauge"} 2',
    ]);
  });

  it('bounds label sets read at scrape time: counters sum the rest into overflow, gauges leave it out', () => {
    const m = new MetricsRegistry({ limits: { maxSeries: 2 } });
    const rows = (): Array<[Record<string, string>, number]> => [1, 2, 3, 4].map((i) => [{ k: `v${i}` }, i]);
    m.counterFunc('cb_total', 'test', ['k'], rows);
    m.gauge('cb_gauge', 'test', ['k'], rows);
    const page = m.render();
    expect(lines(page, 'cb_total')).toEqual(['cb_total{k="v1"} 1', 'cb_total{k="v2"} 2', `cb_total{k="${OVERFLOW_LABEL_VALUE}"} 7`]);
    expect(lines(page, 'cb_gauge')).toEqual(['cb_gauge{k="v1"} 1', 'cb_gauge{k="v2"} 2']);
  });

  it('cuts long label values (without splitting a surrogate pair) and keeps them one series', () => {
    const m = new MetricsRegistry({ limits: { maxLabelValueLength: 16 } });
    const c = m.counter('long_total', 'test', ['v']);
    c.inc({ v: 'a'.repeat(1_000_000) });
    c.inc({ v: `${'a'.repeat(15)}b` }); // exactly 16: kept as it is
    c.inc({ v: 'a'.repeat(40) });
    expect(lines(m.render(), 'long_total')).toEqual([`long_total{v="${'a'.repeat(15)}…"} 2`, `long_total{v="${'a'.repeat(15)}b"} 1`]);
    expect(c.get({ v: 'a'.repeat(99) })).toBe(2);
    const cut = capLabelValue(`${'x'.repeat(14)}😀😀`, 16);
    expect(cut).toBe(`${'x'.repeat(14)}…`);
    expect(cut.length).toBeLessThanOrEqual(16);
  });
});
