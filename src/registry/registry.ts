// The registry service: the scorer lifecycle (register → start → update → stop → delete) with
// its validation, config-as-code reconciliation, the kill switch, and the snapshot of active
// scorers the pipeline reads per trace. Every writer (REST API, SDK and CLI through the API,
// config file, another process on the same SQLite file) goes through a RegistryStore; this
// service notices every committed change (its own at once, other processes' by polling the
// store revision) and republishes the snapshot.
import type { ScorerEntry } from '../config/index.ts';
import { type Counter, type Histogram, type Logger, type MetricsRegistry, ScorecarError, silentLogger } from '../util/index.ts';
import {
  canonicalJson,
  checkExperimentId,
  checkSampleRate,
  checkScorerName,
  deepFreeze,
  normaliseFilter,
} from './rules.ts';
import type { RegistryStore } from './store.ts';
import {
  type DeleteResult,
  type Experiment,
  MAX_SCORERS_PER_EXPERIMENT,
  type Scorer,
  type ScorerDefinition,
  validateDefinition as defaultValidateDefinition,
  type ValidationResult,
} from '../definitions/index.ts';
import { type ActiveScorer, type CompiledFilter, compileFilter as defaultCompileFilter } from '../select/index.ts';

/**
 * Checks and normalises a definition; every problem comes with its path ('definition.judge').
 * The default is the pure schema check of src/definitions; the pipeline adds the sandbox's
 * compilation of code scorers.
 */
export type ValidateDefinition = (def: unknown) => ValidationResult | Promise<ValidationResult>;

/** Parses a filter string once; throws ScorecarError INVALID_FILTER with a numeric `position`. */
export type CompileFilter = (text: string) => CompiledFilter;

export interface RegistryOptions {
  store: RegistryStore;
  logger?: Logger;
  metrics?: MetricsRegistry;
  /**
   * How often the store revision is polled for changes made by other processes (default 250 ms;
   * 1000 ms when the store pushes changes, where polling is only the safety net). 0 = never.
   */
  pollIntervalMs?: number;
  /** Default 20 (MAX_SCORERS_PER_EXPERIMENT). */
  maxScorersPerExperiment?: number;
  /** Default: src/definitions' validateDefinition (no compilation of code scorers). */
  validateDefinition?: ValidateDefinition;
  /** Injected for tests; default src/select's compileFilter. */
  compileFilter?: CompileFilter;
  /** Injected for tests; default () => new Date(). */
  now?: () => Date;
}

export interface SamplingConfig {
  sampleRate: number;
  /** undefined = keep the current filter, null or '' = no filter. */
  filterString?: string | null;
}

/** Delivered to onChange listeners after the active snapshot was rebuilt. */
export interface RegistryChange {
  /** Store revision the snapshot reflects. */
  revision: number;
  /** The new snapshot (the same object activeScorers() now returns). */
  active: ReadonlyMap<string, readonly ActiveScorer[]>;
  /** 'local' = a mutation through this Registry; 'external' = noticed by polling. */
  source: 'local' | 'external';
}

export type ReconcileAction = 'created' | 'new_version' | 'unchanged';
export type ReconcileSampling = 'started' | 'updated' | 'stopped' | 'unchanged';
export interface ReconcileResult {
  experimentId: string;
  name: string;
  /** The version the entry now runs. */
  version: number;
  definition: ReconcileAction;
  sampling: ReconcileSampling;
}

const EMPTY: readonly ActiveScorer[] = Object.freeze([]);

function rootPath(path: string, field: string): string {
  if (path === '' || path === 'definition') return field;
  if (path.startsWith('definition.') || path.startsWith('definition['))
    return field + path.slice('definition'.length);
  return path.startsWith('[') ? field + path : `${field}.${path}`;
}

export class Registry {
  readonly store: RegistryStore;
  readonly maxScorersPerExperiment: number;
  private readonly log: Logger;
  private readonly validate: ValidateDefinition;
  private readonly compile: CompileFilter;
  private readonly clock: () => Date;
  private readonly pollIntervalMs: number;

