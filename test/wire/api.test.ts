// The admin REST API over real HTTP on loopback, with a real SQLite store in a temp dir:
// the seed's scorer lifecycle, the OpenAPI document against what the server does, bad input to
// every endpoint (4xx with a stable code and an unchanged store), auth, health and metrics.
import { request as httpRequest } from 'node:http';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAdminServer,
  defineRoute,
  type OpenApiDocument,
} from '../../src/api/index.ts';
import type { Registry } from '../../src/registry/index.ts';
import { startAdmin, type TestAdmin } from '../support/admin.ts';
import { createLogger, MetricsRegistry } from '../../src/util/index.ts';

const TOKEN = 'wire-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MiB = 1024 * 1024;

let admin: TestAdmin;
let registry: Registry;
let base: string;
let ready = true;
let healthy = true;

beforeAll(async () => {
  admin = await startAdmin({
    token: TOKEN,
    ready: () => ready,
    health: () => ({ ok: healthy, checks: { registry: healthy ? 'ok' : 'down' } }),
    routes: [
      defineRoute({
        method: 'GET',
        path: '/traces/{traceId}',
        operationId: 'getTrace',
        summary: 'A trace (added by another component)',
        responses: { '200': { description: 'trace', schema: { type: 'object', required: ['traceId'] } } },
        handler: (req) => ({ status: 200, body: { traceId: req.params.traceId } }),
      }),
    ],
  });
  ({ registry, url: base } = admin);
});

afterAll(async () => {
  await admin.close();
});

interface Reply {
  status: number;
  headers: { get(name: string): string | null };
  json: unknown;
  text: string;
}

