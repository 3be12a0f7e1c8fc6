// Backfill routes (MLflow backfill_scorers): run scorers over an experiment's archived traces.
import { z } from 'zod';
import type { BackfillJob, BackfillRequest } from '../archive/index.ts';
import { SCORER_NAME_PATTERN } from '../definitions/index.ts';
import { ScorecarError } from '../util/index.ts';
import { type AdminRoute, defineRoute } from './routes.ts';
import { type JsonSchema, schemaRef } from './schemas.ts';

/** What the routes need of the backfill manager (src/archive BackfillManager). */
export interface BackfillService {
  create(experimentId: string, req: BackfillRequest): Promise<BackfillJob>;
  get(jobId: string): Promise<BackfillJob>;
  list(experimentId: string): Promise<BackfillJob[]>;
  cancel(jobId: string): Promise<BackfillJob>;
}

export const BACKFILL_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['jobId', 'experimentId', 'state', 'scorers', 'startTime', 'endTime', 'tracesScanned', 'tracesTotal', 'selected', 'skipped', 'scored', 'errors'],
  properties: {
    jobId: { type: 'string' },
    experimentId: { type: 'string' },
    state: { enum: ['pending', 'running', 'succeeded', 'failed', 'cancelled'] },
    scorers: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, version: { type: 'integer' }, sampleRate: { type: 'number' }, filterString: { type: ['string', 'null'] } },
      },
    },
    startTime: { type: 'string', format: 'date-time' },
    endTime: { type: 'string', format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    tracesScanned: { type: 'integer', description: 'archived traces read so far' },
    tracesTotal: { type: 'integer', description: 'traces in the range (estimated from the files)' },
    selected: { type: 'integer', description: '(trace, scorer) pairs sampled with the filter passing' },
    skipped: { type: 'integer', description: 'of those, already assessed by that scorer version' },
    scored: { type: 'integer', description: 'scoring jobs run' },
    errors: { type: 'integer', description: 'error assessments' },
    etaSeconds: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
  },
};

const time = z.union([z.number().int(), z.string().max(64)]);

const createBody = z
  .object({
    scorers: z
      .array(
        z.union([
          z.string().regex(SCORER_NAME_PATTERN, 'expected a scorer name'),
          z
            .object({
              name: z.string().regex(SCORER_NAME_PATTERN, 'expected a scorer name'),
              sampleRate: z.number().gt(0, 'expected a number in (0, 1]').lte(1, 'expected a number in (0, 1]').optional(),
            })
            .strict(),
        ]),
      )
      .min(1)
      .max(20),
    startTime: time.optional(),
    endTime: time.optional(),
  })
  .strict();

function toMs(v: number | string | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(n)) throw new ScorecarError('INVALID_ARGUMENT', `${field}: expected epoch milliseconds or ISO-8601`, { details: { field: `body.${field}` } });
  return n;
}

export function backfillRoutes(backfills: BackfillService): AdminRoute[] {
  const tags = ['backfills'];
  return [
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/backfills',
      operationId: 'createBackfill',
      summary: "Score an experiment's archived traces with registered scorers (MLflow backfill_scorers)",
      description:
        'scorers: names (their current sample rate) or {name, sampleRate}; startTime/endTime (epoch ms or ISO-8601) ' +
        'default to the last backfill.defaultLookbackDays days. The same sampler, filters and assessment ids as live ' +
        'scoring: traces already assessed by the scorer version are skipped. Judge budgets apply. One backfill runs ' +
        'per experiment (409 BACKFILL_RUNNING, details.jobId); the experiment must be archived (409 FAILED_PRECONDITION).',
      tags,
      body: createBody,
      responses: {
        '202': { description: 'The job, started', schema: BACKFILL_SCHEMA },
        '409': {
          description: 'BACKFILL_RUNNING: a backfill of the experiment runs (details.jobId); FAILED_PRECONDITION: the experiment is not archived',
          schema: schemaRef('Error'),
        },
      },
      handler: async (req) => {
        const b = req.body as z.output<typeof createBody>;
        const job = await backfills.create(req.params.exp!, {
          scorers: b.scorers,
          startTimeMs: toMs(b.startTime, 'startTime'),
          endTimeMs: toMs(b.endTime, 'endTime'),
        });
        return { status: 202, body: job, headers: { location: `/api/v1/backfills/${job.jobId}` } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/backfills',
      operationId: 'listBackfills',
      summary: "An experiment's backfills, newest first",
      tags,
      responses: {
        '200': { description: 'Backfills', schema: { type: 'object', required: ['backfills'], properties: { backfills: { type: 'array', items: BACKFILL_SCHEMA } } } },
      },
      handler: async (req) => ({ status: 200, body: { backfills: await backfills.list(req.params.exp!) } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/backfills/{jobId}',
      operationId: 'getBackfill',
      summary: 'A backfill: state, progress (scanned, selected, skipped, scored, errors) and ETA',
      tags,
      responses: { '200': { description: 'The job', schema: BACKFILL_SCHEMA } },
      handler: async (req) => ({ status: 200, body: await backfills.get(req.params.jobId!) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/backfills/{jobId}/cancel',
      operationId: 'cancelBackfill',
      summary: 'Cancel a backfill (what it already scored stays)',
      tags,
      responses: { '200': { description: 'The job, cancelled (or already finished)', schema: BACKFILL_SCHEMA } },
      handler: async (req) => ({ status: 200, body: await backfills.cancel(req.params.jobId!) }),
    }),
  ];
}
