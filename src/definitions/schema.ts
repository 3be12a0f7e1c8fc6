// The scorer definition, described once. These zod schemas are the single source of:
// - the TypeScript types (z.infer below; nothing else declares the shape),
// - validation with key paths (validate.ts runs them and adds the checks a schema cannot express
//   on its own: template variables and choices, model URIs),
// - the OpenAPI components of the admin API (definitionJsonSchemas()).
// Pure: no I/O; importing it loads neither SQLite nor QuickJS. Compiling a code scorer's source
// is the sandbox's job (scoring/sandbox), injected where definitions are registered.
import { z } from 'zod';

export const BUILTIN_JUDGES = [
  'safety',
  'relevance_to_query',
  'correctness',
  'guidelines',
  'expectations_guidelines',
  'retrieval_groundedness',
  'retrieval_relevance',
  'retrieval_sufficiency',
  'equivalence',
] as const;
export type BuiltinJudge = (typeof BUILTIN_JUDGES)[number];

export const AGGREGATIONS = ['mean', 'min', 'max', 'median', 'variance', 'p90'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export const FEEDBACK_VALUE_TYPES = ['yes_no', 'bool', 'number', 'string'] as const;
export type FeedbackValueType = (typeof FEEDBACK_VALUE_TYPES)[number];

export const DEFINITION_TYPES = ['builtin', 'guidelines', 'prompt', 'judge', 'code', 'python'] as const;
export type DefinitionType = (typeof DEFINITION_TYPES)[number];

export const MAX_SOURCE_CHARS = 100_000;
export const MAX_TEMPLATE_CHARS = 100_000;
export const MAX_GUIDELINES = 100;

const quoted = (values: readonly string[]): string => values.map((v) => `"${v}"`).join(', ');

/** Issue text for a value outside a closed list: "x is required" or "unknown x "v": expected ...". */
function oneOf(what: string, values: readonly string[]) {
  return (iss: { input?: unknown }): string =>
    iss.input === undefined
      ? `${what} is required: one of ${quoted(values)}`
      : `unknown ${what} ${JSON.stringify(iss.input)}: expected one of ${quoted(values)}`;
}

const model = z
  .string({ error: 'model must be a string such as "openai:/gpt-4.1-mini"' })
  .describe('Judge model URI, e.g. openai:/gpt-4.1-mini (default scoring.defaultModel)');

function requiredText(key: string, max: number) {
  return z
    .string({ error: (iss) => (iss.input === undefined || iss.input === null ? `${key} is required` : `${key} must be a string`) })
    .refine((s) => s.trim() !== '', `${key} must not be empty`)
    .refine((s) => s.length <= max, `${key} is longer than ${max} characters`);
}

const guideline = z
  .string({ error: 'a guideline must be a string' })
  .refine((g) => g.trim() !== '', 'a guideline must not be empty');

/** One guideline or a list of them; normalised to a trimmed list. */
const guidelines = z
  .preprocess(
    (g) => (typeof g === 'string' ? [g] : g),
    z.array(guideline, {
      error: (iss) =>
        iss.input === undefined || iss.input === null
          ? 'guidelines are required: a non-empty list of strings'
          : 'guidelines must be a string or a list of strings',
    }),
  )
  .refine((g) => g.length > 0, 'guidelines must not be empty')
  .refine((g) => g.length <= MAX_GUIDELINES, `at most ${MAX_GUIDELINES} guidelines are allowed`)
  .transform((g) => g.map((x) => x.trim()))
  .describe('Natural-language guidelines the response must follow (one string or a list)');

const aggregations = z
  .array(z.enum(AGGREGATIONS, { error: oneOf('aggregation', AGGREGATIONS) }), {
    error: `aggregations must be a list of ${quoted(AGGREGATIONS)}`,
  })
  .describe("MLflow aggregations of the scorer's numeric values, exported as metrics");

export const builtinDefinitionSchema = z
  .strictObject({
    type: z.literal('builtin'),
    judge: z.enum(BUILTIN_JUDGES, { error: oneOf('judge', BUILTIN_JUDGES) }),
    model: model.optional(),
    /** Only for judge = guidelines. */
    guidelines: guidelines.optional(),
  })
  .describe("One of MLflow's built-in LLM judges");

export const guidelinesDefinitionSchema = z
  .strictObject({ type: z.literal('guidelines'), guidelines, model: model.optional() })
  .describe('Pass/fail against natural-language guidelines');

export const promptDefinitionSchema = z
  .strictObject({
    type: z.literal('prompt'),
    promptTemplate: requiredText('promptTemplate', MAX_TEMPLATE_CHARS).describe(
      '[[choice]] categories, {{request}} / {{response}} variables',
    ),
    numericValues: z
      .record(z.string(), z.unknown(), { error: 'numericValues must be an object mapping each choice to a number' })
      .optional()
      .describe('A number for every choice'),
    model: model.optional(),
  })
  .describe("MLflow custom_prompt_judge: the model picks one of the template's [[choices]]");

export const judgeDefinitionSchema = z
  .strictObject({
    type: z.literal('judge'),
    instructions: requiredText('instructions', MAX_TEMPLATE_CHARS).describe(
      'uses {{ inputs }}, {{ outputs }}, {{ expectations }} or {{ trace }}',
    ),
    feedbackValueType: z.enum(FEEDBACK_VALUE_TYPES, { error: oneOf('feedbackValueType', FEEDBACK_VALUE_TYPES) }).optional(),
    model: model.optional(),
  })
  .describe('MLflow make_judge: free-form instructions');

export const codeDefinitionSchema = z
  .strictObject({
    type: z.literal('code'),
    source: requiredText('source', MAX_SOURCE_CHARS).describe(
      'JavaScript function (ctx) => value, ctx = {inputs, outputs, expectations, trace}, run sandboxed',
    ),
    aggregations: aggregations.optional(),
  })
  .describe('A sandboxed JavaScript code scorer');

/** A Python identifier (the function a python scorer calls). */
export const PYTHON_IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const pythonDefinitionSchema = z
  .strictObject({
    type: z.literal('python'),
    source: requiredText('source', MAX_SOURCE_CHARS).describe(
      'Python source defining the scorer function, e.g. "def answer_length(outputs):\n    return len(str(outputs))"; ' +
        'called with the MLflow arguments its signature names (inputs, outputs, expectations, trace), run sandboxed in Pyodide',
    ),
    function: z
      .string({ error: 'function must be a string' })
      .regex(PYTHON_IDENTIFIER_PATTERN, 'function must be a Python identifier')
      .optional()
      .describe('The function to call (default: the last top-level def of the source)'),
    aggregations: aggregations.optional(),
  })
  .describe('A sandboxed Python code scorer (MLflow @scorer)');

/** Every definition, by `type`. */
export const DEFINITION_SCHEMAS = {
  builtin: builtinDefinitionSchema,
  guidelines: guidelinesDefinitionSchema,
  prompt: promptDefinitionSchema,
  judge: judgeDefinitionSchema,
  code: codeDefinitionSchema,
  python: pythonDefinitionSchema,
} as const;

export const scorerDefinitionSchema = z.discriminatedUnion('type', [
  builtinDefinitionSchema,
  guidelinesDefinitionSchema,
  promptDefinitionSchema,
  judgeDefinitionSchema,
  codeDefinitionSchema,
  pythonDefinitionSchema,
]);

/**
 * A validated definition. Numeric values are checked by validate.ts (the schema accepts any
 * value there so that every bad entry is reported with its own path), hence the override.
 */
type Out<S extends z.ZodType> = z.output<S>;
export type BuiltinDefinition = Out<typeof builtinDefinitionSchema>;
export type GuidelinesDefinition = Out<typeof guidelinesDefinitionSchema>;
export type PromptDefinition = Omit<Out<typeof promptDefinitionSchema>, 'numericValues'> & {
  numericValues?: Record<string, number>;
};
export type JudgeDefinition = Out<typeof judgeDefinitionSchema>;
export type CodeDefinition = Out<typeof codeDefinitionSchema>;
export type PythonDefinition = Out<typeof pythonDefinitionSchema>;
export type ScorerDefinition =
  | BuiltinDefinition
  | GuidelinesDefinition
  | PromptDefinition
  | JudgeDefinition
  | CodeDefinition
  | PythonDefinition;

/** Code scorers (JavaScript or Python): run in a sandbox, call no judge model. */
export type CodeScorerDefinition = CodeDefinition | PythonDefinition;

/** Whether a definition is a code scorer (JavaScript `code` or `python`) rather than a judge. */
export function isCodeScorer(def: ScorerDefinition): def is CodeScorerDefinition {
  return def.type === 'code' || def.type === 'python';
}

/** The fields a definition of this type may carry (error messages list them). */
export function allowedFields(type: DefinitionType): string[] {
  return Object.keys(DEFINITION_SCHEMAS[type].shape);
}

/** A definition schema as an OpenAPI 3.1 (JSON Schema 2020-12) object. */
function jsonSchema(s: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(s, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  delete out.$schema;
  return out;
}

/** The OpenAPI components of the definitions: ScorerDefinition (oneOf) and one per type. */
export function definitionJsonSchemas(ref: (name: string) => Record<string, unknown>): Record<string, Record<string, unknown>> {
  const names: Record<DefinitionType, string> = {
    builtin: 'BuiltinDefinition',
    guidelines: 'GuidelinesDefinition',
    prompt: 'PromptDefinition',
    judge: 'JudgeDefinition',
    code: 'CodeDefinition',
    python: 'PythonDefinition',
  };
  const out: Record<string, Record<string, unknown>> = {
    ScorerDefinition: {
      description: 'What the scorer runs; validated in depth at registration.',
      oneOf: DEFINITION_TYPES.map((t) => ref(names[t])),
    },
  };
  for (const t of DEFINITION_TYPES) out[names[t]] = jsonSchema(DEFINITION_SCHEMAS[t]);
  return out;
}
