// The two pure functions the registry borrows from its neighbours: scorer-definition validation
// (src/scoring) and filter-string compilation (src/sampling). Kept behind this one module so the
// registry (and its tests) can be given other implementations through RegistryOptions.
import { compileFilter as samplingCompileFilter } from '../sampling/index.ts';
import { validateDefinition as scoringValidateDefinition } from '../scoring/index.ts';
import type { CompiledFilter, ScorerDefinition } from './types.ts';

/** Checks and normalises a definition; every problem comes with its path ('definition.judge'). */
export type ValidateDefinition = (
  def: unknown,
) => { ok: true; definition: ScorerDefinition } | { ok: false; errors: { path: string; message: string }[] };

/** Parses a filter string once; throws ScorecarError INVALID_FILTER with a numeric `position`. */
export type CompileFilter = (text: string) => CompiledFilter;

export const validateDefinition: ValidateDefinition = (def) => scoringValidateDefinition(def);
export const compileFilter: CompileFilter = samplingCompileFilter;
