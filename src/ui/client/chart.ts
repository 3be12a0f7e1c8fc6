// Time-series charts with uPlot (vendored from the npm package, served from /ui/vendor/), loaded
// on the first chart only. Each chart also gets a text summary (role=img label) and a data
// table, so what it shows is there for screen readers and keyboard users too.
import type uPlot from 'uplot';
import { h } from './dom.ts';

type UPlotCtor = typeof uPlot;
let loading: Promise<UPlotCtor> | undefined;

/** Loads uPlot's script and style sheet once (a classic script: it defines window.uPlot). */
export function loadUPlot(): Promise<UPlotCtor> {
  loading ??= new Promise<UPlotCtor>((resolve, reject) => {
    document.head.appendChild(h('link', { rel: 'stylesheet', href: '/ui/vendor/uplot.css' }));
    const s = h('script', { src: '/ui/vendor/uplot.js' });
    s.addEventListener('load', () => resolve((window as unknown as { uPlot: UPlotCtor }).uPlot));
    s.addEventListener('error', () => reject(new Error('cannot load /ui/vendor/uplot.js')));
    document.head.appendChild(s);
  });
  return loading;
}

/** Colours with at least 4.5:1 contrast on white (WCAG AA for the lines and their legend text). */
export const COLOURS = ['#1d4ed8', '#b45309', '#047857', '#9d174d', '#6d28d9', '#0e7490'];

export interface LineSpec {
  label: string;
  values: Array<number | null>;
  /** A band around this line: [lower, upper] per x. */
  band?: { lower: Array<number | null>; upper: Array<number | null> };
  /** Draw as points (sparse data) as well as a line. */
  points?: boolean;
}

export interface ChartSpec {
  title: string;
  /** Epoch seconds. */
  xs: number[];
  lines: LineSpec[];
  yLabel?: string;
  /** Fixed y range (pass rates: [0, 1]). */
  yRange?: [number, number];
  format?: (v: number) => string;
}

/** Width of the chart's container (the layout decides: full width, or the phone's width). */
function widthOf(el: HTMLElement): number {
  const cs = getComputedStyle(el);
  const inner = el.clientWidth - Number.parseFloat(cs.paddingLeft) - Number.parseFloat(cs.paddingRight);
  return Math.max(240, Math.floor(inner || 600));
}

export async function chart(container: HTMLElement, spec: ChartSpec): Promise<void> {
  const UPlot = await loadUPlot();
  const series: uPlot.Series[] = [{}];
  const data: Array<Array<number | null>> = [spec.xs];
  const bands: uPlot.Band[] = [];
  const whiskers: Whisker[] = [];
  spec.lines.forEach((l, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const idx = data.length;
    series.push({
      label: l.label,
      stroke: colour,
      width: 2,
      spanGaps: false,
      points: { show: l.points ?? true, size: 6, fill: colour },
    });
    data.push(l.values);
    if (l.band) {
      // The band's edges are series too (drawn invisible; their values show in the legend),
      // filled between by uPlot's bands.
      series.push({ label: `${l.label} 95% high`, stroke: 'transparent', points: { show: false } });
      data.push(l.band.upper);
      series.push({ label: `${l.label} 95% low`, stroke: 'transparent', points: { show: false } });
      data.push(l.band.lower);
      whiskers.push({ lower: idx + 2, upper: idx + 1, colour });
      bands.push({ series: [idx + 1, idx + 2], fill: `${colour}33` });
    }
  });
  const fmt = spec.format ?? ((v: number) => String(Number(v.toPrecision(4))));
  const host = h('div', { class: 'chart', role: 'img', 'aria-label': summaryOf(spec, fmt) });
  container.appendChild(
    h('figure', { class: 'figure' }, h('figcaption', {}, spec.title), host, dataTable(spec, fmt)),
  );
  const opts: uPlot.Options = {
    width: widthOf(container),
    height: 220,
    series,
    bands,
    scales: { x: { time: true }, ...(spec.yRange ? { y: { range: spec.yRange } } : {}) },
    axes: [{}, { label: spec.yLabel, values: (_u, vals) => vals.map((v) => fmt(v)), size: 60 }],
    legend: { live: true },
    plugins: whiskers.length ? [whiskerPlugin(whiskers)] : [],
    cursor: { drag: { x: true, y: false } },
  };
  new UPlot(opts, data as uPlot.AlignedData, host);
}

interface Whisker {
  lower: number;
  upper: number;
  colour: string;
}

/**
 * Draws each point's band as a vertical bar too: a filled band needs two neighbouring points,
 * and an isolated bucket (the first one, or one after a gap) would otherwise show no band.
 */
function whiskerPlugin(whiskers: Whisker[]): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 2 * devicePixelRatio;
          for (const w of whiskers) {
            ctx.strokeStyle = w.colour;
            const xs = u.data[0];
            const lo = u.data[w.lower]!;
            const hi = u.data[w.upper]!;
            for (let i = 0; i < xs.length; i++) {
              const a = lo[i];
              const b = hi[i];
              if (a == null || b == null) continue;
              const x = u.valToPos(xs[i]!, 'x', true);
              ctx.beginPath();
              ctx.moveTo(x, u.valToPos(a, 'y', true));
              ctx.lineTo(x, u.valToPos(b, 'y', true));
              ctx.stroke();
            }
          }
          ctx.restore();
        },
      ],
    },
  };
}

function summaryOf(spec: ChartSpec, fmt: (v: number) => string): string {
  const parts = spec.lines.map((l) => {
    const vals = l.values.filter((v): v is number => v !== null);
    const last = vals[vals.length - 1];
    return `${l.label}: ${vals.length} point(s)${last !== undefined ? `, latest ${fmt(last)}` : ''}`;
  });
  return `${spec.title}. ${parts.join('; ')}`;
}

function dataTable(spec: ChartSpec, fmt: (v: number) => string): HTMLElement {
  const rows = spec.xs.map((x, i) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, new Date(x * 1000).toISOString().replace('T', ' ').slice(0, 16)),
      ...spec.lines.map((l) => {
        const v = l.values[i];
        const lo = l.band?.lower[i];
        const hi = l.band?.upper[i];
        return h(
          'td',
          { class: 'num' },
          v === null || v === undefined ? '–' : fmt(v),
          lo != null && hi != null ? ` (${fmt(lo)}–${fmt(hi)})` : '',
        );
      }),
    ),
  );
  const points = spec.lines.reduce((n, l) => n + l.values.filter((v) => v !== null).length, 0);
  return h(
    'details',
    { class: 'chart-data', 'data-points': points },
    h('summary', {}, `Data (${points} points)`),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Time (UTC)'),
          ...spec.lines.map((l) => h('th', { scope: 'col' }, l.label)),
        ),
      ),
      h('tbody', {}, ...rows),
    ),
  );
}
