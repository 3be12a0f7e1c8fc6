// Routes the web UI reads scorer quality through (public REST like the rest, in the OpenAPI
// document): an experiment's newest assessments, assessment aggregates over time with a
// confidence band that accounts for each assessment's inclusion probability, a dry check of a
// definition or filter string (errors with their path and position, nothing registered), and a
// dry run of a scorer over archived traces (verdicts returned, nothing emitted or stored).
import { z } from 'zod';
import type { CompleteTrace } from '../assembly/index.ts';
import type { AggregateQuery, AggregateRow, Assessment, RecentQuery } from '../assessments/index.ts';
import {
  type ArchivedTrace,
  attributesMap,
  type RowSpan,
  type SearchQuery,
  type TraceInfo,
  traceFromRow,
} from '../archive/index.ts';
import { MAX_FILTER_LENGTH, SCORER_NAME_PATTERN, type ScorerVersion } from '../definitions/index.ts';
import { buildTraceView, type TraceView, type TraceViewOptions } from '../genai/index.ts';
import type { Registry } from '../registry/index.ts';
import { type ScorerRunner, validateScorerDefinition } from '../scoring/index.ts';
import { compileFilter } from '../select/index.ts';
import { ScorecarError } from '../util/index.ts';
import { type AdminRoute, defineRoute } from './routes.ts';
import { type JsonSchema, schemaRef } from './schemas.ts';
import { ASSESSMENT_SCHEMA } from './traces.ts';

/** What the routes read of the assessment store (src/assessments AssessmentStore). */
export interface QualityStore {
  recent(experimentId: string, q: RecentQuery): Promise<Assessment[]>;
  aggregate(experimentId: string, q: AggregateQuery): Promise<AggregateRow[]>;
  byTrace(traceId: string): Promise<Assessment[]>;
}

/** What the dry run needs of the archive (src/archive Archiver). */
export interface DryRunArchive {
  search(
    experimentId: string,
    q: SearchQuery,
    assessmentsOf: (traceId: string) => Promise<Assessment[]>,
  ): Promise<{ traces: TraceInfo[]; nextPageToken?: string }>;
  getTrace(traceId: string): Promise<ArchivedTrace | undefined>;
}

export interface QualityDeps {
  store: QualityStore;
  registry: Registry;
  /** Runs scorers for the dry run (the pipeline's runner: no engine, no emission). */
  runner?: ScorerRunner;
  archive?: DryRunArchive;
  /** The most recently completed traces, newest last (config admin.ui.recentTraces); none = off. */
  recentTraces?: () => readonly CompleteTrace[];
  /** How a trace view is read (config experiments.* and genai.viewLimits). */
  view: TraceViewOptions;
  now?: () => number;
}

/** z for the two-sided 95% interval. */
const Z = 1.959963984540054;

export type EstimateKind = 'pass_rate' | 'mean' | 'label';

export interface Estimate {
  kind: EstimateKind;
  /** Inclusion-weighted mean (pass rate in [0, 1] or mean value); null without valued rows. */
  estimate: number | null;
  lower: number | null;
  upper: number | null;
  /** Kish's effective sample size of the valued rows: (Σw)² / Σw². */
  effectiveSize: number;
}

/**
 * The estimate and 95% band of one bucket. Each valued assessment has weight w = 1/π (π its
 * inclusion probability, the sampleRate it records): the estimate is the Hájek mean Σwy / Σw, so
 * traffic scored at 10% counts ten times per verdict against traffic scored at 100% when a rate
 * changed within a bucket. The band treats verdicts as draws from the process producing traces
 * (not as the finite set of traces that hour), with the with-replacement linearised variance
 * Σw²(y−μ)² / (Σw)²: for equal weights it is the usual s²/n, and a 10% sample of the same traffic
 * has a tenth of the verdicts and a band about √10 wider. Pass rates use Wilson's score interval
 * at Kish's effective sample size (it stays inside [0, 1] and is not zero-width at 0% or 100%);
 * means use the normal interval with a small-sample factor n/(n−1); fewer than 2 valued rows give
 * no band.
 */
