// The selection stage: which completed traces become scoring jobs, and which traces are worth
// buffering in the first place.
//
// Per completed trace (consume, called from the assembler's completion sweep on the receive
// thread), only cheap work: the experiment (from the resource, decoded once per distinct
// resource), the one salted hash against every active scorer's rate (one salt: nested samples),
// and admission against the scoring queue, so overload refuses before any view is built. The
// expensive part — decoding every span into the GenAI view, then running filter strings — runs
// off that edge: selected traces wait in a bounded queue (their bytes count against the memory
// budget, until their view is built). Views are built under the view limits (genai.viewLimits:
// what a span, a log record and a trace may carry; what is cut is counted, per kind, and marked
// on the view), and either on view worker threads (genai.viewWorkers ≥ 1, the default of the
// config: view-workers.ts), or, with none, on the event loop in slices of at most `sliceMs` per
// turn. With workers, small traces (genai.viewInlineMaxBytes) still get theirs on the event loop,
// in the same slices: copying one to a worker and its view back costs more than building it. Within the limits one view can still take hundreds of milliseconds (many spans), longer
// than any slice: with workers, the event loop only copies the trace's bytes out and receives
// the built view. A job's memory (approxBytes) is its share of what its view's decode built
// (plus the ctx.trace text built with it), not an estimate from wire bytes.
//
// Trace interest (wants): asked by the assembler when a trace id is first seen. The sampler
// hashes the trace id, so a trace whose hash is above the highest rate of its experiment's active
// scorers can never be selected; it is forwarded and never buffered. The experiment is read from
// the first span's resource (or request header); with a `span:` resolution rule first, or for a
// trace whose spans come from several resources naming different experiments, the first spans
// decide (a `span:` rule falls back to the highest rate of any experiment).
import type { CompleteTrace, TraceInterest } from '../assembly/index.ts';
import type { Component, Consumer } from '../component/index.ts';
import { isCodeScorer, type ScorerDefinition, type ScorerVersion } from '../definitions/index.ts';
import {
  buildTraceView,
  experimentOfResource,
  primeTraceViewJsonText,
  resolveExperiment,
  sourceMayReadTrace,
  type TraceView,
} from '../genai/index.ts';
import { errorFields, isScorecarError, type Logger, type MetricsRegistry } from '../util/index.ts';
import {
  DEFAULT_VIEW_LIMITS,
  type ResourceRef,
  VIEW_CUT_KINDS,
  type ViewCuts,
  ViewDecoder,
  type ViewLimits,
} from '../wire/index.ts';
import type { CompiledFilter } from './filter.ts';
import { inclusionProbability, isSelected, isSelectedId } from './sampler.ts';
import { MAX_BATCH_BYTES, MAX_BATCH_TRACES, type ViewOutcome, ViewWorkers } from './view-workers.ts';

/**
 * What the selection stage runs: the latest version of one active scorer (sampleRate > 0) with
 * its filter compiled once per registry change. Frozen; replaced (never mutated) on every change.
 */
export interface ActiveScorer {
  readonly experimentId: string;
  readonly name: string;
  readonly version: number;
  readonly definition: ScorerDefinition;
  /** In (0, 1]: the inclusion probability every assessment records. */
  readonly sampleRate: number;
  readonly filterString: string | null;
  /** null = every trace of the experiment matches. */
  readonly filter: CompiledFilter | null;
  readonly updatedAt: string;
}

/** The registry's snapshot of active scorers (replaced as a whole on every change). */
export interface ActiveScorerSource {
  activeScorers(): ReadonlyMap<string, readonly ActiveScorer[]>;
  activeFor(experimentId: string): readonly ActiveScorer[];
}

