// Backfills: start one (scorers, their rates, a time range), watch its progress, cancel it.
import { type Backfill, api, enc, type Scorer } from './api.ts';
import { announce, field, fmtTime, h, render } from './dom.ts';
import type { PageContext } from './main.ts';

const ACTIVE = new Set(['pending', 'running']);

export async function backfillsPage(root: HTMLElement, ctx: PageContext): Promise<void> {
  const exp = ctx.experiment;
  const list = h('div', { class: 'table-wrap', 'aria-live': 'polite' });
  const formBox = h('section', { class: 'card', 'aria-labelledby': 'bf-title' });
  render(
    root,
    h('h1', {}, 'Backfills'),
    exp ? null : h('p', { class: 'muted' }, 'No experiment yet.'),
    formBox,
    list,
  );
  if (!exp) return;

  const scorers = (
    await api<{ scorers: Scorer[] }>(`/experiments/${enc(exp)}/scorers`).catch(() => ({
      scorers: [] as Scorer[],
    }))
  ).scorers;
  const picks = scorers.map((s) => {
    const box = h('input', { type: 'checkbox', name: 'scorer', value: s.name }) as HTMLInputElement;
    const rate = h('input', {
      type: 'number',
      min: 0.01,
      max: 1,
      step: 0.01,
      value: s.sampleRate > 0 ? s.sampleRate : 1,
      'aria-label': `Sample rate for ${s.name}`,
    }) as HTMLInputElement;
    return {
      s,
      box,
      rate,
      el: h('div', { class: 'pick' }, h('label', {}, box, ` ${s.name} v${s.version}`), rate),
    };
  });
  const local = (ms: number) =>
    new Date(ms - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const start = h('input', {
    type: 'datetime-local',
    value: local(Date.now() - 7 * 86_400_000),
  }) as HTMLInputElement;
  // Empty = until the backfill starts (a minute-precision "now" would leave out the last minute).
  const end = h('input', { type: 'datetime-local' }) as HTMLInputElement;
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    {},
    h(
      'fieldset',
      {},
      h('legend', {}, 'Scorers and sample rates'),
      ...(picks.length ? picks.map((p) => p.el) : [h('p', { class: 'muted' }, 'No scorers registered.')]),
    ),
    h('div', { class: 'row' }, field('From', start), field('To', end, 'Empty: up to now')),
    err,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', disabled: !picks.length }, 'Start backfill'),
    ),
  );
  render(
    formBox,
    h('h2', { id: 'bf-title' }, 'Start a backfill'),
    h(
      'p',
      { class: 'muted' },
      'Scores archived traces with the live sampler and filters; traces a scorer version already assessed are skipped.',
    ),
    form,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const chosen = picks
      .filter((p) => p.box.checked)
      .map((p) => ({ name: p.s.name, sampleRate: Number(p.rate.value) }));
    if (chosen.length === 0) {
      err.textContent = 'Choose at least one scorer.';
      return;
    }
    try {
      const job = await api<Backfill>(`/experiments/${enc(exp)}/backfills`, {
        method: 'POST',
        body: {
          scorers: chosen,
          ...(start.value ? { startTime: new Date(start.value).toISOString() } : {}),
          ...(end.value ? { endTime: new Date(end.value).toISOString() } : {}),
        },
      });
      announce(`Backfill ${job.jobId} started`);
      await load();
    } catch (e) {
      err.textContent = e instanceof Error ? e.message : String(e);
    }
  });

  const load = async (): Promise<void> => {
    const r = await api<{ backfills: Backfill[] }>(`/experiments/${enc(exp)}/backfills`, {
      signal: ctx.signal,
    });
    if (r.backfills.length === 0) {
      render(list, h('p', { class: 'muted' }, 'No backfills yet.'));
      return;
    }
    render(
      list,
      h(
        'table',
        { class: 'backfills' },
        h('caption', { class: 'sr-only' }, 'Backfills, newest first'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Job', 'State', 'Scorers', 'Range', 'Progress', 'Scored', 'Skipped', 'Errors', 'ETA', ''].map(
              (c) => h('th', { scope: 'col' }, c),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          ...r.backfills.map((b) => {
            const pct =
              b.tracesTotal > 0
                ? Math.min(100, Math.round((b.tracesScanned / b.tracesTotal) * 100))
                : b.state === 'succeeded'
                  ? 100
                  : 0;
            return h(
              'tr',
              { 'data-job': b.jobId },
              h('td', { class: 'mono' }, b.jobId.slice(0, 12)),
              h(
                'td',
                {},
                h('span', { class: `badge bf-${b.state}` }, b.state),
                b.error ? h('div', { class: 'error' }, b.error) : null,
              ),
              h('td', {}, b.scorers.map((s) => `${s.name}${s.version ? ` v${s.version}` : ''}`).join(', ')),
              h('td', { class: 'nowrap' }, fmtTime(b.startTime), h('br'), fmtTime(b.endTime)),
              h(
                'td',
                {},
                h('progress', { max: 100, value: pct, 'aria-label': `Progress of ${b.jobId}` }),
                ` ${b.tracesScanned}/${b.tracesTotal}`,
              ),
              h('td', { class: 'num' }, b.scored),
              h('td', { class: 'num' }, b.skipped),
              h('td', { class: 'num' }, b.errors),
              h('td', { class: 'num' }, b.etaSeconds != null ? `${b.etaSeconds} s` : '–'),
              h(
                'td',
                {},
                ACTIVE.has(b.state)
                  ? h(
                      'button',
                      {
                        type: 'button',
                        class: 'danger',
                        onclick: async () => {
                          await api(`/backfills/${enc(b.jobId)}/cancel`, { method: 'POST' });
                          announce(`Backfill ${b.jobId} cancelled`);
                          await load();
                        },
                      },
                      'Cancel',
                    )
                  : null,
              ),
            );
          }),
        ),
      ),
    );
  };
  await load();
  const timer = setInterval(() => void load().catch(() => {}), 2000);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
}
