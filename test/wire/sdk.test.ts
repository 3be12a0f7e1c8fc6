// The TypeScript SDK, imported through the package export `scorecar/sdk`, against a real admin
// server on loopback: the seed's Python examples written with the SDK, MLflow's immutability,
// configuration and errors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../../src/registry/index.ts';
import { startAdmin, type TestAdmin } from '../support/admin.ts';
import {
  Correctness,
  configure,
  customPromptJudge,
  deleteScorer,
  Equivalence,
  ExpectationsGuidelines,
  getScorer,
  Guidelines,
  listScorers,
  listScorerVersions,
  makeJudge,
  RelevanceToQuery,
  RetrievalGroundedness,
  RetrievalRelevance,
  RetrievalSufficiency,
  resetConfiguration,
  Safety,
  ScorecarApiError,
  ScorecarClient,
  ScorerSamplingConfig,
  scorer,
  stopAllScorers,
} from 'scorecar/sdk';

const TOKEN = 'sdk-token';
let admin: TestAdmin;
let registry: Registry;
let url: string;

beforeAll(async () => {
  admin = await startAdmin({ token: TOKEN });
  ({ registry, url } = admin);
});
afterAll(async () => {
  resetConfiguration();
  await admin.close();
});
afterEach(() => {
  resetConfiguration();
});

async function refused(p: Promise<unknown>, code: string): Promise<ScorecarApiError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ScorecarApiError);
  expect((e as ScorecarApiError).code).toBe(code);
  return e as ScorecarApiError;
}

const FORMALITY = `
You will look at the response and determine the formality of the response.

<request>{{request}}</request>
<response>{{response}}</response>

You must choose one of the following categories.

[[formal]]: The response is very formal.
[[semi_formal]]: The response is somewhat formal. The response is somewhat formal if the response mentions friendship, etc.
[[not_formal]]: The response is not formal.
`;

