// Request schemas (zod: what the server accepts, also rendered into the OpenAPI document so
// the document cannot drift from the validation) and the JSON Schemas of the responses.
import { z } from 'zod';
import { definitionJsonSchemas, EXPERIMENT_ID_PATTERN, MAX_FILTER_LENGTH, SCORER_NAME_PATTERN } from '../definitions/index.ts';

export type JsonSchema = Record<string, unknown>;

// ---------------------------------------------------------------- request bodies and queries

const filterString = z.string().max(MAX_FILTER_LENGTH).nullable();

export const registerBody = z
  .object({
    name: z.string().regex(SCORER_NAME_PATTERN, 'expected 1-64 characters: letters, digits, "_", "." or "-"'),
    /**
     * Any object here: the registry checks it in depth (src/definitions' schema, then compiling
     * code scorers) and answers 400 INVALID_DEFINITION with every problem's path. The OpenAPI
     * document shows the definition schema (see openapi.ts).
     */
    definition: z.record(z.string(), z.unknown()),
  })
  .strict();

export const startBody = z
  .object({
    sampleRate: z
      .number()
      .gt(0, 'expected a number in (0, 1] (stop sets the rate to 0)')
      .lte(1, 'expected a number in (0, 1]'),
    filterString: filterString.optional(),
  })
  .strict();

export const updateBody = z
  .object({
    sampleRate: z
      .number()
      .gte(0, 'expected a number in [0, 1]')
      .lte(1, 'expected a number in [0, 1]')
      .optional(),
    filterString: filterString.optional(),
  })
  .strict();

/** stop and the kill switches take no parameters; an empty object is accepted for clients that always send one. */
export const emptyBody = z.object({}).strict();

export const versionQuery = z
  .object({
    version: z
      .string()
      .regex(/^[1-9][0-9]{0,8}$/, 'expected a positive integer')
      .optional(),
  })
  .strict();

export const deleteQuery = z
  .object({
    version: z
      .string()
      .regex(/^(?:[1-9][0-9]{0,8}|all)$/, "expected a positive integer or 'all'")
      .optional(),
  })
  .strict();

export const noQuery = z.object({}).strict();

/** A zod schema as an OpenAPI 3.1 (JSON Schema 2020-12) schema object. */
export function toSchema(s: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(s, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  delete out.$schema;
  return out;
}

// ---------------------------------------------------------------- path parameters

export const PATH_PARAMS: Record<string, { description: string; schema: JsonSchema }> = {
  exp: {
    description: 'Experiment id (percent-encode "/")',
    schema: { type: 'string', pattern: EXPERIMENT_ID_PATTERN.source },
  },
  jobId: { description: 'Backfill job id (bf-<uuid>)', schema: { type: 'string' } },
  traceId: { description: 'Trace id: 32 hex digits', schema: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' } },
  name: {
    description: 'Scorer name, unique in its experiment',
    schema: { type: 'string', pattern: SCORER_NAME_PATTERN.source },
  },
};

// ---------------------------------------------------------------- response components

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

export const COMPONENT_SCHEMAS: Record<string, JsonSchema> = {
  // The definition schemas come from the one zod source in src/definitions.
  ...definitionJsonSchemas(ref),
  Scorer: {
    type: 'object',
    description:
      'One immutable version of a scorer with the current sampling config of its name. status: registered ' +
      '(never started), active (sampleRate > 0), stopped (sampleRate 0 after having run).',
    required: [
      'experimentId',
      'name',
      'version',
      'definition',
      'sampleRate',
      'filterString',
      'status',
      'createdAt',
      'updatedAt',
    ],
    additionalProperties: false,
    properties: {
      experimentId: { type: 'string' },
      name: { type: 'string', pattern: SCORER_NAME_PATTERN.source },
      version: { type: 'integer', minimum: 1 },
      definition: ref('ScorerDefinition'),
      sampleRate: { type: 'number', minimum: 0, maximum: 1 },
      filterString: { type: ['string', 'null'] },
      status: { enum: ['registered', 'active', 'stopped'] },
      createdAt: { type: 'string', format: 'date-time', description: 'when this version was registered' },
      updatedAt: { type: 'string', format: 'date-time', description: 'last change to this scorer name' },
      health: {
        type: 'object',
        description:
          'Runtime state in this scorecar process, present once the scorer has run: ok; error (the judge ' +
          'refused the credentials, code UNAUTHENTICATED); paused (the experiment\'s daily judge budget is spent, ' +
          'code BUDGET_EXHAUSTED).',
        required: ['state', 'since'],
        additionalProperties: false,
        properties: {
          state: { enum: ['ok', 'error', 'paused'] },
          code: { type: 'string' },
          message: { type: 'string' },
          since: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
  ScorerList: {
    type: 'object',
    required: ['scorers'],
    additionalProperties: false,
    properties: { scorers: { type: 'array', items: ref('Scorer') } },
  },
  VersionList: {
    type: 'object',
    required: ['versions'],
    additionalProperties: false,
    properties: { versions: { type: 'array', items: ref('Scorer') } },
  },
  StoppedList: {
    type: 'object',
    required: ['stopped'],
    additionalProperties: false,
    properties: {
      stopped: { type: 'array', items: ref('Scorer'), description: 'the scorers that were active' },
    },
  },
  DeleteResult: {
    type: 'object',
    required: ['experimentId', 'name', 'deletedVersions', 'nameRemoved'],
    additionalProperties: false,
    properties: {
      experimentId: { type: 'string' },
      name: { type: 'string' },
      deletedVersions: { type: 'array', items: { type: 'integer', minimum: 1 } },
      nameRemoved: { type: 'boolean', description: 'true when no version is left (the name is gone)' },
    },
  },
  Experiment: {
    type: 'object',
    required: ['experimentId', 'scorerCount', 'activeCount', 'createdAt'],
    additionalProperties: false,
    properties: {
      experimentId: { type: 'string' },
      scorerCount: { type: 'integer', minimum: 0 },
      activeCount: { type: 'integer', minimum: 0 },
      createdAt: { type: 'string', format: 'date-time' },
    },
  },
  ExperimentList: {
    type: 'object',
    required: ['experiments'],
    additionalProperties: false,
    properties: { experiments: { type: 'array', items: ref('Experiment') } },
  },
  Error: {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: {
            type: 'string',
            description:
              'Stable code: INVALID_ARGUMENT, INVALID_JSON, INVALID_DEFINITION, INVALID_FILTER (400), UNAUTHENTICATED (401), ' +
              'NOT_FOUND (404), METHOD_NOT_ALLOWED (405), LIMIT_EXCEEDED, FAILED_PRECONDITION, TABLE_INCOMPATIBLE, BACKFILL_RUNNING (409), PAYLOAD_TOO_LARGE (413), ' +
              'UNSUPPORTED_MEDIA_TYPE (415), INTERNAL (500), OVERLOADED (503)',
          },
          message: { type: 'string' },
          details: {
            type: 'object',
            description:
              'field (path of the bad field), position (filter error offset), errors [{path, message}], resource, limit, jobId (the running backfill)',
          },
        },
      },
    },
  },
};

export { ref as schemaRef };
