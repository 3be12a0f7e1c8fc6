// Validation of scorer definitions at registration: every problem is reported with the path of
// the offending field (`definition.promptTemplate`, `definition.guidelines[2]`, ...), and the
// returned definition is normalised (trimmed labels, a single guideline string becomes a list).
import {
  AGGREGATIONS,
  BUILTIN_JUDGES,
  type BuiltinJudge,
  type FeedbackValueType,
  type ScorerDefinition,
} from '../registry/types.ts';
import { checkFunctionSource } from './compile.ts';
import { parseModelUri } from './model-uri.ts';
import { INSTRUCTION_VARIABLES, PROMPT_VARIABLES, templateChoices, templateVariables } from './templates.ts';

export interface DefinitionError {
  path: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; definition: ScorerDefinition }
  | { ok: false; errors: DefinitionError[] };

export const DEFINITION_TYPES = ['builtin', 'guidelines', 'prompt', 'judge', 'code'] as const;
export const FEEDBACK_VALUE_TYPES: readonly FeedbackValueType[] = ['yes_no', 'bool', 'number', 'string'];

export const MAX_SOURCE_CHARS = 100_000;
export const MAX_TEMPLATE_CHARS = 100_000;
export const MAX_GUIDELINES = 100;

const ALLOWED_FIELDS: Record<(typeof DEFINITION_TYPES)[number], readonly string[]> = {
  builtin: ['type', 'judge', 'model', 'guidelines'],
  guidelines: ['type', 'guidelines', 'model'],
  prompt: ['type', 'promptTemplate', 'numericValues', 'model'],
  judge: ['type', 'instructions', 'feedbackValueType', 'model'],
  code: ['type', 'source', 'aggregations'],
};

const P = 'definition';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function list(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(', ');
}

function guidelinesOf(v: unknown, path: string, errors: DefinitionError[]): string[] | undefined {
  if (v === undefined || v === null) {
    errors.push({ path, message: 'guidelines are required: a non-empty list of strings' });
    return undefined;
  }
  const items = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(items)) {
    errors.push({ path, message: 'guidelines must be a string or a list of strings' });
    return undefined;
  }
  if (items.length === 0) {
    errors.push({ path, message: 'guidelines must not be empty' });
    return undefined;
  }
  if (items.length > MAX_GUIDELINES) {
    errors.push({ path, message: `at most ${MAX_GUIDELINES} guidelines are allowed` });
    return undefined;
  }
  const out: string[] = [];
  items.forEach((g: unknown, i: number) => {
    const p = typeof v === 'string' ? path : `${path}[${i}]`;
    if (typeof g !== 'string') errors.push({ path: p, message: 'a guideline must be a string' });
    else if (g.trim() === '') errors.push({ path: p, message: 'a guideline must not be empty' });
    else out.push(g.trim());
  });
  return out;
}

function modelOf(d: Record<string, unknown>, errors: DefinitionError[]): string | undefined {
  const m = d.model;
  if (m === undefined || m === null) return undefined;
  if (typeof m !== 'string') {
    errors.push({ path: `${P}.model`, message: 'model must be a string such as "openai:/gpt-4.1-mini"' });
    return undefined;
  }
  const parsed = parseModelUri(m);
  if (!parsed.ok) {
    errors.push({ path: `${P}.model`, message: parsed.message });
    return undefined;
  }
  return m;
}

function nonEmptyString(
  d: Record<string, unknown>,
  key: string,
  max: number,
  errors: DefinitionError[],
): string | undefined {
  const v = d[key];
  if (v === undefined || v === null) {
    errors.push({ path: `${P}.${key}`, message: `${key} is required` });
    return undefined;
  }
  if (typeof v !== 'string') {
    errors.push({ path: `${P}.${key}`, message: `${key} must be a string` });
    return undefined;
  }
  if (v.trim() === '') {
    errors.push({ path: `${P}.${key}`, message: `${key} must not be empty` });
    return undefined;
  }
  if (v.length > max) {
    errors.push({ path: `${P}.${key}`, message: `${key} is longer than ${max} characters` });
    return undefined;
  }
  return v;
}

export interface ValidateOptions {
  /** Compile code scorers in QuickJS (default true; the runner skips it for definitions already registered). */
  compile?: boolean;
}

