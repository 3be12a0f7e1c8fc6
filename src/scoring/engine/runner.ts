// The per-job API the engine calls: one (trace view, scorer version, inclusion probability)
// in, the assessments out. Failures of the scorer — a model that refuses, times out or answers
// nonsense, a code scorer that throws, loops or allocates without bound — become assessments
// carrying `error`; `run` rejects only when the caller aborts it or the runner is closed.
import { type Assessment, type AssessmentValue, assessmentId, type ScoredAssessment } from '../../assessments/index.ts';
import { isCodeScorer, type PythonDefinition, type ScorerDefinition, type ScorerVersion, validateDefinition } from '../../definitions/index.ts';
import type { TraceView } from '../../genai/index.ts';
import { type Clock, realClock, ScorecarError, type Usage } from '../../util/index.ts';
import { isRetrievalJudge, type JudgeTask, judgeTasks, readVerdict } from '../judges/index.ts';
import { createModelClient, type ModelClient } from '../models/index.ts';
import {
  PythonSandbox,
  readCodeResult,
  SandboxPool,
  type SandboxOutcome,
  type SandboxStats,
  sandboxInput,
  sourceMayReadTrace,
} from '../sandbox/index.ts';
import { RUNNER_DEFAULTS, type ScoringOptions } from './types.ts';

/** Why the trace was handed on by the assembler (recorded on every assessment). */
export type TraceCompletion = 'root' | 'idle' | 'max_age' | 'shutdown';

export interface ScoringJob {
  view: TraceView;
  scorer: ScorerVersion;
  /** Inclusion probability of the trace under this scorer's sampling (recorded on each assessment). */
  sampleRate: number;
  /** How the trace was completed; `shutdown` marks traces cut short by a stop. */
  completion?: TraceCompletion;
}

export interface ScorerRunner {
  /**
   * Scores one trace with one scorer version. Never rejects for scorer failures (they are error
   * assessments). Returns [] only for a retrieval judge on a trace without retriever spans.
   * Rejects with the signal's reason when aborted, and with SHUTTING_DOWN after close().
   */
  run(job: ScoringJob, signal?: AbortSignal): Promise<ScoredAssessment[]>;
  /** The judge model URI a definition calls (its own or the default); undefined for code scorers. */
  modelFor(definition: ScorerDefinition): string | undefined;
  stats(): { sandbox: SandboxStats; python?: SandboxStats; models: ReturnType<ModelClient['stats']> };
  close(): Promise<void>;
}

/** Metadata keys written on judge assessments. */
export const METADATA = {
  inputTokens: 'scorecar.usage.input_tokens',
  outputTokens: 'scorecar.usage.output_tokens',
  cost: 'scorecar.cost',
  attempts: 'scorecar.attempts',
  label: 'scorecar.label',
  completion: 'scorecar.trace.completion',
} as const;

/** The public (MLflow Feedback metadata) form of the typed usage: written once, never read back. */
function usageMetadata(u: Usage): Record<string, string> {
  const m: Record<string, string> = {
    [METADATA.inputTokens]: String(u.inputTokens),
    [METADATA.outputTokens]: String(u.outputTokens),
    [METADATA.attempts]: String(u.attempts),
  };
  if (u.cost !== undefined) m[METADATA.cost] = String(Number(u.cost.toPrecision(12)));
  return m;
}

