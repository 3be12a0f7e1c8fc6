// Trace routes: a trace's assessments (its spans join once traces are archived).
import type { AssessmentStore } from '../assessments/index.ts';
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

export function traceRoutes(store: AssessmentStore): AdminRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/traces/{traceId}',
      operationId: 'getTrace',
      summary: "A trace's assessments",
      description: 'Every assessment scorecar produced for the trace (404 when there is none).',
      tags: ['traces'],
      responses: {
        '200': {
          description: 'The trace and its assessments',
          schema: {
            type: 'object',
            required: ['traceId', 'assessments'],
            additionalProperties: false,
            properties: { traceId: { type: 'string' }, assessments: { type: 'array', items: ASSESSMENT_SCHEMA } },
          },
        },
      },
      handler: (req) => {
        const id = req.params.traceId!;
        if (!TRACE_ID.test(id)) throw new ScorecarError('INVALID_ARGUMENT', `traceId must be 32 hex characters, got '${id.slice(0, 64)}'`);
        const assessments = store.byTrace(id.toLowerCase());
        if (assessments.length === 0) throw new ScorecarError('NOT_FOUND', `no assessments for trace ${id}`, { details: { resource: 'trace' } });
        return { status: 200, body: { traceId: id.toLowerCase(), assessments } };
      },
    }),
  ];
}
