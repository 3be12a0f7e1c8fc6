// Trace routes: a trace's assessments and, when its experiment is archived, its spans; trace
// search over an experiment's archive.
import { z } from 'zod';
import type { ArchivedTrace, SearchQuery, TraceInfo } from '../archive/index.ts';
import type { Assessment, AssessmentStore } from '../assessments/index.ts';
import { MAX_FILTER_LENGTH } from '../definitions/index.ts';
import { ScorecarError } from '../util/index.ts';
import { type AdminRoute, defineRoute } from './routes.ts';
import type { JsonSchema } from './schemas.ts';

const TRACE_ID = /^[0-9a-fA-F]{32}$/;

export const ASSESSMENT_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'MLflow Feedback-compatible assessment',
  required: ['assessmentId', 'name', 'traceId', 'spanId', 'experimentId', 'scorer', 'source', 'value', 'metadata', 'sampleRate', 'createdAt'],
  additionalProperties: false,
  properties: {
    assessmentId: { type: 'string', description: 'hash of (traceId, spanId, scorer name, scorer version, name)' },
    name: { type: 'string' },
    traceId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    spanId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    experimentId: { type: 'string' },
    scorer: {
      type: 'object',
      required: ['name', 'version'],
      additionalProperties: false,
      properties: { name: { type: 'string' }, version: { type: 'integer' } },
    },
    source: {
      type: 'object',
      required: ['type', 'id'],
      additionalProperties: false,
      properties: { type: { enum: ['LLM_JUDGE', 'CODE'] }, id: { type: 'string' } },
    },
    value: { type: ['string', 'number', 'boolean', 'null'] },
    rationale: { type: 'string' },
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    sampleRate: { type: 'number', description: 'inclusion probability of the trace under the scorer' },
    createdAt: { type: 'string', format: 'date-time' },
  },
};

/** What the trace routes need of the archive (src/archive Archiver). */
export interface TraceArchiveService {
  search(experimentId: string, q: SearchQuery, assessmentsOf: (traceId: string) => Promise<Assessment[]>): Promise<{ traces: TraceInfo[]; nextPageToken?: string }>;
  getTrace(traceId: string): Promise<ArchivedTrace | undefined>;
}

const INFO_PROPERTIES: Record<string, JsonSchema> = {
  traceId: { type: 'string' },
  experimentId: { type: 'string' },
  requestTime: { type: 'string', format: 'date-time' },
  timestampMs: { type: 'integer' },
  executionTimeMs: { type: 'integer' },
  state: { enum: ['OK', 'ERROR', 'STATE_UNSPECIFIED'] },
  requestPreview: { type: ['string', 'null'] },
  responsePreview: { type: ['string', 'null'] },
  tags: { type: 'object', additionalProperties: { type: 'string' } },
  metadata: { type: 'object', additionalProperties: { type: 'string' } },
};

export const TRACE_INFO_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'An archived trace (MLflow TraceInfo-shaped) with its assessments',
  required: [...Object.keys(INFO_PROPERTIES), 'assessments'],
  properties: { ...INFO_PROPERTIES, assessments: { type: 'array', items: ASSESSMENT_SCHEMA } },
};

const SPAN_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['traceId', 'spanId', 'parentSpanId', 'name', 'kind', 'startTimeUnixMicros', 'endTimeUnixMicros', 'status', 'attributes', 'events'],
  properties: {
    traceId: { type: 'string' },
    spanId: { type: 'string' },
    parentSpanId: { type: ['string', 'null'] },
    name: { type: 'string' },
    kind: { type: 'string' },
    startTimeUnixMicros: { type: 'integer' },
    endTimeUnixMicros: { type: 'integer' },
    status: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    attributes: { type: 'object' },
    events: { type: 'array', items: { type: 'object' } },
  },
};

/** A query time: epoch milliseconds or ISO-8601. */
function parseTime(v: string | undefined, field: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^-?\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) {
    throw new ScorecarError('INVALID_ARGUMENT', `${field}: expected epoch milliseconds or an ISO-8601 time, got '${v.slice(0, 64)}'`, {
      details: { field: `query.${field}` },
    });
  }
  return n;
}

