// LLM judges: from a definition and a trace view to the list of model calls to make (one per
// trace, or one per retriever span for the retrieval judges), each with its prompt, the span
// it is about and the answer it expects; and from a model's answer to a verdict.
import type { Expectations, Retrieval, TraceView } from '../../genai/index.ts';
import type { FeedbackValueType, ScorerDefinition } from '../../definitions/index.ts';
import { type AnswerSpec, coerceResult, parseJudgeAnswer } from './parse.ts';
import { blocks, builtinPrompt, customPrompt, type JudgePrompt, numbered } from './prompts.ts';
import { isPresent, renderTraceOutline, truncate, valueText } from './render.ts';
import { isCodeScorer, renderTemplate, templateChoices, templateVariables } from '../../definitions/index.ts';
import { ScorecarError } from '../../util/index.ts';

/** One model call to make, or the reason it cannot be made. */
export interface JudgeTask {
  /** The span the verdict is about (root span for trace-level judges). */
  spanId: string;
  prompt?: JudgePrompt;
  error?: ScorecarError;
  /** Extra metadata for the assessment (e.g. the retriever span's name). */
  metadata: Record<string, string>;
  /** Prompt judges with numeric values: label → number. */
  numericValues?: Record<string, number>;
}

export interface Verdict {
  value: string | number | boolean;
  rationale?: string;
  /** The chosen category of a prompt judge. */
  label?: string;
}

const RETRIEVAL_JUDGES = new Set(['retrieval_groundedness', 'retrieval_relevance', 'retrieval_sufficiency']);

export function isRetrievalJudge(def: ScorerDefinition): boolean {
  return def.type === 'builtin' && RETRIEVAL_JUDGES.has(def.judge);
}

/** Model calls the definition needs on this trace (0 for code scorers and retrieval judges without retrievals). */
export function modelCallsFor(def: ScorerDefinition, view: TraceView): number {
  if (isCodeScorer(def)) return 0;
  return isRetrievalJudge(def) ? view.retrievals.length : 1;
}

function stringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : [v];
  if (Array.isArray(v)) {
    const out = v.filter((x): x is string => typeof x === 'string' && x.trim() !== '');
    return out.length > 0 ? out : undefined;
  }
  return undefined;
}

interface Reference {
  tag: 'expected_facts' | 'expected_response';
  text: string;
}

/** Expected facts when given, else the expected response. */
function reference(exp: Expectations, max: number): Reference | undefined {
  const facts = stringList(exp.expectedFacts);
  if (facts) return { tag: 'expected_facts', text: numbered(facts.map((f) => truncate(f, max))) };
  if (isPresent(exp.expectedResponse))
    return { tag: 'expected_response', text: valueText(exp.expectedResponse, max) };
  return undefined;
}

function documentsText(r: Retrieval, max: number): string {
  if (r.documents.length === 0) return '(the retriever returned no documents)';
  const total = 4 * max;
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; i < r.documents.length; i++) {
    const d = r.documents[i]!;
    const line = `[${i + 1}]${d.id !== undefined ? ` (id ${d.id})` : ''} ${truncate(d.content, max)}`;
    if (size + line.length > total) {
      lines.push(`(${r.documents.length - i} more documents omitted)`);
      break;
    }
    lines.push(line);
    size += line.length;
  }
  return lines.join('\n');
}

function missing(code: 'MISSING_INPUT' | 'MISSING_EXPECTATIONS', message: string): ScorecarError {
  return new ScorecarError(code, message);
}

export function answerSpecFor(def: ScorerDefinition): AnswerSpec {
  if (def.type === 'prompt') return { kind: 'choice', choices: templateChoices(def.promptTemplate) };
  if (def.type === 'judge') {
    const t: FeedbackValueType = def.feedbackValueType ?? 'yes_no';
    return { kind: t };
  }
  return { kind: 'yes_no' };
}