export function estimate(
  r: Pick<AggregateRow, 'valued' | 'binary' | 'sumW' | 'sumW2' | 'sumWY' | 'sumW2Y' | 'sumW2Y2'>,
): Estimate {
  if (r.valued === 0 || r.sumW <= 0)
    return {
      kind: r.valued === 0 ? 'label' : 'mean',
      estimate: null,
      lower: null,
      upper: null,
      effectiveSize: 0,
    };
  const kind: EstimateKind = r.binary === r.valued ? 'pass_rate' : 'mean';
  const mu = r.sumWY / r.sumW;
  const nEff = (r.sumW * r.sumW) / r.sumW2;
  if (kind === 'pass_rate') {
    const p = Math.min(1, Math.max(0, mu));
    const z2n = (Z * Z) / nEff;
    const centre = (p + z2n / 2) / (1 + z2n);
    const half = (Z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / nEff + (Z * Z) / (4 * nEff * nEff));
    return {
      kind,
      estimate: p,
      lower: Math.max(0, centre - half),
      upper: Math.min(1, centre + half),
      effectiveSize: nEff,
    };
  }
  if (r.valued < 2) return { kind, estimate: mu, lower: null, upper: null, effectiveSize: nEff };
  // Σw²(y−μ)² from the sums; rounding can make it a hair negative.
  const ss = Math.max(0, r.sumW2Y2 - 2 * mu * r.sumW2Y + mu * mu * r.sumW2);
  const se = (Math.sqrt(ss) / r.sumW) * Math.sqrt(r.valued / (r.valued - 1));
  return { kind, estimate: mu, lower: mu - Z * se, upper: mu + Z * se, effectiveSize: nEff };
}

/** A query time: epoch milliseconds or ISO-8601. */
function timeOf(v: string | undefined, field: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^-?\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) {
    throw new ScorecarError(
      'INVALID_ARGUMENT',
      `${field}: expected epoch milliseconds or an ISO-8601 time, got '${v.slice(0, 64)}'`,
      {
        details: { field: `query.${field}` },
      },
    );
  }
  return n;
}

const scorerParam = z.string().regex(SCORER_NAME_PATTERN, 'expected a scorer name').optional();

const recentQuery = z
  .object({
    scorer: scorerParam,
    maxResults: z
      .string()
      .regex(/^[1-9][0-9]{0,2}$/, 'expected an integer from 1 to 999')
      .optional(),
  })
  .strict();

const qualityQuery = z
  .object({
    scorer: scorerParam,
    startTime: z.string().max(64).optional(),
    endTime: z.string().max(64).optional(),
    step: z
      .string()
      .regex(/^[1-9][0-9]{0,8}$/, 'expected whole seconds')
      .optional(),
  })
  .strict();

/** At most this many buckets per series (a wider range needs a larger step). */
export const MAX_BUCKETS = 2000;

const POINT_SCHEMA: JsonSchema = {
  type: 'object',
  required: [
    'time',
    'count',
    'errors',
    'valued',
    'estimate',
    'lower',
    'upper',
    'effectiveSize',
    'inputTokens',
    'outputTokens',
    'cost',
    'latencyMs',
  ],
  properties: {
    time: { type: 'string', format: 'date-time', description: 'bucket start' },
    count: { type: 'integer', description: 'assessments in the bucket' },
    errors: { type: 'integer', description: 'error assessments' },
    valued: {
      type: 'integer',
      description: 'assessments with a numeric reading (booleans and yes/no as 1/0)',
    },
    estimate: { type: ['number', 'null'], description: 'inclusion-weighted pass rate or mean' },
    lower: { type: ['number', 'null'], description: '95% band, lower end' },
    upper: { type: ['number', 'null'], description: '95% band, upper end' },
    effectiveSize: {
      type: 'number',
      description: "Kish's effective sample size (Σw)²/Σw², w = 1/sampleRate",
    },
    inputTokens: { type: 'integer' },
    outputTokens: { type: 'integer' },
    cost: { type: 'number' },
    latencyMs: { type: ['number', 'null'], description: 'mean scoring-job duration' },
  },
};

const QUALITY_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['experimentId', 'startTime', 'endTime', 'stepSeconds', 'series'],
  properties: {
    experimentId: { type: 'string' },
    startTime: { type: 'string', format: 'date-time' },
    endTime: { type: 'string', format: 'date-time' },
    stepSeconds: { type: 'integer' },
    series: {
      type: 'array',
      items: {
        type: 'object',
        required: ['scorer', 'name', 'kind', 'points'],
        properties: {
          scorer: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } },
          name: { type: 'string', description: 'assessment name' },
          kind: {
            enum: ['pass_rate', 'mean', 'label'],
            description: 'label: categorical values only (no estimate)',
          },
          points: {
            type: 'array',
            items: POINT_SCHEMA,
            description: 'buckets with at least one assessment, oldest first',
          },
        },
      },
    },
  },
};

