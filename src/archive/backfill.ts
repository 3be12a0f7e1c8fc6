// Backfills (MLflow backfill_scorers): run registered scorers over an experiment's archived
// traces of a time range, exactly as live traffic would have been scored.
//
// The same decisions as live: the same deterministic sampler (salted hash of the trace id under
// the scorer's rate, so a backfill at the live rate scores exactly the traces live scoring would
// have), the same filter strings over the same trace view (rebuilt from the archived row: its
// spans, with the archived metadata and tags), the same assessment ids. A trace that already has
// an assessment of that scorer version is skipped before it is scored (the store is asked per row
// group), so re-running a backfill adds nothing and costs nothing, and a live + backfill overlap
// never scores twice; the emitter's own check by assessment id stays behind it. Judge budgets
// apply (the backfill engine shares the live engine's budgets and model clients). Assessments
// are emitted like live ones (store, OTLP, archive, metrics) with metadata scorecar.source =
// backfill.
//
// Jobs are remembered in a BackfillJobStore (backfill-store.ts: <storage.dir>/backfills.db, or
// PostgreSQL shared by the replicas) with their frozen scorer versions, the list of files they
// scan and a checkpoint (file index, row), saved once every job submitted up to it has been
// scored. A restart resumes a running job from its checkpoint: at most the traces after the last
// checkpoint are read again, and those scored already are skipped. One job runs per experiment at
// a time (a second gets BACKFILL_RUNNING with the running job's id). With the shared store a job
// is run by the replica that owns it (a lease renewed while it runs); a job whose owner stopped or
// died is resumed by the next replica that starts (or claims it) and archives its experiment.
import { randomUUID } from 'node:crypto';
import type { EmitItem } from '../assessments/index.ts';
import type { Component, Consumer } from '../component/index.ts';
import type { BackfillConfig } from '../config/index.ts';
import type { ScorerDefinition, ScorerVersion } from '../definitions/index.ts';
import { buildTraceView, type TraceView } from '../genai/index.ts';
import { type CompiledFilter, compileFilter, inclusionProbability, isSelected, type SelectedJob } from '../select/index.ts';
import { errorFields, errorMessage, type Logger, type MetricsRegistry, ScorecarError } from '../util/index.ts';
import type { Archival } from './archiver.ts';
import { type BackfillJobStore, type BackfillRow, type BackfillState, SqliteBackfillStore } from './backfill-store.ts';
import { type RowSpan, traceFromRow } from './rows.ts';
import { TraceArchiveReader } from './search.ts';

/** The metadata key that marks a backfill's assessments. */
export const SOURCE_METADATA = 'scorecar.source';

export interface BackfillScorer {
  name: string;
  version: number;
  definition: ScorerDefinition;
  sampleRate: number;
  filterString: string | null;
}

export interface BackfillJob {
  jobId: string;
  experimentId: string;
  state: BackfillState;
  scorers: Array<{ name: string; version: number; sampleRate: number; filterString: string | null }>;
  startTime: string;
  endTime: string;
  createdAt: string;
  updatedAt: string;
  /** Traces read from the archive so far. */
  tracesScanned: number;
  /** Estimated traces in the range (the files' record counts). */
  tracesTotal: number;
  /** (trace, scorer) pairs sampled and passing the filter. */
  selected: number;
  /** Of those, already assessed by that scorer version: not scored again. */
  skipped: number;
  /** Scoring jobs run (each yields one or more assessments). */
  scored: number;
  /** Error assessments among them. */
  errors: number;
  /** Seconds left at the current pace, when running. */
  etaSeconds: number | null;
  error: string | null;
}

