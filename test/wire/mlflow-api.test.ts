// scorecar's MLflow API over raw HTTP (no Python needed): MLflow's error shape and codes, the
// admin port's Host / Origin / token / CSRF guards on MLflow's paths (MLflow's clients send JSON
// bodies on every mutating call, DELETE included, and a bearer token from MLFLOW_TRACKING_TOKEN),
// numeric experiment ids, proto3-style answers, and the trace-ingest path of MLflow-traced apps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../support/raw-http.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const send = rawRequest;

const JSON_CT = { 'content-type': 'application/json' };
const SAFETY = JSON.stringify({ name: 'safety', builtin_scorer_class: 'Safety', builtin_scorer_pydantic_data: { name: 'safety', model: null } });

describe('MLflow API on the admin port', () => {
  let sc: TestScorecar;
  let guarded: TestScorecar;
  const post = (path: string, body: unknown, headers: Record<string, string> = JSON_CT) => send(sc.adminUrl, 'POST', path, headers, JSON.stringify(body));
  const get = (path: string) => send(sc.adminUrl, 'GET', path);

  beforeAll(async () => {
    sc = await startScorecar('');
    guarded = await startScorecar('admin: {token: "s3cret"}');
  });
  afterAll(async () => {
    await sc?.stop();
    await guarded?.stop();
  });

  it('creates experiments with numeric ids, finds them by name and id, refuses duplicates', async () => {
    const created = await post('/api/2.0/mlflow/experiments/create', { name: 'chat-app' });
    expect(created.status).toBe(200);
    const id = created.json.experiment_id as string;
    expect(id).toMatch(/^[1-9]\d*$/);
    const byName = await get('/api/2.0/mlflow/experiments/get-by-name?experiment_name=chat-app');
    expect(byName.json.experiment).toMatchObject({ experiment_id: id, name: 'chat-app', lifecycle_stage: 'active' });
    const byId = await get(`/api/2.0/mlflow/experiments/get?experiment_id=${id}`);
    expect(byId.json.experiment.name).toBe('chat-app');
    const again = await post('/api/2.0/mlflow/experiments/create', { name: 'chat-app' });
    expect([again.status, again.json.error_code]).toEqual([400, 'RESOURCE_ALREADY_EXISTS']);
    // MLflow's experiment 0 is scorecar's default experiment.
    expect((await get('/api/2.0/mlflow/experiments/get?experiment_id=0')).json.experiment.name).toBe('default');
    const missing = await get('/api/2.0/mlflow/experiments/get-by-name?experiment_name=nowhere');
    expect([missing.status, missing.json.error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const badName = await post('/api/2.0/mlflow/experiments/create', { name: 'has spaces' });
    expect([badName.status, badName.json.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    const list = await post('/api/2.0/mlflow/experiments/search', { max_results: 10 });
    expect(list.json.experiments.map((e: { name: string }) => e.name)).toEqual(['default', 'chat-app']);
  });

  it('gives an experiment that scorecar already knows a numeric id on first sight', async () => {
    const r = await send(sc.adminUrl, 'POST', '/api/v1/experiments/known-app/scorers', JSON_CT, JSON.stringify({ name: 'len', definition: { type: 'code', source: '(ctx) => 1' } }));
    expect(r.status).toBe(201);
    const found = await get('/api/2.0/mlflow/experiments/get-by-name?experiment_name=known-app');
    expect(found.status).toBe(200);
    const id = found.json.experiment.experiment_id as string;
    const list = await get(`/api/3.0/mlflow/scorers/list?experiment_id=${id}`);
    expect(list.json.scorers).toHaveLength(1);
    // experiment_id is an int32 in MLflow's Scorer message.
    expect(list.json.scorers[0]).toMatchObject({ experiment_id: Number(id), scorer_name: 'len', scorer_version: 1 });
    // The JavaScript scorer has a serialized form MLflow's SDK can rebuild: a stub @scorer.
    expect(JSON.parse(list.json.scorers[0].serialized_scorer)).toMatchObject({ name: 'len', original_func_name: 'len', call_signature: '(inputs=None, outputs=None, expectations=None, trace=None)' });
  });

  it("answers in MLflow's shapes: configs never omitted, unknown scorers 404, refusals 400", async () => {
    const id = (await get('/api/2.0/mlflow/experiments/get-by-name?experiment_name=chat-app')).json.experiment.experiment_id;
    expect((await get(`/api/3.0/mlflow/scorers/list?experiment_id=${id}`)).json).toEqual({ scorers: [] });
    expect((await get('/api/3.0/mlflow/scorers/online-configs?scorer_ids=bogus')).json).toEqual({ configs: [] });
    const reg = await post('/api/3.0/mlflow/scorers/register', { experiment_id: id, name: 'safety', serialized_scorer: SAFETY });
    expect(reg.json).toMatchObject({ version: 1, experiment_id: id, name: 'safety', serialized_scorer: SAFETY });
    // Registered, never started: no online config (MLflow's SDK then shows no sample rate).
    expect((await get(`/api/3.0/mlflow/scorers/online-configs?scorer_ids=${reg.json.scorer_id}`)).json).toEqual({ configs: [] });
    const put = await send(sc.adminUrl, 'PUT', '/api/3.0/mlflow/scorers/online-config', JSON_CT, JSON.stringify({ experiment_id: id, name: 'safety', sample_rate: 0.5, filter_string: "trace.status = 'OK'" }));
    expect(put.json.config).toMatchObject({ scorer_id: reg.json.scorer_id, sample_rate: 0.5, experiment_id: id, filter_string: "trace.status = 'OK'" });
    const badFilter = await send(sc.adminUrl, 'PUT', '/api/3.0/mlflow/scorers/online-config', JSON_CT, JSON.stringify({ experiment_id: id, name: 'safety', sample_rate: 0.5, filter_string: 'trace.status ==' }));
    expect([badFilter.status, badFilter.json.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    const unknown = await get(`/api/3.0/mlflow/scorers/get?experiment_id=${id}&name=nope`);
    expect([unknown.status, unknown.json.error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const noExp = await get('/api/3.0/mlflow/scorers/list?experiment_id=99999');
    expect([noExp.status, noExp.json.error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const unsupported = await post('/api/3.0/mlflow/scorers/register', {
      experiment_id: id,
      name: 'pii',
      serialized_scorer: JSON.stringify({ name: 'pii', builtin_scorer_class: 'PIIDetection', builtin_scorer_pydantic_data: {} }),
    });
    expect([unsupported.status, unsupported.json.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    expect(unsupported.json.message).toMatch(/PIIDetection is not supported/);
    const missingParam = await get('/api/3.0/mlflow/scorers/list');
    expect([missingParam.status, missingParam.json.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    const noRoute = await get('/api/2.0/mlflow/runs/search');
    expect([noRoute.status, noRoute.json.error_code]).toEqual([404, 'ENDPOINT_NOT_FOUND']);
    // DELETE with a JSON body, as MLflow's client sends it.
    const del = await send(sc.adminUrl, 'DELETE', '/api/3.0/mlflow/scorers/delete', JSON_CT, JSON.stringify({ experiment_id: id, name: 'safety' }));
    expect([del.status, del.json]).toEqual([200, {}]);
    const gone = await send(sc.adminUrl, 'DELETE', '/api/3.0/mlflow/scorers/delete', JSON_CT, JSON.stringify({ experiment_id: id, name: 'safety' }));
    expect([gone.status, gone.json.error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
  });

  it("guards MLflow's paths like /api: Host, cross-site browsers, CSRF, the token", async () => {
    const rebound = await send(sc.adminUrl, 'GET', '/api/2.0/mlflow/experiments/search', { host: 'evil.example:4320' });
    expect([rebound.status, rebound.json.error_code]).toEqual([403, 'PERMISSION_DENIED']);
    const crossSite = await send(sc.adminUrl, 'POST', '/api/2.0/mlflow/experiments/create', { ...JSON_CT, origin: 'https://evil.example' }, JSON.stringify({ name: 'x1' }));
    expect([crossSite.status, crossSite.json.error_code]).toEqual([403, 'PERMISSION_DENIED']);
    // A form post (a "simple request" a page can send without a preflight) cannot create anything.
    const form = await send(sc.adminUrl, 'POST', '/api/2.0/mlflow/experiments/create', { 'content-type': 'text/plain' }, JSON.stringify({ name: 'x2' }));
    expect([form.status, form.json.error_code]).toEqual([403, 'PERMISSION_DENIED']);
    expect((await get('/api/2.0/mlflow/experiments/get-by-name?experiment_name=x2')).status).toBe(404);
    // With a token: MLflow's client sends MLFLOW_TRACKING_TOKEN as a bearer token.
    const anonymous = await send(guarded.adminUrl, 'GET', '/api/2.0/mlflow/experiments/search');
    expect([anonymous.status, anonymous.json.error_code]).toEqual([401, 'UNAUTHENTICATED']);
    const bearer = await send(guarded.adminUrl, 'GET', '/api/2.0/mlflow/experiments/search', { authorization: 'Bearer s3cret' });
    expect(bearer.status).toBe(200);
  });

  it('serves what MLflow-traced apps call: /version, StartTraceV3, and /v1/traces with numeric ids', async () => {
    const v = await get('/version');
    expect([v.status, v.text]).toEqual([200, '3.18.0']);
    const start = await post('/api/3.0/mlflow/traces', { trace: { trace_info: { trace_id: 'tr-1', tags: { a: 'b' } } } });
    expect(start.json.trace.trace_info).toEqual({ trace_id: 'tr-1', tags: { a: 'b', 'mlflow.trace.spansLocation': 'TRACKING_STORE' } });
    // An empty OTLP/JSON request goes through the OTLP receiver and is answered as it answers.
    const otlp = await send(sc.adminUrl, 'POST', '/v1/traces', { ...JSON_CT, 'x-mlflow-experiment-id': '1' }, '{}');
    expect([otlp.status, otlp.text]).toEqual([200, '{}']);
    const bad = await send(sc.adminUrl, 'POST', '/v1/traces', { 'content-type': 'application/x-protobuf' }, Buffer.from([0xff, 0xff]));
    expect(bad.status).toBe(400);
    const notFound = await get(`/api/3.0/mlflow/traces/tr-${'0'.repeat(32)}`);
    expect([notFound.status, notFound.json.error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const badId = await get('/api/3.0/mlflow/traces/get?trace_id=nope');
    expect([badId.status, badId.json.error_code]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
  });
});
