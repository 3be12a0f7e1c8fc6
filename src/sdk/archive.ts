// MLflow 3's archive, search and backfill names in TypeScript form: enableArchival /
// disableArchival (enable_databricks_trace_archival), searchTraces (search_traces) and
// backfillScorers with BackfillScorerConfig (backfill_scorers), plus the job's status.
import {
  type ArchivalResource,
  type BackfillResource,
  defaultClient,
  ScorecarApiError,
  type SearchTracesOptions,
  type TracePage,
} from './client.ts';
import type { ClientOption, Scorer } from './scorers.ts';

/** Archive an experiment's traces and assessments to Delta tables from now on. */
export function enableArchival(opts: { experimentId?: string; tablePath?: string } & ClientOption = {}): Promise<ArchivalResource> {
  const { client, ...rest } = opts;
  return (client ?? defaultClient()).enableArchival(rest);
}

/** Stop archiving an experiment (its tables stay). */
export function disableArchival(opts: { experimentId?: string } & ClientOption = {}): Promise<{ experimentId: string; archived: false }> {
  const { client, ...rest } = opts;
  return (client ?? defaultClient()).disableArchival(rest);
}

/**
 * One page of an archived experiment's traces, each with its assessments. Follow
 * `nextPageToken` with the same options for the next page.
 *
 * ```ts
 * const { traces } = await searchTraces({ filterString: "trace.status = 'ERROR'", maxResults: 50 });
 * ```
 */
export function searchTraces(opts: SearchTracesOptions & ClientOption = {}): Promise<TracePage> {
  const { client, ...rest } = opts;
  return (client ?? defaultClient()).searchTraces(rest);
}

/**
 * A scorer to backfill and at which rate (MLflow `BackfillScorerConfig`). Without a rate, the
 * scorer's current sample rate applies (it must then be started).
 */
export class BackfillScorerConfig {
  readonly scorer: string;
  readonly sampleRate: number | undefined;
  constructor(init: { scorer: Scorer | string; sampleRate?: number }) {
    const name = typeof init.scorer === 'string' ? init.scorer : init.scorer.name;
    if (!name) throw new ScorecarApiError('INVALID_ARGUMENT', 'scorer: a scorer or its name', 0);
    if (init.sampleRate !== undefined && !(init.sampleRate > 0 && init.sampleRate <= 1)) {
      throw new ScorecarApiError('INVALID_ARGUMENT', `sampleRate: expected a number in (0, 1], got ${JSON.stringify(init.sampleRate)}`, 0);
    }
    this.scorer = name;
    this.sampleRate = init.sampleRate;
    Object.freeze(this);
  }
}

/**
 * Runs scorers over the experiment's archived traces of a time range (default: the last 7 days
 * on the server) and returns the job id. Scorers are BackfillScorerConfig objects, Scorer
 * objects or names. Watch it with getBackfill(jobId).
 */
export async function backfillScorers(
  opts: {
    scorers: ReadonlyArray<BackfillScorerConfig | Scorer | string>;
    startTime?: number | string | Date;
    endTime?: number | string | Date;
    experimentId?: string;
  } & ClientOption,
): Promise<string> {
  const scorers = opts.scorers.map((s) => {
    if (typeof s === 'string') return s;
    if (s instanceof BackfillScorerConfig) return s.sampleRate === undefined ? s.scorer : { name: s.scorer, sampleRate: s.sampleRate };
    return s.name;
  });
  const job = await (opts.client ?? defaultClient()).createBackfill({
    scorers,
    ...(opts.experimentId !== undefined ? { experimentId: opts.experimentId } : {}),
    ...(opts.startTime !== undefined ? { startTime: opts.startTime } : {}),
    ...(opts.endTime !== undefined ? { endTime: opts.endTime } : {}),
  });
  return job.jobId;
}

/** A backfill's state and progress. */
export function getBackfill(jobId: string, opts: ClientOption = {}): Promise<BackfillResource> {
  return (opts.client ?? defaultClient()).getBackfill(jobId);
}

/** Cancels a backfill; what it scored stays. */
export function cancelBackfill(jobId: string, opts: ClientOption = {}): Promise<BackfillResource> {
  return (opts.client ?? defaultClient()).cancelBackfill(jobId);
}