/** What a backfill needs of the rest of scorecar. */
export interface BackfillDeps {
  config: BackfillConfig;
  storageDir: string;
  salt: string;
  resolution: readonly string[];
  defaultExperiment: string;
  /** The experiment's archive, or undefined when it is not archived. */
  archivalOf(experimentId: string): Archival | undefined;
  /** The latest version of a scorer with its current sampling (throws NOT_FOUND). */
  scorerOf(experimentId: string, name: string): Promise<{ version: number; definition: ScorerDefinition; sampleRate: number; filterString: string | null }>;
  /** Which of these traces already have an assessment of this scorer version. */
  assessedBy(experimentId: string, scorer: string, version: number, traceIds: readonly string[]): Promise<Set<string>>;
  /**
   * Writes what the emitter buffers to the store now: a checkpoint is saved only once the
   * assessments before it are stored, or a crash right after it would lose them for good.
   */
  flushAssessments(): Promise<void>;
  /** Where jobs are remembered (default: SQLite in storageDir). */
  store?: BackfillJobStore | undefined;
  /** This process, as the owner of the jobs it runs (shared store). */
  owner?: string | undefined;
  /** How long a job stays this process's without a heartbeat (shared store; default 60 s). */
  leaseMs?: number | undefined;
  /** The backfill's scoring engine (budgets shared with live scoring). */
  engine: Consumer<SelectedJob> & { readonly depth: number; whenIdle(): Promise<void> };
  metrics: MetricsRegistry;
  log: Logger;
  now?: () => number;
}

type Row = BackfillRow;

interface Running {
  jobId: string;
  cancel: boolean;
  /** The scoring engine refused a job (stopping): the job halts, resumable. */
  refused?: boolean;
  done: Promise<void>;
  startedAt: number;
  scannedAtStart: number;
}

export interface BackfillRequest {
  scorers: Array<string | { name: string; sampleRate?: number | undefined }>;
  startTimeMs?: number | undefined;
  endTimeMs?: number | undefined;
}

export class BackfillManager implements Component {
  private readonly d: BackfillDeps;
  private readonly store: BackfillJobStore;
  private readonly owner: string;
  private readonly leaseMs: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Running>();
  /** Scoring jobs of each backfill in flight, keyed by job id: counted as they finish. */
  private readonly pending = new Map<string, { scored: number; errors: number; scanned: number }>();
  /** The same counters by experiment (one job runs per experiment). */
  private readonly liveByExperiment = new Map<string, { scored: number; errors: number; scanned: number }>();
  private readonly now: () => number;
  private closed = false;
  private readonly m;

  constructor(d: BackfillDeps) {
    this.d = d;
    this.now = d.now ?? Date.now;
    this.store = d.store ?? new SqliteBackfillStore(d.storageDir);
    this.owner = d.owner ?? randomUUID();
    this.leaseMs = d.leaseMs ?? 60_000;
    const metrics = d.metrics;
    this.m = {
      traces: metrics.counter('scorecar_backfill_traces_total', 'Archived traces read by backfills', ['experiment']),
      pairs: metrics.counter(
        'scorecar_backfill_jobs_total',
        'Backfill (trace, scorer) pairs by outcome: selected (sampled, filter passed), skipped (assessed already), scored',
        ['experiment', 'scorer', 'outcome'],
      ),
    };
    metrics.gauge('scorecar_backfills_running', 'Backfill jobs running', [], () => this.running.size);
  }

  /** Resumes the jobs a previous run (or, with the shared store, a stopped replica) left pending or running. */
  async start(): Promise<void> {
    await this.resume();
    // Shared store: the lease of the jobs this process runs is renewed a few times per lease.
    if (this.store.kind !== 'sqlite') {
      this.heartbeat = setInterval(() => {
        if (this.running.size === 0) return;
        this.store.renew(this.owner, [...this.running.keys()], this.leaseMs).catch((e: unknown) => {
          this.d.log.warn('backfill lease not renewed', { err: errorFields(e) });
        });
      }, Math.max(100, this.leaseMs / 3));
      this.heartbeat.unref();
    }
  }

