// Scorers page: every scorer of the experiment with its sampling, health, last verdicts and
// quality over the last hour and day; register (every definition type), start/update (rate
// slider, filter checked live), stop, delete, the experiment's kill switch, and "try before you
// start" (a dry run on the newest archived traces: verdicts shown, nothing emitted).
import {
  ApiError,
  type Assessment,
  type CheckError,
  api,
  enc,
  type Quality,
  type QualitySeries,
  qs,
  type Scorer,
} from './api.ts';
import { definitionEditor, TYPES } from './editor.ts';
import {
  announce,
  caretAt,
  confirmDialog,
  debounce,
  field,
  fmtNumber,
  fmtPercent,
  h,
  labelCells,
  render,
  uid,
} from './dom.ts';
import type { PageContext } from './main.ts';

// The registry's scorer name rule (definitions SCORER_NAME_PATTERN), checked before sending.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function typeLabel(t: string): string {
  return TYPES.find(([v]) => v === t)?.[1] ?? t;
}

/** A verdict as a short chip: its value, or its error code. */
export function verdictChip(a: Assessment): HTMLElement {
  if (a.error)
    return h('span', { class: 'chip err', title: `${a.error.code}: ${a.error.message}` }, a.error.code);
  const v = a.value;
  const good = v === true || v === 'yes';
  const bad = v === false || v === 'no';
  const text = typeof v === 'number' ? fmtNumber(v, 3) : String(v);
  return h('span', { class: `chip ${good ? 'pass' : bad ? 'fail' : ''}`, title: a.rationale ?? text }, text);
}

/** The summary of a scorer's series in one bucket: pass rate or mean, and its band. */
function summary(series: QualitySeries | undefined): {
  text: string;
  title: string;
  errors: number;
  count: number;
  tokens: number;
  cost: number;
} {
  const p = series?.points[0];
  if (!series || !p) return { text: '–', title: 'no assessments', errors: 0, count: 0, tokens: 0, cost: 0 };
  const fmt = series.kind === 'pass_rate' ? fmtPercent : (n: number | null) => fmtNumber(n, 3);
  const band = p.lower !== null && p.upper !== null ? ` (95% ${fmt(p.lower)}–${fmt(p.upper)})` : '';
  return {
    text: p.estimate === null ? '–' : fmt(p.estimate),
    title: `${series.kind === 'pass_rate' ? 'pass rate' : 'mean'} over ${p.count} assessments${band}`,
    errors: p.errors,
    count: p.count,
    tokens: p.inputTokens + p.outputTokens,
    cost: p.cost,
  };
}

