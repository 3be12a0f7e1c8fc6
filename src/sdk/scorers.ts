// MLflow 3's scorer API in TypeScript form: scorer factories (Safety(), Guidelines(), …,
// customPromptJudge(), makeJudge(), scorer(fn)), immutable Scorer objects whose lifecycle
// methods return new objects, and the module-level listScorers/getScorer/deleteScorer.
import type { Aggregation, BuiltinJudge, FeedbackValueType, ScorerDefinition, ScorerStatus } from '../definitions/index.ts';
import type { DeleteResult, Scorer as ScorerResource } from '../definitions/index.ts';
import { SCORER_NAME_PATTERN } from '../definitions/index.ts';
import { ScorecarApiError, type ScorecarClient, defaultClient } from './client.ts';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function invalid(message: string): ScorecarApiError {
  return new ScorecarApiError('INVALID_ARGUMENT', message, 0);
}

/**
 * How a started scorer samples traces (MLflow `ScorerSamplingConfig`). `sampleRate` in [0, 1]
 * is the fraction of the experiment's traces scored (deterministic per trace id);
 * `filterString` uses MLflow's trace search syntax, e.g. `trace.status = 'OK'`.
 *
 * Plain objects `{ sampleRate, filterString }` are accepted wherever this class is.
 */
export class ScorerSamplingConfig {
  readonly sampleRate: number;
  /** undefined = keep the current filter; null = no filter. */
  readonly filterString: string | null | undefined;
  constructor(init: { sampleRate: number; filterString?: string | null }) {
    if (
      typeof init.sampleRate !== 'number' ||
      !Number.isFinite(init.sampleRate) ||
      init.sampleRate < 0 ||
      init.sampleRate > 1
    ) {
      throw invalid(`sampleRate: expected a number in [0, 1], got ${JSON.stringify(init.sampleRate)}`);
    }
    if (
      init.filterString !== undefined &&
      init.filterString !== null &&
      typeof init.filterString !== 'string'
    ) {
      throw invalid('filterString: expected a string or null');
    }
    this.sampleRate = init.sampleRate;
    this.filterString = init.filterString;
    Object.freeze(this);
  }
}

/** What `start()` takes: a ScorerSamplingConfig or the same fields as a plain object. */
export interface SamplingConfigInit {
  sampleRate: number;
  filterString?: string | null;
}

/** Where a call goes: an explicit client, else the one from `configure()` / the environment. */
export interface ClientOption {
  client?: ScorecarClient;
}

interface ScorerState {
  name: string;
  definition: ScorerDefinition;
  experimentId: string | null;
  version: number | null;
  sampleRate: number | null;
  filterString: string | null;
  status: ScorerStatus | 'unregistered';
  createdAt: string | null;
  updatedAt: string | null;
}

/**
 * A scorer: what to run on a trace (`definition`) and, once registered, where (`experimentId`,
 * `name`, `version`) and how often (`sampleRate`, `filterString`).
 *
 * Immutable, as in MLflow: `register()`, `start()`, `update()` and `stop()` return a NEW
 * Scorer reflecting the server's answer; the object they are called on keeps its values.
 *
 * ```ts
 * const judge = await Safety().register({ name: 'safety_check' });
 * const running = await judge.start({ samplingConfig: { sampleRate: 0.7 } });
 * judge.sampleRate;   // 0   (registered, not started)
 * running.sampleRate; // 0.7
 * ```
 */
export class Scorer {
  /** The scorer's name: the registered name once registered, else the default name. */
  readonly name: string;
  /** What the scorer runs (frozen). */
  readonly definition: Readonly<ScorerDefinition>;
  /** Experiment it is registered in; null before `register()`. */
  readonly experimentId: string | null;
  /** Registered version; null before `register()`. */
  readonly version: number | null;
  /** Sample rate when this object was returned; null before `register()` (MLflow: None). */
  readonly sampleRate: number | null;
  /** Filter when this object was returned; null = no filter. */
  readonly filterString: string | null;
  /** 'unregistered' before `register()`, then registered | active | stopped. */
  readonly status: ScorerStatus | 'unregistered';
  /** When this version was registered (ISO-8601); null before `register()`. */
  readonly createdAt: string | null;
  /** Last change to the scorer on the server (ISO-8601); null before `register()`. */
  readonly updatedAt: string | null;
  readonly #client: ScorecarClient | undefined;

