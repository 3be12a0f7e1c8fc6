// Many replicas, one control plane: three `scorecar start` processes on one PostgreSQL database
// (storage.postgres), real OTLP through their receivers, the registry changed through one
// replica's REST API. Covers issue 14 section 1: propagation of a change to every running
// pipeline within 2 s (measured), a judge budget shared by the three, a replica SIGKILLed in the
// middle of registry writes, and the database restarted under load (nothing lost or duplicated).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { PostgresDatabase } from '../../src/postgres/index.ts';
import { PostgresRegistryStore } from '../../src/registry/index.ts';
import { fixtureBatches, sendBatch } from '../support/archive.ts';
import { type ChildScorecar, scrape, startChild } from '../support/child.ts';
import { dropSchema, OwnPostgres, sharedPostgres, uniqueSchema } from '../support/postgres.ts';
import { waitFor } from '../support/scorecar.ts';

const CODE = { type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" };

function replicaYaml(extra = ''): string {
  return `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 20, idleTimeoutMs: 1000 }
${extra}
`;
}

/** The shared store through the environment, as an operator sets it (SCORECAR_STORAGE__POSTGRES__*). */
function pgEnv(url: string, schema: string): Record<string, string> {
  return { SCORECAR_STORAGE__POSTGRES__URL: url, SCORECAR_STORAGE__POSTGRES__SCHEMA: schema, SCORECAR_STORAGE__POSTGRES__CONNECTTIMEOUTMS: '2000' };
}

async function api(
  admin: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${admin}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function count(url: string, schema: string, sql: string, params: unknown[] = []): Promise<number> {
  const c = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(sql, params);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/** Batches of fixture traces (every convention), each trace id unique to `seed`. */
function batches(copies: number, seed: string) {
  return fixtureBatches(copies, 1, seed);
}

describe('three replicas on one PostgreSQL database', () => {
  let url: string;
  const schema = uniqueSchema('multi');
  let model: ModelServer;
  let replicas: ChildScorecar[] = [];

  beforeAll(async () => {
    url = await sharedPostgres();
    model = await startModelServer();
    const yaml = replicaYaml(
      `scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key", concurrency: 1}}
  defaultModel: "openai:/scorecar-judge"
  budgets: { budgeted: { tokensPerDay: 3000 } }`,
    );
    // Started together on an empty schema: the migrations run once, under the advisory lock.
    replicas = await Promise.all([0, 1, 2].map(() => startChild(yaml, pgEnv(url, schema))));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.terminate()));
    await model?.close();
    if (url) await dropSchema(url, schema);
  });

  it('applied each migration once although the three started together', async () => {
    expect(await count(url, schema, 'SELECT COUNT(*) AS n FROM scorecar_migrations')).toBe(4);
    expect(
      await count(url, schema, "SELECT COUNT(*) AS n FROM scorecar_migrations WHERE component = 'registry'"),
    ).toBe(1);
    for (const r of replicas) {
      const h = (await (await fetch(`${r.adminUrl}/healthz`)).json()) as {
        checks: { store: { kind: string; connected: boolean } };
      };
      expect(h.checks.store).toMatchObject({ kind: 'postgres', connected: true });
    }
  });

  it('a scorer started through one replica is running on the others within 2 s and scores the traces they receive', async () => {
    const [a, b, c] = replicas as [ChildScorecar, ChildScorecar, ChildScorecar];
    expect(
      (await api(a.adminUrl, 'POST', '/experiments/live/scorers', { name: 'out_len', definition: CODE }))
        .status,
    ).toBe(201);
    const revBefore = await scrape(a.adminUrl, 'scorecar_registry_revision');
    const t0 = Date.now();
    expect(
      (await api(a.adminUrl, 'POST', '/experiments/live/scorers/out_len/start', { sampleRate: 1 })).status,
    ).toBe(200);
    const target = revBefore + 1;
    // Bounded wait on each running pipeline's snapshot revision (the change notification reached it).
    const reached: number[] = [];
    await Promise.all(
      [b, c].map(async (r) => {
        await waitFor(
          async () => (await scrape(r.adminUrl, 'scorecar_registry_revision')) >= target,
          2_000,
          'the change on the other replica',
        );
        reached.push(Date.now() - t0);
      }),
    );
    // Traces sent to b and c now are scored there.
    const sent = batches(2, `live-${t0}`);
    await Promise.all(sent.map((bt, i) => sendBatch((i % 2 === 0 ? b : c).httpUrl, bt.body, 'live')));
    const ids = sent.flatMap((bt) => bt.traces.map((t) => t.traceId));
    await waitFor(
      async () =>
        (await count(
          url,
          schema,
          "SELECT COUNT(DISTINCT trace_id) AS n FROM assessments WHERE scorer_name = 'out_len' AND trace_id = ANY($1)",
          [ids],
        )) === ids.length,
      // Scoring itself (assembly, the sandbox) is not what the 2 s bound is about: a loaded
      // machine gets a generous bound here; the figure is printed below.
      20_000,
      'every trace scored',
    );
    const scoredMs = Date.now() - t0;
    // Each replica measured it too, from the committing replica's clock (same host here).
    const hist = await Promise.all(
      [b, c].map(async (r) => ({
        sum: await scrape(r.adminUrl, 'scorecar_registry_propagation_seconds_sum'),
        n: await scrape(r.adminUrl, 'scorecar_registry_propagation_seconds_count'),
      })),
    );
    for (const h of hist) expect(h.n).toBeGreaterThanOrEqual(1);
    console.log(
      `[shared-store] propagation: snapshot on the other replicas after ${reached.join(', ')} ms (their own histograms: ${hist
        .map((h) => `${((h.sum / h.n) * 1000).toFixed(1)} ms mean`)
        .join(
          ', ',
        )}); ${ids.length} traces through the two others scored ${scoredMs} ms after the start call`,
    );
    // The issue's bound: the change is in every other replica's running pipeline within 2 s.
    expect(Math.max(...reached)).toBeLessThan(2_000);
    // Any replica reads what another scored.
    const t = await api(a.adminUrl, 'GET', `/traces/${ids[0]}`);
    expect(t.status).toBe(200);
    expect((t.body.assessments as unknown[]).length).toBe(1);
  });

  it('a judge budget shared by the three stops every judge once spent', async () => {
    expect(
      (
        await api(replicas[0]!.adminUrl, 'POST', '/experiments/budgeted/scorers', {
          name: 'safe',
          definition: { type: 'builtin', judge: 'safety' },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await api(replicas[1]!.adminUrl, 'POST', '/experiments/budgeted/scorers/safe/start', {
          sampleRate: 1,
        })
      ).status,
    ).toBe(200);
    const rev = await scrape(replicas[1]!.adminUrl, 'scorecar_registry_revision');
    for (const r of replicas)
      await waitFor(
        async () => (await scrape(r.adminUrl, 'scorecar_registry_revision')) >= rev,
        2_000,
        'the start everywhere',
      );
    // Far more traces than the budget pays for, through all three (each its own traces).
    let round = 0;
    const sentTo = [0, 0, 0];
    const dropped = async (r: ChildScorecar) =>
      scrape(r.adminUrl, 'scorecar_scoring_jobs_dropped_total', {
        experiment: 'budgeted',
        reason: 'budget_exhausted',
      });
    // What was sent is done (judged or dropped): accepted as jobs, none queued or running.
    const idle = () =>
      waitFor(
        async () => {
          const ok = await Promise.all(
            replicas.map(
              async (r, i) =>
                (await scrape(r.adminUrl, 'scorecar_scoring_jobs_total', { experiment: 'budgeted' })) ===
                  sentTo[i] &&
                (await scrape(r.adminUrl, 'scorecar_scoring_queue_jobs')) === 0 &&
                (await scrape(r.adminUrl, 'scorecar_scoring_jobs_running')) === 0,
            ),
          );
          return ok.every(Boolean);
        },
        30_000,
        'scoring idle on every replica',
      );
    const sendRound = async (tag: string) => {
      await Promise.all(
        replicas.map(async (r, i) => {
          const bt = batches(1, `budget-${tag}-${i}`)[0]!;
          await sendBatch(r.httpUrl, bt.body, 'budgeted');
          sentTo[i]! += bt.traces.length;
        }),
      );
      await idle();
    };
    while ((await Promise.all(replicas.map(dropped))).some((n) => n === 0)) {
      if (round > 40) throw new Error('the budget never stopped every replica');
      await sendRound(String(round++));
    }
    const used = await count(
      url,
      schema,
      "SELECT COALESCE(SUM(tokens), 0)::float8 AS n FROM budget_usage WHERE experiment_id = 'budgeted'",
    );
    const calls = await count(
      url,
      schema,
      "SELECT COALESCE(SUM(calls), 0)::float8 AS n FROM budget_usage WHERE experiment_id = 'budgeted'",
    );
    const perCall = used / calls;
    console.log(
      `[shared-store] budget 3000 tokens: ${used} used in ${calls} judge calls (${perCall.toFixed(0)} per call) across 3 replicas, ${model.stats().requests} model requests`,
    );
    expect(used).toBeGreaterThanOrEqual(3000);
    // Overshoot: at most the calls in flight (one per replica: judge concurrency 1).
    expect(used - 3000).toBeLessThanOrEqual(3 * perCall);
    // Spent: more traces reach no model on any replica; each drops them.
    const before = model.stats().requests;
    const droppedBefore = await Promise.all(replicas.map(dropped));
    await sendRound('after');
    expect(model.stats().requests).toBe(before);
    const droppedAfter = await Promise.all(replicas.map(dropped));
    for (const [i, n] of droppedAfter.entries()) expect(n).toBeGreaterThan(droppedBefore[i]!);
    // Each replica's scorer health says why.
    for (const r of replicas) {
      const got = await api(r.adminUrl, 'GET', '/experiments/budgeted/scorers/safe');
      expect(got.body.health).toMatchObject({ state: 'paused', code: 'BUDGET_EXHAUSTED' });
    }
  });

  it('a replica killed in the middle of registry writes leaves the registry consistent', async () => {
    const victim = await startChild(replicaYaml(), pgEnv(url, schema));
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `k${i % 15}`;
        try {
          await api(victim.adminUrl, 'POST', '/experiments/killed/scorers', {
            name,
            definition: { ...CODE, source: `(ctx) => ${i}` },
          });
          await api(victim.adminUrl, 'POST', `/experiments/killed/scorers/${name}/start`, {
            sampleRate: 0.5,
          });
          if (i % 3 === 0)
            await api(victim.adminUrl, 'DELETE', `/experiments/killed/scorers/${name}?version=all`);
          writes++;
        } catch {
          return; // the process is gone
        }
      }
    })();
    await waitFor(() => writes >= 10, 30_000, 'writes under way');
    victim.kill();
    stop = true;
    await writer;
    // Invariants over the whole registry (as the SQLite store's check), from outside.
    const db = await PostgresDatabase.open({ url, schema });
    try {
      const store = await PostgresRegistryStore.open(db);
      expect(await store.check(20)).toEqual([]);
      const dump = await store.dump();
      // The surviving replicas see the same registry and keep working on it.
      const listed = await api(replicas[0]!.adminUrl, 'GET', '/experiments/killed/scorers');
      expect(listed.status).toBe(200);
      expect((listed.body.scorers as unknown[]).length).toBe(
        dump.scorers.filter((s) => s.experimentId === 'killed').length,
      );
      expect(
        (
          await api(replicas[1]!.adminUrl, 'POST', '/experiments/killed/scorers', {
            name: 'after',
            definition: CODE,
          })
        ).status,
      ).toBe(201);
      expect(await store.check(20)).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

describe('the database restarted under load', () => {
  const server = new OwnPostgres();
  let url: string;
  let replicas: ChildScorecar[] = [];

  beforeAll(async () => {
    url = await server.start();
    const yaml = replicaYaml(
      `scorers:
  - {experiment: load, name: out_len, definition: ${JSON.stringify(CODE)}, sampleRate: 1.0}`,
    );
    replicas = await Promise.all([startChild(yaml, pgEnv(url, 'public')), startChild(yaml, pgEnv(url, 'public'))]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.terminate()));
    await server.clean();
  });

  it('replicas started together with the same config-as-code scorer add one version of it', async () => {
    expect(await count(url, 'public', "SELECT COUNT(*) AS n FROM scorer_versions WHERE experiment_id = 'load' AND name = 'out_len'")).toBe(1);
  });

  it('replicas reconnect, and every trace sent is scored and stored exactly once', async () => {
    const ids: string[] = [];
    let n = 0;
    const send = async (rounds: number): Promise<void> => {
      for (let i = 0; i < rounds; i++) {
        const bt = batches(1, `load-${n++}`)[0]!;
        await sendBatch(replicas[n % replicas.length]!.httpUrl, bt.body, 'load');
        ids.push(...bt.traces.map((t) => t.traceId));
      }
    };
    await send(5);
    await waitFor(
      async () => (await count(url, 'public', 'SELECT COUNT(*) AS n FROM assessments')) === ids.length,
      20_000,
      'the first traces stored',
    );
    // Load continues while the database goes away and comes back.
    const load = send(20);
    await server.stop();
    // Unreachable: readiness says so (the data plane keeps receiving: the load above goes on).
    await waitFor(
      async () => (await fetch(`${replicas[0]!.adminUrl}/readyz`)).status === 503,
      10_000,
      'not ready while the database is down',
    );
    await load;
    await send(5);
    await server.start();
    await send(5);
    await waitFor(
      async () => (await fetch(`${replicas[0]!.adminUrl}/readyz`)).status === 200,
      20_000,
      'ready again',
    );
    await waitFor(
      async () => (await count(url, 'public', 'SELECT COUNT(*) AS n FROM assessments')) >= ids.length,
      60_000,
      'every assessment stored',
    );
    for (const r of replicas)
      await waitFor(
        async () => (await scrape(r.adminUrl, 'scorecar_assessment_store_pending')) === 0,
        20_000,
        'retry buffer empty',
      );
    expect(await count(url, 'public', 'SELECT COUNT(*) AS n FROM assessments')).toBe(ids.length);
    expect(
      await count(
        url,
        'public',
        'SELECT COUNT(DISTINCT trace_id) AS n FROM assessments WHERE trace_id = ANY($1)',
        [ids],
      ),
    ).toBe(ids.length);
    // Emitted (downstream, metrics) once each, across the replicas.
    const emitted = (
      await Promise.all(
        replicas.map((r) => scrape(r.adminUrl, 'scorecar_assessments_total', { experiment: 'load' })),
      )
    ).reduce((a, b) => a + b, 0);
    expect(emitted).toBe(ids.length);
    // The registry's change notifications work again: a stop through one reaches the other.
    const rev = await scrape(replicas[0]!.adminUrl, 'scorecar_registry_revision');
    const t0 = Date.now();
    expect((await api(replicas[0]!.adminUrl, 'POST', '/experiments/load/scorers/out_len/stop')).status).toBe(
      200,
    );
    await waitFor(
      async () => (await scrape(replicas[1]!.adminUrl, 'scorecar_registry_revision')) > rev,
      2_000,
      'the stop on the other replica',
    );
    console.log(
      `[shared-store] after the restart: ${ids.length} traces, ${ids.length} assessments, change propagated in ${Date.now() - t0} ms`,
    );
  });
});
