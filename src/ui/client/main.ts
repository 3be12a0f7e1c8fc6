// The UI shell: the login form (when the admin port has a token), the experiment switcher, and a
// hash router over the pages (#/scorers, #/traces, #/trace/<id>, #/quality, #/backfills,
// #/status). Hash routes need nothing from the server but / and /ui/…, and reload to the same page.
import { ApiError, api, setToken, token, whenUnauthenticated } from './api.ts';
import { backfillsPage } from './backfills.ts';
import { announce, field, h, render } from './dom.ts';
import { qualityPage } from './quality.ts';
import { scorersPage } from './scorers.ts';
import { statusPage } from './status.ts';
import { tracePage, tracesPage } from './traces.ts';

export interface PageContext {
  /** The experiment chosen in the switcher ('' when there is none yet). */
  experiment: string;
  /** Query parameters of the hash route. */
  params: URLSearchParams;
  /** The path segment after the page name (#/trace/<id>). */
  arg: string;
  /** Aborted when the person leaves the page: stops its polling and requests. */
  signal: AbortSignal;
  /** Re-reads the experiment list (after registering the first scorer of a new one). */
  refreshExperiments(select?: string): Promise<void>;
}

type Page = (root: HTMLElement, ctx: PageContext) => Promise<void> | void;

const PAGES: Record<string, { title: string; page: Page }> = {
  scorers: { title: 'Scorers', page: scorersPage },
  traces: { title: 'Traces', page: tracesPage },
  trace: { title: 'Trace', page: tracePage },
  quality: { title: 'Quality', page: qualityPage },
  backfills: { title: 'Backfills', page: backfillsPage },
  status: { title: 'Status', page: statusPage },
};

const EXP_KEY = 'scorecar.experiment';
const main = document.getElementById('main') as HTMLElement;
const switcher = document.getElementById('experiment') as HTMLSelectElement;
let current: AbortController | undefined;
let loggingIn = false;

async function experiments(): Promise<string[]> {
  const [reg, arch] = await Promise.all([
    api<{ experiments: Array<{ experimentId: string }> }>('/experiments'),
    // Archived experiments without scorers are still searchable.
    api<{ archivals: Array<{ experimentId: string }> }>('/archival').catch(() => ({ archivals: [] })),
  ]);
  return [
    ...new Set([...reg.experiments.map((e) => e.experimentId), ...arch.archivals.map((a) => a.experimentId)]),
  ].sort();
}

async function refreshExperiments(select?: string): Promise<void> {
  const list = await experiments();
  const want = select ?? localStorage.getItem(EXP_KEY) ?? '';
  if (want && !list.includes(want)) list.push(want);
  render(switcher, ...list.map((e) => h('option', { value: e }, e)));
  if (list.length === 0) render(switcher, h('option', { value: '' }, '(none yet)'));
  switcher.value = list.includes(want) ? want : (list[0] ?? '');
  if (switcher.value) localStorage.setItem(EXP_KEY, switcher.value);
}

function route(): { name: string; arg: string; params: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = raw.split('?');
  const [name = 'scorers', ...rest] = path.split('/');
  return {
    name: PAGES[name] ? name : 'scorers',
    arg: decodeURIComponent(rest.join('/')),
    params: new URLSearchParams(query),
  };
}

async function show(): Promise<void> {
  if (loggingIn) return;
  current?.abort();
  const ac = new AbortController();
  current = ac;
  const r = route();
  const spec = PAGES[r.name]!;
  document.title = `${spec.title} · scorecar`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    const active = a.dataset.page === r.name || (r.name === 'trace' && a.dataset.page === 'traces');
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const root = h('div', { class: `page page-${r.name}` });
  render(main, root);
  try {
    await spec.page(root, {
      experiment: switcher.value,
      params: r.params,
      arg: r.arg,
      signal: ac.signal,
      refreshExperiments,
    });
  } catch (e) {
    if (ac.signal.aborted) return;
    if (e instanceof ApiError && e.status === 401) return;
    render(
      root,
      h(
        'p',
        { class: 'error', role: 'alert' },
        `Could not load the page: ${e instanceof Error ? e.message : String(e)}`,
      ),
    );
  }
}

function showLogin(message?: string): void {
  if (loggingIn) return;
  loggingIn = true;
  current?.abort();
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
  }) as HTMLInputElement;
  const err = h('p', { class: 'error', role: 'alert', id: 'login-error' }, message ?? '');
  const form = h(
    'form',
    { class: 'login card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    h(
      'p',
      {},
      'This scorecar has an admin token. Enter it to use the UI; it is kept for this browser tab only.',
    ),
    field('Admin token', input),
    err,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    try {
      await api('/experiments');
      loggingIn = false;
      await refreshExperiments();
      announce('Signed in');
      await show();
    } catch (e) {
      setToken('');
      err.textContent =
        e instanceof ApiError && e.status === 401
          ? 'That token is not accepted.'
          : `Sign-in failed: ${String(e)}`;
      input.focus();
    }
  });
  render(main, form);
  input.focus();
}

whenUnauthenticated(() => showLogin(token() ? 'The token is no longer accepted; sign in again.' : undefined));

switcher.addEventListener('change', () => {
  localStorage.setItem(EXP_KEY, switcher.value);
  void show();
});
window.addEventListener('hashchange', () => void show());

async function boot(): Promise<void> {
  try {
    await refreshExperiments();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return; // the login form is up
    render(main, h('p', { class: 'error', role: 'alert' }, `Cannot reach the API: ${String(e)}`));
    return;
  }
  await show();
}

void boot();
