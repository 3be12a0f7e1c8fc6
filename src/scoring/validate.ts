// The full check of a scorer definition at registration: the schema (src/definitions) and, for
// code scorers, compiling the source in the sandbox's engine. The registry is handed this
// function by the pipeline (it cannot import scoring itself: scoring sits above it).
import { type ValidationResult, validateDefinition } from '../definitions/index.ts';
import { checkFunctionSource } from './sandbox/index.ts';

export async function validateScorerDefinition(def: unknown): Promise<ValidationResult> {
  const r = validateDefinition(def);
  if (!r.ok || r.definition.type !== 'code') return r;
  const problem = await checkFunctionSource(r.definition.source);
  if (problem === undefined) return r;
  return {
    ok: false,
    errors: [
      {
        path: 'definition.source',
        message: `the source ${problem}; expected e.g. "(ctx) => String(ctx.outputs ?? '').length"`,
      },
    ],
  };
}