/** One (trace view, scorer version) to score: self-contained, no registry lookup needed. */
export interface SelectedJob {
  view: TraceView;
  scorer: ScorerVersion;
  /** Inclusion probability recorded on every assessment of this job. */
  sampleRate: number;
  /** How the assembler completed the trace (shutdown: cut short by a stop). */
  completion: CompleteTrace['reason'];
  /** This job's share of its trace view's memory (the view is shared by the trace's jobs). */
  approxBytes: number;
  /**
   * The trace as the assembler completed it (encoded spans and log records), when the selector
   * was asked to keep it (keepTrace): a job published to Kafka carries the trace's OTLP bytes.
   */
  trace?: CompleteTrace | undefined;
}

/**
 * Admission's estimate of a view before it is built: about 2.3x the trace's wire size (measured
 * on the bench payload: 16.8 KB per 7.3 KB trace), rounded up for attribute-heavy traces. Once
 * built, a view is accounted at its decoded size (TraceView.approxBytes).
 */
export const VIEW_BYTES_PER_WIRE_BYTE = 3;

/** The `item` label of scorecar_sampler_view_items_cut_total, per kind of cut. */
const CUT_ITEM: Record<keyof ViewCuts, string> = {
  spans: 'spans',
  logRecords: 'log_records',
  attributes: 'attributes',
  events: 'events',
  links: 'links',
  arrayItems: 'array_items',
  truncatedValues: 'truncated_values',
  depth: 'depth',
};

/** The next stage's admission check, asked before a view is built for jobs that could not queue. */
export interface JobAdmission {
  hasRoom(jobs: number, bytes: number): boolean;
  refuse(experimentId: string, scorer: string, reason: 'queue_full'): void;
}

export interface SelectorOptions {
  registry: ActiveScorerSource;
  /** Where selected jobs go (the scoring engine, or a Kafka jobs topic). */
  next: Consumer<SelectedJob>;
  /** When given, a trace whose jobs would not fit is refused before its view is built. */
  admission?: JobAdmission | undefined;
  resolution: readonly string[];
  defaultExperiment: string;
  salt: string;
  metrics: MetricsRegistry;
  log: Logger;
  /** Wire bytes of completed traces waiting for their view (default 64 MiB); beyond, dropped and counted. */
  queueMaxBytes?: number;
  /** Bounds of every view's decode (config genai.viewLimits; default DEFAULT_VIEW_LIMITS). */
  viewLimits?: Readonly<ViewLimits> | undefined;
  /**
   * Worker threads building views (config genai.viewWorkers). 0 (the default here): on the event
   * loop, in slices of at most `sliceMs`.
   */
  viewWorkers?: number | undefined;
  /**
   * With view workers: traces of at most this many wire bytes get their view on the event loop
   * anyway, in the same bounded slices (config genai.viewInlineMaxBytes; default 0 here: every
   * view on a worker). A small trace's view costs less to build than to send to a worker and
   * back (copy, message, structured clone of the view), and its size bounds its time.
   */
  viewInlineMaxBytes?: number | undefined;
  /** Longest run of view building per turn of the event loop, without view workers (default 5 ms). */
  sliceMs?: number;
  /**
   * Hand each job its CompleteTrace too (SelectedJob.trace), for a next stage that sends the
   * trace's bytes on (scoring.mode kafka). Its bytes then stay alive until the jobs are handed
   * on; they are counted in `bytes` until the view is built either way.
   */
  keepTrace?: boolean;
  /** Schedules the next slice (default setImmediate); tests pass their own. */
  schedule?: (fn: () => void) => void;
  now?: () => number;
}

interface Pending {
  /** Released once the trace's bytes are on their way to a view worker. */
  trace: CompleteTrace | undefined;
  /** The trace kept for the jobs (keepTrace). */
  kept: CompleteTrace | undefined;
  traceId: string;
  wireBytes: number;
  reason: CompleteTrace['reason'];
  experimentId: string;
  sampled: readonly ActiveScorer[];
  /** A sampled code scorer may read ctx.trace: build its text with the view. */
  withJson: boolean;
}

