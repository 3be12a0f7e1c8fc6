// Backfills over the wire, against a real scorecar process: two code scorers at 0.5 over the
// archived traces of the recorded conventions. The first run is killed (SIGKILL) half-way and
// resumes on restart; at the end exactly the deterministic sample of each scorer is assessed,
// once each, marked scorecar.source=backfill. A second run adds nothing; a second job while one
// runs is refused with BACKFILL_RUNNING.
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING_SALT, isSelected } from '../../src/select/index.ts';
import { fixtureBatches, type SentTrace, sendBatch } from '../support/archive.ts';
import { type ChildScorecar, startChild } from '../support/child.ts';
import type { Json } from '../support/python.ts';
import { waitFor } from '../support/scorecar.ts';

const EXP = 'bf-app';
// A code scorer that costs a few milliseconds of sandbox CPU per call, so the run lasts long
// enough to be killed half-way on any machine.
const SLOW = 'let x = 0; for (let i = 0; i < 1000000; i++) x += i;';
const YAML = `
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 100, idleTimeoutMs: 1000 }
archive: { tables: { ${EXP}: {} }, commitIntervalMs: 200 }
backfill: { checkpointEveryTraces: 40, maxJobsInFlight: 8 }
scorers:
  - experiment: ${EXP}
    name: out_len
    definition: { type: code, source: "(ctx) => { ${SLOW} return String(ctx.outputs ?? '').length; }" }
    sampleRate: 0
  - experiment: ${EXP}
    name: span_count
    definition: { type: code, source: "(ctx) => { ${SLOW} return ctx.trace.spans.length; }" }
    sampleRate: 0
`;

describe('backfill_scorers over the archive', () => {
  let child: ChildScorecar | undefined;
  afterAll(() => child?.kill());

  const api = async (c: ChildScorecar, path: string, body?: unknown) => {
    const res = await fetch(`${c.adminUrl}/api/v1${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, Json> };
  };

  it('scores exactly the deterministic sample once, resumes after SIGKILL, and adds nothing when re-run', async () => {
    child = await startChild(YAML);
    const dir = child.dir;
    const sent: SentTrace[] = [];
    for (const b of fixtureBatches(40, 10, 'backfill')) {
      await sendBatch(child.httpUrl, b.body, EXP);
      sent.push(...b.traces);
    }
    const first = child;
    await waitFor(async () => (await api(first, `/experiments/${EXP}/archival`)).body.traces?.committedRows === sent.length, 60_000, 'every trace archived');

    const job = await api(child, `/experiments/${EXP}/backfills`, {
      scorers: [{ name: 'out_len', sampleRate: 0.5 }, { name: 'span_count', sampleRate: 0.5 }],
      startTime: 0,
    });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    const jobId = job.body.jobId as string;
    // One backfill per experiment.
    const second = await api(child, `/experiments/${EXP}/backfills`, { scorers: ['out_len'], startTime: 0 });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'BACKFILL_RUNNING', details: { jobId } });

    // Kill it half-way: once a checkpoint past a third of the traces is saved.
    let atKill: Record<string, Json> = {};
    await waitFor(
      async () => {
        atKill = (await api(first, `/backfills/${jobId}`)).body;
        return atKill.state !== 'running' || atKill.tracesScanned >= sent.length / 3;
      },
      120_000,
      'the backfill to get a third of the way',
    );
    child.kill();
    await new Promise((r) => child!.proc.once('exit', r));
    expect(atKill.state).toBe('running');
    expect(atKill.tracesScanned).toBeLessThan(sent.length);

    // Restart on the same storage: the job resumes from its checkpoint by itself.
    child = await startChild(YAML, { SCORECAR_STORAGE__DIR: dir });
    const second2 = child;
    let done: Record<string, Json> = {};
    await waitFor(
      async () => {
        done = (await api(second2, `/backfills/${jobId}`)).body;
        return done.state !== 'running' && done.state !== 'pending';
      },
      180_000,
      'the resumed backfill to finish',
    );
    expect(done.state).toBe('succeeded');
    expect(done.tracesScanned).toBeGreaterThanOrEqual(sent.length);

    const expected = (scorer: string) =>
      sent
        .filter((t) => isSelected(t.traceId, 0.5, DEFAULT_SAMPLING_SALT))
        .map((t) => t.traceId)
        .sort()
        .map((id) => `${scorer}:${id}`);
    const stored = () => {
      const db = new DatabaseSync(join(dir, 'assessments.db'), { readOnly: true });
      const rows = db.prepare('SELECT scorer_name, trace_id, metadata_json, sample_rate FROM assessments ORDER BY scorer_name, trace_id').all() as Array<{
        scorer_name: string;
        trace_id: string;
        metadata_json: string;
        sample_rate: number;
      }>;
      db.close();
      return rows;
    };
    const rows = stored();
    expect(rows.map((r) => `${r.scorer_name}:${r.trace_id}`)).toEqual([...expected('out_len'), ...expected('span_count')]);
    expect(rows.every((r) => JSON.parse(r.metadata_json)['scorecar.source'] === 'backfill' && r.sample_rate === 0.5)).toBe(true);

    // Re-running adds nothing: every selected pair is skipped as assessed already.
    const again = await api(child, `/experiments/${EXP}/backfills`, { scorers: [{ name: 'out_len', sampleRate: 0.5 }, { name: 'span_count', sampleRate: 0.5 }], startTime: 0 });
    expect(again.status).toBe(202);
    let rerun: Record<string, Json> = {};
    await waitFor(
      async () => {
        rerun = (await api(second2, `/backfills/${again.body.jobId}`)).body;
        return rerun.state === 'succeeded';
      },
      120_000,
      'the second backfill to finish',
    );
    expect(rerun.scored).toBe(0);
    expect(rerun.skipped).toBe(rerun.selected);
    expect(rerun.selected).toBe(rows.length);
    expect(stored().length).toBe(rows.length);
    const list = await api(child, `/experiments/${EXP}/backfills`);
    expect(list.body.backfills.map((b: { jobId: string }) => b.jobId).sort()).toEqual([jobId, again.body.jobId].sort());
    expect((await api(child, '/backfills/bf-nope')).status).toBe(404);
    expect(await child.terminate()).toBe(0);
    child = undefined;
  }, 400_000);
});
