// LLM judges: MLflow's built-in judges, guidelines, custom prompt judges and make_judge
// instructions turned into prompts over a TraceView, and the model's answer read into a verdict.
export {
  answerSpecFor,
  isRetrievalJudge,
  type JudgeTask,
  judgeTasks,
  modelCallsFor,
  readVerdict,
  type Verdict,
} from './judges.ts';
export { type AnswerSpec, coerceResult, type JudgeAnswer, normaliseYesNo, parseJudgeAnswer } from './parse.ts';
export { answerSentence, type JudgePrompt, QUESTIONS } from './prompts.ts';
export { renderTraceOutline } from './render.ts';
