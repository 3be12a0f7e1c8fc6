// Options of the scorer runner. They mirror the config keys under `scoring.*`
// (src/config/schema.ts) so `config.scoring` can be passed straight in; everything has a
// default so tests pass only what they exercise.
import type { ModelClientOptions } from '../models/index.ts';
import type { SandboxOptions } from '../sandbox/index.ts';

export interface ScoringOptions extends ModelClientOptions {
  /** Judge model when a definition names none (`scoring.defaultModel`). */
  defaultModel?: string;
  sandbox?: SandboxOptions;
  /** Python scorers' sandbox (`scoring.python`): Pyodide workers, with the same kind of limits. */
  python?: SandboxOptions;
  /** Longest rendering of any one value (inputs, outputs, a document) put into a judge prompt. */
  maxValueChars?: number;
}

export const RUNNER_DEFAULTS = {
  defaultModel: 'openai:/gpt-4.1-mini',
  maxValueChars: 20_000,
} as const;