const CHECK_ERROR: JsonSchema = {
  type: 'object',
  required: ['path', 'message'],
  properties: {
    path: { type: 'string', description: "'definition.…' or 'filterString'" },
    message: { type: 'string' },
    position: { type: 'integer', description: 'filter strings: 0-based character offset of the error' },
    line: { type: 'integer', description: 'code scorers: 1-based line of a syntax error in the source' },
  },
};

const validateBody = z
  .object({
    definition: z.unknown().optional(),
    filterString: z.string().max(MAX_FILTER_LENGTH).nullable().optional(),
  })
  .strict();

const tryBody = z
  .object({
    definition: z
      .unknown()
      .optional()
      .describe('A definition to try (not registered); or name (and version)'),
    name: z.string().regex(SCORER_NAME_PATTERN, 'expected a scorer name').optional(),
    version: z.number().int().positive().optional(),
    limit: z
      .number()
      .int()
      .min(1)
      .max(20)
      .optional()
      .describe('How many of the newest traces (default 5, at most 20)'),
    source: z
      .enum(['archive', 'recent'])
      .optional()
      .describe(
        'archive (default): archived traces; recent: traces completed lately, kept in memory (admin.ui.recentTraces)',
      ),
    filterString: z
      .string()
      .max(MAX_FILTER_LENGTH)
      .optional()
      .describe('Only archived traces that match (search syntax)'),
  })
  .strict();

export interface CheckError {
  path: string;
  message: string;
  position?: number;
  line?: number;
}

/** Problems of a definition and a filter string, each with where it is. */
export async function checkScorer(
  definition: unknown,
  filterString: string | null | undefined,
): Promise<CheckError[]> {
  const errors: CheckError[] = [];
  if (definition !== undefined) {
    const r = await validateScorerDefinition(definition);
    if (!r.ok) {
      for (const e of r.errors) {
        const line = /\(line (\d+)\)/.exec(e.message);
        errors.push(line ? { ...e, line: Number(line[1]) } : { ...e });
      }
    }
  }
  if (filterString) {
    try {
      compileFilter(filterString);
    } catch (e) {
      if (!(e instanceof ScorecarError) || e.code !== 'INVALID_FILTER') throw e;
      const position = e.details?.position;
      errors.push({
        path: 'filterString',
        message: e.message,
        ...(typeof position === 'number' ? { position } : {}),
      });
    }
  }
  return errors;
}

/** An archived span as the archive stores it (the inverse of the archive's public span). */
function rowSpan(s: ArchivedTrace['spans'][number]): RowSpan {
  return {
    trace_id: s.traceId,
    span_id: s.spanId,
    trace_state: null,
    flags: null,
    name: s.name,
    kind: s.kind,
    attributes: attributesMap(s.attributes as Parameters<typeof attributesMap>[0]),
    parent_id: s.parentSpanId,
    start_time: s.startTimeUnixMicros,
    end_time: s.endTimeUnixMicros,
    status_code: s.status.code,
    status_message: s.status.message || null,
    events: s.events.map((e) => ({
      name: e.name,
      timestamp: e.timeUnixMicros,
      attributes: attributesMap(e.attributes as Parameters<typeof attributesMap>[0]),
    })),
  };
}