/** Traces handed to a view worker together. */
interface Batch {
  items: Pending[];
  /** Given up on at shutdown (already counted as dropped): its views are discarded. */
  abandoned: boolean;
}

interface Thresholds {
  snapshot: ReadonlyMap<string, readonly ActiveScorer[]>;
  byExperiment: Map<string, number>;
  highest: number;
}

const DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024;

function versionOf(s: ActiveScorer): ScorerVersion {
  return { experimentId: s.experimentId, name: s.name, version: s.version, definition: s.definition };
}

export class TraceSelector implements Consumer<CompleteTrace>, TraceInterest, Component {
  private readonly o: SelectorOptions;
  private readonly m;
  private readonly queueMaxBytes: number;
  private readonly sliceMs: number;
  private readonly inlineMaxBytes: number;
  private readonly schedule: (fn: () => void) => void;
  private readonly now: () => number;
  private readonly limits: Readonly<ViewLimits>;
  private readonly workers: ViewWorkers | undefined;
  private queue: Pending[] = [];
  private head = 0;
  /** Traces at a view worker (their bytes still count in queuedBytes). */
  private readonly inFlight = new Set<Batch>();
  private inFlightTraces = 0;
  private queuedBytes = 0;
  /** Jobs the waiting traces may still produce (admission counts them as already queued). */
  private pendingJobCount = 0;
  private scheduled = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private thresholds: Thresholds | undefined;
  /** Experiment named by each (interned) resource; null when a span: rule decides. */
  private readonly resourceExperiment = new WeakMap<ResourceRef, string | null>();

  constructor(o: SelectorOptions) {
    this.o = o;
    this.queueMaxBytes = o.queueMaxBytes ?? DEFAULT_QUEUE_BYTES;
    this.sliceMs = o.sliceMs ?? 5;
    this.inlineMaxBytes = o.viewInlineMaxBytes ?? 0;
    this.schedule = o.schedule ?? ((fn) => setImmediate(fn));
    this.now = o.now ?? (() => performance.now());
    this.limits = o.viewLimits ?? DEFAULT_VIEW_LIMITS;
    this.workers =
      (o.viewWorkers ?? 0) > 0
        ? new ViewWorkers(o.viewWorkers!, { resolution: o.resolution, defaultExperiment: o.defaultExperiment, limits: this.limits })
        : undefined;
    const metrics = o.metrics;
    this.m = {
      considered: metrics.counter('scorecar_sampler_traces_total', 'Completed traces of experiments with active scorers', ['experiment']),
      selected: metrics.counter('scorecar_sampler_selected_total', 'Traces selected per scorer (sample rate and filter string passed)', ['experiment', 'scorer']),
      filtered: metrics.counter('scorecar_sampler_filtered_out_total', 'Traces inside the sample that the filter string excluded', ['experiment', 'scorer']),
      viewErrors: metrics.counter('scorecar_sampler_view_errors_total', 'Traces whose GenAI view could not be built', ['experiment']),
      dropped: metrics.counter('scorecar_sampler_dropped_traces_total', 'Sampled traces dropped before their view was built, by reason', ['experiment', 'reason']),
      values: metrics.counter('scorecar_sampler_view_values_total', 'Attribute values decoded into GenAI views (array items and map entries included): the work of building them', ['experiment']),
      cut: metrics.counter('scorecar_sampler_view_items_cut_total', 'Items the view limits (genai.viewLimits) cut from GenAI views, by kind', ['experiment', 'item']),
      truncated: metrics.counter('scorecar_sampler_views_truncated_total', 'GenAI views the view limits cut something from', ['experiment']),
      built: metrics.counter('scorecar_sampler_views_built_total', 'GenAI views built, by where: event_loop (in bounded slices) or worker (a view worker thread)', ['where']),
    };
    metrics.gauge('scorecar_sampler_queue_traces', 'Completed traces waiting for their GenAI view', [], () => this.depth);
    metrics.gauge('scorecar_sampler_queue_bytes', 'Wire bytes of completed traces waiting for their GenAI view', [], () => this.queuedBytes);
  }