export async function scorersPage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const exp = ctx.experiment;
  const heading = h('h1', {}, 'Scorers');
  const tableWrap = h('div', { class: 'table-wrap' });
  const registerBox = registerPanel(ctx);
  const tryBox = h('section', { class: 'card', 'aria-labelledby': 'try-title', hidden: true });
  const kill = h(
    'button',
    { type: 'button', class: 'danger', disabled: !exp },
    'Stop all scorers (kill switch)',
  );
  render(
    root,
    h('div', { class: 'page-head' }, heading, kill),
    exp ? h('p', { class: 'muted' }, `Experiment ${exp}`) : null,
    tableWrap,
    registerBox,
    tryBox,
  );

  kill.addEventListener('click', async () => {
    const ok = await confirmDialog(
      'Stop every scorer?',
      h(
        'p',
        {},
        `Every active scorer of experiment ${exp} stops sampling at once (sample rate 0). They stay registered and can be started again.`,
      ),
      'Stop all',
    );
    if (!ok) return;
    const r = await api<{ stopped: Scorer[] }>(`/experiments/${enc(exp)}/scorers:stop-all`, {
      method: 'POST',
    });
    announce(`Stopped ${r.stopped.length} scorer(s)`);
    await load();
  });

  let scorers: Scorer[] = [];
  const load = async (): Promise<void> => {
    if (!exp) {
      render(
        tableWrap,
        h('p', { class: 'muted' }, 'No experiment yet: register a scorer below to create one.'),
      );
      return;
    }
    const now = Date.now();
    const [list, hour, day, recent] = await Promise.all([
      api<{ scorers: Scorer[] }>(`/experiments/${enc(exp)}/scorers`).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return { scorers: [] as Scorer[] };
        throw e;
      }),
      api<Quality>(
        `/experiments/${enc(exp)}/quality${qs({ startTime: now - 3_600_000, endTime: now, step: 3600 })}`,
      ),
      api<Quality>(
        `/experiments/${enc(exp)}/quality${qs({ startTime: now - 86_400_000, endTime: now, step: 86_400 })}`,
      ),
      api<{ assessments: Assessment[] }>(`/experiments/${enc(exp)}/assessments${qs({ maxResults: 200 })}`),
    ]);
    scorers = list.scorers;
    const seriesOf = (q: Quality, s: Scorer) =>
      q.series.find((x) => x.scorer.name === s.name && x.scorer.version === s.version);
    if (scorers.length === 0) {
      render(tableWrap, h('p', { class: 'muted' }, 'No scorers in this experiment yet.'));
      return;
    }
    const rows = scorers.map((s) => {
      const hs = summary(seriesOf(hour, s));
      const ds = summary(seriesOf(day, s));
      const last = recent.assessments.filter((a) => a.scorer.name === s.name).slice(0, 5);
      const health = s.health?.state ?? 'ok';
      return h(
        'tr',
        { 'data-scorer': s.name },
        h('th', { scope: 'row' }, s.name),
        h('td', {}, typeLabel(s.definition.type)),
        h('td', { class: 'num' }, s.version),
        h('td', {}, h('span', { class: `badge ${s.status}` }, s.status)),
        h('td', { class: 'num' }, s.sampleRate > 0 ? fmtPercent(s.sampleRate) : '0'),
        h(
          'td',
          { class: 'filter' },
          s.filterString ? h('code', {}, s.filterString) : h('span', { class: 'muted' }, 'all traces'),
        ),
        h(
          'td',
          {},
          h(
            'span',
            { class: `badge health-${health}`, title: s.health?.message ?? '' },
            health === 'paused' ? 'budget paused' : health,
            s.health?.code ? ` (${s.health.code})` : '',
          ),
        ),
        h(
          'td',
          { class: 'verdicts' },
          last.length ? last.map(verdictChip) : h('span', { class: 'muted' }, 'none yet'),
        ),
        h('td', { class: 'num', title: hs.title }, hs.text),
        h('td', { class: 'num', title: ds.title }, ds.text),
        h('td', { class: 'num' }, ds.count ? fmtPercent(ds.errors / ds.count) : '–'),
        h(
          'td',
          { class: 'num' },
          ds.tokens ? fmtNumber(ds.tokens, 0) : '–',
          ds.cost ? h('br') : null,
          ds.cost ? `$${fmtNumber(ds.cost, 4)}` : null,
        ),
        h('td', { class: 'actions' }, ...actions(s)),
      );
    });
    render(
      tableWrap,
      labelCells(
        h(
          'table',
          { class: 'scorers' },
          h('caption', { class: 'sr-only' }, `Scorers of experiment ${exp}`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...[
                'Name',
                'Type',
                'Version',
                'Status',
                'Rate',
                'Filter',
                'Health',
                'Last verdicts',
                'Last hour',
                'Last day',
                'Errors (day)',
                'Tokens / cost (day)',
                'Actions',
              ].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h('tbody', {}, ...rows),
        ),
      ),
    );
  };

  const actions = (s: Scorer): HTMLElement[] => [
    h(
      'button',
      { type: 'button', class: 'primary', onclick: () => void startDialog(exp, s, load) },
      s.status === 'active' ? 'Update' : 'Start',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        disabled: s.status !== 'active',
        onclick: async () => {
          await api(`/experiments/${enc(exp)}/scorers/${enc(s.name)}/stop`, { method: 'POST' });
          announce(`Stopped ${s.name}`);
          await load();
        },
      },
      'Stop',
    ),
    h(
      'button',
      { type: 'button', class: 'secondary', onclick: () => void tryPanel(tryBox, exp, { name: s.name }) },
      'Try',
    ),
    h(
      'button',
      { type: 'button', class: 'danger', onclick: () => void deleteDialog(exp, s, load) },
      'Delete',
    ),
  ];

  registerBox.addEventListener('registered', async (ev) => {
    const name = (ev as CustomEvent<string>).detail;
    if (!exp || !scorers.length)
      await ctx.refreshExperiments(
        (registerBox.querySelector('[name=experiment]') as HTMLInputElement | null)?.value || exp,
      );
    announce(`Registered ${name}`);
    await load();
  });
  registerBox.addEventListener(
    'try',
    (ev) =>
      void tryPanel(tryBox, exp || 'default', {
        definition: (ev as CustomEvent<Record<string, unknown>>).detail,
      }),
  );
  await load();
  // Health, verdicts and rates move while the page is open.
  const timer = setInterval(() => void load().catch(() => {}), 10_000);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
}

