// The admin server's side of the web UI: its files (content types, caching, compression, the
// security headers, the token rule, modules that parse and resolve) and the REST routes the UI
// reads (recent assessments, quality aggregates with inclusion-weighted bands, validation with
// positions, the dry run's refusals), over a real admin server and a real assessment store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminServer, createAdminServer, estimate, qualityRoutes } from '../../src/api/index.ts';
import { assessmentId, type ScoredAssessment, SqliteAssessmentStore } from '../../src/assessments/index.ts';
import { openSqliteRegistry, type Registry } from '../../src/registry/index.ts';
import { validateScorerDefinition } from '../../src/scoring/index.ts';
import { createUiSite } from '../../src/ui/index.ts';
import { MetricsRegistry } from '../../src/util/index.ts';

const TOKEN = 'secret-ui-token';
const EXP = 'q-app';
const HOUR = Date.UTC(2026, 0, 1, 10); // buckets of the aggregates below start here

function scored(
  i: number,
  o: {
    scorer: string;
    version?: number;
    value: ScoredAssessment['assessment']['value'];
    rate: number;
    at: number;
    error?: boolean;
    tokens?: number;
    latencyMs?: number;
  },
): ScoredAssessment {
  const traceId = (i.toString(16) + o.scorer)
    .padEnd(32, '0')
    .slice(0, 32)
    .replace(/[^0-9a-f]/g, 'a');
  const version = o.version ?? 1;
  return {
    assessment: {
      assessmentId: assessmentId(traceId, 'b'.repeat(16), o.scorer, version, o.scorer),
      name: o.scorer,
      traceId,
      spanId: 'b'.repeat(16),
      experimentId: EXP,
      scorer: { name: o.scorer, version },
      source: { type: 'CODE', id: 'code' },
      value: o.error ? null : o.value,
      ...(o.error ? { error: { code: 'CODE_SCORER_ERROR', message: 'boom' } } : {}),
      metadata: {},
      sampleRate: o.rate,
      createdAt: new Date(o.at).toISOString(),
    },
    usage: o.tokens ? { inputTokens: o.tokens, outputTokens: 1, cost: 0.5, attempts: 1 } : undefined,
    latencyMs: o.latencyMs,
  };
}