  /** Claims and runs the unfinished jobs nobody runs. */
  async resume(): Promise<void> {
    for (const jobId of await this.store.claimResumable(this.owner, this.leaseMs)) {
      if (this.running.has(jobId)) continue;
      const row = await this.row(jobId);
      if (!row) continue;
      if (!this.d.archivalOf(row.experiment_id)) {
        // Shared store: another replica may archive it; only the embedded store gives up on it.
        if (this.store.kind === 'sqlite') await this.setState(row.job_id, 'failed', `experiment ${row.experiment_id} is no longer archived`);
        else await this.store.release(this.owner, [jobId]);
        continue;
      }
      this.d.log.info('resuming backfill', { jobId });
      this.launch(row);
    }
  }

  private row(jobId: string): Promise<Row | undefined> {
    return this.store.get(jobId);
  }

  private setState(jobId: string, state: BackfillState, error: string | null = null): Promise<void> {
    return this.store.setState(jobId, state, error, new Date(this.now()).toISOString());
  }

  private view(row: Row): BackfillJob {
    const scorers = (JSON.parse(row.scorers_json) as BackfillScorer[]).map((s) => ({
      name: s.name,
      version: s.version,
      sampleRate: s.sampleRate,
      filterString: s.filterString,
    }));
    const live = this.pending.get(row.job_id);
    const run = this.running.get(row.job_id);
    let eta: number | null = null;
    if (run && row.state === 'running') {
      const scanned = Math.max(row.scanned, live?.scanned ?? 0);
      const rate = (scanned - run.scannedAtStart) / Math.max(0.001, (this.now() - run.startedAt) / 1000);
      eta = rate > 0 ? Math.max(0, Math.round((row.total - scanned) / rate)) : null;
    }
    return {
      jobId: row.job_id,
      experimentId: row.experiment_id,
      state: row.state,
      scorers,
      startTime: new Date(row.start_ms).toISOString(),
      endTime: new Date(row.end_ms).toISOString(),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      tracesScanned: Math.max(row.scanned, live?.scanned ?? 0),
      tracesTotal: Math.max(row.total, row.scanned),
      selected: row.selected,
      skipped: row.skipped,
      scored: Math.max(row.scored, live?.scored ?? 0),
      errors: Math.max(row.errors, live?.errors ?? 0),
      etaSeconds: eta,
      error: row.error,
    };
  }

  async get(jobId: string): Promise<BackfillJob> {
    const row = await this.row(jobId);
    if (!row) throw new ScorecarError('NOT_FOUND', `no backfill ${jobId}`, { details: { resource: 'backfill' } });
    return this.view(row);
  }

  async list(experimentId: string): Promise<BackfillJob[]> {
    return (await this.store.list(experimentId)).map((r) => this.view(r));
  }

