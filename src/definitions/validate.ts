// Validation of scorer definitions at registration: the zod schemas of schema.ts, plus what a
// schema cannot say on its own (template variables and choices, model URIs, which fields go
// with which built-in judge). Every problem is reported with the path of the offending field
// (`definition.promptTemplate`, `definition.guidelines[2]`, ...), unknown fields first; the
// returned definition is normalised (trimmed labels, a single guideline string becomes a list).
// Pure and synchronous: compiling a code scorer's source is added by the sandbox (scoring).
import type { z } from 'zod';
import { parseModelUri } from './model-uri.ts';
import {
  allowedFields,
  DEFINITION_SCHEMAS,
  DEFINITION_TYPES,
  type DefinitionType,
  isCodeScorer,
  type ScorerDefinition,
} from './schema.ts';
import { INSTRUCTION_VARIABLES, PROMPT_VARIABLES, templateChoices, templateVariables } from './templates.ts';

export interface DefinitionError {
  path: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; definition: ScorerDefinition }
  | { ok: false; errors: DefinitionError[] };

const P = 'definition';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const quoted = (values: readonly string[]): string => values.map((v) => `"${v}"`).join(', ');

function pathOf(path: readonly PropertyKey[]): string {
  let out = P;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** zod issues as definition errors: unknown fields first, one per field. */
function schemaErrors(type: DefinitionType, issues: readonly z.core.$ZodIssue[]): DefinitionError[] {
  const unknown: DefinitionError[] = [];
  const other: DefinitionError[] = [];
  for (const i of issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) {
        unknown.push({
          path: pathOf([...i.path, k]),
          message: `unknown field for a ${type} definition (allowed: ${quoted(allowedFields(type))})`,
        });
      }
    } else other.push({ path: pathOf(i.path), message: i.message.replace(/^Invalid input: /, '') });
  }
  return [...unknown, ...other];
}

/** The checks that need more than one field or the template text. */
function semanticErrors(type: DefinitionType, d: Record<string, unknown>, taken: Set<string>): DefinitionError[] {
  const errors: DefinitionError[] = [];
  const add = (path: string, message: string): void => {
    if (!taken.has(path)) errors.push({ path, message });
  };
  if ((type === 'code' || type === 'python') && Array.isArray(d.aggregations)) {
    const list: unknown[] = d.aggregations;
    list.forEach((a, i) => {
      if (typeof a === 'string' && list.indexOf(a) < i) add(`${P}.aggregations[${i}]`, `aggregation "${a}" is listed twice`);
    });
  }
  if (typeof d.model === 'string') {
    const parsed = parseModelUri(d.model);
    if (!parsed.ok) add(`${P}.model`, parsed.message);
  }
  if (type === 'builtin' && typeof d.judge === 'string') {
    if (d.judge === 'guidelines') {
      if (d.guidelines === undefined || d.guidelines === null)
        add(`${P}.guidelines`, 'guidelines are required: a non-empty list of strings');
    } else if (d.guidelines !== undefined) {
      add(
        `${P}.guidelines`,
        d.judge === 'expectations_guidelines'
          ? 'expectations_guidelines reads its guidelines from the trace expectations; use judge "guidelines" for fixed ones'
          : `guidelines only apply to judge "guidelines", not "${d.judge}"`,
      );
    }
  }
  if (type === 'prompt' && typeof d.promptTemplate === 'string' && d.promptTemplate.trim() !== '') {
    const template = d.promptTemplate;
    const choices = templateChoices(template);
    if (choices.length === 0) {
      add(
        `${P}.promptTemplate`,
        'the template declares no choices: write each category as [[label]] (letters, digits, _ and spaces)',
      );
    }
    for (const v of templateVariables(template)) {
      if (!(PROMPT_VARIABLES as readonly string[]).includes(v)) {
        add(
          `${P}.promptTemplate`,
          `unknown variable {{${v}}}: a prompt template may use ${PROMPT_VARIABLES.map((x) => `{{${x}}}`).join(' and ')}`,
        );
      }
    }
    const nv = d.numericValues;
    if (isRecord(nv) && choices.length > 0) {
      for (const [k, v] of Object.entries(nv)) {
        if (!choices.includes(k.trim())) {
          add(`${P}.numericValues.${k}`, `"${k}" is not a choice of the template (choices: ${quoted(choices)})`);
        } else if (typeof v !== 'number' || !Number.isFinite(v)) {
          add(`${P}.numericValues.${k}`, 'the value must be a finite number');
        }
      }
      const missing = choices.filter((c) => !Object.keys(nv).some((k) => k.trim() === c));
      if (missing.length > 0) add(`${P}.numericValues`, `every choice needs a number; missing: ${quoted(missing)}`);
    }
  }
  if (type === 'judge' && typeof d.instructions === 'string' && d.instructions.trim() !== '') {
    const vars = templateVariables(d.instructions);
    const known = INSTRUCTION_VARIABLES as readonly string[];
    const list = INSTRUCTION_VARIABLES.map((x) => `{{ ${x} }}`).join(', ');
    for (const v of vars) {
      if (!known.includes(v)) add(`${P}.instructions`, `unknown variable {{ ${v} }}: instructions may use ${list}`);
    }
    if (!vars.some((v) => known.includes(v))) add(`${P}.instructions`, `instructions must reference at least one of ${list}`);
  }
  return errors;
}

/** Validates and normalises a scorer definition. Never throws. */
export function validateDefinition(def: unknown): ValidationResult {
  if (!isRecord(def)) return { ok: false, errors: [{ path: P, message: 'a definition must be a JSON object' }] };
  const type = def.type;
  if (typeof type !== 'string' || !(DEFINITION_TYPES as readonly string[]).includes(type)) {
    const message =
      type === undefined
        ? `type is required: one of ${quoted(DEFINITION_TYPES)}`
        : `unknown type ${JSON.stringify(type)}: expected one of ${quoted(DEFINITION_TYPES)}`;
    return { ok: false, errors: [{ path: `${P}.type`, message }] };
  }
  const t = type as DefinitionType;
  // null means "not given" for the optional fields, as it did in JSON bodies before the schema.
  const input = { ...def };
  for (const k of ['model', 'numericValues', 'aggregations', 'function'] as const) if (input[k] === null) delete input[k];
  const parsed = DEFINITION_SCHEMAS[t].safeParse(input);
  const errors = parsed.success ? [] : schemaErrors(t, parsed.error.issues);
  const taken = new Set(errors.map((e) => e.path));
  errors.push(...semanticErrors(t, input, taken));
  if (errors.length > 0 || !parsed.success) {
    return { ok: false, errors: errors.length > 0 ? errors : [{ path: P, message: 'invalid definition' }] };
  }
  const out = parsed.data as ScorerDefinition;
  if ((out.type === 'code' || out.type === 'python') && out.aggregations?.length === 0) delete out.aggregations;
  if (out.type === 'prompt' && out.numericValues) {
    out.numericValues = Object.fromEntries(Object.entries(out.numericValues).map(([k, v]) => [k.trim(), v as number]));
  }
  return { ok: true, definition: out };
}

/** Whether running this definition calls a judge model (the engine checks budgets first). */
export function requiresModel(definition: ScorerDefinition): boolean {
  return !isCodeScorer(definition);
}