describe('seed examples through the SDK', () => {
  it('built-in judges, guidelines, prompt judges and code scorers register and start', async () => {
    configure({ url, token: TOKEN, experimentId: 'seed-sdk' });

    // Use built-in LLM judges
    let safetyJudge = await Safety().register({ name: 'my_safety_judge' });
    safetyJudge = await safetyJudge.start({ samplingConfig: new ScorerSamplingConfig({ sampleRate: 0.7 }) });
    expect(safetyJudge).toMatchObject({
      name: 'my_safety_judge',
      status: 'active',
      sampleRate: 0.7,
      version: 1,
    });

    const customSafety = await Safety({ model: 'databricks:/databricks-gpt-oss-20b' }).register({
      name: 'my_custom_safety_judge',
    });
    expect(customSafety.definition).toEqual({
      type: 'builtin',
      judge: 'safety',
      model: 'databricks:/databricks-gpt-oss-20b',
    });

    // Guidelines
    let englishJudge = await Guidelines({
      name: 'english',
      guidelines: ['The response must be in English'],
    }).register({
      name: 'is_english',
    });
    englishJudge = await englishJudge.start({ samplingConfig: { sampleRate: 0.7 } });
    expect(englishJudge).toMatchObject({ name: 'is_english', sampleRate: 0.7 });
    expect(englishJudge.definition).toEqual({
      type: 'guidelines',
      guidelines: ['The response must be in English'],
    });

    // Custom prompt judge
    const formality = customPromptJudge({
      name: 'formality',
      promptTemplate: FORMALITY,
      numericValues: { formal: 1, semi_formal: 0.5, not_formal: 0 },
      model: 'databricks:/databricks-gpt-oss-20b',
    });
    let formalityJudge = await formality.register({ name: 'my_formality_judge' });
    formalityJudge = await formalityJudge.start({ samplingConfig: { sampleRate: 0.1 } });
    expect(formalityJudge.definition).toMatchObject({ type: 'prompt', numericValues: { semi_formal: 0.5 } });

    // Custom scorer functions
    const mentionsDatabricks = scorer(
      ({ outputs }) =>
        String((outputs as { response?: unknown } | null)?.response ?? '')
          .toLowerCase()
          .includes('databricks'),
      { name: 'mentions_databricks' },
    );
    const responseLength = scorer(
      function response_length({ outputs }) {
        return String((outputs as { response?: unknown } | null)?.response ?? '').length;
      },
      { aggregations: ['mean', 'min', 'max'] },
    );
    expect(responseLength.name).toBe('response_length');
    expect(responseLength.definition).toMatchObject({ type: 'code', aggregations: ['mean', 'min', 'max'] });
    expect((responseLength.definition as { source: string }).source).toMatch(/^function response_length\(/);
    const databricksScorer = await (await mentionsDatabricks.register({ name: 'databricks_mentions' })).start(
      {
        samplingConfig: { sampleRate: 0.5 },
      },
    );
    const lengthScorer = await (await responseLength.register({ name: 'response_length' })).start({
      samplingConfig: { sampleRate: 1.0 },
    });
    expect([databricksScorer.sampleRate, lengthScorer.sampleRate]).toEqual([0.5, 1]);

    // makeJudge and the remaining built-ins register too.
    const judge = makeJudge({
      name: 'helpfulness',
      instructions: 'Is {{ outputs }} a helpful answer to {{ inputs }}?',
      feedbackValueType: 'yes_no',
    });
    expect((await judge.register()).name).toBe('helpfulness');
    for (const f of [
      RelevanceToQuery,
      Correctness,
      RetrievalGroundedness,
      RetrievalRelevance,
      RetrievalSufficiency,
      ExpectationsGuidelines,
      Equivalence,
    ]) {
      const s = await f().register();
      expect(s.status).toBe('registered');
      expect(s.definition).toEqual({ type: 'builtin', judge: s.name });
    }

    // List and manage all scorers
    const all = await listScorers();
    const active = all.filter((s) => (s.sampleRate ?? 0) > 0).map((s) => s.name);
    expect(active.sort()).toEqual(
      [
        'databricks_mentions',
        'is_english',
        'my_formality_judge',
        'my_safety_judge',
        'response_length',
      ].sort(),
    );
    expect(all.find((s) => s.name === 'my_custom_safety_judge')).toMatchObject({
      sampleRate: 0,
      status: 'registered',
    });
    expect(
      registry
        .activeFor('seed-sdk')
        .map((s) => s.name)
        .sort(),
    ).toEqual(active.sort());
  });

  it('basic lifecycle: register → start → update → stop → delete', async () => {
    configure({ url, token: TOKEN, experimentId: 'lifecycle' });
    let safetyJudge = await Safety().register({ name: 'safety_check' });
    safetyJudge = await safetyJudge.start({ samplingConfig: { sampleRate: 0.7 } });
    safetyJudge = await safetyJudge.update({ samplingConfig: { sampleRate: 0.8 } });
    expect(registry.activeFor('lifecycle')[0]!.sampleRate).toBe(0.8);
    const stopped = await safetyJudge.stop();
    expect(stopped).toMatchObject({ sampleRate: 0, status: 'stopped' });
    expect((await listScorers()).map((s) => [s.name, s.status])).toEqual([['safety_check', 'stopped']]);
    const restarted = await stopped.start({ samplingConfig: { sampleRate: 0.5 } });
    expect(restarted).toMatchObject({ sampleRate: 0.5, status: 'active' });
    const second = await Safety({ model: 'openai:/gpt-4.1-mini' }).register({ name: 'safety_check' });
    expect(second).toMatchObject({ version: 2, sampleRate: 0.5, status: 'active' });
    expect((await listScorerVersions({ name: 'safety_check' })).map((s) => s.version)).toEqual([1, 2]);
    expect((await getScorer({ name: 'safety_check', version: 1 })).definition).toEqual({
      type: 'builtin',
      judge: 'safety',
    });
    const del = await deleteScorer({ name: 'safety_check' });
    expect(del).toEqual({
      experimentId: 'lifecycle',
      name: 'safety_check',
      deletedVersions: [1, 2],
      nameRemoved: true,
    });
    await refused(getScorer({ name: 'safety_check' }), 'NOT_FOUND');
    expect(await listScorers()).toEqual([]);
  });

  it('scorers are immutable: update returns a new object and the old one keeps its rate', async () => {
    configure({ url, token: TOKEN, experimentId: 'immutability' });
    let original = await Safety().register({ name: 'safety' });
    const registered = original;
    original = await original.start({ samplingConfig: new ScorerSamplingConfig({ sampleRate: 0.3 }) });
    const updated = await original.update({ samplingConfig: new ScorerSamplingConfig({ sampleRate: 0.8 }) });
    expect(original.sampleRate).toBe(0.3);
    expect(updated.sampleRate).toBe(0.8);
    expect(registered).toMatchObject({ sampleRate: 0, status: 'registered' });
    expect(updated).not.toBe(original);
    expect(Object.isFrozen(original)).toBe(true);
    expect(Object.isFrozen(original.definition)).toBe(true);
    expect(() => {
      (original as { sampleRate: number }).sampleRate = 1;
    }).toThrow(TypeError);
    // get_scorer + update, as in the seed
    const fetched = await getScorer({ name: 'safety' });
    const bumped = await fetched.update({ samplingConfig: { sampleRate: 0.9 } });
    expect([fetched.sampleRate, bumped.sampleRate]).toEqual([0.8, 0.9]);
    // filter-only update keeps the rate
    const filtered = await bumped.update({ samplingConfig: { filterString: "trace.status = 'OK'" } });
    expect(filtered).toMatchObject({ sampleRate: 0.9, filterString: "trace.status = 'OK'" });
    expect(filtered.samplingConfig).toEqual(
      new ScorerSamplingConfig({ sampleRate: 0.9, filterString: "trace.status = 'OK'" }),
    );
  });
});

describe('SDK errors', () => {
  it('refuses the 21st scorer with LIMIT_EXCEEDED (409)', async () => {
    configure({ url, token: TOKEN, experimentId: 'sdk-full' });
    for (let i = 0; i < 20; i++) await Safety().register({ name: `judge_${i}` });
    const e = await refused(Safety().register({ name: 'judge_20' }), 'LIMIT_EXCEEDED');
    expect(e.status).toBe(409);
    expect(e.message).toMatch(/20/);
  });

  it('reports bad filters with their position, bad definitions with paths, unknown scorers as NOT_FOUND', async () => {
    configure({ url, token: TOKEN, experimentId: 'sdk-errors' });
    const s = await Safety().register({ name: 'safety' });
    const f = await refused(
      s.start({ samplingConfig: { sampleRate: 0.5, filterString: "trace.status = 'OK' AND" } }),
      'INVALID_FILTER',
    );
    expect(typeof f.details?.position).toBe('number');
    const d = await refused(
      customPromptJudge({ name: 'p', promptTemplate: 'no choices here' }).register(),
      'INVALID_DEFINITION',
    );
    expect(((d.details?.errors ?? []) as Array<{ path: string }>)[0]!.path).toMatch(/^definition/);
    await refused(getScorer({ name: 'nobody' }), 'NOT_FOUND');
    await refused(deleteScorer({ name: 'safety', version: 7 }), 'NOT_FOUND');
    expect((await getScorer({ name: 'safety' })).status).toBe('registered');
  });

  it('checks what it can before calling the server', async () => {
    await refused(Safety().start({ samplingConfig: { sampleRate: 0.5 } }), 'FAILED_PRECONDITION');
    const s = await Safety().register({
      name: 'pre',
      client: new ScorecarClient({ url, token: TOKEN, experimentId: 'pre' }),
    });
    await refused(s.start({ samplingConfig: { sampleRate: 0 } }), 'INVALID_ARGUMENT');
    expect(() => new ScorerSamplingConfig({ sampleRate: 1.5 })).toThrow(ScorecarApiError);
    await refused(s.update({ samplingConfig: {} }), 'INVALID_ARGUMENT');
    expect(() => Guidelines({ guidelines: [] })).toThrow(/guidelines/);
    const obj = {
      m(ctx: unknown) {
        return String(ctx);
      },
    };
    expect(() => scorer(obj.m as never, { name: 'm' })).toThrow(/cannot be serialised/);
    expect(() => scorer((() => 1).bind(null), { name: 'bound' })).toThrow(/cannot be serialised/);
    expect(() => scorer(() => 1)).toThrow(/name/);
    expect(() => Safety({ name: 'bad name' })).toThrow(/invalid scorer name/);
  });

  it('reports a wrong token as UNAUTHENTICATED and an unreachable server as DOWNSTREAM_UNAVAILABLE', async () => {
    configure({ url, token: 'wrong', experimentId: 'x' });
    const a = await refused(listScorers(), 'UNAUTHENTICATED');
    expect(a.status).toBe(401);
    configure({ url: 'http://127.0.0.1:1', token: TOKEN });
    const b = await refused(listScorers(), 'DOWNSTREAM_UNAVAILABLE');
    expect(b.status).toBe(0);
    expect(b.retryable).toBe(true);
  });
});

describe('client configuration', () => {
  it('reads SCORECAR_URL, SCORECAR_ADMIN_TOKEN and SCORECAR_EXPERIMENT', async () => {
    const saved = { ...process.env };
    try {
      process.env.SCORECAR_URL = url;
      process.env.SCORECAR_ADMIN_TOKEN = TOKEN;
      process.env.SCORECAR_EXPERIMENT = 'from-env';
      const s = await Guidelines({ guidelines: 'Be polite' }).register();
      expect(s).toMatchObject({ experimentId: 'from-env', name: 'guidelines' });
      expect(s.definition).toEqual({ type: 'guidelines', guidelines: ['Be polite'] });
      expect((await listScorers()).map((x) => x.name)).toEqual(['guidelines']);
      // configure() wins over the environment
      configure({ experimentId: 'configured' });
      expect((await Safety().register()).experimentId).toBe('configured');
    } finally {
      for (const k of ['SCORECAR_URL', 'SCORECAR_ADMIN_TOKEN', 'SCORECAR_EXPERIMENT']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('objects keep the client they came from; an explicit experimentId wins', async () => {
    configure({ url: 'http://127.0.0.1:1' }); // the default client points nowhere
    const client = new ScorecarClient({ url, token: TOKEN, experimentId: 'explicit' });
    const s = await Safety().register({ name: 'carried', client });
    const started = await s.start({ samplingConfig: { sampleRate: 0.2 } });
    expect(started).toMatchObject({ experimentId: 'explicit', sampleRate: 0.2 });
    const elsewhere = await Safety().register({ name: 'carried', client, experimentId: 'explicit-2' });
    expect(elsewhere.experimentId).toBe('explicit-2');
    expect((await listScorers({ client, experimentId: 'never-used' })).length).toBe(0);
    const stopped = await stopAllScorers({ client, allExperiments: true });
    expect(stopped.map((x) => `${x.experimentId}/${x.name}`)).toContain('explicit/carried');
    expect(registry.activeScorers().size).toBe(0);
  });
});