const searchQuery = z
  .object({
    filter: z.string().max(MAX_FILTER_LENGTH).optional(),
    startTime: z.string().max(64).optional(),
    endTime: z.string().max(64).optional(),
    orderBy: z.string().max(64).optional(),
    maxResults: z.string().regex(/^[1-9][0-9]{0,3}$/, 'expected an integer from 1 to 1000').optional(),
    pageToken: z.string().max(4096).optional(),
  })
  .strict();

export function traceRoutes(store: AssessmentStore, archive?: TraceArchiveService): AdminRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/traces',
      operationId: 'searchTraces',
      summary: "Search an archived experiment's traces",
      description:
        'MLflow filter-string syntax (the same as scorer filters), a time range on the request time ' +
        '(startTime inclusive, endTime exclusive: epoch ms or ISO-8601), orderBy timestamp_ms or execution_time_ms ' +
        '(ASC or DESC; default timestamp_ms DESC), maxResults (default 100, at most 1000) and pageToken (from ' +
        'nextPageToken, with the same query). 404 when the experiment is not archived.',
      tags: ['traces'],
      query: searchQuery,
      responses: {
        '200': {
          description: 'A page of traces, each with its assessments',
          schema: {
            type: 'object',
            required: ['traces'],
            properties: { traces: { type: 'array', items: TRACE_INFO_SCHEMA }, nextPageToken: { type: 'string' } },
          },
        },
      },
      handler: async (req) => {
        const exp = req.params.exp!;
        if (!archive) throw new ScorecarError('NOT_FOUND', `experiment ${exp} is not archived`, { details: { resource: 'archival' } });
        const q = req.query;
        const page = await archive.search(
          exp,
          {
            filter: q.filter,
            startTimeMs: parseTime(q.startTime, 'startTime'),
            endTimeMs: parseTime(q.endTime, 'endTime'),
            orderBy: q.orderBy,
            maxResults: q.maxResults === undefined ? 100 : Number(q.maxResults),
            pageToken: q.pageToken,
          },
          (id) => store.byTrace(id),
        );
        return { status: 200, body: page };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/traces/{traceId}',
      operationId: 'getTrace',
      summary: "A trace's assessments, and its spans when its experiment is archived",
      description:
        'Every assessment scorecar produced for the trace; when the trace is in an archive, also its info, request, ' +
        'response and spans. 404 when scorecar knows neither.',
      tags: ['traces'],
      responses: {
        '200': {
          description: 'The trace and its assessments',
          schema: {
            type: 'object',
            required: ['traceId', 'assessments'],
            additionalProperties: false,
            properties: {
              traceId: { type: 'string' },
              assessments: { type: 'array', items: ASSESSMENT_SCHEMA },
              info: { type: 'object', properties: INFO_PROPERTIES, description: 'present when the trace is archived' },
              request: { description: 'the trace inputs (JSON), when archived' },
              response: { description: 'the trace outputs (JSON), when archived' },
              spans: { type: 'array', items: SPAN_SCHEMA, description: 'present when the trace is archived' },
            },
          },
        },
      },
      handler: async (req) => {
        const id = req.params.traceId!;
        if (!TRACE_ID.test(id)) throw new ScorecarError('INVALID_ARGUMENT', `traceId must be 32 hex characters, got '${id.slice(0, 64)}'`);
        const traceId = id.toLowerCase();
        const assessments = await store.byTrace(traceId);
        const archived = await archive?.getTrace(traceId);
        if (assessments.length === 0 && !archived) {
          throw new ScorecarError('NOT_FOUND', `no archived trace and no assessments for trace ${id}`, { details: { resource: 'trace' } });
        }
        if (!archived) return { status: 200, body: { traceId, assessments } };
        const { request, response, spans, ...info } = archived;
        return { status: 200, body: { traceId, assessments, info, request, response, spans } };
      },
    }),
  ];
}
