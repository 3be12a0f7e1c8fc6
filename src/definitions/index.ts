// Scorer definitions: one zod schema (types, validation with key paths, OpenAPI), the scorer
// resource and its naming rules, model URIs and judge template syntax. A pure leaf: every other
// folder may import it, it imports none of them.
export { MODEL_PROVIDERS, type ModelProvider, type ModelUri, modelUriWithoutBase, type ParsedModelUri, parseModelUri } from './model-uri.ts';
export {
  AGGREGATIONS,
  type Aggregation,
  allowedFields,
  BUILTIN_JUDGES,
  type BuiltinDefinition,
  type BuiltinJudge,
  type CodeDefinition,
  type CodeScorerDefinition,
  DEFINITION_SCHEMAS,
  DEFINITION_TYPES,
  type DefinitionType,
  definitionJsonSchemas,
  FEEDBACK_VALUE_TYPES,
  type FeedbackValueType,
  type GuidelinesDefinition,
  isCodeScorer,
  type JudgeDefinition,
  MAX_GUIDELINES,
  MAX_SOURCE_CHARS,
  MAX_TEMPLATE_CHARS,
  type PromptDefinition,
  PYTHON_IDENTIFIER_PATTERN,
  type PythonDefinition,
  type ScorerDefinition,
  scorerDefinitionSchema,
} from './schema.ts';
export {
  type DeleteResult,
  EXPERIMENT_ID_PATTERN,
  type Experiment,
  MAX_FILTER_LENGTH,
  MAX_SCORERS_PER_EXPERIMENT,
  SCORER_NAME_PATTERN,
  type Scorer,
  type ScorerStatus,
  type ScorerVersion,
} from './scorer.ts';
export {
  CHOICE_PATTERN,
  INSTRUCTION_VARIABLES,
  PROMPT_VARIABLES,
  renderTemplate,
  templateChoices,
  templateVariables,
  VARIABLE_PATTERN,
} from './templates.ts';
export { type DefinitionError, requiresModel, type ValidationResult, validateDefinition } from './validate.ts';