  private snapshot: ReadonlyMap<string, readonly ActiveScorer[]> = new Map();
  private snapshotRevision = -1;
  private readonly listeners = new Set<(change: RegistryChange) => void>();
  private readonly filterCache = new Map<string, CompiledFilter>();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private pendingSource: 'local' | 'external' = 'external';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private pollErrorLogged = false;

  private readonly mChanges: Counter | undefined;
  private readonly mPollErrors: Counter | undefined;
  private readonly mPropagation: Histogram | undefined;
  private unwatch: (() => void) | undefined;
  /** Notified revisions not yet in the snapshot, with the sender's commit time (epoch ms). */
  private notified: Array<{ revision: number; at: number }> = [];

  private constructor(opts: RegistryOptions) {
    this.store = opts.store;
    this.log = opts.logger ?? silentLogger;
    this.validate = opts.validateDefinition ?? defaultValidateDefinition;
    this.compile = opts.compileFilter ?? defaultCompileFilter;
    this.clock = opts.now ?? (() => new Date());
    this.pollIntervalMs = opts.pollIntervalMs ?? (opts.store.watch ? 1000 : 250);
    this.maxScorersPerExperiment = opts.maxScorersPerExperiment ?? MAX_SCORERS_PER_EXPERIMENT;
    const m = opts.metrics;
    this.mChanges = m?.counter('scorecar_registry_changes_total', 'Registry snapshots rebuilt, by source', [
      'source',
    ]);
    this.mPollErrors = m?.counter(
      'scorecar_registry_poll_errors_total',
      'Failed polls of the registry store',
    );
    this.mPropagation = m?.histogram(
      'scorecar_registry_propagation_seconds',
      'From a registry change committed by any replica (its clock) to this replica running with it (shared store)',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    );
    m?.gauge(
      'scorecar_registry_active_scorers',
      'Active scorers (sample rate > 0) per experiment',
      ['experiment'],
      () =>
        [...this.snapshot].map(([exp, list]): [Record<string, string>, number] => [
          { experiment: exp },
          list.length,
        ]),
    );
    m?.gauge('scorecar_registry_revision', 'Registry store revision of the active snapshot', [], () =>
      Math.max(0, this.snapshotRevision),
    );
  }

  /** Loads the first snapshot and starts watching the store for changes from other processes. */
  static async open(opts: RegistryOptions): Promise<Registry> {
    const r = new Registry(opts);
    // Pushed changes (PostgreSQL NOTIFY) reach the snapshot at once; the poll stays as a net.
    // Listening starts before the first read, so no change falls between the two.
    if (opts.store.watch) r.unwatch = await opts.store.watch((payload) => r.onNotify(payload));
    try {
      await r.refresh();
    } catch (e) {
      r.unwatch?.();
      throw e;
    }
    if (r.pollIntervalMs > 0) {
      r.timer = setInterval(() => void r.poll(), r.pollIntervalMs);
      r.timer.unref();
    }
    return r;
  }

  // ---------------------------------------------------------------- pipeline-facing snapshot

  /**
   * Latest version of every active scorer, by experiment id, with compiled filters. A frozen
   * snapshot replaced on every change (never mutated), so reading it per trace costs a call.
   */
  activeScorers(): ReadonlyMap<string, readonly ActiveScorer[]> {
    return this.snapshot;
  }

  /** The active scorers of one experiment (empty when none). */
  activeFor(experimentId: string): readonly ActiveScorer[] {
    return this.snapshot.get(experimentId) ?? EMPTY;
  }

  /** Store revision the current snapshot reflects. */
  revision(): number {
    return this.snapshotRevision;
  }

