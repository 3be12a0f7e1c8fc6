// The SDK's and the CLI's archive, search and backfill commands against a real scorecar: each
// call goes over HTTP to the admin API and what it prints or returns is checked against the
// server's own state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING_SALT, isSelected } from '../../src/select/index.ts';
import { progressLine, runArchival, runBackfill, runTraces } from '../../src/cli/archive.ts';
import {
  BackfillScorerConfig,
  backfillScorers,
  cancelBackfill,
  disableArchival,
  enableArchival,
  getBackfill,
  ScorecarClient,
  searchTraces,
} from '../../src/sdk/index.ts';
import { fixtureBatches, type SentTrace, sendBatch } from '../support/archive.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const EXP = 'sdk-app';

describe('archive, search and backfills from the SDK and the CLI', () => {
  let sc: TestScorecar;
  let client: ScorecarClient;
  const sent: SentTrace[] = [];

  const cli = async (run: typeof runTraces, argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await run([...argv, '--url', sc.adminUrl, '-e', EXP], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: {},
      tty: false,
      pollMs: 10,
    });
    return { code, stdout, stderr };
  };

  beforeAll(async () => {
    sc = await startScorecar(
      `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 50, idleTimeoutMs: 1000 }
archive: { commitIntervalMs: 100 }
scorers:
  - experiment: ${EXP}
    name: out_len
    definition: { type: code, source: "(ctx) => String(ctx.outputs ?? '').length" }
    sampleRate: 0
`,
    );
    client = new ScorecarClient({ url: sc.adminUrl, experimentId: EXP });
    const a = await enableArchival({ client });
    expect(a.experimentId).toBe(EXP);
    for (const b of fixtureBatches(6, 3, 'sdk')) {
      await sendBatch(sc.httpUrl, b.body, EXP);
      sent.push(...b.traces);
    }
    await sc.app.whenIdle();
    await sc.app.pipeline.archiver.flush();
  }, 120_000);

  afterAll(async () => {
    await sc?.stop();
  });

  it('searchTraces pages through the archive; the CLI prints the same traces', async () => {
    const first = await searchTraces({ client, maxResults: 10 });
    expect(first.traces.length).toBe(10);
    const second = await searchTraces({ client, maxResults: 10, pageToken: first.nextPageToken! });
    expect(second.traces.map((t) => t.traceId).some((id) => first.traces.some((f) => f.traceId === id))).toBe(false);
    const r = await cli(runTraces, ['search', '--max-results', '10', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { traces: Array<{ traceId: string }> }).traces.map((t) => t.traceId)).toEqual(first.traces.map((t) => t.traceId));
    const human = await cli(runTraces, ['search', '--max-results', '3']);
    expect(human.stdout).toContain(first.traces[0]!.traceId);
    expect(human.stdout).toContain('next page: --page-token');
    const one = await cli(runTraces, ['get', sent[0]!.traceId]);
    expect(one.code).toBe(0);
    expect(one.stdout.match(/^ {2}span /gm)?.length).toBe(sent[0]!.spans);
    const bad = await cli(runTraces, ['search', '--filter', "trace.status = 'OK' AND"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('INVALID_FILTER');
    expect((await cli(runTraces, ['search', '--max-results', '0'])).code).toBe(2);
  });

  it('backfillScorers runs, reports progress and re-runs to nothing from the CLI', async () => {
    const jobId = await backfillScorers({ client, scorers: [new BackfillScorerConfig({ scorer: 'out_len', sampleRate: 0.5 })], startTime: 0 });
    const done = await sc.app.pipeline.backfills.whenDone(jobId);
    const expected = sent.filter((t) => isSelected(t.traceId, 0.5, DEFAULT_SAMPLING_SALT)).length;
    expect(done).toMatchObject({ state: 'succeeded', selected: expected, scored: expected, skipped: 0 });
    expect((await getBackfill(jobId, { client })).state).toBe('succeeded');
    const status = await cli(runBackfill, ['status', jobId]);
    expect(status.stdout).toContain(`${expected} scored`);
    // The CLI waits with progress lines and ends with the final state.
    const again = await cli(runBackfill, ['--scorer', 'out_len:0.5', '--start', '0']);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n').pop()).toContain(`0 scored, ${expected} skipped, 0 errors succeeded`);
    const list = await cli(runBackfill, ['list', '--json']);
    expect((JSON.parse(list.stdout) as { backfills: unknown[] }).backfills.length).toBe(2);
    // A finished job cancels to itself.
    expect((await cancelBackfill(jobId, { client })).state).toBe('succeeded');
    expect((await cli(runBackfill, ['--scorer', 'nope'])).code).toBe(1);
    expect((await cli(runBackfill, ['--scorer', 'out_len:2'])).code).toBe(2);
    expect(() => new BackfillScorerConfig({ scorer: 'x', sampleRate: 0 })).toThrow(/sampleRate/);
  });

  it('refuses backfills that cannot run, and cancels one before it scores', async () => {
    const post = (exp: string, body: unknown) =>
      fetch(`${sc.adminUrl}/api/v1/experiments/${exp}/backfills`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }),
      );
    expect(await post('never-archived', { scorers: ['out_len'] })).toMatchObject({ status: 409, body: { error: { code: 'FAILED_PRECONDITION' } } });
    // out_len is registered but not started: a rate must be given.
    expect(await post(EXP, { scorers: ['out_len'] })).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT' } } });
    expect(await post(EXP, { scorers: ['out_len', { name: 'out_len', sampleRate: 1 }] })).toMatchObject({ status: 400 });
    expect(await post(EXP, { scorers: [{ name: 'out_len', sampleRate: 1 }], startTime: 10, endTime: 5 })).toMatchObject({ status: 400 });
    expect(await post(EXP, { scorers: [{ name: 'nope', sampleRate: 1 }] })).toMatchObject({ status: 404 });
    expect(await post(EXP, { scorers: [{ name: 'out_len', sampleRate: 1 }], startTime: 'not a time' })).toMatchObject({ status: 400 });
    const manager = sc.app.pipeline.backfills;
    const job = await manager.create(EXP, { scorers: [{ name: 'out_len', sampleRate: 1 }], startTimeMs: 0 });
    const cancelled = await manager.cancel(job.jobId);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.scored).toBe(0);
    expect((await manager.list(EXP))[0]?.jobId).toBe(job.jobId);
  });

  it('archival status and disable from the CLI and the SDK', async () => {
    const st = await cli(runArchival, ['status']);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(EXP);
    const all = await cli(runArchival, ['status', '--all-experiments', '--json']);
    expect((JSON.parse(all.stdout) as { archivals: Array<{ experimentId: string }> }).archivals.map((a) => a.experimentId)).toEqual([EXP]);
    const off = await cli(runArchival, ['disable']);
    expect(off.stdout).toContain('stopped archiving');
    await expect(disableArchival({ client })).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
    const on = await cli(runArchival, ['enable', '--json']);
    expect(JSON.parse(on.stdout).experimentId).toBe(EXP);
  });

  it('renders a progress bar line', () => {
    const line = progressLine({
      jobId: 'bf-1',
      experimentId: EXP,
      state: 'running',
      scorers: [],
      startTime: '',
      endTime: '',
      createdAt: '',
      updatedAt: '',
      tracesScanned: 50,
      tracesTotal: 200,
      selected: 10,
      skipped: 2,
      scored: 8,
      errors: 1,
      etaSeconds: 12,
      error: null,
    }, 20);
    expect(line).toBe('[#####...............] 25% 50/200 traces, 8 scored, 2 skipped, 1 errors running eta 12s');
  });
});
