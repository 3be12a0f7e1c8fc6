// Status: the data plane at a glance, read from /metrics (the same numbers Prometheus scrapes):
// spans/s in and out (from two scrapes), refusals, evictions, queues, the memory budget and the
// downstream exporter's health. Refreshes every few seconds while open.
import { metricsText } from './api.ts';
import { fmtNumber, h, render } from './dom.ts';
import type { PageContext } from './main.ts';
import { byLabel, parseMetrics, type Sample, sum } from './prom.ts';

interface Snapshot {
  at: number;
  samples: Sample[];
}

function bytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function tile(label: string, value: string, note?: string, level: 'ok' | 'warn' | 'bad' = 'ok'): HTMLElement {
  return h(
    'div',
    { class: `tile lvl-${level}`, role: 'group', 'aria-label': label },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, value),
    note ? h('div', { class: 'tile-note' }, note) : null,
  );
}

export async function statusPage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const grid = h('div', { class: 'tiles', 'aria-live': 'polite' });
  const detail = h('div', {});
  render(
    root,
    h('h1', {}, 'Status'),
    h('p', { class: 'muted' }, 'Read from /metrics; rates over the last refresh interval (5 s).'),
    grid,
    detail,
  );
  let prev: Snapshot | undefined;
  const tick = async (): Promise<void> => {
    const now: Snapshot = { at: Date.now(), samples: parseMetrics(await metricsText()) };
    const s = now.samples;
    const rate = (name: string, where: Record<string, string> = {}): string => {
      if (!prev) return '…';
      const dt = (now.at - prev.at) / 1000;
      return `${fmtNumber(Math.max(0, sum(s, name, where) - sum(prev.samples, name, where)) / dt, 1)}/s`;
    };
    const used = sum(s, 'scorecar_memory_budget_used_bytes');
    const limit = sum(s, 'scorecar_memory_budget_limit_bytes');
    const refused = sum(s, 'scorecar_receiver_refused_requests_total');
    const evicted = sum(s, 'scorecar_assembler_traces_evicted_total');
    const dropped = sum(s, 'scorecar_exporter_dropped_items_total');
    const queue = sum(s, 'scorecar_exporter_queue_items');
    // Downstream health from the requests since the last refresh (all-time counts on the first).
    const results = byLabel(s, 'scorecar_exporter_requests_total', 'outcome');
    const before = prev
      ? byLabel(prev.samples, 'scorecar_exporter_requests_total', 'outcome')
      : new Map<string, number>();
    const delta = (k: string) => (results.get(k) ?? 0) - (before.get(k) ?? 0);
    const failed = [...results.keys()].filter((k) => k !== 'ok').reduce((n, k) => n + delta(k), 0);
    const okCount = delta('ok');
    const paused = s
      .filter((x) => x.name === 'scorecar_judge_budget_exhausted' && x.value > 0)
      .map((x) => x.labels.experiment);
    render(
      grid,
      tile(
        'Spans in',
        rate('scorecar_receiver_accepted_items_total'),
        `${fmtNumber(sum(s, 'scorecar_receiver_accepted_items_total'), 0)} accepted`,
      ),
      tile(
        'Spans out',
        rate('scorecar_exporter_sent_items_total'),
        `${fmtNumber(sum(s, 'scorecar_exporter_sent_items_total'), 0)} sent downstream`,
      ),
      tile(
        'Refused requests',
        fmtNumber(refused, 0),
        'memory budget, full queue, shutdown',
        refused > 0 ? 'warn' : 'ok',
      ),
      tile(
        'Evicted traces',
        fmtNumber(evicted, 0),
        'assembler over its byte bound',
        evicted > 0 ? 'warn' : 'ok',
      ),
      tile(
        'Export queue',
        fmtNumber(queue, 0),
        `${fmtNumber(sum(s, 'scorecar_exporter_inflight_items'), 0)} in flight · ${fmtNumber(dropped, 0)} dropped`,
        dropped > 0 ? 'bad' : 'ok',
      ),
      tile(
        'Downstream',
        failed > 0 && okCount === 0 ? 'failing' : failed > 0 ? 'degraded' : 'ok',
        `${fmtNumber(okCount, 0)} ok · ${fmtNumber(failed, 0)} failed requests${prev ? ' (last 5 s)' : ''}`,
        failed > 0 && okCount === 0 ? 'bad' : failed > 0 ? 'warn' : 'ok',
      ),
      tile(
        'Memory budget',
        limit > 0 ? `${Math.round((used / limit) * 100)}%` : '–',
        `${bytes(used)} of ${bytes(limit)}`,
        limit > 0 && used / limit > 0.8 ? 'warn' : 'ok',
      ),
      tile(
        'Scoring queue',
        fmtNumber(sum(s, 'scorecar_scoring_queue_jobs'), 0),
        `${fmtNumber(sum(s, 'scorecar_scoring_jobs_running'), 0)} running · ${rate('scorecar_assessments_total')} assessments`,
      ),
      tile(
        'Judge budget',
        paused.length ? `paused: ${paused.join(', ')}` : 'ok',
        'daily judge budgets',
        paused.length ? 'bad' : 'ok',
      ),
      tile(
        'Process memory',
        bytes(sum(s, 'process_resident_memory_bytes')),
        `heap ${bytes(sum(s, 'nodejs_heap_used_bytes'))}`,
      ),
    );
    const outcomes = byLabel(s, 'scorecar_receiver_requests_total', 'outcome');
    render(
      detail,
      h('h2', {}, 'Receiver requests by outcome'),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h('tr', {}, h('th', { scope: 'col' }, 'Outcome'), h('th', { scope: 'col' }, 'Requests')),
        ),
        h(
          'tbody',
          {},
          ...[...outcomes].map(([k, v]) =>
            h('tr', {}, h('td', {}, k || '(none)'), h('td', { class: 'num' }, fmtNumber(v, 0))),
          ),
        ),
      ),
    );
    prev = now;
  };
  await tick();
  const timer = setInterval(() => void tick().catch(() => {}), 5000);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
}