/** One request through node:http (fetch refuses bodies on GET/DELETE, which these tests send). */
async function api(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string | Uint8Array; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {
    ...(opts.auth === false ? {} : AUTH),
    // What the SDK and CLI send on every call that changes something (the server's CSRF guard,
    // tested in admin-hardening.test.ts), so that these cases reach the check they are about.
    ...(method === 'GET' ? {} : { 'x-scorecar-request': '1' }),
    ...(opts.headers ?? {}),
  };
  let body: string | Uint8Array | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise<Reply>((resolve, reject) => {
    const req = httpRequest(base + path, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const h = res.headers;
        resolve({
          status: res.statusCode ?? 0,
          headers: { get: (n) => (h[n.toLowerCase()] === undefined ? null : String(h[n.toLowerCase()])) },
          json,
          text,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorOf(r: Reply): { code: string; message: string; details?: Record<string, unknown> } {
  return (r.json as { error: { code: string; message: string; details?: Record<string, unknown> } }).error;
}

// ---------------------------------------------------------------- OpenAPI-based validation

let doc: OpenApiDocument;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

async function loadDoc(): Promise<OpenApiDocument> {
  if (!doc) {
    const r = await api('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    doc = r.json as OpenApiDocument;
    ajv.addSchema({ ...doc, $id: 'scorecar-openapi.json' });
  }
  return doc;
}

/** Checks that the status is documented for the operation and the body matches its schema. */
async function conforms(method: string, template: string, r: Reply): Promise<void> {
  const d = await loadDoc();
  const op = d.paths[template]?.[method.toLowerCase()] as
    | { responses: Record<string, Record<string, unknown>> }
    | undefined;
  expect(op, `${method} ${template} documented`).toBeDefined();
  const resp = op!.responses[String(r.status)] as
    | { content?: Record<string, { schema: unknown }> }
    | undefined;
  expect(resp, `${method} ${template} documents status ${r.status}`).toBeDefined();
  const schema = resp!.content?.['application/json']?.schema;
  if (!schema) return;
  const validate = ajv.compile({
    $ref: `scorecar-openapi.json#/paths/${pointer(template)}/${method.toLowerCase()}/responses/${r.status}/content/application~1json/schema`,
  });
  const ok = validate(r.json);
  expect(ok, `${method} ${template} ${r.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
}

function pointer(path: string): string {
  return encodeURIComponent(path.replace(/~/g, '~0').replace(/\//g, '~1'));
}

// ---------------------------------------------------------------- the seed's lifecycle

const FORMALITY = `
You will look at the response and determine the formality of the response.

<request>{{request}}</request>
<response>{{response}}</response>

You must choose one of the following categories.

[[formal]]: The response is very formal.
[[semi_formal]]: The response is somewhat formal. The response is somewhat formal if the response mentions friendship, etc.
[[not_formal]]: The response is not formal.
`;

const SEED_SCORERS: Array<{ name: string; definition: Record<string, unknown>; rate: number }> = [
  { name: 'my_safety_judge', definition: { type: 'builtin', judge: 'safety' }, rate: 0.7 },
  {
    name: 'is_english',
    definition: { type: 'guidelines', guidelines: ['The response must be in English'] },
    rate: 0.7,
  },
  {
    name: 'my_formality_judge',
    definition: {
      type: 'prompt',
      promptTemplate: FORMALITY,
      numericValues: { formal: 1, semi_formal: 0.5, not_formal: 0 },
      model: 'databricks:/databricks-gpt-oss-20b',
    },
    rate: 0.1,
  },
  {
    name: 'databricks_mentions',
    definition: {
      type: 'code',
      source: "({ outputs }) => String(outputs?.response ?? '').toLowerCase().includes('databricks')",
    },
    rate: 0.5,
  },
  {
    name: 'response_length',
    definition: {
      type: 'code',
      source: "({ outputs }) => String(outputs?.response ?? '').length",
      aggregations: ['mean', 'min', 'max'],
    },
    rate: 1,
  },
];

const S = '/api/v1/experiments/{exp}/scorers';
const N = '/api/v1/experiments/{exp}/scorers/{name}';

describe('scorer lifecycle over HTTP (seed examples)', () => {
  const exp = 'seed-http';
  const at = (name = '') => `/api/v1/experiments/${exp}/scorers${name ? `/${name}` : ''}`;

  it('registers and starts every seed scorer', async () => {
    for (const s of SEED_SCORERS) {
      const reg = await api('POST', at(), { body: { name: s.name, definition: s.definition } });
      expect(reg.status, reg.text).toBe(201);
      await conforms('POST', S, reg);
      expect(reg.json).toMatchObject({ name: s.name, version: 1, status: 'registered', sampleRate: 0 });
      expect(reg.headers.get('location')).toBe(`${at(s.name)}?version=1`);
      const st = await api('POST', `${at(s.name)}/start`, { body: { sampleRate: s.rate } });
      expect(st.status, st.text).toBe(200);
      await conforms('POST', `${N}/start`, st);
      expect(st.json).toMatchObject({ status: 'active', sampleRate: s.rate });
    }
    const list = await api('GET', at());
    await conforms('GET', S, list);
    const scorers = (list.json as { scorers: Array<{ name: string; sampleRate: number }> }).scorers;
    expect(scorers.map((s) => [s.name, s.sampleRate]).sort()).toEqual(
      SEED_SCORERS.map((s) => [s.name, s.rate]).sort(),
    );
    expect(registry.activeFor(exp)).toHaveLength(SEED_SCORERS.length);
  });

  it('start(0.7) → update(0.8) → stop (rate 0, still listed) → start again → versions → delete', async () => {
    const reg = await api('POST', at(), {
      body: { name: 'safety_check', definition: { type: 'builtin', judge: 'safety' } },
    });
    expect(reg.status).toBe(201);
    const start = await api('POST', `${at('safety_check')}/start`, {
      body: { sampleRate: 0.7, filterString: "trace.status = 'OK'" },
    });
    expect(start.json).toMatchObject({
      sampleRate: 0.7,
      filterString: "trace.status = 'OK'",
      status: 'active',
    });

    const upd = await api('PATCH', at('safety_check'), { body: { sampleRate: 0.8 } });
    await conforms('PATCH', N, upd);
    expect(upd.json).toMatchObject({
      sampleRate: 0.8,
      filterString: "trace.status = 'OK'",
      status: 'active',
    });
    expect(registry.activeFor(exp).find((s) => s.name === 'safety_check')?.sampleRate).toBe(0.8);

    const stop = await api('POST', `${at('safety_check')}/stop`);
    await conforms('POST', `${N}/stop`, stop);
    expect(stop.json).toMatchObject({ sampleRate: 0, status: 'stopped' });
    const listed = (await api('GET', at())).json as {
      scorers: Array<{ name: string; status: string; sampleRate: number }>;
    };
    expect(listed.scorers.find((s) => s.name === 'safety_check')).toMatchObject({
      status: 'stopped',
      sampleRate: 0,
    });
    expect(registry.activeFor(exp).some((s) => s.name === 'safety_check')).toBe(false);

    const again = await api('POST', `${at('safety_check')}/start`, { body: { sampleRate: 0.5 } });
    expect(again.json).toMatchObject({ status: 'active', sampleRate: 0.5 });

    const v2 = await api('POST', at(), {
      body: {
        name: 'safety_check',
        definition: { type: 'builtin', judge: 'safety', model: 'openai:/gpt-4.1-mini' },
      },
    });
    expect(v2.json).toMatchObject({ version: 2, status: 'active', sampleRate: 0.5 });
    const versions = await api('GET', `${at('safety_check')}/versions`);
    await conforms('GET', `${N}/versions`, versions);
    expect(
      (versions.json as { versions: Array<{ version: number }> }).versions.map((v) => v.version),
    ).toEqual([1, 2]);
    const v1 = await api('GET', `${at('safety_check')}?version=1`);
    await conforms('GET', N, v1);
    expect(v1.json).toMatchObject({ version: 1, definition: { type: 'builtin', judge: 'safety' } });

    const del1 = await api('DELETE', `${at('safety_check')}?version=1`);
    await conforms('DELETE', N, del1);
    expect(del1.json).toEqual({
      experimentId: exp,
      name: 'safety_check',
      deletedVersions: [1],
      nameRemoved: false,
    });
    const del = await api('DELETE', at('safety_check'));
    expect(del.json).toMatchObject({ deletedVersions: [2], nameRemoved: true });
    const gone = await api('GET', at('safety_check'));
    expect(gone.status).toBe(404);
    await conforms('GET', N, gone);
    expect(errorOf(gone).code).toBe('NOT_FOUND');
  });

  it('lists experiments and stops one experiment or all of them with the kill switches', async () => {
    const ex = await api('GET', '/api/v1/experiments');
    await conforms('GET', '/api/v1/experiments', ex);
    expect(
      (ex.json as { experiments: Array<{ experimentId: string }> }).experiments.map((e) => e.experimentId),
    ).toContain(exp);

    await api('POST', '/api/v1/experiments/other-exp/scorers', {
      body: { name: 'x', definition: { type: 'builtin', judge: 'safety' } },
    });
    await api('POST', '/api/v1/experiments/other-exp/scorers/x/start', { body: { sampleRate: 1 } });

    const one = await api('POST', `/api/v1/experiments/${exp}/scorers:stop-all`);
    await conforms('POST', '/api/v1/experiments/{exp}/scorers:stop-all', one);
    expect((one.json as { stopped: unknown[] }).stopped).toHaveLength(SEED_SCORERS.length);
    expect(registry.activeFor(exp)).toHaveLength(0);
    expect(registry.activeFor('other-exp')).toHaveLength(1);

    const all = await api('POST', '/api/v1/scorers:stop-all', { body: {} });
    await conforms('POST', '/api/v1/scorers:stop-all', all);
    expect(
      (all.json as { stopped: Array<{ experimentId: string }> }).stopped.map((s) => s.experimentId),
    ).toEqual(['other-exp']);
    expect(registry.activeScorers().size).toBe(0);
  });

  it('accepts percent-encoded experiment ids with "/"', async () => {
    const r = await api('POST', '/api/v1/experiments/shop%2Fcheckout/scorers', {
      body: { name: 'safety', definition: { type: 'builtin', judge: 'safety' } },
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ experimentId: 'shop/checkout' });
    expect((await api('GET', '/api/v1/experiments/shop%2Fcheckout/scorers/safety')).status).toBe(200);
  });

  it('refuses the 21st scorer name with 409 LIMIT_EXCEEDED naming the limit', async () => {
    const e = '/api/v1/experiments/full/scorers';
    for (let i = 1; i <= 20; i++) {
      expect(
        (await api('POST', e, { body: { name: `s${i}`, definition: { type: 'builtin', judge: 'safety' } } }))
          .status,
      ).toBe(201);
    }
    const before = await registry.store.dump();
    const r = await api('POST', e, {
      body: { name: 's21', definition: { type: 'builtin', judge: 'safety' } },
    });
    expect(r.status).toBe(409);
    await conforms('POST', S, r);
    expect(errorOf(r).code).toBe('LIMIT_EXCEEDED');
    expect(errorOf(r).message).toMatch(/limit is 20/);
    expect(await registry.store.dump()).toEqual(before);
  });
});

// ---------------------------------------------------------------- OpenAPI vs. the server

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const EXPECTED_API = [
  'GET /api/v1/experiments',
  'POST /api/v1/experiments/{exp}/scorers',
  'GET /api/v1/experiments/{exp}/scorers',
  'POST /api/v1/experiments/{exp}/scorers:stop-all',
  'GET /api/v1/experiments/{exp}/scorers/{name}',
  'PATCH /api/v1/experiments/{exp}/scorers/{name}',
  'DELETE /api/v1/experiments/{exp}/scorers/{name}',
  'GET /api/v1/experiments/{exp}/scorers/{name}/versions',
  'POST /api/v1/experiments/{exp}/scorers/{name}/start',
  'POST /api/v1/experiments/{exp}/scorers/{name}/stop',
  'POST /api/v1/scorers:stop-all',
  'GET /api/v1/openapi.json',
  'GET /api/v1/traces/{traceId}',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
];

function concrete(template: string): string {
  return template.replace('{exp}', 'probe-exp').replace('{name}', 'probe').replace('{traceId}', 'abc123');
}

describe('OpenAPI document', () => {
  it('documents exactly the routes the server serves', async () => {
    const d = await loadDoc();
    expect(d.openapi).toBe('3.1.0');
    const documented = Object.entries(d.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(documented.sort()).toEqual([...EXPECTED_API].sort());
  });

  it('every documented operation is served, and every other method on its path is 405 with Allow', async () => {
    await api('POST', '/api/v1/experiments/probe-exp/scorers', {
      body: { name: 'probe', definition: { type: 'builtin', judge: 'safety' } },
    });
    const d = await loadDoc();
    for (const [template, ops] of Object.entries(d.paths)) {
      const url = concrete(template);
      const documented = Object.keys(ops).map((m) => m.toUpperCase());
      for (const m of documented) {
        const body = m === 'POST' || m === 'PATCH' ? { sampleRate: 0.5 } : undefined;
        const r = await api(m, url, { body });
        const code = r.json && (r.json as { error?: { code: string } }).error?.code;
        expect(r.status, `${m} ${url}: ${r.text}`).not.toBe(405);
        if (r.status === 404) expect(errorOf(r).message, `${m} ${url}`).not.toMatch(/no such endpoint/);
        // Whatever it answered is a documented status for that operation.
        expect(
          Object.keys((ops[m.toLowerCase()] as { responses: object }).responses),
          `${m} ${url} ${code}`,
        ).toContain(String(r.status));
      }
      for (const m of METHODS.filter((x) => !documented.includes(x))) {
        const r = await api(m, url, { body: m === 'GET' || m === 'DELETE' ? undefined : {} });
        expect(r.status, `${m} ${url}`).toBe(405);
        expect(errorOf(r).code).toBe('METHOD_NOT_ALLOWED');
        expect(new Set(r.headers.get('allow')!.split(', '))).toEqual(new Set(documented));
      }
    }
  });

  it('serves routes added by other components and documents them', async () => {
    const r = await api('GET', '/api/v1/traces/0af7651916cd43dd8448eb211c80319c');
    expect(r.json).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c' });
    await conforms('GET', '/api/v1/traces/{traceId}', r);
  });

  it('answers 404 NOT_FOUND for unknown paths', async () => {
    for (const p of [
      '/api/v1/nope',
      '/api/v1',
      '/api/v2/experiments',
      '/nope',
      '/api/v1/experiments/x/scorers/y/z',
    ]) {
      const r = await api('GET', p);
      expect(r.status, p).toBe(404);
      expect(errorOf(r).code).toBe('NOT_FOUND');
    }
  });
});

// ---------------------------------------------------------------- bad input to every endpoint

interface BadCase {
  what: string;
  method: string;
  path: string;
  body?: unknown;
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  auth?: boolean;
  status: number;
  code: string;
  field?: string;
}

const E = '/api/v1/experiments/bad-exp/scorers';
const V = `${E}/victim`;
const DEF = { type: 'builtin', judge: 'safety' };
const big = (n: number) =>
  JSON.stringify({ name: 'big', definition: { type: 'code', source: `() => '${'x'.repeat(n)}'` } });

const BAD: BadCase[] = [
  // GET /experiments
  {
    what: 'unknown query parameter',
    method: 'GET',
    path: '/api/v1/experiments?limit=5',
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.limit',
  },
  {
    what: 'a body on a GET',
    method: 'GET',
    path: '/api/v1/experiments',
    raw: '{"x":1}',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // POST register
  {
    what: 'name of the wrong type',
    method: 'POST',
    path: E,
    body: { name: 5, definition: DEF },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.name',
  },
  {
    what: 'unknown body field',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: DEF, sampleRate: 1 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'definition missing',
    method: 'POST',
    path: E,
    body: { name: 'n' },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.definition',
  },
  {
    what: 'definition is an array',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: [DEF] },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.definition',
  },
  {
    what: 'name outside the charset',
    method: 'POST',
    path: E,
    body: { name: 'bad name!', definition: DEF },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.name',
  },
  {
    what: 'unknown judge',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: { type: 'builtin', judge: 'vibes' } },
    status: 400,
    code: 'INVALID_DEFINITION',
  },
  {
    what: 'unknown definition type',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: { type: 'magic' } },
    status: 400,
    code: 'INVALID_DEFINITION',
  },
  {
    what: 'prompt without [[choice]]',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: { type: 'prompt', promptTemplate: 'Is {{response}} ok?' } },
    status: 400,
    code: 'INVALID_DEFINITION',
  },
  {
    what: 'bad model URI',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: { type: 'builtin', judge: 'safety', model: 'gpt-4' } },
    status: 400,
    code: 'INVALID_DEFINITION',
  },
  {
    what: 'code that does not compile',
    method: 'POST',
    path: E,
    body: { name: 'n', definition: { type: 'code', source: '(ctx) => {' } },
    status: 400,
    code: 'INVALID_DEFINITION',
  },
  {
    what: 'invalid JSON',
    method: 'POST',
    path: E,
    raw: '{"name": ',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    what: 'JSON null',
    method: 'POST',
    path: E,
    raw: 'null',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    what: 'text/plain body',
    method: 'POST',
    path: E,
    raw: JSON.stringify({ name: 'n', definition: DEF }),
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    what: 'empty body',
    method: 'POST',
    path: E,
    raw: '',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    what: 'body over 1 MiB',
    method: 'POST',
    path: E,
    raw: big(MiB + 10),
    headers: { 'content-type': 'application/json' },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    what: 'bad experiment id',
    method: 'POST',
    path: '/api/v1/experiments/bad%20id/scorers',
    body: { name: 'n', definition: DEF },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    what: 'malformed percent-encoding',
    method: 'POST',
    path: '/api/v1/experiments/%E0%A4%A/scorers',
    body: { name: 'n', definition: DEF },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // GET list
  {
    what: 'unknown experiment',
    method: 'GET',
    path: '/api/v1/experiments/no-such-exp/scorers',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'unknown query parameter on list',
    method: 'GET',
    path: `${E}?all=true`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.all',
  },
  // kill switch of one experiment
  {
    what: 'kill switch of an unknown experiment',
    method: 'POST',
    path: '/api/v1/experiments/no-such-exp/scorers:stop-all',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'kill switch with a body field',
    method: 'POST',
    path: '/api/v1/experiments/bad-exp/scorers:stop-all',
    body: { force: true },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.force',
  },
  {
    what: 'kill switch with text/plain',
    method: 'POST',
    path: '/api/v1/experiments/bad-exp/scorers:stop-all',
    raw: 'stop',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  // GET one
  { what: 'unknown scorer', method: 'GET', path: `${E}/nobody`, status: 404, code: 'NOT_FOUND' },
  {
    what: 'version not a number',
    method: 'GET',
    path: `${V}?version=abc`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.version',
  },
  {
    what: 'version 0',
    method: 'GET',
    path: `${V}?version=0`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.version',
  },
  { what: 'unknown version', method: 'GET', path: `${V}?version=99`, status: 404, code: 'NOT_FOUND' },
  {
    what: 'version given twice',
    method: 'GET',
    path: `${V}?version=1&version=2`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.version',
  },
  {
    what: 'scorer name outside the charset',
    method: 'GET',
    path: `${E}/bad%20name`,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // PATCH
  { what: 'empty update', method: 'PATCH', path: V, body: {}, status: 400, code: 'INVALID_ARGUMENT' },
  {
    what: 'rate as a string',
    method: 'PATCH',
    path: V,
    body: { sampleRate: '0.5' },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'rate above 1',
    method: 'PATCH',
    path: V,
    body: { sampleRate: 2 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'negative rate',
    method: 'PATCH',
    path: V,
    body: { sampleRate: -0.1 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'filter of the wrong type',
    method: 'PATCH',
    path: V,
    body: { filterString: 5 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.filterString',
  },
  {
    what: 'bad filter',
    method: 'PATCH',
    path: V,
    body: { filterString: "trace.status = 'OK' AND AND" },
    status: 400,
    code: 'INVALID_FILTER',
  },
  {
    what: 'unknown update field',
    method: 'PATCH',
    path: V,
    body: { sampleRate: 0.5, status: 'active' },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.status',
  },
  {
    what: 'update of an unknown scorer',
    method: 'PATCH',
    path: `${E}/nobody`,
    body: { sampleRate: 0.5 },
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'update in an unknown experiment',
    method: 'PATCH',
    path: '/api/v1/experiments/no-such-exp/scorers/victim',
    body: { sampleRate: 0.5 },
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'update over 1 MiB',
    method: 'PATCH',
    path: V,
    raw: JSON.stringify({ filterString: 'x'.repeat(MiB + 1) }),
    headers: { 'content-type': 'application/json' },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  // DELETE
  {
    what: 'delete version not a number',
    method: 'DELETE',
    path: `${V}?version=latest`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.version',
  },
  {
    what: 'delete unknown version',
    method: 'DELETE',
    path: `${V}?version=99`,
    status: 404,
    code: 'NOT_FOUND',
  },
  { what: 'delete unknown scorer', method: 'DELETE', path: `${E}/nobody`, status: 404, code: 'NOT_FOUND' },
  {
    what: 'delete in an unknown experiment',
    method: 'DELETE',
    path: '/api/v1/experiments/no-such-exp/scorers/victim',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'delete with a body',
    method: 'DELETE',
    path: V,
    raw: '{"version":1}',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  // versions
  {
    what: 'versions of an unknown scorer',
    method: 'GET',
    path: `${E}/nobody/versions`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'unknown query on versions',
    method: 'GET',
    path: `${V}/versions?page=2`,
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.page',
  },
  // start
  {
    what: 'start with rate 0',
    method: 'POST',
    path: `${V}/start`,
    body: { sampleRate: 0 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'start with rate 1.5',
    method: 'POST',
    path: `${V}/start`,
    body: { sampleRate: 1.5 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'start with rate as a string',
    method: 'POST',
    path: `${V}/start`,
    body: { sampleRate: '1' },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'start without a rate',
    method: 'POST',
    path: `${V}/start`,
    body: {},
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'start with a bad filter',
    method: 'POST',
    path: `${V}/start`,
    body: { sampleRate: 0.5, filterString: 'trace.status =' },
    status: 400,
    code: 'INVALID_FILTER',
  },
  {
    what: 'start with an unknown field',
    method: 'POST',
    path: `${V}/start`,
    body: { sampleRate: 0.5, sample_rate: 0.5 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sample_rate',
  },
  {
    what: 'start with a JSON array',
    method: 'POST',
    path: `${V}/start`,
    raw: '[0.5]',
    headers: { 'content-type': 'application/json' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { what: 'start without a body', method: 'POST', path: `${V}/start`, status: 400, code: 'INVALID_ARGUMENT' },
  {
    what: 'start of an unknown scorer',
    method: 'POST',
    path: `${E}/nobody/start`,
    body: { sampleRate: 0.5 },
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'start with form data',
    method: 'POST',
    path: `${V}/start`,
    raw: 'sampleRate=0.5',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  // stop
  {
    what: 'stop with a body field',
    method: 'POST',
    path: `${V}/stop`,
    body: { sampleRate: 0 },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.sampleRate',
  },
  {
    what: 'stop of an unknown scorer',
    method: 'POST',
    path: `${E}/nobody/stop`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    what: 'stop in an unknown experiment',
    method: 'POST',
    path: '/api/v1/experiments/no-such-exp/scorers/victim/stop',
    status: 404,
    code: 'NOT_FOUND',
  },
  // global kill switch
  {
    what: 'global kill switch with a field',
    method: 'POST',
    path: '/api/v1/scorers:stop-all',
    body: { experimentId: 'x' },
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'body.experimentId',
  },
  {
    what: 'global kill switch over 1 MiB',
    method: 'POST',
    path: '/api/v1/scorers:stop-all',
    raw: `{"x":"${'y'.repeat(MiB)}"}`,
    headers: { 'content-type': 'application/json' },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  // openapi
  {
    what: 'openapi with a query',
    method: 'GET',
    path: '/api/v1/openapi.json?format=yaml',
    status: 400,
    code: 'INVALID_ARGUMENT',
    field: 'query.format',
  },
  // method and auth
  {
    what: 'PUT on a scorer',
    method: 'PUT',
    path: V,
    body: { sampleRate: 1 },
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  { what: 'no token', method: 'POST', path: `${V}/stop`, auth: false, status: 401, code: 'UNAUTHENTICATED' },
  {
    what: 'wrong token',
    method: 'DELETE',
    path: V,
    auth: false,
    headers: { authorization: 'Bearer wrong' },
    status: 401,
    code: 'UNAUTHENTICATED',
  },
  {
    what: 'token as Basic auth',
    method: 'DELETE',
    path: V,
    auth: false,
    headers: { authorization: `Basic ${TOKEN}` },
    status: 401,
    code: 'UNAUTHENTICATED',
  },
  {
    what: 'token with a suffix',
    method: 'POST',
    path: '/api/v1/scorers:stop-all',
    auth: false,
    headers: { authorization: `Bearer ${TOKEN}x` },
    status: 401,
    code: 'UNAUTHENTICATED',
  },
];

describe('bad input to every endpoint', () => {
  beforeAll(async () => {
    await api('POST', E, { body: { name: 'victim', definition: DEF } });
    await api('POST', `${V}/start`, { body: { sampleRate: 0.5, filterString: "trace.status = 'OK'" } });
  });

  it('covers every documented /api operation', async () => {
    const d = await loadDoc();
    const ops = Object.entries(d.paths)
      .filter(([p]) => p.startsWith('/api/v1/') && !p.includes('{traceId}'))
      .flatMap(([p, o]) => Object.keys(o).map((m) => `${m.toUpperCase()} ${p}`));
    const hit = new Set<string>();
    for (const c of BAD) {
      const path = c.path.split('?')[0]!;
      for (const op of ops) {
        const [m, t] = op.split(' ');
        const re = new RegExp(
          `^${t!.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[a-zA-Z]+\\?\}/g, '[^/]+')}$`,
        );
        if (m === c.method && re.test(path)) hit.add(op);
      }
    }
    expect([...hit].sort()).toEqual(ops.sort());
  });

  it.each(BAD.map((c) => [c.what, c] as const))('%s → refused, store unchanged', async (_what, c) => {
    const before = await registry.store.dump();
    const r = await api(c.method, c.path, { body: c.body, raw: c.raw, headers: c.headers, auth: c.auth });
    expect(r.status, r.text).toBe(c.status);
    const err = errorOf(r);
    expect(err.code).toBe(c.code);
    expect(err.message.length).toBeGreaterThan(0);
    if (c.field)
      expect(((err.details?.errors ?? []) as Array<{ path: string }>).map((x) => x.path)).toContain(c.field);
    if (c.code === 'INVALID_FILTER') expect(typeof err.details?.position).toBe('number');
    if (c.status === 401) expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await registry.store.dump()).toEqual(before);
  });

  it('refuses a chunked body over the limit with 413 and keeps the store unchanged', async () => {
    const before = await registry.store.dump();
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${base}${E}`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          b += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 20; i++) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await registry.store.dump()).toEqual(before);
  });
});

// ---------------------------------------------------------------- health, metrics, auth modes

describe('health, readiness and metrics', () => {
  it('serves /healthz and /readyz without a token, and /metrics with it (admin.metricsAuth: token)', async () => {
    const h = await api('GET', '/healthz', { auth: false });
    expect(h.status).toBe(200);
    expect(h.json).toEqual({ status: 'ok', checks: { registry: 'ok' } });
    expect((await api('GET', '/readyz', { auth: false })).json).toEqual({ ready: true });
    const open = await api('GET', '/metrics', { auth: false });
    expect(open.status).toBe(401);
    expect(errorOf(open).code).toBe('UNAUTHENTICATED');
    const m = await api('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(m.text).toMatch(
      /scorecar_admin_requests_total\{method="POST",route="\/api\/v1\/experiments\/\{exp\}\/scorers",status="201"\} \d+/,
    );
    expect(m.text).toMatch(/scorecar_admin_requests_total\{[^}]*status="401"\} \d+/);
  });

  it('answers 503 when not ready or unhealthy', async () => {
    ready = false;
    healthy = false;
    try {
      expect((await api('GET', '/readyz', { auth: false })).status).toBe(503);
      const h = await api('GET', '/healthz', { auth: false });
      expect(h.status).toBe(503);
      expect(h.json).toMatchObject({ status: 'unhealthy', checks: { registry: 'down' } });
    } finally {
      ready = true;
      healthy = true;
    }
  });

  it('without a token, listens on 127.0.0.1 only whatever the configured host, and needs no auth', async () => {
    const lines: string[] = [];
    const open = createAdminServer({
      endpoint: '0.0.0.0:0',
      registry,
      metrics: new MetricsRegistry(),
      logger: createLogger({ level: 'warn', write: (l) => lines.push(l) }),
    });
    const addr = await open.listen();
    try {
      expect(addr.host).toBe('127.0.0.1');
      expect(lines.some((l) => l.includes('WARN') && l.includes('127.0.0.1 only'))).toBe(true);
      const r = await fetch(`http://127.0.0.1:${addr.port}/api/v1/experiments`);
      expect(r.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
