// Scoring: definition validation, judge model providers, LLM judges (built-in, prompt,
// instructions), sandboxed code scorers and the per-job runner the engine calls.
export { type BudgetLimit, JudgeBudgets, type UsageSource } from './budget.ts';
export { aggregate, type CodeFeedback, readCodeResult, sandboxInput } from './code-scorer.ts';
export { checkFunctionSource } from './compile.ts';
export {
  answerSpecFor,
  isRetrievalJudge,
  type JudgeTask,
  judgeTasks,
  modelCallsFor,
  readVerdict,
  type Verdict,
} from './judges.ts';
export {
  MODEL_PROVIDERS,
  type ModelProvider,
  type ModelUri,
  type ParsedModelUri,
  parseModelUri,
} from './model-uri.ts';
export {
  type AnswerSpec,
  coerceResult,
  type JudgeAnswer,
  normaliseYesNo,
  parseJudgeAnswer,
} from './parse.ts';
export { answerSentence, type JudgePrompt, QUESTIONS } from './prompts.ts';
export {
  createModelClient,
  type ModelClient,
  type ModelCompletion,
  resolveRetryPolicy,
} from './providers.ts';
export { renderTraceOutline, toJsonSafe, traceViewJson } from './render.ts';
export { backoffInterval, jitteredInterval, nextDelay, parseRetryAfter, Semaphore, sleep } from './retry.ts';
export { type EngineOptions, type ScorerHealth, ScoringEngine } from './engine.ts';
export { type ActiveScorerSource, type JobAdmission, type SelectedJob, type SelectorOptions, TraceSelector } from './select.ts';
export { createScorerRunner, METADATA, type ScorerRunner, type ScoringJob } from './runner.ts';
export { type SandboxJob, type SandboxOutcome, SandboxPool, type SandboxStats } from './sandbox.ts';
export {
  CHOICE_PATTERN,
  INSTRUCTION_VARIABLES,
  PROMPT_VARIABLES,
  renderTemplate,
  templateChoices,
  templateVariables,
} from './templates.ts';
export { makeTraceView, type TestSpan, type TestViewInput } from './testkit.ts';
export {
  type Clock,
  DEFAULT_SCORING,
  type ModelCallInfo,
  type ModelPrice,
  type ProviderOptions,
  type RetryPolicy,
  realClock,
  type SandboxOptions,
  ScoringError,
  type ScoringErrorCode,
  type ScoringOptions,
} from './types.ts';
export {
  DEFINITION_TYPES,
  type DefinitionError,
  FEEDBACK_VALUE_TYPES,
  requiresModel,
  type ValidateOptions,
  type ValidationResult,
  validateDefinition,
} from './validate.ts';
