// The scoring engine: lanes and budgets over a bounded job queue, and the runner that turns one
// (trace view, scorer version) job into assessments.
export { type Admission, type BudgetLedger, type BudgetLimit, type BudgetTicket, JudgeBudgets, type UsageSource } from './budget.ts';
export { PostgresBudgetLedger } from './budget-postgres.ts';
export { type EngineOptions, type ScorerHealth, ScoringEngine } from './engine.ts';
export { createScorerRunner, METADATA, type ScorerRunner, type ScoringJob } from './runner.ts';
export { RUNNER_DEFAULTS, type ScoringOptions } from './types.ts';
