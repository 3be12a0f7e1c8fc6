// The web UI end to end in a real browser (Debian's Chromium driven by playwright-core) against a
// real scorecar with a token: sign in, register a scorer from the UI (with a code error shown at
// its line first), start it with the rate slider and a filter checked live, send real traces over
// OTLP, see the verdicts inline on the trace page and a point on the quality chart, try a scorer
// without emitting, run a backfill, use the kill switch, stop from the UI. Every page is
// screenshotted at 1280×800 and at phone width (artifacts/ui/), and audited for contrast, labels
// and sideways scrolling.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendBatch } from '../support/archive.ts';
import { ARTIFACTS, browserAvailable, launchBrowser, type TestBrowser } from '../support/browser.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';
import { CONTRAST_AUDIT, fixturesNow, LABEL_AUDIT, OVERFLOW } from '../support/ui.ts';

const EXP = 'chat';
const TOKEN = 'ui-test-token';

describe.skipIf(!browserAvailable())('web UI in Chromium', () => {
  let sc: TestScorecar;
  let b: TestBrowser;
  let page: Page;
  const errors: string[] = [];

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${sc.adminUrl}/api/v1${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'x-scorecar-request': '1',
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
    // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked field by field
    return { status: res.status, body: (await res.json()) as any };
  };
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const go = async (hash: string) => {
    // A string: the test's own types have no DOM.
    await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  };
  /** Contrast, labels and (at phone width) overflow of what is on screen now. */
  const audit = async (what: string) => {
    expect(await page.evaluate(CONTRAST_AUDIT), `${what}: text under 4.5:1 contrast`).toEqual([]);
    expect(await page.evaluate(LABEL_AUDIT), `${what}: controls without a label`).toEqual([]);
  };
  const sendTraces = async (seed: string) => {
    const { body, traceIds } = fixturesNow(seed);
    await sendBatch(sc.httpUrl, body, EXP);
    await sc.app.whenIdle();
    await sc.app.pipeline.archiver.flush();
    return traceIds;
  };

  beforeAll(async () => {
    sc = await startScorecar(`
admin: { token: ${TOKEN} }
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 100, idleTimeoutMs: 1000 }
archive: { commitIntervalMs: 200 }
`);
    expect((await api(`/experiments/${EXP}/archival`, { method: 'POST' })).status).toBe(200);
    // Traces from before any scorer: the archive the dry run and the backfill read.
    await sendTraces('before');
    b = await launchBrowser();
    page = await b.browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
  }, 180_000);

  afterAll(async () => {
    await b?.close();
    await sc?.stop();
  });

  it('asks for the token, refuses a wrong one, then shows the scorers page', async () => {
    await page.goto(`${sc.adminUrl}/`);
    await page.getByLabel('Admin token').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#login-error').textContent()).toContain('not accepted');
    await shot('login');
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Scorers' }).waitFor();
    // The archived experiment is offered before it has scorers.
    expect(await page.locator('#experiment').inputValue()).toBe(EXP);
  });

  it('registers a code scorer from the editor: a syntax error shows at its line, then it registers', async () => {
    await page.getByLabel('Name', { exact: true }).fill('has_output');
    const source = page.getByLabel('Source');
    await source.fill("(ctx) => {\n  return String(ctx.outputs ?? '').length > 0\n  oops(\n}");
    // Live validation through POST /scorers:validate marks the line in the gutter.
    await page
      .locator('.field-error')
      .filter({ hasText: /Line \d+/ })
      .waitFor();
    expect(await source.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.gutter .bad').count()).toBe(1);
    await shot('scorers-register-error');
    await source.fill("(ctx) => String(ctx.outputs ?? '').length > 0");
    await page.locator('.field-error').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Register', exact: true }).click();
    await page.locator('tr[data-scorer="has_output"]').waitFor();
    const s = await api(`/experiments/${EXP}/scorers/has_output`);
    expect(s.body).toMatchObject({ version: 1, status: 'registered', definition: { type: 'code' } });
  });

  it('a prompt judge registered with no [[choices]] gets its message under the template field', async () => {
    await page.getByLabel('Name', { exact: true }).fill('tone');
    await page.getByLabel('Type', { exact: true }).selectOption('prompt');
    await page.getByLabel('Prompt template').fill('Rate {{response}}');
    await page.getByRole('button', { name: 'Register', exact: true }).click();
    const err = page
      .locator('.field')
      .filter({ has: page.getByLabel('Prompt template') })
      .locator('.field-error');
    await err.waitFor();
    expect(await err.textContent()).toMatch(/choice/i);
    expect((await api(`/experiments/${EXP}/scorers/tone`)).status).toBe(404);
    await page.getByLabel('Type', { exact: true }).selectOption('code');
  });

  it('tries the scorer on archived traces without emitting anything', async () => {
    const before = (await sc.app.pipeline.store.count());
    await page.locator('tr[data-scorer="has_output"]').getByRole('button', { name: 'Try' }).click();
    await page.getByLabel('How many (newest first)').fill('3');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.locator('table.try-results tbody tr').first().waitFor();
    expect(await page.locator('table.try-results tbody tr').count()).toBe(3);
    expect(await page.locator('table.try-results .chip').count()).toBeGreaterThanOrEqual(3);
    await shot('scorers-try');
    expect((await sc.app.pipeline.store.count())).toBe(before);
  });

  it('starts the scorer with the slider (keyboard) and a filter checked live', async () => {
    await page.locator('tr[data-scorer="has_output"]').getByRole('button', { name: 'Start' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const slider = dialog.getByLabel('Sample rate');
    await slider.focus();
    await page.keyboard.press('End');
    expect(await dialog.locator('output').textContent()).toBe('100%');
    const filter = dialog.getByLabel('Filter string');
    await filter.fill("trace.status = 'OK' AND");
    await dialog.locator('pre.caret').waitFor();
    expect(await filter.getAttribute('aria-invalid')).toBe('true');
    await shot('scorers-start-filter-error');
    await filter.fill('');
    await dialog.getByText('Every trace is eligible.').waitFor();
    await dialog.getByRole('button', { name: 'Start' }).click();
    await page.locator('tr[data-scorer="has_output"] .badge.active').waitFor();
    expect((await api(`/experiments/${EXP}/scorers/has_output`)).body).toMatchObject({
      status: 'active',
      sampleRate: 1,
    });
  });

  let traceIds: string[] = [];
  it('scores traces sent over OTLP: verdicts on the scorers page', async () => {
    traceIds = await sendTraces('live');
    await waitFor(
      async () => (await Promise.all(traceIds.map((id) => sc.app.pipeline.store.byTrace(id)))).every((a) => a.length > 0),
      60_000,
      'every trace assessed',
    );
    await page.reload();
    await page.locator('tr[data-scorer="has_output"] td.verdicts .chip').first().waitFor();
    await audit('scorers');
    await shot('scorers');
  });

  it('searches traces (a filter error at its position) and shows verdicts inline on their span', async () => {
    await go('#/traces');
    const filter = page.getByLabel('Filter');
    await filter.fill("span.name = 'x' AND AND");
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('#filter-msg pre.caret').waitFor();
    await shot('traces-filter-error');
    await filter.fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('table.traces tbody tr').first().waitFor();
    expect(await page.locator('table.traces tbody tr').count()).toBeGreaterThanOrEqual(traceIds.length);
    await audit('traces');
    await shot('traces');
    // A trace whose content the GenAI view read (the verdict is true), so the page shows real inputs and outputs.
    const byTrace = await Promise.all(traceIds.map((id) => sc.app.pipeline.store.byTrace(id)));
    const shown = traceIds.find((_, i) => byTrace[i]!.some((a) => a.value === true));
    expect(shown).toBeDefined();
    await page.locator(`a[href="#/trace/${shown}"]`).click();
    await page.locator('.waterfall li.span').first().waitFor();
    // The assessment sits inside the span it was made on.
    const inline = page.locator('.waterfall li.span li.assessment[data-assessment="has_output"]');
    await inline.first().waitFor();
    expect(await inline.count()).toBe(1);
    expect(await page.locator('.io section').nth(1).textContent()).not.toMatch(/^Outputs\s*null$/);
    await page.locator('.waterfall summary').first().click();
    await audit('trace');
    await shot('trace');
  });

  it('draws a point with its band on the quality chart', async () => {
    await go('#/quality?range=1h');
    const section = page.locator('section.quality[data-series^="has_output"]');
    await section.waitFor();
    await section.locator('canvas').first().waitFor();
    const data = section.locator('details.chart-data').first();
    expect(Number(await data.getAttribute('data-points'))).toBeGreaterThanOrEqual(1);
    await audit('quality');
    await shot('quality');
  });

  it('starts a backfill and shows it finished', async () => {
    await api(`/experiments/${EXP}/scorers`, {
      method: 'POST',
      body: JSON.stringify({
        name: 'long_output',
        definition: { type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" },
      }),
    });
    await go('#/backfills');
    await page.getByLabel('long_output v1').check();
    await page.getByRole('button', { name: 'Start backfill' }).click();
    await page.locator('table.backfills .badge.bf-succeeded').waitFor({ timeout: 60_000 });
    const jobs = (await api(`/experiments/${EXP}/backfills`)).body.backfills;
    expect(jobs[0]).toMatchObject({ state: 'succeeded' });
    expect(jobs[0].scored).toBeGreaterThan(0);
    await audit('backfills');
    await shot('backfills');
  });

  it('shows the data plane from /metrics', async () => {
    await go('#/status');
    const spansIn = page.getByRole('group', { name: 'Spans in' });
    await spansIn.waitFor();
    // The same number /metrics gives a scraper with the token.
    const text = await (
      await fetch(`${sc.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();
    const accepted = [
      ...text.matchAll(/^scorecar_receiver_accepted_items_total(?:\{[^}]*\})? (\S+)$/gm),
    ].reduce((n, m) => n + Number(m[1]), 0);
    expect(accepted).toBeGreaterThan(0);
    expect(await spansIn.textContent()).toContain(`${accepted.toLocaleString('en')} accepted`);
    await audit('status');
    await shot('status');
  });

  it('stops the scorer from the UI, and the kill switch stops the rest after a confirmation', async () => {
    await go('#/scorers');
    const row = page.locator('tr[data-scorer="has_output"]');
    await row.getByRole('button', { name: 'Stop' }).click();
    await row.locator('.badge.stopped').waitFor();
    expect((await api(`/experiments/${EXP}/scorers/has_output`)).body.status).toBe('stopped');

    await api(`/experiments/${EXP}/scorers/long_output/start`, {
      method: 'POST',
      body: JSON.stringify({ sampleRate: 0.5 }),
    });
    await page.reload();
    await page.locator('tr[data-scorer="long_output"] .badge.active').waitFor();
    await page.getByRole('button', { name: /kill switch/ }).click();
    // Escape cancels: nothing stops.
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect((await api(`/experiments/${EXP}/scorers/long_output`)).body.status).toBe('active');
    await page.getByRole('button', { name: /kill switch/ }).click();
    await shot('scorers-kill-switch');
    await page.getByRole('dialog').getByRole('button', { name: 'Stop all' }).click();
    await page.locator('tr[data-scorer="long_output"] .badge.stopped').waitFor();
    expect((await api(`/experiments/${EXP}/scorers/long_output`)).body.status).toBe('stopped');
  });

  it('deletes one version, then the whole scorer, from the delete dialog', async () => {
    await api(`/experiments/${EXP}/scorers`, {
      method: 'POST',
      body: JSON.stringify({ name: 'long_output', definition: { type: 'code', source: '(ctx) => 2' } }),
    });
    await page.reload();
    const row = page.locator('tr[data-scorer="long_output"]');
    await row.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Delete').selectOption('2');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect
      .poll(async () => (await api(`/experiments/${EXP}/scorers/long_output/versions`)).body.versions?.length)
      .toBe(1);
    await row.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    expect((await api(`/experiments/${EXP}/scorers/long_output`)).status).toBe(404);
  });

  it('is usable at phone width: no sideways scrolling on any page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, hash, ready] of [
      ['scorers', '#/scorers', 'tr[data-scorer]'],
      ['traces', '#/traces', 'table.traces tbody tr'],
      ['trace', `#/trace/${traceIds[0]}`, '.waterfall li.span'],
      ['quality', '#/quality?range=1h', 'section.quality canvas'],
      ['backfills', '#/backfills', 'table.backfills'],
      ['status', '#/status', '.tile'],
    ] as const) {
      await go(hash);
      await page.locator(ready).first().waitFor();
      expect(await page.evaluate(OVERFLOW), `${name} scrolls sideways at 390 px`).toBe(0);
      await shot(`phone-${name}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(errors).toEqual([]);
  });
});