function registerPanel(ctx: PageContext): HTMLElement {
  const exp = ctx.experiment;
  const box = h('section', { class: 'card', 'aria-labelledby': 'reg-title' });
  const name = h('input', {
    type: 'text',
    name: 'name',
    required: true,
    autocomplete: 'off',
    pattern: NAME.source,
  }) as HTMLInputElement;
  const expInput = h('input', {
    type: 'text',
    name: 'experiment',
    value: exp || 'default',
    autocomplete: 'off',
  }) as HTMLInputElement;
  const summaryEl = h('div', { class: 'form-errors', role: 'alert' });
  const editor = definitionEditor((errors) => showUnplaced(errors));
  const showUnplaced = (errors: CheckError[]) => {
    const rest = editor.showErrors(errors);
    render(summaryEl, ...rest.map((e) => h('p', { class: 'error' }, `${e.path}: ${e.message}`)));
  };
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Register');
  const tryBtn = h('button', { type: 'button', class: 'secondary' }, 'Try on archived traces');
  const form = h(
    'form',
    { class: 'register', novalidate: true },
    h(
      'div',
      { class: 'row' },
      field('Name', name, 'Letters, digits, _ . - (a new version if the name exists)'),
      exp ? null : field('Experiment', expInput),
    ),
    editor.el,
    summaryEl,
    h('div', { class: 'actions' }, submit, tryBtn),
  );
  render(box, h('h2', { id: 'reg-title' }, 'Register a scorer'), form);
  tryBtn.addEventListener('click', () =>
    box.dispatchEvent(new CustomEvent('try', { detail: editor.value() })),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const target = exp || expInput.value.trim();
    if (!NAME.test(name.value)) {
      name.setAttribute('aria-invalid', 'true');
      render(
        summaryEl,
        h(
          'p',
          { class: 'error' },
          'Name: a letter or digit, then letters, digits, _ . - (up to 64 characters)',
        ),
      );
      name.focus();
      return;
    }
    name.removeAttribute('aria-invalid');
    submit.setAttribute('disabled', '');
    try {
      await api(`/experiments/${enc(target)}/scorers`, {
        method: 'POST',
        body: { name: name.value, definition: editor.value() },
      });
      showUnplaced([]);
      box.dispatchEvent(new CustomEvent('registered', { detail: name.value }));
      name.value = '';
    } catch (e) {
      if (e instanceof ApiError && Array.isArray(e.details.errors))
        showUnplaced(e.details.errors as CheckError[]);
      else render(summaryEl, h('p', { class: 'error' }, e instanceof Error ? e.message : String(e)));
    } finally {
      submit.removeAttribute('disabled');
    }
  });
  return box;
}

