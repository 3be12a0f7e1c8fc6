// The control plane against a running `scorecar start` (a real process): the seed's lifecycle
// through the SDK and the CLI, config as code, and registry changes taking effect in the
// running pipeline — through the API at once, from another process within 2 s. Over both stores:
// SQLite under storage.dir, and PostgreSQL (storage.postgres, a schema of its own), where the
// other process's change arrives by LISTEN/NOTIFY instead of the revision poll.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDatabase } from '../../src/postgres/index.ts';
import { openSqliteRegistry, PostgresRegistryStore, Registry } from '../../src/registry/index.ts';
import { isSelected } from '../../src/select/index.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { configure, getScorer, Guidelines, listScorers, listScorerVersions, resetConfiguration, Safety, ScorerSamplingConfig, scorer } from 'scorecar/sdk';
import { type ChildScorecar, NODE, scrape, startChild } from '../support/child.ts';
import { dropSchema, sharedPostgres, uniqueSchema } from '../support/postgres.ts';
import { waitFor } from '../support/scorecar.ts';
import { STORE_KINDS } from '../support/stores.ts';

const ROOT = join(import.meta.dirname, '../..');
const SALT = 'scorecar/sampling/v1';

async function sendTraces(url: string, n: number, name: string, experiment: string): Promise<string[]> {
  const ids: string[] = [];
  const spans = [];
  for (let i = 0; i < n; i++) {
    const traceId = randomBytes(16).toString('hex');
    ids.push(traceId);
    spans.push({ traceId, spanId: randomBytes(8).toString('hex'), name, startTimeUnixNano: '1', endTimeUnixNano: '2', attributes: [{ key: 'mlflow.spanOutputs', value: { stringValue: '"hello"' } }] });
  }
  const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'mlflow.experimentId', value: { stringValue: experiment } }] }, scopeSpans: [{ spans }] }] }));
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
  expect(res.status).toBe(200);
  return ids;
}

// Asynchronous on purpose: a spawnSync per command blocks this process's event loop for seconds,
// so the SDK's keep-alive socket from the test before outlives the admin server's 5 s keep-alive
// unnoticed, and the next SDK call is written to a socket the server already closed
// (UND_ERR_SOCKET, "other side closed") on a busy machine.
function cli(sc: ChildScorecar, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      NODE,
      [join(ROOT, 'bin/scorecar.js'), 'scorers', ...args],
      { encoding: 'utf8', env: { ...process.env, SCORECAR_URL: sc.adminUrl, SCORECAR_EXPERIMENT: 'cli-exp' } },
      (err, stdout, stderr) => {
        const code = (err as { code?: unknown } | null)?.code;
        resolve({ status: err ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
      },
    );
  });
}

