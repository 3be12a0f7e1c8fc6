// Traces: search of an experiment's archive (filter string with errors at their position, time
// range, order, paging) and the trace page (span waterfall, the GenAI inputs and outputs, every
// assessment inline on the span it is about).
import {
  ApiError,
  type Assessment,
  api,
  enc,
  qs,
  type Span,
  type TraceDetail,
  type TraceInfo,
} from './api.ts';
import { caretAt, field, fmtDuration, fmtTime, h, labelCells, render } from './dom.ts';
import type { PageContext } from './main.ts';
import { verdictChip } from './scorers.ts';

const RANGES: Array<[string, string, number]> = [
  ['1h', 'Last hour', 3_600_000],
  ['24h', 'Last 24 hours', 86_400_000],
  ['7d', 'Last 7 days', 7 * 86_400_000],
  ['30d', 'Last 30 days', 30 * 86_400_000],
  ['all', 'All time', 0],
];

export async function tracesPage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const exp = ctx.experiment;
  const p = ctx.params;
  const filter = h('input', {
    type: 'search',
    name: 'filter',
    value: p.get('filter') ?? '',
    class: 'mono',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: "trace.status = 'OK' AND span.name = 'retrieve'",
  }) as HTMLInputElement;
  const range = h(
    'select',
    { name: 'range' },
    ...RANGES.map(([v, l]) => h('option', { value: v }, l)),
  ) as HTMLSelectElement;
  range.value = p.get('range') ?? '24h';
  const order = h(
    'select',
    { name: 'order' },
    h('option', { value: 'timestamp_ms DESC' }, 'Newest first'),
    h('option', { value: 'timestamp_ms ASC' }, 'Oldest first'),
    h('option', { value: 'execution_time_ms DESC' }, 'Slowest first'),
  ) as HTMLSelectElement;
  order.value = p.get('order') ?? 'timestamp_ms DESC';
  const size = h(
    'select',
    { name: 'size' },
    ...[25, 50, 100].map((n) => h('option', { value: n }, `${n} per page`)),
  ) as HTMLSelectElement;
  const filterMsg = h('div', { class: 'filter-msg', id: 'filter-msg', 'aria-live': 'polite' });
  filter.setAttribute('aria-describedby', 'filter-msg');
  const results = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Result pages' });
  const form = h(
    'form',
    { class: 'search', role: 'search' },
    h('div', { class: 'grow' }, field('Filter', filter), filterMsg),
    field('Time range', range),
    field('Order', order),
    field('Page size', size),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Search')),
  );
  render(
    root,
    h('h1', {}, 'Traces'),
    exp ? null : h('p', { class: 'muted' }, 'No experiment yet.'),
    form,
    results,
    pager,
  );
  if (!exp) return;

  // Tokens of the pages before the current one (the API pages forward only).
  const tokens: Array<string | undefined> = [];
  let pageToken: string | undefined;
  const search = async (): Promise<void> => {
    const span = RANGES.find(([v]) => v === range.value)?.[2] ?? 0;
    const q = qs({
      filter: filter.value.trim(),
      startTime: span ? Date.now() - span : undefined,
      orderBy: order.value,
      maxResults: size.value,
      pageToken,
    });
    filter.removeAttribute('aria-invalid');
    render(filterMsg);
    let page: { traces: TraceInfo[]; nextPageToken?: string };
    try {
      page = await api(`/experiments/${enc(exp)}/traces${q}`, { signal: ctx.signal });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'INVALID_FILTER') {
        filter.setAttribute('aria-invalid', 'true');
        const pos = e.details.position;
        render(
          filterMsg,
          typeof pos === 'number' ? caretAt(filter.value.trim(), pos) : null,
          h('p', { class: 'error', role: 'alert' }, e.message),
        );
        render(results);
        render(pager);
        return;
      }
      if (e instanceof ApiError && e.status === 404) {
        render(
          results,
          h(
            'p',
            { class: 'muted' },
            `Experiment ${exp} is not archived: enable archival (POST /api/v1/experiments/{exp}/archival) to search its traces.`,
          ),
        );
        return;
      }
      throw e;
    }
    if (page.traces.length === 0) render(results, h('p', { class: 'muted' }, 'No traces match.'));
    else render(results, traceTable(page.traces));
    const prev = h(
      'button',
      { type: 'button', class: 'secondary', disabled: tokens.length === 0 },
      'Previous page',
    );
    const next = h(
      'button',
      { type: 'button', class: 'secondary', disabled: !page.nextPageToken },
      'Next page',
    );
    prev.addEventListener('click', () => {
      pageToken = tokens.pop();
      void search();
    });
    next.addEventListener('click', () => {
      tokens.push(pageToken);
      pageToken = page.nextPageToken;
      void search();
    });
    render(pager, prev, h('span', { class: 'muted' }, `Page ${tokens.length + 1}`), next);
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    tokens.length = 0;
    pageToken = undefined;
    // Keep the query in the address, so the search survives a reload and can be shared.
    history.replaceState(
      null,
      '',
      `#/traces${qs({ filter: filter.value.trim(), range: range.value, order: order.value })}`,
    );
    void search();
  });
  await search();
}