export function createScorerRunner(options: ScoringOptions = {}): ScorerRunner {
  const clock: Clock = options.clock ?? realClock;
  const defaultModel = options.defaultModel ?? RUNNER_DEFAULTS.defaultModel;
  const maxValueChars = options.maxValueChars ?? RUNNER_DEFAULTS.maxValueChars;
  const models = createModelClient(options);
  let pool: SandboxPool | undefined;
  let python: PythonSandbox | undefined;
  let closed = false;

  const modelFor = (def: ScorerDefinition): string | undefined =>
    isCodeScorer(def) ? undefined : (def.model ?? defaultModel);

  function make(
    job: ScoringJob,
    name: string,
    spanId: string,
    source: Assessment['source'],
    fields: {
      value: AssessmentValue;
      rationale?: string;
      error?: { code: string; message: string };
      metadata: Record<string, string>;
      usage?: Usage | undefined;
    },
  ): ScoredAssessment {
    const metadata = fields.usage ? { ...fields.metadata, ...usageMetadata(fields.usage) } : fields.metadata;
    if (job.completion !== undefined && job.completion !== 'root') metadata[METADATA.completion] = job.completion;
    const a: Assessment = {
      assessmentId: assessmentId(job.view.traceId, spanId, job.scorer.name, job.scorer.version, name),
      name,
      traceId: job.view.traceId,
      spanId,
      experimentId: job.scorer.experimentId,
      scorer: { name: job.scorer.name, version: job.scorer.version },
      source,
      value: fields.value,
      metadata,
      sampleRate: job.sampleRate,
      createdAt: new Date(clock.now()).toISOString(),
    };
    if (fields.rationale !== undefined) a.rationale = fields.rationale;
    if (fields.error !== undefined) a.error = fields.error;
    return fields.usage ? { assessment: a, usage: fields.usage } : { assessment: a };
  }

  function failed(
    job: ScoringJob,
    spanId: string,
    source: Assessment['source'],
    e: unknown,
    metadata: Record<string, string> = {},
    spent?: Usage,
  ): ScoredAssessment {
    const err =
      e instanceof ScorecarError
        ? { code: e.code, message: e.message }
        : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
    const usage = spent ?? (e instanceof ScorecarError ? e.usage : undefined);
    return make(job, job.scorer.name, spanId, source, { value: null, error: err, metadata: { ...metadata }, usage });
  }

  async function runJudgeTask(
    job: ScoringJob,
    task: JudgeTask,
    modelUri: string,
    signal: AbortSignal | undefined,
  ): Promise<ScoredAssessment> {
    const source = { type: 'LLM_JUDGE' as const, id: modelUri };
    if (task.error || !task.prompt)
      return failed(
        job,
        task.spanId,
        source,
        task.error ?? new ScorecarError('INTERNAL', 'no prompt'),
        task.metadata,
      );
    let completion: Awaited<ReturnType<ModelClient['complete']>>;
    try {
      completion = await models.complete(modelUri, task.prompt, signal);
    } catch (e) {
      if (signal?.aborted || closed) throw e;
      return failed(job, task.spanId, source, e, task.metadata);
    }
    const usage: Usage = {
      inputTokens: completion.inputTokens,
      outputTokens: completion.outputTokens,
      attempts: completion.attempts,
      ...(completion.cost === undefined ? {} : { cost: completion.cost }),
    };
    const metadata = { ...task.metadata };
    try {
      const verdict = readVerdict(task, completion.text);
      if (verdict.label !== undefined) metadata[METADATA.label] = verdict.label;
      const fields: Parameters<typeof make>[4] = { value: verdict.value, metadata, usage };
      if (verdict.rationale !== undefined) fields.rationale = verdict.rationale;
      return make(job, job.scorer.name, task.spanId, source, fields);
    } catch (e) {
      return failed(job, task.spanId, source, e, metadata, usage);
    }
  }

  async function runJudge(
    job: ScoringJob,
    def: ScorerDefinition,
    signal: AbortSignal | undefined,
  ): Promise<ScoredAssessment[]> {
    const modelUri = modelFor(def)!;
    const source = { type: 'LLM_JUDGE' as const, id: modelUri };
    let tasks: JudgeTask[];
    try {
      models.endpointFor(modelUri); // an unusable model URI is one error, not one per span
      tasks = judgeTasks(def, job.view, maxValueChars);
    } catch (e) {
      return [failed(job, job.view.rootSpan.spanId, source, e)];
    }
    if (tasks.length === 0 && !isRetrievalJudge(def)) {
      return [
        failed(
          job,
          job.view.rootSpan.spanId,
          source,
          new ScorecarError('INTERNAL', 'the judge produced no task'),
        ),
      ];
    }
    return Promise.all(tasks.map((t) => runJudgeTask(job, t, modelUri, signal)));
  }

  async function runCode(
    job: ScoringJob,
    source: string,
    signal: AbortSignal | undefined,
  ): Promise<ScoredAssessment[]> {
    pool ??= new SandboxPool(options.sandbox);
    // The key the pool schedules by: calls are shared fairly between scorers. The context key:
    // each scorer version keeps its own QuickJS context (globals), whatever its source text.
    const key = `${job.scorer.experimentId}\u0000${job.scorer.name}`;
    const context = `${key}\u0000${job.scorer.version}`;
    const outcome = await pool.run(
      { key, context, source, ...sandboxInput(job.view, sourceMayReadTrace(source)) },
      signal,
    );
    return codeAssessments(job, outcome);
  }

  /** A Python scorer (MLflow @scorer, or `type: python`): the same as runCode, on Pyodide workers. */
  async function runPython(job: ScoringJob, def: PythonDefinition, signal: AbortSignal | undefined): Promise<ScoredAssessment[]> {
    python ??= new PythonSandbox(options.python);
    const key = `${job.scorer.experimentId}\u0000${job.scorer.name}`;
    const outcome = await python.run(
      {
        key,
        context: `${key}\u0000${job.scorer.version}`,
        source: def.source,
        function: def.function,
        ...sandboxInput(job.view, sourceMayReadTrace(def.source)),
      },
      signal,
    );
    // MLflow: a scorer returning None logs no assessment.
    if (outcome.ok && outcome.json === '{"none": true}') return [];
    return codeAssessments(job, outcome);
  }

  function codeAssessments(job: ScoringJob, outcome: SandboxOutcome): ScoredAssessment[] {
    const src = { type: 'CODE' as const, id: job.scorer.name };
    const rootSpanId = job.view.rootSpan.spanId;
    if (!outcome.ok) return [failed(job, rootSpanId, src, new ScorecarError(outcome.code, outcome.message))];
    try {
      return readCodeResult(outcome.json, job.scorer.name).map((fb) => {
        const fields: Parameters<typeof make>[4] = { value: fb.value, metadata: fb.metadata };
        if (fb.rationale !== undefined) fields.rationale = fb.rationale;
        return make(job, fb.name, rootSpanId, src, fields);
      });
    } catch (e) {
      return [failed(job, rootSpanId, src, e)];
    }
  }

  async function run(job: ScoringJob, signal?: AbortSignal): Promise<ScoredAssessment[]> {
    if (closed) throw new ScorecarError('SHUTTING_DOWN', 'the scorer runner is closed');
    if (signal?.aborted) throw signal.reason;
    // Definitions were validated (and compiled) at registration; this guards jobs that arrive
    // from elsewhere (a Kafka worker) without paying for a second compilation.
    const checked = validateDefinition(job.scorer.definition);
    if (!checked.ok) {
      const def = job.scorer.definition as Partial<ScorerDefinition> | undefined;
      const source =
        def?.type === 'code' || def?.type === 'python'
          ? { type: 'CODE' as const, id: job.scorer.name }
          : {
              type: 'LLM_JUDGE' as const,
              id:
                (def && 'model' in def && typeof def.model === 'string' ? def.model : undefined) ??
                defaultModel,
            };
      const message = checked.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      return [failed(job, job.view.rootSpan.spanId, source, new ScorecarError('INVALID_DEFINITION', message))];
    }
    const def = checked.definition;
    let out: ScoredAssessment[];
    try {
      out =
        def.type === 'code'
          ? await runCode(job, def.source, signal)
          : def.type === 'python'
            ? await runPython(job, def, signal)
            : await runJudge(job, def, signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (closed) throw new ScorecarError('SHUTTING_DOWN', 'the scorer runner is closed');
      // A bug of ours, not the scorer's: still an assessment, so the job is accounted for.
      const source = isCodeScorer(def)
        ? { type: 'CODE' as const, id: job.scorer.name }
        : { type: 'LLM_JUDGE' as const, id: modelFor(def)! };
      return [failed(job, job.view.rootSpan.spanId, source, e)];
    }
    if (signal?.aborted) throw signal.reason;
    if (closed) throw new ScorecarError('SHUTTING_DOWN', 'the scorer runner is closed');
    return out;
  }

  return {
    run,
    modelFor,
    stats: () => ({
      sandbox: pool?.stats() ?? { workers: 0, busy: 0, queued: 0, replaced: 0 },
      python: python?.stats() ?? { workers: 0, busy: 0, queued: 0, replaced: 0 },
      models: models.stats(),
    }),
    close: async () => {
      if (closed) return;
      closed = true;
      models.close();
      await Promise.all([pool?.close(), python?.close()]);
    },
  };
}