  /** Traces waiting for their view (queued, or at a view worker). */
  get depth(): number {
    return this.queue.length - this.head + this.inFlightTraces;
  }

  /** Memory held by waiting traces (their wire bytes, until their view is built), for the memory budget. */
  get bytes(): number {
    return this.queuedBytes;
  }

  start(): void {}

  // ------------------------------------------------------------------ trace interest

  private currentThresholds(): Thresholds {
    const snapshot = this.o.registry.activeScorers();
    let t = this.thresholds;
    if (t === undefined || t.snapshot !== snapshot) {
      const byExperiment = new Map<string, number>();
      let highest = 0;
      for (const [exp, scorers] of snapshot) {
        let max = 0;
        for (const s of scorers) if (s.sampleRate > max) max = s.sampleRate;
        byExperiment.set(exp, max);
        if (max > highest) highest = max;
      }
      t = { snapshot, byExperiment, highest };
      this.thresholds = t;
    }
    return t;
  }

  wants(idBytes: Uint8Array, idOffset: number, resource: ResourceRef): boolean {
    const t = this.currentThresholds();
    if (t.highest <= 0 || this.closed) return false;
    let exp = this.resourceExperiment.get(resource);
    if (exp === undefined) {
      exp = experimentOfResource(resource, this.o.resolution, this.o.defaultExperiment) ?? null;
      this.resourceExperiment.set(resource, exp);
    }
    const rate = exp === null ? t.highest : (t.byExperiment.get(exp) ?? 0);
    return isSelectedId(idBytes, idOffset, rate, this.o.salt);
  }

  // ------------------------------------------------------------------ completed traces

  consume(trace: CompleteTrace): void {
    const all = this.o.registry.activeScorers();
    if (all.size === 0) return;
    const experimentId = resolveExperiment(trace, this.o.resolution, this.o.defaultExperiment, this.limits);
    const scorers = this.o.registry.activeFor(experimentId);
    if (scorers.length === 0) return;
    this.m.considered.inc({ experiment: experimentId });
    const sampled = scorers.filter((s) => isSelected(trace.traceId, s.sampleRate, this.o.salt));
    if (sampled.length === 0) return;
    if (this.closed) {
      this.m.dropped.inc({ experiment: experimentId, reason: 'shutdown' });
      return;
    }
    // Under overload, building views only to drop their jobs would turn into garbage-collector
    // work and memory: refuse first (filters not run yet, so every sampled scorer counts).
    const viewBytes = trace.wireBytes * VIEW_BYTES_PER_WIRE_BYTE;
    const pendingViewBytes = this.queuedBytes * VIEW_BYTES_PER_WIRE_BYTE;
    if (this.o.admission && !this.o.admission.hasRoom(sampled.length + this.pendingJobCount, viewBytes + pendingViewBytes)) {
      for (const s of sampled) this.o.admission.refuse(experimentId, s.name, 'queue_full');
      return;
    }
    if (this.queuedBytes + trace.wireBytes > this.queueMaxBytes && this.depth > 0) {
      this.m.dropped.inc({ experiment: experimentId, reason: 'queue_full' });
      return;
    }
    // A Python scorer's trace argument is built from the same JSON (when its source names it).
    const withJson = sampled.some((s) => isCodeScorer(s.definition) && sourceMayReadTrace(s.definition.source));
    this.queue.push({
      trace,
      kept: this.o.keepTrace ? trace : undefined,
      traceId: trace.traceId,
      wireBytes: trace.wireBytes,
      reason: trace.reason,
      experimentId,
      sampled,
      withJson,
    });
    this.queuedBytes += trace.wireBytes;
    this.pendingJobCount += sampled.length;
    this.kick();
  }