  /** @internal Use the factories (Safety(), scorer(fn), …) or getScorer()/listScorers(). */
  constructor(state: ScorerState, client?: ScorecarClient) {
    this.name = state.name;
    this.definition = deepFreeze(structuredClone(state.definition));
    this.experimentId = state.experimentId;
    this.version = state.version;
    this.sampleRate = state.sampleRate;
    this.filterString = state.filterString;
    this.status = state.status;
    this.createdAt = state.createdAt;
    this.updatedAt = state.updatedAt;
    this.#client = client;
    Object.freeze(this);
  }

  /** A Scorer for a REST resource (what the admin API returns). */
  static fromResource(r: ScorerResource, client?: ScorecarClient): Scorer {
    return new Scorer(
      {
        name: r.name,
        definition: r.definition,
        experimentId: r.experimentId,
        version: r.version,
        sampleRate: r.sampleRate,
        filterString: r.filterString,
        status: r.status,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
      },
      client,
    );
  }

  /** The sampling config this object reports; null before `register()`. */
  get samplingConfig(): ScorerSamplingConfig | null {
    return this.sampleRate === null
      ? null
      : new ScorerSamplingConfig({ sampleRate: this.sampleRate, filterString: this.filterString });
  }

  /** True once registered on a server. */
  get isRegistered(): boolean {
    return this.experimentId !== null;
  }

  private clientFor(opts: ClientOption | undefined): ScorecarClient {
    return opts?.client ?? this.#client ?? defaultClient();
  }

  private registered(action: string): { experimentId: string; name: string } {
    if (this.experimentId === null) {
      throw new ScorecarApiError(
        'FAILED_PRECONDITION',
        `scorer '${this.name}' is not registered: call register() before ${action}()`,
        0,
      );
    }
    return { experimentId: this.experimentId, name: this.name };
  }

  /**
   * Registers this scorer in an experiment (default: the configured one). A new name gets
   * version 1 with sampleRate 0; an existing name gets a new version and keeps its sampling
   * config. Names: 1–64 characters, letters, digits, `_`, `.`, `-`. At most 20 names per
   * experiment (ScorecarApiError LIMIT_EXCEEDED beyond).
   */
  async register(opts: { name?: string; experimentId?: string } & ClientOption = {}): Promise<Scorer> {
    const name = opts.name ?? this.name;
    if (!SCORER_NAME_PATTERN.test(name)) {
      throw invalid(
        `invalid scorer name '${name}': expected 1-64 characters, letters, digits, "_", "." or "-"`,
      );
    }
    const client = this.clientFor(opts);
    const r = await client.registerScorer({
      name,
      definition: this.definition as ScorerDefinition,
      experimentId: opts.experimentId ?? this.experimentId ?? undefined,
    });
    return Scorer.fromResource(r, client);
  }

  /**
   * Starts monitoring: `sampleRate` in (0, 1] and an optional `filterString` (omitted keeps
   * the current filter, null clears it). Returns a new Scorer; this one is unchanged.
   */
  async start(
    opts: { samplingConfig: ScorerSamplingConfig | SamplingConfigInit } & ClientOption,
  ): Promise<Scorer> {
    const at = this.registered('start');
    const cfg = new ScorerSamplingConfig(opts.samplingConfig);
    if (cfg.sampleRate === 0)
      throw invalid('sampleRate: start needs a rate in (0, 1]; use stop() to set it to 0');
    const client = this.clientFor(opts);
    const r = await client.startScorer({ ...at, sampleRate: cfg.sampleRate, filterString: cfg.filterString });
    return Scorer.fromResource(r, client);
  }

  /**
   * Changes the sampling config of a registered scorer (rate in [0, 1]; 0 stops it). Fields
   * left out keep their value. Returns a new Scorer; this one keeps the old values.
   */
  async update(
    opts: { samplingConfig: Partial<SamplingConfigInit> | ScorerSamplingConfig } & ClientOption,
  ): Promise<Scorer> {
    const at = this.registered('update');
    const { sampleRate, filterString } = opts.samplingConfig;
    if (sampleRate === undefined && filterString === undefined) {
      throw invalid('update needs samplingConfig.sampleRate and/or samplingConfig.filterString');
    }
    if (sampleRate !== undefined) new ScorerSamplingConfig({ sampleRate, filterString });
    const client = this.clientFor(opts);
    const r = await client.updateScorer({ ...at, sampleRate, filterString });
    return Scorer.fromResource(r, client);
  }

  /** Stops monitoring (sampleRate 0); the scorer stays registered. Returns a new Scorer. */
  async stop(opts: ClientOption = {}): Promise<Scorer> {
    const at = this.registered('stop');
    const client = this.clientFor(opts);
    return Scorer.fromResource(await client.stopScorer(at), client);
  }