  /** Creates a job and starts it. */
  async create(experimentId: string, req: BackfillRequest): Promise<BackfillJob> {
    if (this.closed) throw new ScorecarError('SHUTTING_DOWN', 'scorecar is shutting down');
    const archival = this.d.archivalOf(experimentId);
    if (!archival) {
      throw new ScorecarError('FAILED_PRECONDITION', `experiment ${experimentId} is not archived: backfills read archived traces (POST /api/v1/experiments/{exp}/archival)`);
    }
    // Checked first for the clearer error; the store's insert checks again, atomically.
    const active = (await this.store.list(experimentId)).find((r) => r.state === 'pending' || r.state === 'running');
    if (active) {
      throw new ScorecarError('BACKFILL_RUNNING', `backfill ${active.job_id} of experiment ${experimentId} is running; wait for it or cancel it`, {
        details: { jobId: active.job_id },
      });
    }
    if (req.scorers.length === 0) throw new ScorecarError('INVALID_ARGUMENT', 'scorers: name at least one scorer', { details: { field: 'body.scorers' } });
    const scorers: BackfillScorer[] = [];
    const seen = new Set<string>();
    for (const [i, s] of req.scorers.entries()) {
      const name = typeof s === 'string' ? s : s.name;
      if (seen.has(name)) throw new ScorecarError('INVALID_ARGUMENT', `scorers[${i}]: ${name} is named twice`, { details: { field: `body.scorers[${i}]` } });
      seen.add(name);
      const cur = await this.d.scorerOf(experimentId, name);
      const rate = typeof s === 'string' || s.sampleRate === undefined ? cur.sampleRate : s.sampleRate;
      if (!(rate > 0 && rate <= 1)) {
        throw new ScorecarError('INVALID_ARGUMENT', `scorers[${i}]: ${name} is not active (sample rate 0): give a sampleRate in (0, 1]`, {
          details: { field: `body.scorers[${i}].sampleRate` },
        });
      }
      scorers.push({ name, version: cur.version, definition: cur.definition, sampleRate: rate, filterString: cur.filterString });
    }
    const end = req.endTimeMs ?? this.now();
    const start = req.startTimeMs ?? end - this.d.config.defaultLookbackDays * 86_400_000;
    if (!(start < end)) throw new ScorecarError('INVALID_ARGUMENT', 'startTime must be before endTime', { details: { field: 'body.startTime' } });
    const reader = new TraceArchiveReader(archival.tablePath, experimentId);
    const files = await reader.rangeFiles(start * 1000, end * 1000);
    const jobId = `bf-${randomUUID()}`;
    const at = new Date(this.now()).toISOString();
    await this.store.insert(
      {
        jobId,
        experimentId,
        scorersJson: JSON.stringify(scorers),
        startMs: start,
        endMs: end,
        filesJson: JSON.stringify(files.map((f) => f.path)),
        total: files.reduce((n, f) => n + f.rows, 0),
        at,
      },
      this.owner,
    );
    this.d.log.info('backfill created', { jobId, experiment: experimentId, scorers: scorers.map((s) => `${s.name}@${s.version}:${s.sampleRate}`).join(','), files: files.length });
    this.launch((await this.row(jobId))!);
    return this.get(jobId);
  }

  /** Asks a job to stop; it stops after the scoring jobs it already submitted. */
  async cancel(jobId: string): Promise<BackfillJob> {
    const row = await this.row(jobId);
    if (!row) throw new ScorecarError('NOT_FOUND', `no backfill ${jobId}`, { details: { resource: 'backfill' } });
    const run = this.running.get(jobId);
    if (run) {
      run.cancel = true;
      await run.done;
    } else if (row.state === 'pending' || row.state === 'running') await this.setState(jobId, 'cancelled');
    return this.get(jobId);
  }

  /** Resolves when the job is no longer running (tests, the CLI's wait). */
  async whenDone(jobId: string): Promise<BackfillJob> {
    await this.running.get(jobId)?.done;
    return this.get(jobId);
  }

  /** Counts a backfill job's error assessments (see backfillEmitter). */
  noteEmitted(items: readonly EmitItem[]): void {
    for (const it of items) {
      if (!it.assessment.error) continue;
      const live = this.liveByExperiment.get(it.assessment.experimentId);
      if (live) live.errors++;
    }
  }

  private launch(row: Row): void {
    const jobId = row.job_id;
    const run: Running = { jobId, cancel: false, done: Promise.resolve(), startedAt: this.now(), scannedAtStart: row.scanned };
    this.running.set(jobId, run);
    run.done = this.execute(run)
      .catch(async (e: unknown) => {
        this.d.log.error('backfill failed', { jobId, err: errorFields(e) });
        await this.setState(jobId, 'failed', errorMessage(e)).catch((err: unknown) => this.d.log.error('backfill state not saved', { jobId, err: errorFields(err) }));
      })
      .finally(() => {
        this.running.delete(jobId);
        const live = this.pending.get(jobId);
        this.pending.delete(jobId);
        for (const [exp, l] of this.liveByExperiment) if (l === live) this.liveByExperiment.delete(exp);
      });
  }