/** A short text of a trace's inputs or outputs, as the archive's previews. */
function preview(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

export function qualityRoutes(d: QualityDeps): AdminRoute[] {
  const now = d.now ?? Date.now;
  return [
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/assessments',
      operationId: 'listRecentAssessments',
      summary: "An experiment's newest assessments (optionally one scorer's), newest first",
      tags: ['quality'],
      query: recentQuery,
      responses: {
        '200': {
          description: 'Assessments',
          schema: {
            type: 'object',
            required: ['assessments'],
            properties: { assessments: { type: 'array', items: ASSESSMENT_SCHEMA } },
          },
        },
      },
      handler: async (req) => ({
        status: 200,
        body: {
          assessments: await d.store.recent(req.params.exp!, {
            scorer: req.query.scorer,
            limit: req.query.maxResults === undefined ? 20 : Number(req.query.maxResults),
          }),
        },
      }),
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/quality',
      operationId: 'getQuality',
      summary:
        'Assessment aggregates over time per scorer version: pass rate or mean with a 95% band, volume, errors, tokens, cost, latency',
      description:
        'Buckets of `step` seconds from startTime (default: the last 24 hours; endTime defaults to now; step defaults to ' +
        'a width giving about 100 buckets, and the range may hold at most 2000). Each bucket weights every assessment ' +
        'by 1/sampleRate (its inclusion probability): the estimate is the Hájek mean, the band a Wilson interval at ' +
        "Kish's effective sample size for pass rates and a normal interval for means, so a 10% sample shows a wider " +
        'band than a 100% one of the same traffic.',
      tags: ['quality'],
      query: qualityQuery,
      responses: {
        '200': { description: 'Series by scorer version and assessment name', schema: QUALITY_SCHEMA },
      },
      handler: async (req) => {
        const q = req.query;
        // Whole seconds: buckets start at startTime (in seconds) plus multiples of step.
        const end = Math.ceil((timeOf(q.endTime, 'endTime') ?? now()) / 1000) * 1000;
        const start = Math.floor((timeOf(q.startTime, 'startTime') ?? end - 86_400_000) / 1000) * 1000;
        if (!(start < end)) {
          throw new ScorecarError('INVALID_ARGUMENT', 'startTime must be before endTime', {
            details: { field: 'query.startTime' },
          });
        }
        const step =
          q.step === undefined ? Math.max(1, Math.ceil((end - start) / 1000 / 100)) : Number(q.step);
        if ((end - start) / 1000 / step > MAX_BUCKETS) {
          throw new ScorecarError(
            'INVALID_ARGUMENT',
            `step: ${step} s gives more than ${MAX_BUCKETS} buckets over the range; use a larger step`,
            {
              details: { field: 'query.step' },
            },
          );
        }
        const rows = await d.store.aggregate(req.params.exp!, {
          scorer: q.scorer,
          startIso: new Date(start).toISOString(),
          endIso: new Date(end).toISOString(),
          startSeconds: Math.floor(start / 1000),
          stepSeconds: step,
        });
        const series = new Map<
          string,
          { scorer: { name: string; version: number }; name: string; kind: EstimateKind; points: unknown[] }
        >();
        for (const r of rows) {
          const key = `${r.scorerName}\u0000${r.scorerVersion}\u0000${r.name}`;
          let s = series.get(key);
          if (!s) {
            s = {
              scorer: { name: r.scorerName, version: r.scorerVersion },
              name: r.name,
              kind: 'label',
              points: [],
            };
            series.set(key, s);
          }
          const e = estimate(r);
          // A series is a pass rate only if every valued bucket is; one numeric bucket makes it a mean.
          if (e.estimate !== null) s.kind = s.kind === 'label' || s.kind === e.kind ? e.kind : 'mean';
          s.points.push({
            time: new Date(r.bucket * 1000).toISOString(),
            count: r.count,
            errors: r.errors,
            valued: r.valued,
            estimate: e.estimate,
            lower: e.lower,
            upper: e.upper,
            effectiveSize: e.effectiveSize,
            inputTokens: r.inputTokens,
            outputTokens: r.outputTokens,
            cost: r.cost,
            latencyMs: r.latencyMs,
          });
        }
        return {
          status: 200,
          body: {
            experimentId: req.params.exp!,
            startTime: new Date(start).toISOString(),
            endTime: new Date(end).toISOString(),
            stepSeconds: step,
            series: [...series.values()],
          },
        };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/scorers:validate',
      operationId: 'validateScorer',
      summary: 'Check a definition and/or a filter string without registering anything',
      description:
        'The checks registration and start make (the definition schema, compiling code scorers, parsing the filter), ' +
        'answered as a list: each error with its path, and the character position (filters) or line (code) when known.',
      tags: ['scorers'],
      body: validateBody,
      responses: {
        '200': {
          description: 'valid, or the errors',
          schema: {
            type: 'object',
            required: ['valid', 'errors'],
            properties: { valid: { type: 'boolean' }, errors: { type: 'array', items: CHECK_ERROR } },
          },
        },
      },
      handler: async (req) => {
        const b = req.body as z.output<typeof validateBody>;
        const errors = await checkScorer(b.definition, b.filterString);
        return { status: 200, body: { valid: errors.length === 0, errors } };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/scorers:try',
      operationId: 'tryScorer',
      summary:
        'Dry run: score the newest archived or recent traces with a definition or a registered scorer; nothing is emitted or stored',
      description:
        'Give a definition (checked as at registration) or the name (and version) of a registered scorer. Runs it on the ' +
        'newest `limit` traces of the experiment (matching filterString when given) and returns the verdicts: archived ' +
        'ones (source archive, the default; the experiment must be archived, else 409 FAILED_PRECONDITION) or those ' +
        'completed lately and kept in memory (source recent; needs admin.ui.recentTraces > 0, else 409). Judges are ' +
        'called for real (their tokens are spent) but outside the daily budget.',
      tags: ['scorers'],
      body: tryBody,
      responses: {
        '200': {
          description: 'Verdicts per trace',
          schema: {
            type: 'object',
            required: ['results'],
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['traceId', 'assessments'],
                  properties: {
                    traceId: { type: 'string' },
                    requestPreview: { type: ['string', 'null'] },
                    responsePreview: { type: ['string', 'null'] },
                    assessments: { type: 'array', items: ASSESSMENT_SCHEMA },
                  },
                },
              },
            },
          },
        },
        '409': {
          description: 'FAILED_PRECONDITION: the experiment is not archived',
          schema: schemaRef('Error'),
        },
      },
      handler: async (req) => {
        const exp = req.params.exp!;
        const b = req.body as z.output<typeof tryBody>;
        let scorer: ScorerVersion;
        if (b.definition !== undefined) {
          const r = await validateScorerDefinition(b.definition);
          if (!r.ok) {
            throw new ScorecarError(
              'INVALID_DEFINITION',
              `invalid definition: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
              {
                details: { errors: r.errors },
              },
            );
          }
          // Version 0: never a registered version, so its assessment ids collide with none.
          scorer = { experimentId: exp, name: b.name ?? 'dry_run', version: 0, definition: r.definition };
        } else if (b.name !== undefined) {
          const s = await d.registry.get(exp, b.name, b.version);
          scorer = { experimentId: exp, name: s.name, version: s.version, definition: s.definition };
        } else {
          throw new ScorecarError(
            'INVALID_ARGUMENT',
            'give a definition or the name of a registered scorer',
            { details: { field: 'body.definition' } },
          );
        }
        if (b.source === 'recent' && !d.recentTraces) {
          throw new ScorecarError(
            'FAILED_PRECONDITION',
            'recent traces are not kept: set admin.ui.recentTraces, or try the archive',
          );
        }
        if (!d.runner) throw new ScorecarError('FAILED_PRECONDITION', 'dry runs need the scoring runner');
        const runner = d.runner;
        const limit = b.limit ?? 5;
        const results: Array<{
          traceId: string;
          requestPreview: string | null;
          responsePreview: string | null;
          assessments: Assessment[];
        }> = [];
        const score = async (
          view: TraceView,
          requestPreview: string | null,
          responsePreview: string | null,
        ) => {
          const scored = await runner.run({ view, scorer, sampleRate: 1 }, req.signal);
          results.push({
            traceId: view.traceId,
            requestPreview,
            responsePreview,
            assessments: scored.map((s) => s.assessment),
          });
        };
        if (b.source === 'recent' && d.recentTraces) {
          const filter = b.filterString ? compileFilter(b.filterString) : undefined;
          const recent = d.recentTraces();
          for (let i = recent.length - 1; i >= 0 && results.length < limit && !req.signal.aborted; i--) {
            const view = buildTraceView(recent[i]!, d.view);
            if (view.experimentId !== exp || (filter && !filter.matches(view))) continue;
            await score(view, preview(view.inputs), preview(view.outputs));
          }
          return { status: 200, body: { results } };
        }
        if (!d.archive)
          throw new ScorecarError('FAILED_PRECONDITION', 'dry runs on archived traces need the archive');
        const archive = d.archive;
        let page: { traces: TraceInfo[] };
        try {
          page = await archive.search(exp, { filter: b.filterString, maxResults: limit }, async () => []);
        } catch (e) {
          if (e instanceof ScorecarError && e.code === 'NOT_FOUND') {
            throw new ScorecarError(
              'FAILED_PRECONDITION',
              `experiment ${exp} is not archived: a dry run scores archived traces (enable archival first)`,
            );
          }
          throw e;
        }
        for (const info of page.traces) {
          if (req.signal.aborted) break;
          const t = await archive.getTrace(info.traceId);
          if (!t) continue;
          const view = buildTraceView(traceFromRow(info.traceId, t.spans.map(rowSpan)), d.view);
          view.experimentId = exp;
          view.metadata = t.metadata ?? view.metadata;
          view.tags = t.tags ?? view.tags;
          await score(view, info.requestPreview, info.responsePreview);
        }
        return { status: 200, body: { results } };
      },
    }),
  ];
}