  /** The REST resource shape (for JSON.stringify and logs). */
  toJSON(): Record<string, unknown> {
    return {
      experimentId: this.experimentId,
      name: this.name,
      version: this.version,
      definition: this.definition,
      sampleRate: this.sampleRate,
      filterString: this.filterString,
      status: this.status,
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
    };
  }
}

function unregistered(name: string, definition: ScorerDefinition): Scorer {
  if (!SCORER_NAME_PATTERN.test(name)) {
    throw invalid(
      `invalid scorer name '${name}': expected 1-64 characters, letters, digits, "_", "." or "-"`,
    );
  }
  return new Scorer({
    name,
    definition,
    experimentId: null,
    version: null,
    sampleRate: null,
    filterString: null,
    status: 'unregistered',
    createdAt: null,
    updatedAt: null,
  });
}

/** Options of the built-in LLM judges. */
export interface BuiltinJudgeOptions {
  /** Default name used by `register()` when it is given none. */
  name?: string;
  /** Judge model URI (`openai:/gpt-4.1-mini`, `anthropic:/…`, `databricks:/<endpoint>`); default: the server's. */
  model?: string;
}

function builtin(judge: BuiltinJudge, opts: BuiltinJudgeOptions = {}): Scorer {
  return unregistered(opts.name ?? judge, {
    type: 'builtin',
    judge,
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  });
}

/** Built-in judge: is the response free of harmful content? (MLflow `Safety`). */
export function Safety(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('safety', opts);
}
/** Built-in judge: does the response address the request? (MLflow `RelevanceToQuery`). */
export function RelevanceToQuery(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('relevance_to_query', opts);
}
/** Built-in judge: is the response correct against the expected facts/response? (MLflow `Correctness`). */
export function Correctness(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('correctness', opts);
}
/** Built-in judge: is the response grounded in the retrieved documents? (MLflow `RetrievalGroundedness`). */
export function RetrievalGroundedness(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('retrieval_groundedness', opts);
}
/** Built-in judge: is each retrieved document relevant to the request? (MLflow `RetrievalRelevance`). */
export function RetrievalRelevance(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('retrieval_relevance', opts);
}
/** Built-in judge: do the retrieved documents contain the expected facts? (MLflow `RetrievalSufficiency`). */
export function RetrievalSufficiency(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('retrieval_sufficiency', opts);
}
/** Built-in judge: does the response follow the per-trace guidelines in its expectations? (MLflow `ExpectationsGuidelines`). */
export function ExpectationsGuidelines(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('expectations_guidelines', opts);
}
/** Built-in judge: is the response equivalent to the expected response? (MLflow `Equivalence`). */
export function Equivalence(opts?: BuiltinJudgeOptions): Scorer {
  return builtin('equivalence', opts);
}

/**
 * Pass/fail judge against natural-language guidelines (MLflow `Guidelines`).
 *
 * ```ts
 * const english = await Guidelines({ name: 'english', guidelines: ['The response must be in English'] })
 *   .register({ name: 'is_english' });
 * ```
 */
export function Guidelines(opts: { name?: string; guidelines: string | string[]; model?: string }): Scorer {
  const guidelines = typeof opts.guidelines === 'string' ? [opts.guidelines] : [...opts.guidelines];
  if (guidelines.length === 0 || guidelines.some((g) => typeof g !== 'string' || g.trim() === '')) {
    throw invalid('guidelines: expected one or more non-empty strings');
  }
  return unregistered(opts.name ?? 'guidelines', {
    type: 'guidelines',
    guidelines,
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  });
}

/**
 * Multi-level judge with your own prompt (MLflow `custom_prompt_judge`): categories written
 * `[[choice]]`, variables `{{request}}` and `{{response}}`; `numericValues` maps each choice
 * to the number recorded as the value.
 */
export function customPromptJudge(opts: {
  name: string;
  promptTemplate: string;
  numericValues?: Record<string, number>;
  model?: string;
}): Scorer {
  return unregistered(opts.name, {
    type: 'prompt',
    promptTemplate: opts.promptTemplate,
    ...(opts.numericValues !== undefined ? { numericValues: { ...opts.numericValues } } : {}),
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  });
}

/**
 * Judge from instructions (MLflow `make_judge`): the instructions use `{{ inputs }}`,
 * `{{ outputs }}`, `{{ expectations }}` and/or `{{ trace }}`.
 */
export function makeJudge(opts: {
  name: string;
  instructions: string;
  feedbackValueType?: FeedbackValueType;
  model?: string;
}): Scorer {
  return unregistered(opts.name, {
    type: 'judge',
    instructions: opts.instructions,
    ...(opts.feedbackValueType !== undefined ? { feedbackValueType: opts.feedbackValueType } : {}),
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  });
}