/** Validates and normalises a scorer definition. Never throws. */
export function validateDefinition(def: unknown, opts: ValidateOptions = {}): ValidationResult {
  const errors: DefinitionError[] = [];
  if (!isRecord(def))
    return { ok: false, errors: [{ path: P, message: 'a definition must be a JSON object' }] };
  const type = def.type;
  if (typeof type !== 'string' || !(DEFINITION_TYPES as readonly string[]).includes(type)) {
    return {
      ok: false,
      errors: [
        {
          path: `${P}.type`,
          message:
            type === undefined
              ? `type is required: one of ${list(DEFINITION_TYPES)}`
              : `unknown type ${JSON.stringify(type)}: expected one of ${list(DEFINITION_TYPES)}`,
        },
      ],
    };
  }
  const t = type as (typeof DEFINITION_TYPES)[number];
  for (const k of Object.keys(def)) {
    if (!ALLOWED_FIELDS[t].includes(k)) {
      errors.push({
        path: `${P}.${k}`,
        message: `unknown field for a ${t} definition (allowed: ${list(ALLOWED_FIELDS[t])})`,
      });
    }
  }

  let out: ScorerDefinition | undefined;
  switch (t) {
    case 'builtin': {
      const judge = def.judge;
      const model = modelOf(def, errors);
      if (typeof judge !== 'string' || !(BUILTIN_JUDGES as readonly string[]).includes(judge)) {
        errors.push({
          path: `${P}.judge`,
          message:
            judge === undefined
              ? `judge is required: one of ${list(BUILTIN_JUDGES)}`
              : `unknown judge ${JSON.stringify(judge)}: expected one of ${list(BUILTIN_JUDGES)}`,
        });
        break;
      }
      let guidelines: string[] | undefined;
      if (judge === 'guidelines') guidelines = guidelinesOf(def.guidelines, `${P}.guidelines`, errors);
      else if (def.guidelines !== undefined) {
        errors.push({
          path: `${P}.guidelines`,
          message:
            judge === 'expectations_guidelines'
              ? 'expectations_guidelines reads its guidelines from the trace expectations; use judge "guidelines" for fixed ones'
              : `guidelines only apply to judge "guidelines", not "${judge}"`,
        });
      }
      out = { type: 'builtin', judge: judge as BuiltinJudge };
      if (guidelines) out.guidelines = guidelines;
      if (model) out.model = model;
      break;
    }
    case 'guidelines': {
      const guidelines = guidelinesOf(def.guidelines, `${P}.guidelines`, errors);
      const model = modelOf(def, errors);
      if (guidelines) {
        out = { type: 'guidelines', guidelines };
        if (model) out.model = model;
      }
      break;
    }
    case 'prompt': {
      const template = nonEmptyString(def, 'promptTemplate', MAX_TEMPLATE_CHARS, errors);
      const model = modelOf(def, errors);
      if (template === undefined) break;
      const choices = templateChoices(template);
      if (choices.length === 0) {
        errors.push({
          path: `${P}.promptTemplate`,
          message:
            'the template declares no choices: write each category as [[label]] (letters, digits, _ and spaces)',
        });
      }
      for (const v of templateVariables(template)) {
        if (!(PROMPT_VARIABLES as readonly string[]).includes(v)) {
          errors.push({
            path: `${P}.promptTemplate`,
            message: `unknown variable {{${v}}}: a prompt template may use ${PROMPT_VARIABLES.map((x) => `{{${x}}}`).join(' and ')}`,
          });
        }
      }
      let numericValues: Record<string, number> | undefined;
      const nv = def.numericValues;
      if (nv !== undefined && nv !== null) {
        if (!isRecord(nv))
          errors.push({
            path: `${P}.numericValues`,
            message: 'numericValues must be an object mapping each choice to a number',
          });
        else {
          numericValues = {};
          for (const [k, v] of Object.entries(nv)) {
            const label = k.trim();
            if (choices.length === 0) continue; // already reported: the template has no choices
            if (!choices.includes(label)) {
              errors.push({
                path: `${P}.numericValues.${k}`,
                message: `"${k}" is not a choice of the template (choices: ${list(choices)})`,
              });
            } else if (typeof v !== 'number' || !Number.isFinite(v)) {
              errors.push({ path: `${P}.numericValues.${k}`, message: 'the value must be a finite number' });
            } else numericValues[label] = v;
          }
          const missing = choices.filter((c) => !Object.keys(nv).some((k) => k.trim() === c));
          if (missing.length > 0) {
            errors.push({
              path: `${P}.numericValues`,
              message: `every choice needs a number; missing: ${list(missing)}`,
            });
          }
        }
      }
      out = { type: 'prompt', promptTemplate: template };
      if (numericValues) out.numericValues = numericValues;
      if (model) out.model = model;
      break;
    }
    case 'judge': {
      const instructions = nonEmptyString(def, 'instructions', MAX_TEMPLATE_CHARS, errors);
      const model = modelOf(def, errors);
      const fvt = def.feedbackValueType;
      if (
        fvt !== undefined &&
        (typeof fvt !== 'string' || !(FEEDBACK_VALUE_TYPES as readonly string[]).includes(fvt))
      ) {
        errors.push({
          path: `${P}.feedbackValueType`,
          message: `unknown feedbackValueType ${JSON.stringify(fvt)}: expected one of ${list(FEEDBACK_VALUE_TYPES)}`,
        });
      }
      if (instructions === undefined) break;
      const vars = templateVariables(instructions);
      for (const v of vars) {
        if (!(INSTRUCTION_VARIABLES as readonly string[]).includes(v)) {
          errors.push({
            path: `${P}.instructions`,
            message: `unknown variable {{ ${v} }}: instructions may use ${INSTRUCTION_VARIABLES.map((x) => `{{ ${x} }}`).join(', ')}`,
          });
        }
      }
      if (!vars.some((v) => (INSTRUCTION_VARIABLES as readonly string[]).includes(v))) {
        errors.push({
          path: `${P}.instructions`,
          message: `instructions must reference at least one of ${INSTRUCTION_VARIABLES.map((x) => `{{ ${x} }}`).join(', ')}`,
        });
      }
      out = { type: 'judge', instructions };
      if (typeof fvt === 'string') out.feedbackValueType = fvt as FeedbackValueType;
      if (model) out.model = model;
      break;
    }
    case 'code': {
      const source = nonEmptyString(def, 'source', MAX_SOURCE_CHARS, errors);
      if (source !== undefined && opts.compile !== false) {
        const problem = checkFunctionSource(source);
        if (problem)
          errors.push({
            path: `${P}.source`,
            message: `the source ${problem}; expected e.g. "(ctx) => String(ctx.outputs ?? '').length"`,
          });
      }
      let aggregations: (typeof AGGREGATIONS)[number][] | undefined;
      const ag = def.aggregations;
      if (ag !== undefined && ag !== null) {
        if (!Array.isArray(ag))
          errors.push({
            path: `${P}.aggregations`,
            message: `aggregations must be a list of ${list(AGGREGATIONS)}`,
          });
        else {
          aggregations = [];
          ag.forEach((a: unknown, i: number) => {
            if (typeof a !== 'string' || !(AGGREGATIONS as readonly string[]).includes(a)) {
              errors.push({
                path: `${P}.aggregations[${i}]`,
                message: `unknown aggregation ${JSON.stringify(a)}: expected one of ${list(AGGREGATIONS)}`,
              });
            } else if (aggregations!.includes(a as (typeof AGGREGATIONS)[number])) {
              errors.push({ path: `${P}.aggregations[${i}]`, message: `aggregation "${a}" is listed twice` });
            } else aggregations!.push(a as (typeof AGGREGATIONS)[number]);
          });
        }
      }
      if (source !== undefined) {
        out = { type: 'code', source };
        if (aggregations && aggregations.length > 0) out.aggregations = aggregations;
      }
      break;
    }
  }
  if (errors.length > 0 || !out) {
    return { ok: false, errors: errors.length > 0 ? errors : [{ path: P, message: 'invalid definition' }] };
  }
  return { ok: true, definition: out };
}

/** Whether running this definition calls a judge model (the engine checks budgets first). */
export function requiresModel(definition: ScorerDefinition): boolean {
  return definition.type !== 'code';
}