/** Start (or update) sampling: a rate slider and a filter string checked as it is typed. */
async function startDialog(exp: string, s: Scorer, done: () => Promise<void>): Promise<void> {
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'start-title' });
  const initial = s.sampleRate > 0 ? s.sampleRate : 0.1;
  const slider = h('input', {
    type: 'range',
    id: uid('rate'),
    min: 1,
    max: 100,
    step: 1,
    value: Math.round(initial * 100),
    name: 'rate',
  }) as HTMLInputElement;
  const out = h('output', { for: slider.id }, `${slider.value}%`);
  const filter = h('input', {
    type: 'text',
    name: 'filter',
    value: s.filterString ?? '',
    autocomplete: 'off',
    spellcheck: 'false',
    class: 'mono',
  }) as HTMLInputElement;
  const filterMsg = h('div', { class: 'filter-msg', 'aria-live': 'polite', id: uid('fm') });
  filter.setAttribute('aria-describedby', filterMsg.id);
  const err = h('p', { class: 'error', role: 'alert' });
  const go = h('button', { type: 'submit', class: 'primary' }, s.status === 'active' ? 'Update' : 'Start');
  slider.addEventListener('input', () => {
    out.textContent = `${slider.value}%`;
  });
  let filterOk = true;
  const checkFilter = async () => {
    const text = filter.value;
    if (!text.trim()) {
      filterOk = true;
      filter.removeAttribute('aria-invalid');
      render(filterMsg, h('span', { class: 'muted' }, 'Every trace is eligible.'));
      return;
    }
    const r = await api<{ errors: CheckError[] }>('/scorers:validate', {
      method: 'POST',
      body: { filterString: text },
    });
    if (filter.value !== text) return;
    filterOk = r.errors.length === 0;
    if (filterOk) {
      filter.removeAttribute('aria-invalid');
      render(filterMsg, h('span', { class: 'ok' }, 'Filter OK'));
    } else {
      filter.setAttribute('aria-invalid', 'true');
      const e = r.errors[0]!;
      render(
        filterMsg,
        e.position !== undefined ? caretAt(text, e.position) : null,
        h('p', { class: 'error' }, e.message),
      );
    }
  };
  filter.addEventListener(
    'input',
    debounce(() => void checkFilter().catch(() => {}), 250),
  );
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: 'start-title' }, `${s.status === 'active' ? 'Update' : 'Start'} ${s.name}`),
    h(
      'div',
      { class: 'field' },
      h('label', { for: slider.id }, 'Sample rate'),
      h('div', { class: 'slider' }, slider, out),
    ),
    field('Filter string', filter, "MLflow search syntax, e.g. trace.status = 'OK' AND tag.env = 'prod'"),
    filterMsg,
    err,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => close() }, 'Cancel'),
      go,
    ),
  );
  const close = () => {
    dlg.close();
    dlg.remove();
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await checkFilter().catch(() => {});
    if (!filterOk) {
      filter.focus();
      return;
    }
    const body = {
      sampleRate: Number(slider.value) / 100,
      filterString: filter.value.trim() ? filter.value : null,
    };
    try {
      if (s.status === 'active')
        await api(`/experiments/${enc(exp)}/scorers/${enc(s.name)}`, { method: 'PATCH', body });
      else
        await api(`/experiments/${enc(exp)}/scorers/${enc(s.name)}/start`, {
          method: 'POST',
          body: { ...body, filterString: body.filterString ?? undefined },
        });
      close();
      announce(`${s.name}: sampling ${slider.value}%`);
      await done();
    } catch (e) {
      err.textContent = e instanceof Error ? e.message : String(e);
    }
  });
  dlg.addEventListener('cancel', close);
  render(dlg, form);
  document.body.appendChild(dlg);
  dlg.showModal();
  void checkFilter().catch(() => {});
}