  /**
   * Called after every committed registry change (any move of the store revision, whether or
   * not the active set changed): at once for mutations through this Registry, within one poll
   * interval for changes made by other processes. Returns an unsubscribe function.
   */
  onChange(listener: (change: RegistryChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Re-reads the store when its revision moved and republishes the snapshot. Concurrent calls
   * share one run; a call made while a run is in flight triggers one more run, so when the
   * returned promise settles the snapshot reflects every change committed before the call.
   */
  refresh(source: 'local' | 'external' = 'external'): Promise<void> {
    if (source === 'local') this.pendingSource = 'local';
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const src = this.pendingSource;
          this.pendingSource = 'external';
          await this.rebuildIfChanged(src);
        } while (this.refreshAgain && !this.closed);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private onNotify(payload: string): void {
    if (this.closed) return;
    const [rev, at] = payload.split(' ').map(Number);
    if (rev !== undefined && at !== undefined && Number.isFinite(rev) && Number.isFinite(at) && rev > this.snapshotRevision) {
      this.notified.push({ revision: rev, at });
      if (this.notified.length > 1000) this.notified.shift();
    }
    // Not poll(): a notification during a refresh in flight must cause one more read.
    this.refresh('external').then(
      () => {
        this.pollErrorLogged = false;
      },
      (e: unknown) => {
        this.mPollErrors?.inc();
        if (!this.pollErrorLogged) this.log.error('registry refresh after a change notification failed', { err: e });
        this.pollErrorLogged = true;
      },
    );
  }

  private async poll(): Promise<void> {
    if (this.closed || this.refreshing) return;
    try {
      await this.refresh('external');
      this.pollErrorLogged = false;
    } catch (e) {
      this.mPollErrors?.inc();
      // One line per failure streak, not one every 250 ms.
      if (!this.pollErrorLogged) this.log.error('registry poll failed', { err: e });
      this.pollErrorLogged = true;
    }
  }

  private async rebuildIfChanged(source: 'local' | 'external'): Promise<void> {
    if (this.closed) return;
    const rev = await this.store.revision();
    if (rev === this.snapshotRevision) return;
    const active = await this.store.listActive();
    // The revision may have moved between the two reads; recording the earlier one only
    // causes one extra rebuild on the next poll, never a missed change.
    const next = new Map<string, ActiveScorer[]>();
    const used = new Set<string>();
    for (const s of active) {
      let filter: CompiledFilter | null = null;
      if (s.filterString !== null) {
        filter = this.filterCache.get(s.filterString) ?? null;
        if (!filter) {
          try {
            filter = this.compile(s.filterString);
          } catch (e) {
            // Only reachable if the store was written by something that skipped validation
            // (or by a newer filter grammar): better not to run than to run unfiltered.
            this.log.error('stored filter does not compile; scorer left out of the active set', {
              experiment: s.experimentId,
              scorer: s.name,
              filter: s.filterString,
              err: e,
            });
            continue;
          }
          this.filterCache.set(s.filterString, filter);
        }
        used.add(s.filterString);
      }
      const entry: ActiveScorer = deepFreeze({
        experimentId: s.experimentId,
        name: s.name,
        version: s.version,
        definition: s.definition,
        sampleRate: s.sampleRate,
        filterString: s.filterString,
        filter,
        updatedAt: s.updatedAt,
      });
      const list = next.get(s.experimentId);
      if (list) list.push(entry);
      else next.set(s.experimentId, [entry]);
    }
    for (const k of this.filterCache.keys()) if (!used.has(k)) this.filterCache.delete(k);
    for (const list of next.values()) Object.freeze(list);
    const frozen: ReadonlyMap<string, readonly ActiveScorer[]> = next;
    this.snapshot = frozen;
    this.snapshotRevision = rev;
    if (this.notified.length > 0) {
      const now = Date.now();
      this.notified = this.notified.filter((n) => {
        if (n.revision > rev) return true;
        this.mPropagation?.observe(Math.max(0, now - n.at) / 1000);
        return false;
      });
    }
    this.mChanges?.inc({ source });
    const change: RegistryChange = { revision: rev, active: frozen, source };
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (e) {
        this.log.error('registry change listener failed', { err: e });
      }
    }
  }

  private async mutated(): Promise<void> {
    try {
      await this.refresh('local');
    } catch (e) {
      // The write is committed; the poller retries the snapshot.
      this.log.error('registry snapshot refresh failed after a change', { err: e });
    }
  }

  private nowIso(): string {
    return this.clock().toISOString();
  }

  // ---------------------------------------------------------------- validation helpers

  /** Validates a definition with src/scoring; INVALID_DEFINITION lists every problem with its path. */
  async checkDefinition(def: unknown, field = 'definition'): Promise<ScorerDefinition> {
    if (typeof def !== 'object' || def === null || Array.isArray(def)) {
      throw new ScorecarError('INVALID_DEFINITION', `${field}: expected an object with a "type"`, {
        details: { errors: [{ path: field, message: 'expected an object' }] },
      });
    }
    const r = await this.validate(def);
    if (!r.ok) {
      // src/scoring reports paths from 'definition' (definition.promptTemplate); re-root them
      // at this caller's field, and prefix paths given relative to the definition.
      const errors = r.errors.map((e) => ({ path: rootPath(e.path, field), message: e.message }));
      throw new ScorecarError(
        'INVALID_DEFINITION',
        `invalid scorer definition: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        { details: { errors } },
      );
    }
    return r.definition;
  }

  /** Normalises and compiles a filter; INVALID_FILTER carries the error position. */
  checkFilter(filter: unknown, field = 'filterString'): string | null {
    if (filter === null || filter === undefined) return null;
    if (typeof filter !== 'string') {
      throw new ScorecarError('INVALID_ARGUMENT', `${field}: expected a string or null`, {
        details: { field },
      });
    }
    const text = normaliseFilter(filter, field);
    if (text === null) return null;
    try {
      const compiled = this.compile(text);
      this.filterCache.set(text, compiled);
    } catch (e) {
      if (e instanceof ScorecarError && e.code === 'INVALID_FILTER') {
        const position = (e as { position?: unknown }).position ?? e.details?.position;
        throw new ScorecarError('INVALID_FILTER', `${field}: ${e.message}`, {
          cause: e,
          details: { field, ...(typeof position === 'number' ? { position } : {}) },
        });
      }
      throw e;
    }
    return text;
  }

  // ---------------------------------------------------------------- reads

  async listExperiments(): Promise<Experiment[]> {
    return this.store.listExperiments();
  }

  /** Latest version of each scorer name. NOT_FOUND when the experiment does not exist. */
  async list(experimentId: string): Promise<Scorer[]> {
    checkExperimentId(experimentId);
    const list = await this.store.listScorers(experimentId);
    if (list === null) {
      throw new ScorecarError(
        'NOT_FOUND',
        `experiment '${experimentId}' not found (an experiment is created by registering its first scorer)`,
        { details: { resource: 'experiment', experimentId } },
      );
    }
    return list;
  }

  async get(experimentId: string, name: string, version?: number): Promise<Scorer> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) {
      throw new ScorecarError('INVALID_ARGUMENT', `version: expected a positive integer, got ${version}`);
    }
    return this.store.getScorer(experimentId, name, version);
  }

  async versions(experimentId: string, name: string): Promise<Scorer[]> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    return this.store.listVersions(experimentId, name);
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Registers a scorer: a new name gets version 1 (status registered, rate 0); an existing
   * name gets the next version and keeps its sampling config. The experiment is created on
   * first use. LIMIT_EXCEEDED for a new name beyond the per-experiment limit.
   */
  async register(experimentId: string, name: string, definition: unknown): Promise<Scorer> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    const def = await this.checkDefinition(definition);
    const { scorer } = await this.store.register({
      experimentId,
      name,
      definition: def,
      maxNamesPerExperiment: this.maxScorersPerExperiment,
      now: this.nowIso(),
    });
    await this.mutated();
    this.log.info('scorer registered', { experiment: experimentId, scorer: name, version: scorer.version });
    return scorer;
  }

  /** Starts (or restarts) sampling: 0 < sampleRate <= 1; filterString as in SamplingConfig. */
  async start(experimentId: string, name: string, config: SamplingConfig): Promise<Scorer> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    const rate = checkSampleRate(config.sampleRate, { allowZero: false });
    const filter = config.filterString === undefined ? undefined : this.checkFilter(config.filterString);
    return this.applySampling(experimentId, name, rate, filter, 'started');
  }

  /** Changes the rate (0 <= rate <= 1; 0 stops) and/or the filter; at least one must be given. */
  async update(experimentId: string, name: string, config: Partial<SamplingConfig>): Promise<Scorer> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    if (config.sampleRate === undefined && config.filterString === undefined) {
      throw new ScorecarError('INVALID_ARGUMENT', 'update needs sampleRate and/or filterString');
    }
    const filter = config.filterString === undefined ? undefined : this.checkFilter(config.filterString);
    const rate =
      config.sampleRate === undefined ? undefined : checkSampleRate(config.sampleRate, { allowZero: true });
    return this.applySampling(experimentId, name, rate, filter, 'updated');
  }

  /** Sets the rate to 0; the registration, versions and filter stay. Idempotent. */
  async stop(experimentId: string, name: string): Promise<Scorer> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    return this.applySampling(experimentId, name, 0, undefined, 'stopped');
  }

  private async applySampling(
    experimentId: string,
    name: string,
    sampleRate: number | undefined,
    filterString: string | null | undefined,
    verb: string,
  ): Promise<Scorer> {
    const { scorer, changed } = await this.store.setSampling({
      experimentId,
      name,
      sampleRate,
      filterString,
      now: this.nowIso(),
    });
    if (changed) {
      await this.mutated();
      this.log.info(`scorer ${verb}`, {
        experiment: experimentId,
        scorer: name,
        sampleRate: scorer.sampleRate,
        filter: scorer.filterString ?? undefined,
      });
    }
    return scorer;
  }

  /** Deletes one version or all; deleting the last version removes the name. */
  async delete(experimentId: string, name: string, version: number | 'all' = 'all'): Promise<DeleteResult> {
    checkExperimentId(experimentId);
    checkScorerName(name);
    if (version !== 'all' && (!Number.isSafeInteger(version) || version < 1)) {
      throw new ScorecarError(
        'INVALID_ARGUMENT',
        `version: expected a positive integer or 'all', got ${version}`,
      );
    }
    const result = await this.store.deleteScorer(experimentId, name, version, this.nowIso());
    await this.mutated();
    this.log.info('scorer deleted', {
      experiment: experimentId,
      scorer: name,
      versions: result.deletedVersions.join(','),
      removed: result.nameRemoved,
    });
    return result;
  }

  /**
   * Kill switch: stops every active scorer of one experiment, or of every experiment when
   * experimentId is omitted, in one transaction. Returns the scorers it stopped.
   */
  async stopAll(experimentId?: string): Promise<Scorer[]> {
    if (experimentId !== undefined) checkExperimentId(experimentId);
    const stopped = await this.store.stopAll(experimentId ?? null, this.nowIso());
    if (stopped.length > 0) await this.mutated();
    this.log.warn('kill switch: scorers stopped', {
      experiment: experimentId ?? '*',
      stopped: stopped.map((s) => `${s.experimentId}/${s.name}`).join(',') || '(none active)',
    });
    return stopped;
  }

  // ---------------------------------------------------------------- config as code

  /**
   * Applies the `scorers:` list of the config file. Every entry is validated first (nothing
   * is written when any is invalid; the error lists each problem with its `scorers[i]` path).
   * Then per entry: a new version only when the definition differs from the latest stored one
   * (canonical JSON); then the sampling config: rate > 0 starts/updates with the entry's filter,
   * rate 0 stops an active scorer and leaves a registered one registered. Scorers that are not
   * in the file are left alone (they may have been registered through the API).
   */
  async reconcile(entries: readonly ScorerEntry[]): Promise<ReconcileResult[]> {
    const problems: { path: string; message: string }[] = [];
    const seen = new Set<string>();
    const prepared: Array<{ e: ScorerEntry; def: ScorerDefinition; filter: string | null; key: string }> = [];
    for (const [i, e] of entries.entries()) {
      const at = `scorers[${i}]`;
      const collect = async (fn: () => void | Promise<void>): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          if (!(err instanceof ScorecarError)) throw err;
          const errs = err.details?.errors as { path: string; message: string }[] | undefined;
          if (errs) for (const x of errs) problems.push({ path: `${at}.${x.path}`, message: x.message });
          else problems.push({ path: at, message: err.message });
        }
      };
      let def: ScorerDefinition | undefined;
      let filter: string | null = null;
      await collect(() => {
        checkExperimentId(e.experiment, 'experiment');
      });
      await collect(() => {
        checkScorerName(e.name, 'name');
      });
      await collect(async () => {
        def = await this.checkDefinition(e.definition, 'definition');
      });
      await collect(() => {
        checkSampleRate(e.sampleRate, { allowZero: true });
      });
      await collect(() => {
        filter = this.checkFilter(e.filterString ?? null);
      });
      const key = `${e.experiment}\u0000${e.name}`;
      if (seen.has(key))
        problems.push({ path: at, message: `duplicate entry for ${e.experiment}/${e.name}` });
      seen.add(key);
      if (def) prepared.push({ e, def, filter, key });
    }
    if (problems.length > 0) {
      throw new ScorecarError(
        'CONFIG_INVALID',
        `invalid scorers in the config:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`,
        { details: { errors: problems } },
      );
    }

    // Replicas on a shared store reconcile one at a time (each sees what the previous wrote).
    const results = this.store.exclusive ? await this.store.exclusive(() => this.applyEntries(prepared)) : await this.applyEntries(prepared);
    await this.mutated();
    for (const r of results) {
      if (r.definition !== 'unchanged' || r.sampling !== 'unchanged') {
        this.log.info('config scorer reconciled', {
          experiment: r.experimentId,
          scorer: r.name,
          version: r.version,
          definition: r.definition,
          sampling: r.sampling,
        });
      }
    }
    return results;
  }

  private async applyEntries(
    prepared: ReadonlyArray<{ e: ScorerEntry; def: ScorerDefinition; filter: string | null }>,
  ): Promise<ReconcileResult[]> {
    const results: ReconcileResult[] = [];
    for (const { e, def, filter } of prepared) {
      let current: Scorer | null = null;
      try {
        current = await this.store.getScorer(e.experiment, e.name);
      } catch (err) {
        if (!(err instanceof ScorecarError && err.code === 'NOT_FOUND')) throw err;
      }
      let action: ReconcileAction = 'unchanged';
      if (!current || canonicalJson(current.definition) !== canonicalJson(def)) {
        const r = await this.store.register({
          experimentId: e.experiment,
          name: e.name,
          definition: def,
          maxNamesPerExperiment: this.maxScorersPerExperiment,
          now: this.nowIso(),
        });
        action = r.created ? 'created' : 'new_version';
        current = r.scorer;
      }
      let sampling: ReconcileSampling = 'unchanged';
      if (e.sampleRate > 0) {
        const wasActive = current.status === 'active';
        const r = await this.store.setSampling({
          experimentId: e.experiment,
          name: e.name,
          sampleRate: e.sampleRate,
          filterString: filter,
          now: this.nowIso(),
        });
        if (r.changed) sampling = wasActive ? 'updated' : 'started';
        current = r.scorer;
      } else {
        // Rate 0 in the file: stop if running, record the filter for a later start, and keep
        // a never-started scorer `registered`.
        const r = await this.store.setSampling({
          experimentId: e.experiment,
          name: e.name,
          sampleRate: 0,
          filterString: filter,
          now: this.nowIso(),
        });
        if (r.changed) sampling = current.status === 'active' ? 'stopped' : 'updated';
        current = r.scorer;
      }
      results.push({
        experimentId: e.experiment,
        name: e.name,
        version: current.version,
        definition: action,
        sampling,
      });
    }
    return results;
  }

  /** Stops polling and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    if (this.timer) clearInterval(this.timer);
    this.listeners.clear();
    try {
      await this.refreshing;
    } catch {
      /* closing anyway */
    }
    await this.store.close();
  }
}