  private async execute(run: Running): Promise<void> {
    const row = (await this.row(run.jobId))!;
    const exp = row.experiment_id;
    const archival = this.d.archivalOf(exp);
    if (!archival) throw new ScorecarError('FAILED_PRECONDITION', `experiment ${exp} is not archived`);
    await this.setState(run.jobId, 'running');
    const scorers = JSON.parse(row.scorers_json) as BackfillScorer[];
    const filters: Array<CompiledFilter | null> = scorers.map((s) => (s.filterString ? compileFilter(s.filterString) : null));
    const files = JSON.parse(row.files_json) as string[];
    const reader = new TraceArchiveReader(archival.tablePath, exp);
    const startUs = row.start_ms * 1000;
    const endUs = row.end_ms * 1000;
    const counts = { scanned: row.scanned, selected: row.selected, skipped: row.skipped, scored: row.scored, errors: row.errors };
    const live = { scored: row.scored, errors: row.errors, scanned: row.scanned };
    this.pending.set(run.jobId, live);
    this.liveByExperiment.set(exp, live);
    const checkpoint = async (fileIndex: number, rowIndex: number): Promise<void> => {
      // Only once what was submitted up to here is scored and stored: a resume never skips a trace.
      await this.d.engine.whenIdle();
      await this.d.flushAssessments();
      counts.scored = live.scored;
      counts.errors = live.errors;
      await this.store.progress(run.jobId, { fileIndex, rowIndex, ...counts, at: new Date(this.now()).toISOString() });
    };
    for (let fi = row.file_index; fi < files.length; fi++) {
      const path = files[fi]!;
      let groups: Array<[number, number]>;
      try {
        groups = await reader.rowGroups(path);
      } catch (e) {
        // A file removed by retention since the job started: nothing left to score in it.
        this.d.log.warn('backfill: archived file unreadable, skipped', { jobId: run.jobId, path, err: errorMessage(e) });
        continue;
      }
      const firstRow = fi === row.file_index ? row.row_index : 0;
      for (const [gStart, gRows] of groups) {
        const gEnd = gStart + gRows;
        if (gEnd <= firstRow) continue;
        if (run.cancel || this.closed || run.refused) break;
        const lo = Math.max(gStart, firstRow);
        const rows = await reader.readRows(path, lo, gEnd);
        // In chunks of checkpointEveryTraces rows, each checkpointed: a resume re-reads at most one.
        const step = this.d.config.checkpointEveryTraces;
        for (let i = 0; i < rows.length; i += step) {
          if (run.cancel || this.closed || run.refused) break;
          const chunk = rows.slice(i, i + step).filter((r) => (r.request_time as number) >= startUs && (r.request_time as number) < endUs);
          counts.scanned += chunk.length;
          live.scanned = counts.scanned;
          this.m.traces.inc({ experiment: exp }, chunk.length);
          // Refused (the engine is stopping): no checkpoint past rows that were not scored; the
          // job stops where it is and stays running, so the next start resumes it.
          if (!(await this.scoreRows(exp, run.jobId, chunk, scorers, filters, counts, live))) {
            run.refused = true;
            break;
          }
          await checkpoint(fi, lo + Math.min(rows.length, i + step));
        }
      }
      // Stopped: the last chunk's checkpoint is where a resume starts.
      if (run.cancel || this.closed || run.refused) break;
      await checkpoint(fi + 1, 0);
    }
    await this.d.engine.whenIdle();
    counts.scored = live.scored;
    counts.errors = live.errors;
    const final = (await this.row(run.jobId))!;
    await this.store.progress(run.jobId, { fileIndex: final.file_index, rowIndex: final.row_index, ...counts, at: new Date(this.now()).toISOString() });
    // A shutdown (or a refusing engine) leaves the job running: the next start resumes it.
    if ((this.closed || run.refused) && !run.cancel) return;
    await this.setState(run.jobId, run.cancel ? 'cancelled' : 'succeeded');
    this.d.log.info('backfill finished', { jobId: run.jobId, state: run.cancel ? 'cancelled' : 'succeeded', ...counts });
  }