/** The argument scorecar passes to a code scorer (MLflow's `inputs`, `outputs`, `expectations`, `trace`). */
export interface ScorerContext {
  inputs: unknown;
  outputs: unknown;
  expectations: Record<string, unknown>;
  trace: unknown;
}

/** What a code scorer may return: a value, or feedback objects. */
export type ScorerReturn =
  | number
  | boolean
  | string
  | { value: unknown; rationale?: string; name?: string }
  | Array<{ value: unknown; rationale?: string; name?: string }>;

const STANDALONE_FUNCTION = /^(?:async\s+)?(?:function\b|\(|[A-Za-z_$][\w$]*\s*=>)/;

/**
 * A code scorer from a function (MLflow `@scorer`): the function's source text
 * (`fn.toString()`) is what gets registered and later runs in scorecar's sandbox, so it must
 * be self-contained — no closures over outer variables, no imports, no helpers from a bundler.
 * It receives one object `{ inputs, outputs, expectations, trace }` (destructure what you use).
 *
 * ```ts
 * const responseLength = scorer(({ outputs }) => String(outputs ?? '').length, {
 *   name: 'response_length',
 *   aggregations: ['mean', 'min', 'max'],
 * });
 * ```
 */
export function scorer(
  fn: (ctx: ScorerContext) => ScorerReturn | Promise<ScorerReturn>,
  opts: { name?: string; aggregations?: Aggregation[] } = {},
): Scorer {
  if (typeof fn !== 'function') throw invalid('scorer(fn): expected a function');
  const source = Function.prototype.toString.call(fn).trim();
  if (source.includes('[native code]') || !STANDALONE_FUNCTION.test(source)) {
    throw invalid(
      'scorer(fn): the function cannot be serialised; pass an arrow function or a function expression ' +
        '(not a bound function, class or object method)',
    );
  }
  const name = opts.name ?? fn.name;
  if (!name) throw invalid('scorer(fn): give the scorer a name ({ name }) or use a named function');
  return unregistered(name, {
    type: 'code',
    source,
    ...(opts.aggregations !== undefined ? { aggregations: [...opts.aggregations] } : {}),
  });
}

/** Every registered scorer of the experiment (latest version of each name), like MLflow `list_scorers()`. */
export async function listScorers(opts: { experimentId?: string } & ClientOption = {}): Promise<Scorer[]> {
  const client = opts.client ?? defaultClient();
  try {
    const list = await client.listScorers({ experimentId: opts.experimentId });
    return list.map((r) => Scorer.fromResource(r, client));
  } catch (e) {
    // An experiment nobody registered a scorer in yet simply has none (as in MLflow).
    if (e instanceof ScorecarApiError && e.code === 'NOT_FOUND' && e.details?.resource === 'experiment')
      return [];
    throw e;
  }
}

/** One registered scorer (latest version, or `version`), like MLflow `get_scorer()`. NOT_FOUND when missing. */
export async function getScorer(
  opts: { name: string; experimentId?: string; version?: number } & ClientOption,
): Promise<Scorer> {
  const client = opts.client ?? defaultClient();
  return Scorer.fromResource(
    await client.getScorer({ name: opts.name, experimentId: opts.experimentId, version: opts.version }),
    client,
  );
}

/** Every version of a scorer, oldest first, like MLflow `list_scorer_versions()`. */
export async function listScorerVersions(
  opts: { name: string; experimentId?: string } & ClientOption,
): Promise<Scorer[]> {
  const client = opts.client ?? defaultClient();
  const list = await client.listVersions({ name: opts.name, experimentId: opts.experimentId });
  return list.map((r) => Scorer.fromResource(r, client));
}

/**
 * Deletes one version (`version: 3`) or every version (`version: 'all'`, the default) of a
 * scorer, like MLflow `delete_scorer()`. Deleting the last version removes the name.
 */
export async function deleteScorer(
  opts: { name: string; experimentId?: string; version?: number | 'all' } & ClientOption,
): Promise<DeleteResult> {
  const client = opts.client ?? defaultClient();
  return client.deleteScorer({ name: opts.name, experimentId: opts.experimentId, version: opts.version });
}

/**
 * Kill switch: stops every active scorer of the experiment (default: the configured one), or
 * of every experiment with `allExperiments: true`. Returns the scorers that were stopped.
 */
export async function stopAllScorers(
  opts: { experimentId?: string; allExperiments?: boolean } & ClientOption = {},
): Promise<Scorer[]> {
  const client = opts.client ?? defaultClient();
  const list = await client.stopAll({ experimentId: opts.experimentId, allExperiments: opts.allExperiments });
  return list.map((r) => Scorer.fromResource(r, client));
}