  /**
   * Schedules the next turn's work: a slice of view building, or (with view workers) handing
   * the queued traces over. Never on the completion edge itself, so the traces one completion
   * sweep hands over go to a worker together.
   */
  private kick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      if (this.workers) this.pump();
      else this.drain(this.sliceMs);
    });
  }

  // ------------------------------------------------------------------ view workers

  /**
   * Hands queued traces on, in queue order: a small one (viewInlineMaxBytes) gets its view here,
   * within this turn's slice; the others go to the view workers in batches while they have room.
   */
  private pump(): void {
    const workers = this.workers!;
    const started = this.now();
    let sliceSpent = false;
    while (this.head < this.queue.length && !this.closed) {
      const first = this.queue[this.head]!;
      if (first.wireBytes <= this.inlineMaxBytes) {
        if (this.now() - started >= this.sliceMs) {
          sliceSpent = true;
          break;
        }
        this.queue[this.head++] = undefined as unknown as Pending;
        this.queuedBytes -= first.wireBytes;
        this.pendingJobCount -= first.sampled.length;
        this.select(first);
        continue;
      }
      if (!workers.hasRoom) break;
      const items: Pending[] = [];
      let bytes = 0;
      while (this.head < this.queue.length && items.length < MAX_BATCH_TRACES) {
        const p = this.queue[this.head]!;
        if (p.wireBytes <= this.inlineMaxBytes) break;
        if (items.length > 0 && bytes + p.wireBytes > MAX_BATCH_BYTES) break;
        this.queue[this.head++] = undefined as unknown as Pending;
        items.push(p);
        bytes += p.wireBytes;
      }
      const batch: Batch = { items, abandoned: false };
      this.inFlight.add(batch);
      this.inFlightTraces += items.length;
      this.m.built.inc({ where: 'worker' }, items.length);
      const built = workers.build(items.map((p) => ({ trace: p.trace!, withJson: p.withJson })));
      // The worker has its own copy of the bytes now.
      for (const p of items) p.trace = undefined;
      void built.then((outcomes) => this.landed(batch, outcomes));
    }
    this.compact();
    // Small traces left over wait for the next turn; big ones for a worker's room (landed()).
    if (sliceSpent) this.kick();
    this.maybeIdle();
  }

  private landed(batch: Batch, outcomes: readonly ViewOutcome[]): void {
    if (batch.abandoned) return;
    this.inFlight.delete(batch);
    this.inFlightTraces -= batch.items.length;
    batch.items.forEach((p, i) => {
      this.queuedBytes -= p.wireBytes;
      this.pendingJobCount -= p.sampled.length;
      const o = outcomes[i];
      if (o?.ok) {
        if (o.traceJson !== undefined) primeTraceViewJsonText(o.view, o.traceJson);
        this.deliver(p, o.view, o.values, o.cuts, o.traceJson?.length ?? 0);
      } else this.viewFailed(p, o ? new Error(`${o.code}: ${o.message}`) : new Error('no outcome'));
    });
    if (!this.closed) this.pump();
    this.maybeIdle();
  }

  // ------------------------------------------------------------------ on the event loop

  /** Builds views for at most `budgetMs`; schedules the rest. Returns how many traces it took. */
  drain(budgetMs: number): number {
    const started = this.now();
    let n = 0;
    while (this.head < this.queue.length) {
      const p = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Pending;
      this.queuedBytes -= p.wireBytes;
      this.pendingJobCount -= p.sampled.length;
      this.select(p);
      n++;
      if (this.now() - started >= budgetMs) break;
    }
    this.compact();
    if (this.head < this.queue.length) this.kick();
    this.maybeIdle();
    return n;
  }

  /** Drops the queue's taken head (all of it once empty). */
  private compact(): void {
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private maybeIdle(): void {
    if (this.depth > 0) return;
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }

  /** Builds one view on the event loop (no view workers), then selects on it. */
  private select(p: Pending): void {
    const trace = p.trace!;
    p.trace = undefined;
    const dec = new ViewDecoder(this.limits);
    this.m.built.inc({ where: 'event_loop' });
    let view: TraceView;
    try {
      view = buildTraceView(trace, { resolution: this.o.resolution, defaultExperiment: this.o.defaultExperiment }, dec);
    } catch (e) {
      this.viewFailed(p, e);
      return;
    }
    this.deliver(p, view, dec.work.values, dec.cuts, 0);
  }

  private viewFailed(p: Pending, e: unknown): void {
    this.m.viewErrors.inc({ experiment: p.experimentId });
    this.o.log.warn('cannot build the trace view; trace not scored', { traceId: p.traceId, err: errorFields(e) });
  }

  /**
   * Counts what the view's decode did, runs the sampled scorers' filters on it and hands their
   * jobs on. `extraBytes`: memory built with the view (its ctx.trace text).
   */
  private deliver(p: Pending, view: TraceView, values: number, cuts: Readonly<ViewCuts>, extraBytes: number): void {
    const { experimentId } = p;
    this.m.values.inc({ experiment: experimentId }, values);
    let truncated = false;
    for (const k of VIEW_CUT_KINDS) {
      if (cuts[k] > 0) {
        truncated = true;
        this.m.cut.inc({ experiment: experimentId, item: CUT_ITEM[k] }, cuts[k]);
      }
    }
    if (truncated) this.m.truncated.inc({ experiment: experimentId });
    const jobs: SelectedJob[] = [];
    for (const s of p.sampled) {
      if (s.filter && !s.filter.matches(view)) {
        this.m.filtered.inc({ experiment: experimentId, scorer: s.name });
        continue;
      }
      this.m.selected.inc({ experiment: experimentId, scorer: s.name });
      jobs.push({
        view,
        scorer: versionOf(s),
        sampleRate: inclusionProbability(s.sampleRate),
        completion: p.reason,
        approxBytes: 0,
        ...(p.kept ? { trace: p.kept } : {}),
      });
    }
    // What the decode built, not what arrived: a view cut to the limits is small whatever its
    // trace's wire size.
    const viewBytes = (view.approxBytes ?? p.wireBytes * VIEW_BYTES_PER_WIRE_BYTE) + extraBytes;
    const share = Math.ceil(viewBytes / Math.max(1, jobs.length));
    for (const j of jobs) {
      j.approxBytes = share;
      try {
        this.o.next.consume(j);
      } catch (e) {
        // The next stage counted its refusal (queue full, shutting down); anything else is a bug.
        if (!isScorecarError(e)) this.o.log.error('the scoring stage failed on a job', { traceId: p.traceId, err: errorFields(e) });
      }
    }
  }

  /** Resolves when no trace waits for its view. */
  whenIdle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /**
   * Builds the views of every trace still waiting (the assembler has just handed over what it
   * held) and hands their jobs on, until the deadline; what is left is dropped and counted.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    if (this.workers) {
      while (this.depth > 0 && Date.now() < deadlineMs) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          this.whenIdle(),
          new Promise<void>((r) => {
            timer = setTimeout(r, Math.max(0, deadlineMs - Date.now()));
          }),
        ]);
        clearTimeout(timer);
      }
    } else {
      while (this.depth > 0 && Date.now() < deadlineMs) {
        this.drain(this.sliceMs);
        // Let the event loop breathe between slices (admin API, timers).
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    this.closed = true;
    for (let i = this.head; i < this.queue.length; i++) {
      this.m.dropped.inc({ experiment: this.queue[i]!.experimentId, reason: 'shutdown' });
    }
    for (const b of this.inFlight) {
      b.abandoned = true;
      for (const p of b.items) this.m.dropped.inc({ experiment: p.experimentId, reason: 'shutdown' });
    }
    this.inFlight.clear();
    this.inFlightTraces = 0;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.pendingJobCount = 0;
    this.maybeIdle();
    await this.workers?.close();
  }
}
