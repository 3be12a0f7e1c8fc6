// MLflow's `serialized_scorer` (json.dumps(scorer.model_dump()), schema SerializedScorer of
// mlflow/genai/scorers/base.py) to and from scorecar scorer definitions.
//
// In: built-in judges, Guidelines, make_judge (InstructionsJudge) and @scorer functions, each to
// the scorecar definition that runs the same thing; what scorecar cannot run (session-level
// scorers, third-party, ensembles, memory-augmented judges, built-ins it has no judge for) is
// refused with a message that says so, as MLflow's server refuses what it cannot run.
// Out: a serialized form for scorers that were registered through scorecar's own API, so that
// MLflow's SDK can list and rebuild them. Those registered through MLflow's SDK are handed back
// verbatim (store.ts), never rebuilt from here.
import {
  type BuiltinJudge,
  type FeedbackValueType,
  PYTHON_IDENTIFIER_PATTERN,
  type ScorerDefinition,
} from '../definitions/index.ts';
import { ScorecarError } from '../util/index.ts';

/** The MLflow version whose serialization this follows (SerializedScorer.serialization_version 1). */
export const MLFLOW_COMPAT_VERSION = '3.18.0';

/** MLflow built-in scorer classes scorecar runs, and the judge each becomes. */
const BUILTIN_CLASSES: Readonly<Record<string, BuiltinJudge>> = {
  Safety: 'safety',
  RelevanceToQuery: 'relevance_to_query',
  Correctness: 'correctness',
  ExpectationsGuidelines: 'expectations_guidelines',
  RetrievalGroundedness: 'retrieval_groundedness',
  RetrievalRelevance: 'retrieval_relevance',
  RetrievalSufficiency: 'retrieval_sufficiency',
  Equivalence: 'equivalence',
};
const CLASS_OF_JUDGE: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(BUILTIN_CLASSES).map(([cls, judge]) => [judge, cls]),
);

export interface MappingOptions {
  /** MLflow `gateway:/<endpoint>` → scorecar model URI (config mlflow.gatewayEndpoints). */
  gatewayEndpoints: Readonly<Record<string, string>>;
}