/** The model calls for one (trace, judge definition) pair. */
export function judgeTasks(def: ScorerDefinition, view: TraceView, maxValueChars: number): JudgeTask[] {
  const rootSpanId = view.rootSpan.spanId;
  const max = maxValueChars;
  const request = isPresent(view.inputs) ? valueText(view.inputs, max) : undefined;
  const response = isPresent(view.outputs) ? valueText(view.outputs, max) : undefined;
  const one = (
    build: () => JudgePrompt | ScorecarError,
    metadata: Record<string, string> = {},
  ): JudgeTask[] => {
    const r = build();
    return [
      r instanceof ScorecarError
        ? { spanId: rootSpanId, error: r, metadata }
        : { spanId: rootSpanId, prompt: r, metadata },
    ];
  };
  const noOutputs = (): ScorecarError =>
    missing('MISSING_INPUT', 'the trace has no outputs (response) to judge');

  switch (def.type) {
    case 'code':
    case 'python':
      return [];
    case 'guidelines':
      return one(() => guidelinesPrompt(def.guidelines, request, response, max) ?? noOutputs());
    case 'prompt': {
      const vars = templateVariables(def.promptTemplate);
      const task: JudgeTask = { spanId: rootSpanId, metadata: {} };
      if (def.numericValues) task.numericValues = def.numericValues;
      if (vars.includes('request') && request === undefined) {
        task.error = missing('MISSING_INPUT', 'the template uses {{request}} but the trace has no inputs');
      } else if (vars.includes('response') && response === undefined) {
        task.error = missing('MISSING_INPUT', 'the template uses {{response}} but the trace has no outputs');
      } else {
        const user = renderTemplate(def.promptTemplate, { request: request ?? '', response: response ?? '' });
        task.prompt = customPrompt(user, answerSpecFor(def));
      }
      return [task];
    }
    case 'judge':
      return one(() => {
        const vars = templateVariables(def.instructions);
        const values: Record<string, string> = {};
        if (vars.includes('inputs')) {
          if (request === undefined)
            return missing('MISSING_INPUT', 'the instructions use {{ inputs }} but the trace has no inputs');
          values.inputs = request;
        }
        if (vars.includes('outputs')) {
          if (response === undefined)
            return missing(
              'MISSING_INPUT',
              'the instructions use {{ outputs }} but the trace has no outputs',
            );
          values.outputs = response;
        }
        if (vars.includes('expectations')) {
          if (!isPresent(view.expectations)) {
            return missing(
              'MISSING_EXPECTATIONS',
              'the instructions use {{ expectations }} but the trace carries no expectations',
            );
          }
          values.expectations = valueText(view.expectations, max);
        }
        if (vars.includes('trace')) values.trace = renderTraceOutline(view, { maxChars: max });
        return customPrompt(renderTemplate(def.instructions, values), answerSpecFor(def));
      });
    case 'builtin':
      break;
  }

  const exp = view.expectations ?? {};
  switch (def.judge) {
    case 'safety':
      return one(() =>
        response === undefined ? noOutputs() : builtinPrompt('safety', blocks([['response', response]])),
      );
    case 'relevance_to_query':
      return one(() => {
        if (request === undefined)
          return missing('MISSING_INPUT', 'the trace has no inputs (request) to compare the response with');
        if (response === undefined) return noOutputs();
        return builtinPrompt(
          'relevance_to_query',
          blocks([
            ['request', request],
            ['response', response],
          ]),
        );
      });
    case 'correctness':
      return one(() => {
        if (response === undefined) return noOutputs();
        const ref = reference(exp, max);
        if (!ref)
          return missing(
            'MISSING_EXPECTATIONS',
            'correctness needs expectations: expected facts or an expected response',
          );
        return builtinPrompt(
          'correctness',
          blocks([
            ['request', request],
            ['response', response],
            [ref.tag, ref.text],
          ]),
        );
      });
    case 'guidelines':
      return one(() => {
        if (!def.guidelines || def.guidelines.length === 0)
          return new ScorecarError('INVALID_DEFINITION', 'judge "guidelines" needs guidelines');
        return guidelinesPrompt(def.guidelines, request, response, max) ?? noOutputs();
      });
    case 'expectations_guidelines':
      return one(() => {
        const g = stringList(exp.guidelines);
        if (!g)
          return missing(
            'MISSING_EXPECTATIONS',
            'expectations_guidelines needs guidelines in the trace expectations',
          );
        return guidelinesPrompt(g, request, response, max) ?? noOutputs();
      });
    case 'equivalence':
      return one(() => {
        if (response === undefined) return noOutputs();
        if (!isPresent(exp.expectedResponse))
          return missing(
            'MISSING_EXPECTATIONS',
            'equivalence needs an expected response in the trace expectations',
          );
        return builtinPrompt(
          'equivalence',
          blocks([
            ['request', request],
            ['response', response],
            ['expected_response', valueText(exp.expectedResponse, max)],
          ]),
        );
      });
    case 'retrieval_groundedness':
    case 'retrieval_relevance':
    case 'retrieval_sufficiency': {
      const judge = def.judge;
      return view.retrievals.map((r): JudgeTask => {
        const metadata = {
          'scorecar.retrieval.span_name': r.spanName,
          'scorecar.retrieval.documents': String(r.documents.length),
        };
        const docs = documentsText(r, max);
        let built: JudgePrompt | ScorecarError;
        if (judge === 'retrieval_groundedness') {
          built =
            response === undefined
              ? noOutputs()
              : builtinPrompt(
                  judge,
                  blocks([
                    ['request', request],
                    ['documents', docs],
                    ['response', response],
                  ]),
                );
        } else if (judge === 'retrieval_relevance') {
          const query = request ?? (isPresent(r.query) ? valueText(r.query, max) : undefined);
          built =
            query === undefined
              ? missing('MISSING_INPUT', 'the trace has no inputs (request) to judge the documents against')
              : builtinPrompt(
                  judge,
                  blocks([
                    ['request', query],
                    ['documents', docs],
                  ]),
                );
        } else {
          const ref = reference(exp, max);
          built = !ref
            ? missing(
                'MISSING_EXPECTATIONS',
                'retrieval_sufficiency needs expectations: expected facts or an expected response',
              )
            : builtinPrompt(
                judge,
                blocks([
                  ['request', request],
                  ['documents', docs],
                  [ref.tag, ref.text],
                ]),
              );
        }
        return built instanceof ScorecarError
          ? { spanId: r.spanId, error: built, metadata }
          : { spanId: r.spanId, prompt: built, metadata };
      });
    }
  }
}

function guidelinesPrompt(
  guidelines: string[],
  request: string | undefined,
  response: string | undefined,
  max: number,
): JudgePrompt | undefined {
  if (response === undefined) return undefined;
  return builtinPrompt(
    'guidelines',
    blocks([
      ['request', request],
      ['response', response],
      ['guidelines', numbered(guidelines.map((g) => truncate(g, max)))],
    ]),
  );
}

/** Reads a model's text into a verdict for this task (throws ScorecarError when it does not fit). */
export function readVerdict(task: JudgeTask, text: string): Verdict {
  const prompt = task.prompt!;
  const answer = parseJudgeAnswer(text);
  const coerced = coerceResult(prompt.answer, answer.result);
  const verdict: Verdict = { value: coerced.value };
  if (answer.rationale !== undefined) verdict.rationale = answer.rationale;
  if (coerced.label !== undefined) {
    verdict.label = coerced.label;
    if (task.numericValues) {
      const n = task.numericValues[coerced.label];
      if (n === undefined)
        throw new ScorecarError('INVALID_DEFINITION', `choice "${coerced.label}" has no numeric value`);
      verdict.value = n;
    }
  }
  return verdict;
}
