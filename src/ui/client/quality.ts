// Quality: per scorer, the pass rate or mean over time with its 95% band (computed by the API
// from each assessment's inclusion probability: a 10% sample shows a wider band than a 100% one),
// volume and errors, judge latency, tokens and cost; a range picker; versions of one scorer on one
// chart to compare them.
import { api, enc, type Quality, type QualitySeries, qs } from './api.ts';
import { chart } from './chart.ts';
import { field, fmtNumber, fmtPercent, h, render } from './dom.ts';
import type { PageContext } from './main.ts';

const RANGES: Array<[string, string, number, number]> = [
  // value, label, range ms, step s
  ['1h', 'Last hour', 3_600_000, 60],
  ['6h', 'Last 6 hours', 6 * 3_600_000, 300],
  ['24h', 'Last 24 hours', 86_400_000, 900],
  ['7d', 'Last 7 days', 7 * 86_400_000, 3600],
  ['30d', 'Last 30 days', 30 * 86_400_000, 6 * 3600],
];

export async function qualityPage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const exp = ctx.experiment;
  const range = h(
    'select',
    { name: 'range' },
    ...RANGES.map(([v, l]) => h('option', { value: v }, l)),
  ) as HTMLSelectElement;
  range.value = ctx.params.get('range') ?? '24h';
  const scorerSel = h(
    'select',
    { name: 'scorer' },
    h('option', { value: '' }, 'All scorers'),
  ) as HTMLSelectElement;
  const charts = h('div', { class: 'charts' });
  const form = h(
    'form',
    { class: 'row controls' },
    field('Range', range),
    field('Scorer', scorerSel, 'One scorer: its versions are drawn together to compare them.'),
  );
  render(
    root,
    h('h1', {}, 'Quality'),
    exp ? null : h('p', { class: 'muted' }, 'No experiment yet.'),
    form,
    charts,
  );
  if (!exp) return;

  const draw = async (): Promise<void> => {
    const [, , span, step] = RANGES.find(([v]) => v === range.value) ?? RANGES[2]!;
    const end = Date.now();
    const q = await api<Quality>(
      `/experiments/${enc(exp)}/quality${qs({ startTime: end - span, endTime: end, step, scorer: scorerSel.value })}`,
      { signal: ctx.signal },
    );
    // The scorer list offers every scorer with assessments in range.
    const names = [...new Set(q.series.map((s) => s.scorer.name))].sort();
    if (scorerSel.options.length <= 1 || scorerSel.value === '') {
      const keep = scorerSel.value;
      render(
        scorerSel,
        h('option', { value: '' }, 'All scorers'),
        ...names.map((n) => h('option', { value: n }, n)),
      );
      scorerSel.value = keep;
    }
    render(charts);
    if (q.series.length === 0) {
      render(charts, h('p', { class: 'muted' }, 'No assessments in this range.'));
      return;
    }
    // One group per scorer and assessment name; versions are lines within it.
    const groups = new Map<string, QualitySeries[]>();
    for (const s of q.series) {
      const key = `${s.scorer.name} · ${s.name}`;
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    // Every bucket of the range on the x axis, so gaps show as gaps.
    const start = Date.parse(q.startTime) / 1000;
    const xs: number[] = [];
    for (let t = start; t < Date.parse(q.endTime) / 1000; t += q.stepSeconds) xs.push(t);
    for (const [title, list] of groups) {
      const section = h('section', { class: 'card quality', 'data-series': title });
      charts.appendChild(section);
      const latest = list[list.length - 1]!;
      const last = latest.points[latest.points.length - 1];
      section.appendChild(
        h(
          'h2',
          {},
          title,
          h(
            'span',
            { class: 'muted' },
            last
              ? `  latest ${latest.kind === 'pass_rate' ? fmtPercent(last.estimate) : fmtNumber(last.estimate, 3)} over ${last.count} assessments`
              : '',
          ),
        ),
      );
      const at = (s: QualitySeries, pick: (p: QualitySeries['points'][number]) => number | null) => {
        const m = new Map(s.points.map((p) => [Date.parse(p.time) / 1000, p]));
        return xs.map((x) => {
          const p = m.get(x);
          return p ? pick(p) : null;
        });
      };
      const label = (s: QualitySeries) => `v${s.scorer.version}`;
      const isRate = list.every((s) => s.kind === 'pass_rate' || s.kind === 'label');
      if (list.some((s) => s.kind !== 'label')) {
        await chart(section, {
          title: isRate ? 'Pass rate (95% band)' : 'Mean (95% band)',
          xs,
          yRange: isRate ? [0, 1] : undefined,
          format: isRate ? (v) => `${Math.round(v * 100)}%` : undefined,
          lines: list.map((s) => ({
            label: label(s),
            values: at(s, (p) => p.estimate),
            band: { lower: at(s, (p) => p.lower), upper: at(s, (p) => p.upper) },
          })),
        });
      }
      await chart(section, {
        title: 'Volume and errors',
        xs,
        lines: list.flatMap((s) => [
          { label: `${label(s)} scored`, values: at(s, (p) => p.count) },
          { label: `${label(s)} errors`, values: at(s, (p) => p.errors) },
        ]),
      });
      await chart(section, {
        title: 'Scoring latency',
        xs,
        format: (v) => `${Math.round(v)} ms`,
        lines: list.map((s) => ({ label: label(s), values: at(s, (p) => p.latencyMs) })),
      });
      if (list.some((s) => s.points.some((p) => p.inputTokens + p.outputTokens > 0))) {
        await chart(section, {
          title: 'Judge tokens and cost',
          xs,
          lines: list.flatMap((s) => [
            { label: `${label(s)} tokens`, values: at(s, (p) => p.inputTokens + p.outputTokens) },
            { label: `${label(s)} cost`, values: at(s, (p) => p.cost) },
          ]),
        });
      }
    }
  };
  range.addEventListener('change', () => void draw());
  scorerSel.addEventListener('change', () => void draw());
  await draw();
}