async function deleteDialog(exp: string, s: Scorer, done: () => Promise<void>): Promise<void> {
  const versions = await api<{ versions: Scorer[] }>(
    `/experiments/${enc(exp)}/scorers/${enc(s.name)}/versions`,
  );
  const which = h(
    'select',
    {},
    h('option', { value: 'all' }, 'All versions'),
    ...versions.versions.map((v) => h('option', { value: v.version }, `Version ${v.version}`)),
  ) as HTMLSelectElement;
  const ok = await confirmDialog(
    `Delete ${s.name}?`,
    h(
      'div',
      {},
      h('p', {}, 'Its assessments stay; the scorer and its sampling config go.'),
      field('Delete', which),
    ),
    'Delete',
  );
  if (!ok) return;
  await api(`/experiments/${enc(exp)}/scorers/${enc(s.name)}${qs({ version: which.value })}`, {
    method: 'DELETE',
  });
  announce(`Deleted ${s.name} (${which.value === 'all' ? 'all versions' : `version ${which.value}`})`);
  await done();
}

/** Try before you start: score the newest archived traces, show the verdicts, emit nothing. */
async function tryPanel(
  box: HTMLElement,
  exp: string,
  what: { name?: string; definition?: Record<string, unknown> },
): Promise<void> {
  const limit = h('input', { type: 'number', min: 1, max: 20, value: 5, name: 'limit' }) as HTMLInputElement;
  const source = h(
    'select',
    { name: 'source' },
    h('option', { value: 'archive' }, 'Archived traces'),
    h('option', { value: 'recent' }, 'Recent traces (admin.ui.recentTraces)'),
  ) as HTMLSelectElement;
  const results = h('div', { 'aria-live': 'polite' });
  const run = h('button', { type: 'submit', class: 'primary' }, 'Run');
  const form = h(
    'form',
    { class: 'row' },
    field('Traces from', source),
    field('How many (newest first)', limit),
    h('div', { class: 'actions' }, run),
  );
  box.hidden = false;
  render(
    box,
    h('h2', { id: 'try-title' }, `Try ${what.name ?? 'the definition'} before you start`),
    h(
      'p',
      { class: 'muted' },
      'Runs the scorer on the newest archived or recent traces and shows its verdicts here only: nothing is emitted or stored (judges are called).',
    ),
    form,
    results,
  );
  box.scrollIntoView({ block: 'nearest' });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    run.setAttribute('disabled', '');
    render(results, h('p', { class: 'muted' }, 'Scoring…'));
    try {
      const r = await api<{
        results: Array<{ traceId: string; requestPreview: string | null; assessments: Assessment[] }>;
      }>(`/experiments/${enc(exp)}/scorers:try`, {
        method: 'POST',
        body: { ...what, limit: Number(limit.value), source: source.value },
      });
      if (r.results.length === 0) {
        render(results, h('p', { class: 'muted' }, 'No traces of this experiment to try it on.'));
        return;
      }
      render(
        results,
        h(
          'table',
          { class: 'try-results' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Trace'),
              h('th', { scope: 'col' }, 'Request'),
              h('th', { scope: 'col' }, 'Verdict'),
              h('th', { scope: 'col' }, 'Rationale'),
            ),
          ),
          h(
            'tbody',
            {},
            ...r.results.map((t) =>
              h(
                'tr',
                {},
                h('td', {}, h('a', { href: `#/trace/${t.traceId}`, class: 'mono' }, t.traceId.slice(0, 12))),
                h('td', { class: 'preview' }, t.requestPreview ?? ''),
                h(
                  'td',
                  {},
                  t.assessments.length
                    ? t.assessments.map(verdictChip)
                    : h('span', { class: 'muted' }, 'not applicable'),
                ),
                h(
                  'td',
                  { class: 'preview' },
                  t.assessments.map((a) => a.rationale ?? a.error?.message ?? '').join(' '),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      render(results, h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e)));
    } finally {
      run.removeAttribute('disabled');
    }
  });
  limit.focus();
}