function refuse(message: string): ScorecarError {
  return new ScorecarError('INVALID_ARGUMENT', message, { details: { field: 'serialized_scorer' } });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * An MLflow judge model as a scorecar model URI: none or "databricks" (MLflow's default judge)
 * is scorecar's default model; `gateway:/<endpoint>` goes through the configured table; the rest
 * (openai:/, anthropic:/, databricks:/<endpoint>) is scorecar's own syntax already and is checked
 * with the definition.
 */
export function mapModel(model: unknown, opts: MappingOptions): string | undefined {
  if (model === undefined || model === null || model === '' || model === 'databricks') return undefined;
  if (typeof model !== 'string') throw refuse('model must be a string');
  const gateway = /^gateway:\/(.+)$/.exec(model);
  if (gateway) {
    const target = Object.hasOwn(opts.gatewayEndpoints, gateway[1]!) ? opts.gatewayEndpoints[gateway[1]!] : undefined;
    if (target === undefined) {
      throw refuse(
        `gateway endpoint '${gateway[1]}' is not configured: map it to a model URI in mlflow.gatewayEndpoints (e.g. openai:/gpt-4.1-mini)`,
      );
    }
    return target;
  }
  return model;
}

/** make_judge's feedback_value_type (a JSON schema) as scorecar's feedbackValueType. */
function feedbackType(schema: unknown): FeedbackValueType | undefined {
  if (!isRecord(schema)) return undefined;
  if (Array.isArray(schema.enum)) {
    const values = schema.enum.map((v) => String(v).toLowerCase()).sort();
    return values.length === 2 && values[0] === 'no' && values[1] === 'yes' ? 'yes_no' : 'string';
  }
  switch (schema.type) {
    case 'boolean':
      return 'bool';
    case 'number':
    case 'integer':
      return 'number';
    case 'string':
      return 'string';
    default:
      return undefined;
  }
}

/** An @scorer's body and signature as one Python function definition. */
export function pythonSource(funcName: string, signature: string, body: string): string {
  const lines = body.replace(/\r\n?/g, '\n').split('\n');
  const indented = lines.map((l) => (l.trim() === '' ? '' : `    ${l}`)).join('\n');
  return `def ${funcName}${signature}:\n${indented.trimEnd() === '' ? '    return None' : indented}\n`;
}

/** Parses a serialized scorer into the scorecar definition that runs it. Throws INVALID_ARGUMENT. */
export function definitionFromMlflow(serialized: string, opts: MappingOptions): { name: string; definition: ScorerDefinition } {
  let s: unknown;
  try {
    s = JSON.parse(serialized);
  } catch {
    throw refuse('serialized_scorer is not valid JSON');
  }
  if (!isRecord(s)) throw refuse('serialized_scorer must be a JSON object');
  const name = typeof s.name === 'string' ? s.name : '';
  if (s.is_session_level_scorer === true) throw refuse(`scorer '${name}' is session-level; scorecar scores single traces only`);
  const aggregations = Array.isArray(s.aggregations) && s.aggregations.length > 0 ? s.aggregations : undefined;
  if (typeof s.builtin_scorer_class === 'string') {
    const cls = s.builtin_scorer_class;
    const data = isRecord(s.builtin_scorer_pydantic_data) ? s.builtin_scorer_pydantic_data : {};
    const model = mapModel(data.model, opts);
    if (cls === 'Guidelines') {
      return { name, definition: { type: 'guidelines', guidelines: data.guidelines as string[], ...(model ? { model } : {}) } };
    }
    const judge = BUILTIN_CLASSES[cls];
    if (!judge) {
      throw refuse(
        `built-in scorer ${cls} is not supported by scorecar; supported: Guidelines, ${Object.keys(BUILTIN_CLASSES).join(', ')}, make_judge and @scorer`,
      );
    }
    return { name, definition: { type: 'builtin', judge, ...(model ? { model } : {}) } };
  }
  if (typeof s.call_source === 'string') {
    const fn = typeof s.original_func_name === 'string' ? s.original_func_name : '';
    if (!PYTHON_IDENTIFIER_PATTERN.test(fn)) throw refuse('original_func_name must be a Python identifier');
    const signature = typeof s.call_signature === 'string' && s.call_signature.startsWith('(') ? s.call_signature : '(inputs=None, outputs=None, expectations=None, trace=None)';
    const definition: ScorerDefinition = { type: 'python', source: pythonSource(fn, signature, s.call_source), function: fn };
    if (aggregations) (definition as { aggregations?: unknown }).aggregations = aggregations;
    return { name, definition };
  }
  if (isRecord(s.instructions_judge_pydantic_data)) {
    const data = s.instructions_judge_pydantic_data;
    const model = mapModel(data.model, opts);
    const fvt = feedbackType(data.feedback_value_type);
    return {
      name,
      definition: {
        type: 'judge',
        instructions: data.instructions as string,
        ...(fvt ? { feedbackValueType: fvt } : {}),
        ...(model ? { model } : {}),
      },
    };
  }
  for (const [key, what] of [
    ['memory_augmented_judge_data', 'memory-augmented (aligned) judges'],
    ['third_party_scorer_data', 'third-party scorers'],
    ['ensemble_scorer_data', 'scorer ensembles'],
  ] as const) {
    if (s[key] !== null && s[key] !== undefined) throw refuse(`scorecar does not run ${what} (scorer '${name}')`);
  }
  throw refuse(`scorer '${name}' has no kind scorecar knows (expected a built-in judge, make_judge or @scorer)`);
}

function base(name: string, description: string | null, aggregations: readonly string[] | null): Record<string, unknown> {
  return {
    name,
    aggregations,
    description,
    is_session_level_scorer: false,
    timeout: 0,
    session_level: null,
    mlflow_version: MLFLOW_COMPAT_VERSION,
    serialization_version: 1,
    builtin_scorer_class: null,
    builtin_scorer_pydantic_data: null,
    call_source: null,
    call_signature: null,
    original_func_name: null,
    instructions_judge_pydantic_data: null,
    memory_augmented_judge_data: null,
    third_party_scorer_data: null,
    ensemble_scorer_data: null,
  };
}

/**
 * A stub @scorer for what MLflow has no form of (a JavaScript code scorer, a prompt judge): MLflow's
 * SDK lists it and can manage its lifecycle; calling it locally says where it runs.
 */
function stub(name: string, description: string): Record<string, unknown> {
  return {
    ...base(name, description, null),
    call_source: `raise NotImplementedError(${JSON.stringify(`${description}: it runs in scorecar only`)})`,
    call_signature: '(inputs=None, outputs=None, expectations=None, trace=None)',
    original_func_name: name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=\d)/, '_'),
  };
}

