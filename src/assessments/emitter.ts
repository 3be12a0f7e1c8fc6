// The last stage: where every assessment goes. The store, the downstream OTLP exporter (log
// event + evaluation span, batched), metrics, and any extra listeners (Kafka, tests). Batching
// keeps the OTLP and SQLite costs per flush, not per assessment. consume() takes the
// assessments of one job; they are written and sent on the next flush (every flushMs, or at 500
// pending), and flush()/shutdown() write everything pending at once.
//
// Emitted once: an assessment's id is deterministic, so one whose id the store already holds
// was emitted before (a trace replayed after a crash and restart, a retried job) and goes
// nowhere again — not downstream, not to listeners, not into the metrics; it is counted in
// scorecar_assessments_duplicate_total. One batched store lookup per flush finds them.
//
// The store may be a network away (PostgreSQL, storage.postgres.url): flushes run one at a time
// (a flush asked for while one runs follows it), and a batch the store could not take is kept in
// a bounded retry buffer and written again on the next flushes (by id, so never twice) — a
// database restart loses no assessment. Its ids count as emitted, so a retried job arriving
// meanwhile is still recognised as a duplicate.
//
// Metric labels stay bounded whatever scorers return: the `label` of scorecar_assessments_total
// is yes/no/true/false, a prompt judge's declared choice, `numeric`, `error`, or one of a few
// distinct short string verdicts per scorer (`other` beyond); error codes outside the error
// table count as `other`.
import type { Component, Consumer } from '../component/index.ts';
import type { Aggregation } from '../definitions/index.ts';
import { errorFields, type Gauge, isErrorCode, type Logger, type MetricsRegistry } from '../util/index.ts';
import { type EmittedAssessment, encodeAssessmentLogs, encodeEvaluationSpans, scoreLabel, scoreValue } from './otlp.ts';
import type { AssessmentStore } from './store.ts';
import type { Assessment, ScoredAssessment } from './types.ts';

/** The downstream exporter, as the emitter uses it (a second producer into its queue). */
export interface OtlpSink {
  readonly enabled: boolean;
  enqueue(signal: 'traces' | 'logs', body: Buffer, items: number): string;
}

export interface EmitItem extends EmittedAssessment, ScoredAssessment {
  /** Aggregations the scorer asked for (code scorers), exported as gauges. */
  aggregations?: readonly Aggregation[] | undefined;
}

export type AssessmentListener = (a: Assessment) => void;

const WINDOW = 1000;

/** Verdicts that are labels as they are, for every scorer. */
const FIXED_LABELS = new Set(['yes', 'no', 'true', 'false']);
/** Distinct choices of one prompt judge kept as labels (its definition bounds them; this caps a long list). */
export const MAX_CHOICE_LABELS = 64;
/** Distinct free-form string verdicts of one scorer kept as labels; later ones count as `other`. */
export const MAX_STRING_LABELS = 10;
/** A longer string verdict is never a label (it is text, not a category). */
export const MAX_LABEL_CHARS = 64;

/** The labels one scorer has used so far, by kind. */
interface ScorerLabels {
  choices: Set<string>;
  strings: Set<string>;
}

const NONE: ReadonlySet<string> = new Set();
/** Assessments kept for the store while it cannot be written (beyond: the oldest are dropped, counted). */
export const MAX_UNSTORED = 100_000;

function aggregateOf(values: number[], kind: Aggregation): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  switch (kind) {
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
    case 'mean':
      return values.reduce((a, b) => a + b, 0) / n;
    case 'variance': {
      const mean = values.reduce((a, b) => a + b, 0) / n;
      return values.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    }
    case 'median':
    case 'p90': {
      const s = [...values].sort((a, b) => a - b);
      const q = kind === 'median' ? 0.5 : 0.9;
      const pos = (n - 1) * q;
      const lo = Math.floor(pos);
      const hi = Math.ceil(pos);
      return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
    }
  }
}