describe.each(STORE_KINDS)('control plane against a running scorecar start (%s store)', (kind) => {
  let sc: ChildScorecar;
  let pgUrl = '';
  const schema = uniqueSchema('pipreg');

  beforeAll(async () => {
    if (kind === 'postgres') pgUrl = await sharedPostgres();
    const env: Record<string, string> =
      kind === 'postgres' ? { SCORECAR_STORAGE__POSTGRES__URL: pgUrl, SCORECAR_STORAGE__POSTGRES__SCHEMA: schema } : {};
    sc = await startChild(
      'assembler: {settleMs: 100}\n' +
        'scorers:\n' +
        '  - experiment: chat-app\n' +
        '    name: response_length\n' +
        '    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? \'\').length"}\n' +
        '    sampleRate: 1.0\n' +
        '    filterString: "trace.status = \'OK\'"\n',
      env,
    );
  }, 60_000);
  afterAll(async () => {
    resetConfiguration();
    await sc?.terminate();
    if (pgUrl) await dropSchema(pgUrl, schema);
  });

  it('reconciled the scorers: list from config as code', async () => {
    configure({ url: sc.adminUrl, experimentId: 'chat-app' });
    const list = await listScorers();
    expect(list.map((s) => [s.name, s.version, s.sampleRate, s.filterString, s.status])).toEqual([['response_length', 1, 1, "trace.status = 'OK'", 'active']]);
  });

  it('runs the seed lifecycle through the SDK: register, start 0.7, update 0.8, stop, start, delete', async () => {
    configure({ url: sc.adminUrl, experimentId: 'sdk-exp' });
    const registered = await Safety().register({ name: 'my_safety_judge' });
    expect(registered.status).toBe('registered');
    const started = await registered.start({ samplingConfig: new ScorerSamplingConfig({ sampleRate: 0.7 }) });
    const updated = await started.update({ samplingConfig: new ScorerSamplingConfig({ sampleRate: 0.8 }) });
    expect([started.sampleRate, updated.sampleRate]).toEqual([0.7, 0.8]); // the old object keeps its rate
    const stopped = await updated.stop();
    expect([stopped.sampleRate, stopped.status]).toEqual([0, 'stopped']);
    expect((await listScorers()).map((s) => s.name)).toContain('my_safety_judge');
    const again = await stopped.start({ samplingConfig: { sampleRate: 0.5 } });
    expect(again.status).toBe('active');
    await Guidelines({ name: 'english', guidelines: ['The response must be in English'] }).register({ name: 'my_safety_judge' });
    expect((await listScorerVersions({ name: 'my_safety_judge' })).map((v) => v.version)).toEqual([1, 2]);
    expect((await getScorer({ name: 'my_safety_judge' })).version).toBe(2);
    for (let i = 0; i < 19; i++) await scorer((ctx: { outputs?: unknown }) => String(ctx.outputs).length, { name: `len_${i}` }).register();
    await expect(scorer(() => 1, { name: 'one_too_many' }).register()).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', status: 409 });
    const { deleteScorer } = await import('scorecar/sdk');
    await deleteScorer({ name: 'my_safety_judge' });
    expect((await listScorers()).map((s) => s.name)).not.toContain('my_safety_judge');
  });

  it('runs the same lifecycle through the CLI', async () => {
    const def = JSON.stringify({ type: 'builtin', judge: 'safety' });
    expect((await cli(sc, 'register', 'cli_safety', '--definition', def)).status).toBe(0);
    expect((await cli(sc, 'start', 'cli_safety', '--sample-rate', '0.7')).status).toBe(0);
    expect((await cli(sc, 'update', 'cli_safety', '--sample-rate', '0.8')).status).toBe(0);
    const got = JSON.parse((await cli(sc, 'get', 'cli_safety', '--json')).stdout) as { sampleRate: number; status: string };
    expect([got.sampleRate, got.status]).toEqual([0.8, 'active']);
    expect((await cli(sc, 'stop', 'cli_safety')).status).toBe(0);
    const table = await cli(sc, 'list');
    expect(table.stdout).toMatch(/cli_safety.*stopped/);
    expect((await cli(sc, 'start', 'cli_safety', '--sample-rate', '0.5')).status).toBe(0);
    expect((await cli(sc, 'delete', 'cli_safety')).status).toBe(0);
    const missing = await cli(sc, 'get', 'cli_safety');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });

  it('applies a change made through the API to traces sent right after it', async () => {
    configure({ url: sc.adminUrl, experimentId: 'live' });
    const s = await (await scorer((ctx: { outputs?: unknown }) => String(ctx.outputs).length, { name: 'live_len' }).register()).start({
      samplingConfig: { sampleRate: 0.3, filterString: "trace.name = 'wanted'" },
    });
    const selected = () => scrape(sc.adminUrl, 'scorecar_sampler_selected_total', { experiment: 'live', scorer: 'live_len' });
    // A trace is decided once it completed (buffered, because the scorer may read it) or was
    // never buffered (its hash is above every rate; one span per trace here, so spans = traces),
    // and its selection is final once no completed trace waits for its view.
    const decided = async () =>
      (await scrape(sc.adminUrl, 'scorecar_sampler_traces_total', { experiment: 'live' })) +
      (await scrape(sc.adminUrl, 'scorecar_assembler_spans_total', { outcome: 'not_sampled' }));
    const settled = async (n: number) =>
      (await decided()) >= n && (await scrape(sc.adminUrl, 'scorecar_sampler_queue_traces')) === 0;
    const base = await decided();
    const wanted = await sendTraces(sc.httpUrl, 300, 'wanted', 'live');
    await sendTraces(sc.httpUrl, 300, 'other', 'live');
    const expected1 = wanted.filter((id) => isSelected(id, 0.3, SALT)).length;
    // Every trace of the first batch must be decided before the update.
    await waitFor(() => settled(base + 600), 10_000, 'the first 600 traces to be decided');
    expect(await selected()).toBe(expected1);
    // New rate and filter; traces sent right after the call are selected under them.
    await s.update({ samplingConfig: { sampleRate: 0.9, filterString: "trace.name = 'other'" } });
    await sendTraces(sc.httpUrl, 300, 'wanted', 'live');
    const other = await sendTraces(sc.httpUrl, 300, 'other', 'live');
    const expected2 = expected1 + other.filter((id) => isSelected(id, 0.9, SALT)).length;
    await waitFor(() => settled(base + 1200), 10_000, 'the next 600 traces to be decided');
    expect(await selected()).toBe(expected2);
  });

  it('sees a change written by another process to the same store within 2 s', async () => {
    const db = kind === 'postgres' ? await PostgresDatabase.open({ url: pgUrl, schema }) : undefined;
    const other = db
      ? await Registry.open({ store: await PostgresRegistryStore.open(db), pollIntervalMs: 0 })
      : await openSqliteRegistry({ dir: sc.dir, pollIntervalMs: 0 });
    try {
      await other.register('external', 'ext_len', { type: 'code', source: '(ctx) => 1' });
      await other.start('external', 'ext_len', { sampleRate: 1 });
    } finally {
      await other.close();
      await db?.close();
    }
    // The pipeline's own snapshot of active scorers (not the API, which reads the store
    // directly and may list the scorer before it was started, or before the poll ran).
    const t0 = Date.now();
    await waitFor(
      async () => (await scrape(sc.adminUrl, 'scorecar_registry_active_scorers', { experiment: 'external' })) === 1,
      10_000,
      'the running pipeline to have the new scorer active',
    );
    // The registry polls SQLite every 250 ms, PostgreSQL notifies it; 2 s is the contract.
    expect(Date.now() - t0).toBeLessThan(2_000);
    const ids = await sendTraces(sc.httpUrl, 50, 'x', 'external');
    try {
      await waitFor(async () => (await scrape(sc.adminUrl, 'scorecar_sampler_selected_total', { experiment: 'external' })) === ids.length, 15_000, 'the pipeline to select with it');
    } catch (e) {
      const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      console.log(text.split('\n').filter((l) => /^scorecar_(sampler|assembler|registry)/.test(l)).join('\n'));
      console.log(sc.output().slice(-3000));
      throw e;
    }
  });
});
