// The two pure functions the registry borrows from its neighbours: scorer-definition validation
// (src/scoring) and filter-string compilation (src/sampling). Kept behind this one module so the
// registry (and its tests) can be given other implementations through RegistryOptions.
//
// TEMPORARY SHIM: src/scoring and src/sampling are being written in parallel. These stand-ins
// follow the agreed signatures exactly; they are replaced by re-exports of the real functions.
import type { TraceView } from '../genai/types.ts';
import { ScorecarError } from '../util/errors.ts';
import { BUILTIN_JUDGES, type CompiledFilter, type ScorerDefinition } from './types.ts';

export type ValidateDefinition = (
  def: unknown,
) => { ok: true; definition: ScorerDefinition } | { ok: false; errors: { path: string; message: string }[] };

export type CompileFilter = (text: string) => CompiledFilter;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const validateDefinition: ValidateDefinition = (def) => {
  const errors: { path: string; message: string }[] = [];
  if (!isObj(def)) return { ok: false, errors: [{ path: '', message: 'expected an object' }] };
  switch (def.type) {
    case 'builtin':
      if (!BUILTIN_JUDGES.includes(def.judge as never)) errors.push({ path: 'judge', message: 'unknown judge' });
      break;
    case 'guidelines':
      if (!Array.isArray(def.guidelines) || def.guidelines.length === 0)
        errors.push({ path: 'guidelines', message: 'expected a non-empty array of strings' });
      break;
    case 'prompt':
      if (typeof def.promptTemplate !== 'string' || !/\[\[[\w ]+\]\]/.test(def.promptTemplate))
        errors.push({ path: 'promptTemplate', message: 'expected a template with [[choice]] categories' });
      break;
    case 'judge':
      if (typeof def.instructions !== 'string') errors.push({ path: 'instructions', message: 'expected a string' });
      break;
    case 'code':
      if (typeof def.source !== 'string') errors.push({ path: 'source', message: 'expected a string' });
      else {
        try {
          new Function(`return (${def.source});`);
        } catch (e) {
          errors.push({ path: 'source', message: `does not compile: ${(e as Error).message}` });
        }
      }
      break;
    default:
      errors.push({ path: 'type', message: 'expected builtin, guidelines, prompt, judge or code' });
  }
  return errors.length ? { ok: false, errors } : { ok: true, definition: def as unknown as ScorerDefinition };
};

export const compileFilter: CompileFilter = (text) => {
  const m = /^\s*trace\.status\s*=\s*'(OK|ERROR)'\s*$/.exec(text);
  if (!m) {
    const err = new ScorecarError('INVALID_FILTER', `filter syntax error at position 0: cannot parse '${text}'`);
    Object.assign(err, { position: 0 });
    throw err;
  }
  const want = m[1];
  return { text, matches: (view: TraceView) => view.status === want };
};