export class AssessmentEmitter implements Consumer<readonly EmitItem[]>, Component {
  private readonly store: AssessmentStore | undefined;
  private readonly otlp: OtlpSink | undefined;
  private readonly log: Logger;
  private readonly version: string;
  private pending: EmitItem[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: AssessmentListener[] = [];
  private readonly windows = new Map<string, { values: number[]; at: number; aggregations: readonly Aggregation[]; exp: string; scorer: string }>();
  private readonly labelSets = new Map<string, ScorerLabels>();
  private readonly m;
  private readonly aggGauge: Gauge;
  private readonly flushMs: number;
  /** Assessments not sent downstream since the export queue filled (one warning per burst). */
  private notSent = 0;
  private closed = false;
  /** The flush in progress (flushes never overlap: the store may be asynchronous). */
  private flushing: Promise<void> | undefined;
  private flushAgain = false;
  /** Emitted, not yet in the store (it failed): written again on the next flushes. */
  private unstored: ScoredAssessment[] = [];
  private readonly unstoredIds = new Set<string>();
  private storeFailing = false;

  constructor(opts: { store?: AssessmentStore; otlp?: OtlpSink; metrics: MetricsRegistry; log: Logger; version: string; flushMs?: number }) {
    this.store = opts.store;
    this.otlp = opts.otlp;
    this.log = opts.log;
    this.version = opts.version;
    const m = opts.metrics;
    this.m = {
      total: m.counter('scorecar_assessments_total', 'Assessments by scorer and label (error when the scorer failed)', ['experiment', 'scorer', 'label']),
      errors: m.counter('scorecar_assessment_errors_total', 'Error assessments by code', ['experiment', 'scorer', 'code']),
      score: m.histogram('scorecar_assessment_score', 'Numeric assessment values (yes/no and booleans as 1/0)', [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 2, 5, 10, 100, 1000, 10_000, 100_000], ['experiment', 'scorer']),
      storeErrors: m.counter('scorecar_assessment_store_errors_total', 'Failed assessment store writes and lookups'),
      exportDropped: m.counter('scorecar_assessment_export_dropped_total', 'Assessments not sent downstream because the export queue was full'),
      storeDropped: m.counter('scorecar_assessment_store_dropped_total', `Assessments never stored: the store failed while ${MAX_UNSTORED} were waiting for it`),
      duplicates: m.counter(
        'scorecar_assessments_duplicate_total',
        'Assessments not emitted again because the store already holds their id (a replayed trace, a retried job)',
        ['experiment', 'scorer'],
      ),
    };
    this.aggGauge = m.gauge('scorecar_scorer_aggregate', `Aggregations of code scorer values over their last ${WINDOW} assessments`, ['experiment', 'scorer', 'aggregation'], () => {
      const out: Array<[Record<string, string>, number]> = [];
      for (const w of this.windows.values()) {
        for (const agg of w.aggregations) out.push([{ experiment: w.exp, scorer: w.scorer, aggregation: agg }, aggregateOf(w.values, agg)]);
      }
      return out;
    });
    void this.aggGauge;
    m.gauge('scorecar_assessment_store_pending', 'Assessments emitted and waiting for the store (it failed; retried on every flush)', [], () => this.unstored.length);
    this.flushMs = opts.flushMs ?? 200;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  consume(items: readonly EmitItem[]): void {
    this.emit(items);
  }

  onAssessment(l: AssessmentListener): void {
    this.listeners.push(l);
  }

  emit(items: readonly EmitItem[]): void {
    for (const it of items) this.pending.push(it);
    if (this.pending.length >= 500) void this.flush();
  }

  /** The `label` of scorecar_assessments_total for an assessment (bounded per scorer). */
  private metricLabel(a: Assessment): string {
    if (a.error) return 'error';
    const label = scoreLabel(a);
    if (label === undefined) return scoreValue(a) !== undefined ? 'numeric' : 'other';
    if (FIXED_LABELS.has(label)) return label;
    if (label.length > MAX_LABEL_CHARS) return 'other';
    const key = `${a.experimentId}\u0000${a.scorer.name}`;
    let used = this.labelSets.get(key);
    if (!used) {
      used = { choices: new Set(), strings: new Set() };
      this.labelSets.set(key, used);
    }
    // A judge's scorecar.label is one of the choices its definition declares (the parser refuses
    // any other); anything else (a code scorer's string, a free-text judge) is open-ended.
    const choice = a.source.type === 'LLM_JUDGE' && a.metadata['scorecar.label'] === label;
    const set = choice ? used.choices : used.strings;
    if (set.has(label)) return label;
    if (set.size >= (choice ? MAX_CHOICE_LABELS : MAX_STRING_LABELS)) return 'other';
    set.add(label);
    return label;
  }

  /** Metrics and listeners of one assessment emitted for the first time. */
  private record(it: EmitItem): void {
    const a = it.assessment;
    const labels = { experiment: a.experimentId, scorer: a.scorer.name };
    this.m.total.inc({ ...labels, label: this.metricLabel(a) });
    if (a.error) {
      this.m.errors.inc({ ...labels, code: isErrorCode(a.error.code) ? a.error.code : 'other' });
    } else {
      const v = scoreValue(a);
      if (v !== undefined) {
        this.m.score.observe(v, labels);
        if (it.aggregations && it.aggregations.length > 0) this.window(a, v, it.aggregations);
      }
    }
    for (const l of this.listeners) {
      try {
        l(a);
      } catch (e) {
        this.log.warn('assessment listener failed', { err: errorFields(e) });
      }
    }
  }

  /**
   * The items of a batch emitted for the first time: not stored already (one lookup for the
   * batch) and not earlier in the batch. The others are counted as duplicates.
   */
  private async firstEmissions(items: readonly EmitItem[]): Promise<EmitItem[]> {
    let stored: ReadonlySet<string> = NONE;
    if (this.store) {
      try {
        stored = await this.store.existing(items.map((it) => it.assessment.assessmentId));
      } catch (e) {
        // Emitting a duplicate beats losing an assessment: without the lookup, all go out.
        this.m.storeErrors.inc();
        // One line per failure streak (a database outage would otherwise log every flush).
        if (!this.storeFailing) this.log.error('cannot look up stored assessments; emitting the batch as new', { count: items.length, err: errorFields(e) });
        this.storeFailing = true;
      }
    }
    const seen = new Set<string>();
    const out: EmitItem[] = [];
    for (const it of items) {
      const a = it.assessment;
      if (stored.has(a.assessmentId) || seen.has(a.assessmentId) || this.unstoredIds.has(a.assessmentId)) {
        this.m.duplicates.inc({ experiment: a.experimentId, scorer: a.scorer.name });
        continue;
      }
      seen.add(a.assessmentId);
      out.push(it);
    }
    if (out.length < items.length) this.log.debug('assessments emitted before, not sent again', { count: items.length - out.length });
    return out;
  }

  private window(a: Assessment, v: number, aggregations: readonly Aggregation[]): void {
    const key = `${a.experimentId}\u0000${a.scorer.name}`;
    let w = this.windows.get(key);
    if (!w) {
      w = { values: [], at: 0, aggregations, exp: a.experimentId, scorer: a.scorer.name };
      this.windows.set(key, w);
    }
    w.aggregations = aggregations;
    if (w.values.length < WINDOW) w.values.push(v);
    else {
      w.values[w.at] = v;
      w.at = (w.at + 1) % WINDOW;
    }
  }

  /**
   * Writes and sends everything pending now. Resolves when it is done (stored, or kept for a
   * retry when the store failed); a call while a flush runs is served by one more flush after it.
   */
  flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    if (this.pending.length === 0 && this.unstored.length === 0) return Promise.resolve();
    const run = (async () => {
      try {
        do {
          this.flushAgain = false;
          await this.flushOnce();
        } while (this.flushAgain && this.pending.length > 0);
      } finally {
        this.flushing = undefined;
      }
    })();
    this.flushing = run;
    return run;
  }

  private async flushOnce(): Promise<void> {
    // What the store could not take before goes first (its order is emission order).
    if (this.unstored.length > 0 && this.store) await this.storeBatch(this.unstored.splice(0), true);
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    const batch = await this.firstEmissions(pending);
    if (batch.length === 0) return;
    if (this.store) await this.storeBatch(batch, false);
    for (const it of batch) this.record(it);
    if (this.otlp?.enabled) {
      const logs = this.otlp.enqueue('logs', encodeAssessmentLogs(batch, this.version), batch.length);
      const spans = this.otlp.enqueue('traces', encodeEvaluationSpans(batch, this.version), batch.length);
      if (logs !== 'queued' || spans !== 'queued') {
        this.m.exportDropped.inc(undefined, batch.length);
        // Once per burst: the first flush that finds the queue full warns, the first that gets
        // through again says how many were not sent in between (the metric counts each one).
        if (this.notSent === 0) this.log.warn('export queue full: assessments not sent downstream until it drains (they are stored)', { count: batch.length });
        this.notSent += batch.length;
      } else if (this.notSent > 0) {
        this.log.info('export queue has room again; assessments are sent downstream', { notSent: this.notSent });
        this.notSent = 0;
      }
    }
  }

  /** One store write; on failure the batch waits in the bounded retry buffer. */
  private async storeBatch(batch: ScoredAssessment[], retry: boolean): Promise<void> {
    try {
      await this.store!.put(batch);
      if (retry) {
        for (const it of batch) this.unstoredIds.delete(it.assessment.assessmentId);
        this.log.info('assessments stored after the store came back', { count: batch.length });
      }
      this.storeFailing = false;
    } catch (e) {
      this.m.storeErrors.inc();
      if (!this.storeFailing) this.log.error('cannot store assessments; kept for a retry on the next flushes', { count: batch.length, err: errorFields(e) });
      this.storeFailing = true;
      if (!retry) for (const it of batch) this.unstoredIds.add(it.assessment.assessmentId);
      this.unstored = batch.concat(this.unstored);
      const over = this.unstored.length - MAX_UNSTORED;
      if (over > 0) {
        for (const it of this.unstored.splice(0, over)) this.unstoredIds.delete(it.assessment.assessmentId);
        this.m.storeDropped.inc(undefined, over);
      }
    }
  }

  /** Writes and sends everything pending, then stops the flush timer. */
  shutdown(_deadlineMs?: number): Promise<void> {
    return this.close();
  }

  /** Assessments emitted but not in the store yet (it failed; they are retried). */
  get unstoredCount(): number {
    return this.unstored.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    // One more flush picks up what arrived during the last one.
    if (this.pending.length > 0) await this.flush();
    if (this.unstored.length > 0) this.log.error('assessments never stored: the store failed until shutdown', { count: this.unstored.length });
  }
}