function traceTable(traces: TraceInfo[]): HTMLElement {
  return labelCells(
    h(
      'table',
      { class: 'traces' },
      h('caption', { class: 'sr-only' }, 'Archived traces'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Time', 'Trace', 'State', 'Duration', 'Request', 'Response', 'Verdicts'].map((c) =>
            h('th', { scope: 'col' }, c),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        ...traces.map((t) =>
          h(
            'tr',
            {},
            h('td', { class: 'nowrap' }, fmtTime(t.requestTime)),
            h('td', {}, h('a', { href: `#/trace/${t.traceId}`, class: 'mono' }, t.traceId.slice(0, 16))),
            h('td', {}, h('span', { class: `badge state-${t.state}` }, t.state)),
            h('td', { class: 'num' }, fmtDuration(t.executionTimeMs)),
            h('td', { class: 'preview' }, t.requestPreview ?? ''),
            h('td', { class: 'preview' }, t.responsePreview ?? ''),
            h(
              'td',
              { class: 'verdicts' },
              t.assessments.map((a) => h('span', { title: a.name }, verdictChip(a))),
            ),
          ),
        ),
      ),
    ),
  );
}

function json(v: unknown): HTMLElement {
  const text = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  return h('pre', { class: 'json' }, text ?? '');
}

/** Spans in tree order (parents before children, siblings by start), with their depth. */
export function spanTree(spans: readonly Span[]): Array<{ span: Span; depth: number }> {
  const ids = new Set(spans.map((s) => s.spanId));
  const kids = new Map<string | null, Span[]>();
  for (const s of spans) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : null;
    const list = kids.get(parent) ?? [];
    list.push(s);
    kids.set(parent, list);
  }
  for (const l of kids.values()) l.sort((a, b) => a.startTimeUnixMicros - b.startTimeUnixMicros);
  const out: Array<{ span: Span; depth: number }> = [];
  const walk = (parent: string | null, depth: number) => {
    for (const s of kids.get(parent) ?? []) {
      out.push({ span: s, depth });
      walk(s.spanId, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

const GENAI =
  /^(gen_ai\.|llm\.|input\.|output\.|mlflow\.span(Inputs|Outputs)|ai\.(prompt|response)|traceloop\.entity\.(input|output))/;

export async function tracePage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const id = ctx.arg;
  const t = await api<TraceDetail>(`/traces/${enc(id)}`, { signal: ctx.signal });
  const byspan = new Map<string, Assessment[]>();
  for (const a of t.assessments) byspan.set(a.spanId, [...(byspan.get(a.spanId) ?? []), a]);
  const spans = t.spans ?? [];
  const tree = spanTree(spans);
  const t0 = Math.min(...spans.map((s) => s.startTimeUnixMicros));
  const t1 = Math.max(...spans.map((s) => s.endTimeUnixMicros));
  const total = Math.max(1, t1 - t0);
  const spanIds = new Set(spans.map((s) => s.spanId));
  const orphan = t.assessments.filter((a) => !spanIds.has(a.spanId));

  const rows = tree.map(({ span: s, depth }) => {
    const left = ((s.startTimeUnixMicros - t0) / total) * 100;
    const width = Math.max(0.3, ((s.endTimeUnixMicros - s.startTimeUnixMicros) / total) * 100);
    const mine = byspan.get(s.spanId) ?? [];
    const genai = Object.entries(s.attributes).filter(([k]) => GENAI.test(k));
    const other = Object.entries(s.attributes).filter(([k]) => !GENAI.test(k));
    return h(
      'li',
      { class: 'span', 'data-span': s.spanId },
      h(
        'details',
        {},
        h(
          'summary',
          {},
          h(
            'span',
            { class: 'span-name', style: `padding-left:${depth * 1.1}rem` },
            s.name,
            s.status.code === 'STATUS_CODE_ERROR' || s.status.code === 'ERROR'
              ? h('span', { class: 'badge state-ERROR' }, 'error')
              : null,
          ),
          h(
            'span',
            { class: 'bar-track', 'aria-hidden': 'true' },
            h('span', { class: 'bar', style: `left:${left}%;width:${width}%` }),
          ),
          h('span', { class: 'num dur' }, fmtDuration((s.endTimeUnixMicros - s.startTimeUnixMicros) / 1000)),
        ),
        genai.length
          ? h(
              'div',
              { class: 'kv' },
              h('h4', {}, 'GenAI'),
              ...genai.map(([k, v]) => h('div', {}, h('code', {}, k), json(v))),
            )
          : null,
        other.length
          ? h(
              'div',
              { class: 'kv' },
              h('h4', {}, 'Attributes'),
              ...other.map(([k, v]) =>
                h('div', {}, h('code', {}, k), ' ', typeof v === 'string' ? v : JSON.stringify(v)),
              ),
            )
          : null,
      ),
      mine.length ? h('ul', { class: 'assessments' }, ...mine.map(assessmentItem)) : null,
    );
  });

  render(
    root,
    h('p', {}, h('a', { href: '#/traces' }, '← Traces')),
    h('h1', {}, 'Trace ', h('span', { class: 'mono' }, t.traceId)),
    t.info
      ? h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Time'),
          h('dd', {}, fmtTime(t.info.requestTime)),
          h('dt', {}, 'State'),
          h('dd', {}, t.info.state),
          h('dt', {}, 'Duration'),
          h('dd', {}, fmtDuration(t.info.executionTimeMs)),
          h('dt', {}, 'Experiment'),
          h('dd', {}, t.info.experimentId),
          h('dt', {}, 'Assessments'),
          h('dd', {}, String(t.assessments.length)),
        )
      : h('p', { class: 'muted' }, 'This trace is not archived: only its assessments are known.'),
    t.info
      ? h(
          'div',
          { class: 'io' },
          h('section', {}, h('h2', {}, 'Inputs'), json(t.request ?? null)),
          h('section', {}, h('h2', {}, 'Outputs'), json(t.response ?? null)),
        )
      : null,
    spans.length
      ? h(
          'section',
          {},
          h('h2', {}, 'Spans'),
          h(
            'p',
            { class: 'muted' },
            `${spans.length} spans over ${fmtDuration(total / 1000)}; open a span for its attributes.`,
          ),
          h('ul', { class: 'waterfall' }, ...rows),
        )
      : null,
    orphan.length
      ? h(
          'section',
          {},
          h('h2', {}, 'Assessments'),
          h('ul', { class: 'assessments' }, ...orphan.map(assessmentItem)),
        )
      : null,
  );
}

function assessmentItem(a: Assessment): HTMLElement {
  return h(
    'li',
    { class: 'assessment', 'data-assessment': a.name },
    verdictChip(a),
    ' ',
    h('strong', {}, a.name),
    h(
      'span',
      { class: 'muted' },
      ` ${a.scorer.name} v${a.scorer.version} · ${a.source.type === 'LLM_JUDGE' ? a.source.id : 'code'} · sampled at ${(a.sampleRate * 100).toFixed(0)}%`,
    ),
    a.rationale ? h('p', { class: 'rationale' }, a.rationale) : null,
    a.error ? h('p', { class: 'error' }, `${a.error.code}: ${a.error.message}`) : null,
  );
}