describe('web UI files and routes on the admin server', () => {
  let dir: string;
  let registry: Registry;
  let store: SqliteAssessmentStore;
  let server: AdminServer;
  let url: string;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
  const api = async (path: string, init: { method?: string; body?: unknown } = {}) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked field by field
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'scorecar-ui-'));
    registry = await openSqliteRegistry({
      dir,
      pollIntervalMs: 0,
      validateDefinition: validateScorerDefinition,
    });
    store = new SqliteAssessmentStore({ dir });
    server = createAdminServer({
      endpoint: '127.0.0.1:0',
      token: TOKEN,
      registry,
      metrics: new MetricsRegistry(),
      routes: qualityRoutes({ store, registry, view: { resolution: [], defaultExperiment: 'default' } }),
      ui: createUiSite(),
    });
    url = `http://127.0.0.1:${(await server.listen()).port}`;
    const batch: ScoredAssessment[] = [];
    // Bucket 1 (10:00–10:10): `full` at 100% (60 of 100 pass), `tenth` at 10% (6 of 10 pass).
    for (let i = 0; i < 100; i++)
      batch.push(scored(i, { scorer: 'full', value: i < 60, rate: 1, at: HOUR + i * 1000, latencyMs: 10 }));
    for (let i = 0; i < 10; i++)
      batch.push(
        scored(i, {
          scorer: 'tenth',
          value: i < 6 ? 'yes' : 'no',
          rate: 0.1,
          at: HOUR + i * 1000,
          latencyMs: 30,
        }),
      );
    // Bucket 2 (10:10–10:20): the rate of `tenth` changed mid-bucket: 10 passes at 10%, 10 fails at 100%.
    for (let i = 0; i < 10; i++)
      batch.push(scored(100 + i, { scorer: 'tenth', value: true, rate: 0.1, at: HOUR + 600_000 + i * 1000 }));
    for (let i = 0; i < 10; i++)
      batch.push(scored(200 + i, { scorer: 'tenth', value: false, rate: 1, at: HOUR + 600_000 + i * 1000 }));
    // A numeric judge with tokens, one error, and a second version.
    for (const [i, v] of [2, 4, 6].entries())
      batch.push(scored(300 + i, { scorer: 'len', value: v, rate: 0.5, at: HOUR + i * 1000, tokens: 10 }));
    batch.push(scored(310, { scorer: 'len', value: null, rate: 0.5, at: HOUR + 5000, error: true }));
    batch.push(scored(320, { scorer: 'len', version: 2, value: 9, rate: 1, at: HOUR + 6000 }));
    await store.put(batch);
  });

  afterAll(async () => {
    await server?.close();
    store?.close();
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page without the token, with the security headers, an ETag and gzip', async () => {
    const res = await get('/', { 'accept-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/ui/main.ts">');
    // No third-party host anywhere: every asset is local.
    expect(html).not.toMatch(/https?:\/\//);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await get('/', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    // The API still needs the token.
    expect((await get('/api/v1/experiments')).status).toBe(401);
  });

  it('serves every module as JavaScript that parses, whose imports are all served', async () => {
    const site = createUiSite();
    const modules = site.paths().filter((p) => p.endsWith('.ts'));
    expect(modules.length).toBeGreaterThanOrEqual(10);
    for (const p of modules) {
      const res = await get(p, { 'accept-encoding': 'gzip' });
      expect(res.status, p).toBe(200);
      expect(res.headers.get('content-type'), p).toBe('text/javascript; charset=utf-8');
      const js = await res.text();
      const sf = ts.createSourceFile(p, js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
      const diags = (sf as unknown as { parseDiagnostics: ts.Diagnostic[] }).parseDiagnostics;
      expect(
        diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
        p,
      ).toEqual([]);
      for (const m of js.matchAll(/from '(\.\/[^']+)'/g))
        expect(site.paths(), `${p} imports ${m[1]}`).toContain(`/ui/${m[1]!.slice(2)}`);
      // Type-only imports and annotations are gone (JavaScript has no `import type`).
      expect(js).not.toMatch(/^import type /m);
    }
    const css = await get('/ui/vendor/uplot.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await get('/ui/vendor/uplot.js')).status).toBe(200);
  });

  it('answers 404 for files it does not have, and only GET and HEAD for files', async () => {
    const res = await get('/ui/nope.ts');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect((await get('/ui/tsconfig.json')).status).toBe(404);
    expect((await fetch(`${url}/`, { method: 'POST' })).status).toBe(404);
    const head = await fetch(`${url}/ui/style.css`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
  });

  it('keeps the shipped UI small (every file, gzip as served)', () => {
    const site = createUiSite();
    let raw = 0;
    let gz = 0;
    let ours = 0;
    for (const p of site.paths()) {
      const a = site.asset(p)!;
      raw += a.body.length;
      gz += (a.gzip ?? a.body).length;
      if (!p.includes('/vendor/')) ours += (a.gzip ?? a.body).length;
      if (a.gzip) expect(gunzipSync(a.gzip).equals(a.body)).toBe(true);
    }
    console.log(
      `web UI: ${site.paths().length} files, ${raw} bytes, ${gz} bytes gzip (${ours} of it ours, the rest uPlot)`,
    );
    // A budget, not a measurement: a framework or a stray dependency would blow it.
    expect(gz).toBeLessThan(80_000);
  });

  it('aggregates with inclusion weights: a 10% sample gets a wider band than a 100% one', async () => {
    const r = await api(`/experiments/${EXP}/quality?startTime=${HOUR}&endTime=${HOUR + 1_200_000}&step=600`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.stepSeconds).toBe(600);
    const series = (name: string, version = 1) =>
      r.body.series.find(
        (s: { scorer: { name: string; version: number } }) =>
          s.scorer.name === name && s.scorer.version === version,
      );
    const full = series('full').points;
    expect(series('full').kind).toBe('pass_rate');
    expect(full).toHaveLength(1);
    expect(full[0]).toMatchObject({
      time: new Date(HOUR).toISOString(),
      count: 100,
      errors: 0,
      valued: 100,
      latencyMs: 10,
    });
    expect(full[0].estimate).toBeCloseTo(0.6, 12);
    // Wilson at n = 100, p = 0.6.
    expect(full[0].lower).toBeCloseTo(0.502, 3);
    expect(full[0].upper).toBeCloseTo(0.6906, 3);
    const tenth = series('tenth').points;
    expect(tenth[0].estimate).toBeCloseTo(0.6, 12);
    expect(tenth[0].effectiveSize).toBeCloseTo(10, 9);
    expect(tenth[0].upper - tenth[0].lower).toBeGreaterThan(2.5 * (full[0].upper - full[0].lower));
    // Mixed rates in one bucket: each 10% verdict stands for ten traces (Hájek: 100 / 110).
    expect(tenth[1].time).toBe(new Date(HOUR + 600_000).toISOString());
    expect(tenth[1].estimate).toBeCloseTo(100 / 110, 12);
    expect(tenth[1].effectiveSize).toBeCloseTo(110 ** 2 / 1010, 9);
    const len = series('len');
    expect(len.kind).toBe('mean');
    expect(len.points[0]).toMatchObject({
      count: 4,
      errors: 1,
      valued: 3,
      inputTokens: 30,
      outputTokens: 3,
      cost: 1.5,
    });
    expect(len.points[0].estimate).toBeCloseTo(4, 12);
    expect(len.points[0].lower).toBeLessThan(4);
    expect(series('len', 2).points[0]).toMatchObject({ estimate: 9, lower: null, upper: null });
    // One scorer only.
    const one = await api(
      `/experiments/${EXP}/quality?startTime=${HOUR}&endTime=${HOUR + 1_200_000}&step=600&scorer=full`,
    );
    expect(one.body.series.map((s: { scorer: { name: string } }) => s.scorer.name)).toEqual(['full']);
  });

  it('refuses ranges it cannot draw, with the field named', async () => {
    const back = await api(`/experiments/${EXP}/quality?startTime=${HOUR}&endTime=${HOUR - 1}`);
    expect(back.status).toBe(400);
    expect(back.body.error.details.field).toBe('query.startTime');
    const many = await api(`/experiments/${EXP}/quality?startTime=0&endTime=${HOUR}&step=60`);
    expect(many.status).toBe(400);
    expect(many.body.error.details.field).toBe('query.step');
    expect((await api(`/experiments/${EXP}/quality?startTime=soon`)).status).toBe(400);
  });

  it('lists the newest assessments, of one scorer when asked', async () => {
    const r = await api(`/experiments/${EXP}/assessments?scorer=tenth&maxResults=3`);
    expect(r.status).toBe(200);
    expect(r.body.assessments).toHaveLength(3);
    expect(r.body.assessments.every((a: { scorer: { name: string } }) => a.scorer.name === 'tenth')).toBe(
      true,
    );
    const times = r.body.assessments.map((a: { createdAt: string }) => a.createdAt);
    expect([...times].sort().reverse()).toEqual(times);
    expect((await api(`/experiments/${EXP}/assessments`)).body.assessments).toHaveLength(20);
  });

  it('validates definitions and filters with where each error is', async () => {
    const ok = await api('/scorers:validate', {
      method: 'POST',
      body: { definition: { type: 'code', source: '(ctx) => 1' }, filterString: "trace.status = 'OK'" },
    });
    expect(ok.body).toEqual({ valid: true, errors: [] });
    const filter = await api('/scorers:validate', {
      method: 'POST',
      body: { filterString: "trace.status = 'OK' AND" },
    });
    expect(filter.body.valid).toBe(false);
    expect(filter.body.errors[0]).toMatchObject({ path: 'filterString', position: 23 });
    const code = await api('/scorers:validate', {
      method: 'POST',
      body: { definition: { type: 'code', source: '(ctx) => {\n  return 1 +\n}' } },
    });
    expect(code.body.errors[0].path).toBe('definition.source');
    expect(code.body.errors[0].line).toBeGreaterThanOrEqual(2);
    const prompt = await api('/scorers:validate', {
      method: 'POST',
      body: { definition: { type: 'prompt', promptTemplate: 'no choices' } },
    });
    expect(prompt.body.errors.map((e: { path: string }) => e.path)).toContain('definition.promptTemplate');
    expect((await api('/scorers:validate', { method: 'POST', body: { nope: 1 } })).status).toBe(400);
  });

  it('the dry run refuses without a definition or scorer, a bad definition, and without an archive', async () => {
    const none = await api(`/experiments/${EXP}/scorers:try`, { method: 'POST', body: {} });
    expect(none.status).toBe(400);
    const bad = await api(`/experiments/${EXP}/scorers:try`, {
      method: 'POST',
      body: { definition: { type: 'code', source: '' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_DEFINITION');
    const missing = await api(`/experiments/${EXP}/scorers:try`, { method: 'POST', body: { name: 'nope' } });
    expect(missing.status).toBe(404);
    const noArchive = await api(`/experiments/${EXP}/scorers:try`, {
      method: 'POST',
      body: { definition: { type: 'code', source: '(ctx) => 1' } },
    });
    expect(noArchive.status).toBe(409);
    expect(noArchive.body.error.code).toBe('FAILED_PRECONDITION');
    // Recent traces are kept only with admin.ui.recentTraces.
    const noRecent = await api(`/experiments/${EXP}/scorers:try`, {
      method: 'POST',
      body: { definition: { type: 'code', source: '(ctx) => 1' }, source: 'recent' },
    });
    expect(noRecent.status).toBe(409);
    expect(noRecent.body.error.message).toContain('admin.ui.recentTraces');
  });

  it('documents the new routes in the OpenAPI document', async () => {
    const doc = (await api('/openapi.json')).body;
    for (const p of [
      '/experiments/{exp}/quality',
      '/experiments/{exp}/assessments',
      '/scorers:validate',
      '/experiments/{exp}/scorers:try',
    ]) {
      expect(Object.keys(doc.paths), p).toContain(`/api/v1${p}`);
    }
  });
});

describe('estimate()', () => {
  it('gives no band below two valued rows and none without values', () => {
    expect(
      estimate({ valued: 0, binary: 0, sumW: 0, sumW2: 0, sumWY: 0, sumW2Y: 0, sumW2Y2: 0 }),
    ).toMatchObject({ kind: 'label', estimate: null });
    // A pass rate of 100% over 5 verdicts still has a band below 1 (Wilson, not Wald).
    const all = estimate({ valued: 5, binary: 5, sumW: 5, sumW2: 5, sumWY: 5, sumW2Y: 5, sumW2Y2: 5 });
    expect(all.estimate).toBe(1);
    expect(all.upper).toBe(1);
    expect(all.lower).toBeLessThan(0.6);
  });
});