/** The body and signature of a python definition whose source is one `def`; undefined otherwise. */
function splitFunction(source: string, fn: string | undefined): { name: string; signature: string; body: string } | undefined {
  const lines = source.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
  const head = /^def\s+([A-Za-z_][A-Za-z0-9_]*)\s*(\(.*\)(?:\s*->\s*[^:]+)?)\s*:\s*$/.exec(lines[0] ?? '');
  if (!head || (fn !== undefined && head[1] !== fn)) return undefined;
  const rest = lines.slice(1);
  if (rest.length === 0 || !rest.every((l) => l.trim() === '' || /^\s/.test(l))) return undefined;
  const indent = Math.min(...rest.filter((l) => l.trim() !== '').map((l) => /^\s*/.exec(l)![0].length));
  return { name: head[1]!, signature: head[2]!, body: rest.map((l) => l.slice(indent)).join('\n') };
}

/** The MLflow serialized form of a scorecar definition (for scorers not registered through MLflow). */
export function definitionToMlflow(name: string, def: ScorerDefinition, defaultModel: string): string {
  let out: Record<string, unknown>;
  switch (def.type) {
    case 'guidelines':
      out = {
        ...base(name, null, null),
        builtin_scorer_class: 'Guidelines',
        builtin_scorer_pydantic_data: { name, guidelines: def.guidelines, model: def.model ?? null },
      };
      break;
    case 'builtin':
      out =
        def.judge === 'guidelines'
          ? {
              ...base(name, null, null),
              builtin_scorer_class: 'Guidelines',
              builtin_scorer_pydantic_data: { name, guidelines: def.guidelines ?? [], model: def.model ?? null },
            }
          : {
              ...base(name, null, null),
              builtin_scorer_class: CLASS_OF_JUDGE[def.judge],
              builtin_scorer_pydantic_data: { name, model: def.model ?? null },
            };
      break;
    case 'judge': {
      const type =
        def.feedbackValueType === 'bool'
          ? { type: 'boolean' }
          : def.feedbackValueType === 'number'
            ? { type: 'number' }
            : def.feedbackValueType === 'yes_no'
              ? { type: 'string', enum: ['yes', 'no'] }
              : { type: 'string' };
      out = {
        ...base(name, null, null),
        instructions_judge_pydantic_data: { instructions: def.instructions, model: def.model ?? defaultModel, feedback_value_type: { title: 'Result', ...type } },
      };
      break;
    }
    case 'python': {
      const split = splitFunction(def.source, def.function);
      out = split
        ? {
            ...base(name, null, def.aggregations ?? null),
            call_source: split.body,
            call_signature: split.signature,
            original_func_name: split.name,
          }
        : {
            ...stub(name, 'scorecar Python scorer defined by a module source'),
            aggregations: def.aggregations ?? null,
          };
      break;
    }
    case 'code':
      out = { ...stub(name, 'scorecar JavaScript code scorer'), aggregations: def.aggregations ?? null };
      break;
    case 'prompt':
      out = stub(name, 'scorecar prompt judge (custom_prompt_judge)');
      break;
  }
  return JSON.stringify(out);
}