  private async scoreRows(
    exp: string,
    jobId: string,
    rows: Record<string, unknown>[],
    scorers: BackfillScorer[],
    filters: Array<CompiledFilter | null>,
    counts: { selected: number; skipped: number },
    live: { scored: number; errors: number; scanned: number },
  ): Promise<boolean> {
    const views = new Map<string, TraceView | null>();
    const viewOf = (r: Record<string, unknown>): TraceView | null => {
      const id = r.trace_id as string;
      let v = views.get(id);
      if (v === undefined) {
        try {
          v = buildTraceView(traceFromRow(id, (r.spans as RowSpan[] | null) ?? []), { resolution: this.d.resolution, defaultExperiment: exp });
          v.experimentId = exp;
          v.metadata = (r.trace_metadata as Record<string, string> | null) ?? v.metadata;
          v.tags = (r.tags as Record<string, string> | null) ?? v.tags;
        } catch (e) {
          this.d.log.warn('backfill: cannot rebuild the trace view; not scored', { jobId, traceId: id, err: errorMessage(e) });
          v = null;
        }
        views.set(id, v);
      }
      return v;
    };
    for (const [si, s] of scorers.entries()) {
      const sampled = rows.filter((r) => isSelected(r.trace_id as string, s.sampleRate, this.d.salt));
      const chosen: Array<{ id: string; view: TraceView }> = [];
      for (const r of sampled) {
        const view = viewOf(r);
        if (!view) continue;
        if (filters[si] && !filters[si]!.matches(view)) continue;
        chosen.push({ id: r.trace_id as string, view });
      }
      counts.selected += chosen.length;
      this.m.pairs.inc({ experiment: exp, scorer: s.name, outcome: 'selected' }, chosen.length);
      const done = await this.d.assessedBy(exp, s.name, s.version, chosen.map((c) => c.id));
      const version: ScorerVersion = { experimentId: exp, name: s.name, version: s.version, definition: s.definition };
      for (const c of chosen) {
        if (done.has(c.id)) {
          counts.skipped++;
          this.m.pairs.inc({ experiment: exp, scorer: s.name, outcome: 'skipped' });
          continue;
        }
        // Room for it: the backfill never fills the scoring queue beyond maxJobsInFlight.
        while (this.d.engine.depth >= this.d.config.maxJobsInFlight) await this.d.engine.whenIdle();
        const job: SelectedJob & { backfill?: { jobId: string } } = {
          view: c.view,
          scorer: version,
          sampleRate: inclusionProbability(s.sampleRate),
          completion: 'root',
          approxBytes: 0,
        };
        try {
          this.d.engine.consume(job);
          live.scored++;
          this.m.pairs.inc({ experiment: exp, scorer: s.name, outcome: 'scored' });
        } catch (e) {
          // Refused (shutting down): the checkpoint stays before it, a resume scores it.
          this.d.log.debug('backfill job refused', { jobId, err: errorMessage(e) });
          return false;
        }
      }
    }
    return true;
  }

  /**
   * Stops the running jobs at their next row group (they stay running in the store, so the next
   * start resumes them from their checkpoint), waiting at most half the time left.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    const ids = [...this.running.keys()];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.running.values()].map((r) => r.done)),
      new Promise<void>((r) => {
        timer = setTimeout(r, Math.max(0, (deadlineMs - this.now()) / 2));
      }),
    ]);
    clearTimeout(timer);
    // Stopped cleanly at a checkpoint: another replica (or the next start) may take them at once.
    if (this.running.size === 0) await this.store.release(this.owner, ids).catch(() => undefined);
    if (this.running.size === 0) await this.store.close();
  }
}

/**
 * What a backfill's scoring engine hands its assessments to: marks them scorecar.source =
 * backfill, lets the manager count errors, then emits them like live ones.
 */
export function backfillEmitter(next: Consumer<readonly EmitItem[]>, manager: () => BackfillManager | undefined): Consumer<readonly EmitItem[]> {
  return {
    consume: (items) => {
      for (const it of items) it.assessment.metadata[SOURCE_METADATA] = 'backfill';
      manager()?.noteEmitted(items);
      next.consume(items);
    },
  };
}
