// A small Prometheus text-format registry. Counters are incremented per request or per trace,
// never per span, so label lookup cost stays off the per-span path.
//
// Every metric is bounded, whatever its labels carry: label values come from senders (a trace's
// experiment), scorers (an assessment's string verdict, a judge's model URI) and operators, and
// a series, once created, is kept for the life of the process. So each label value is cut to
// `maxLabelValueLength` characters, and each metric keeps at most `maxSeries` label sets: the
// label sets beyond go to one overflow series (every label "__overflow__", so sums stay right)
// and are counted in scorecar_metrics_series_overflow_total{metric}. Callers that know their
// values (the emitter's assessment labels) bucket them first; this is the backstop.

type Labels = Record<string, string>;

export interface SeriesLimits {
  /** Distinct label sets kept per metric; further ones are folded into the overflow series. */
  maxSeries: number;
  /** Longer label values are cut, ending in '…'. */
  maxLabelValueLength: number;
}

export const DEFAULT_SERIES_LIMITS: Readonly<SeriesLimits> = { maxSeries: 2000, maxLabelValueLength: 128 };

/** The value of every label of the overflow series. */
export const OVERFLOW_LABEL_VALUE = '__overflow__';

/** How a metric enforces its limits and reports an overflow (set by the registry). */
export interface SeriesOptions {
  limits?: SeriesLimits | undefined;
  onOverflow?: ((metric: string) => void) | undefined;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** `v` cut to `max` characters (the last one '…'), never splitting a surrogate pair. */
export function capLabelValue(v: string, max: number): string {
  if (v.length <= max) return v;
  let end = Math.max(0, max - 1);
  const c = v.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${v.slice(0, end)}…`;
}

function labelKey(names: readonly string[], labels: Labels | undefined, maxLen: number): string {
  if (names.length === 0) return '';
  let key = '';
  for (const n of names) {
    const v = labels?.[n] ?? '';
    key += `${n}="${escapeLabel(v.length > maxLen ? capLabelValue(v, maxLen) : v)}",`;
  }
  return key.slice(0, -1);
}

/** The label-set keys of one metric: capped values, at most maxSeries sets, then the overflow set. */
class SeriesGuard {
  private readonly names: readonly string[];
  private readonly metric: string;
  private readonly limits: SeriesLimits;
  private readonly onOverflow: ((metric: string) => void) | undefined;
  private overflowKeyCache: string | undefined;
  constructor(metric: string, names: readonly string[], opts: SeriesOptions | undefined) {
    this.metric = metric;
    this.names = names;
    this.limits = opts?.limits ?? DEFAULT_SERIES_LIMITS;
    this.onOverflow = opts?.onOverflow;
  }
  /** The key of a label set (values capped), without admitting it. */
  key(labels: Labels | undefined): string {
    return labelKey(this.names, labels, this.limits.maxLabelValueLength);
  }
  overflowKey(): string {
    this.overflowKeyCache ??= this.names.map((n) => `${n}="${OVERFLOW_LABEL_VALUE}"`).join(',');
    return this.overflowKeyCache;
  }
  /** The key to record `labels` under in `series`: its own, or the overflow key once full. */
  admit(series: ReadonlyMap<string, unknown>, labels: Labels | undefined): string {
    const k = this.key(labels);
    if (series.has(k) || series.size < this.limits.maxSeries) return k;
    this.onOverflow?.(this.metric);
    return this.overflowKey();
  }
  /**
   * Label sets a callback returned at scrape time, bounded the same way: the first maxSeries
   * as they are, the rest summed into the overflow series when `sumOverflow` (counters), else
   * left out (a gauge's values do not add up).
   */
  collected(c: Array<[Labels, number]>, sumOverflow: boolean): Array<[string, number]> {
    const out = new Map<string, number>();
    let overflow: number | undefined;
    for (const [l, v] of c) {
      const k = this.key(l);
      if (out.has(k)) {
        if (sumOverflow) out.set(k, out.get(k)! + v);
      } else if (out.size < this.limits.maxSeries) out.set(k, v);
      else if (sumOverflow) overflow = (overflow ?? 0) + v;
    }
    const rows = [...out];
    if (overflow !== undefined) rows.push([this.overflowKey(), overflow]);
    return rows;
  }
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

interface Metric {
  readonly name: string;
  render(): string;
}

export class Counter implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly values = new Map<string, number>();
  private readonly guard: SeriesGuard;
  constructor(name: string, help: string, labelNames: readonly string[] = [], opts?: SeriesOptions) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.guard = new SeriesGuard(name, labelNames, opts);
  }
  inc(labels?: Labels, by = 1): void {
    if (by === 0) return;
    const k = this.guard.admit(this.values, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(this.guard.key(labels)) ?? 0;
  }
  /** Sum over every label set. */
  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
  }
  /** Label sets held (the overflow series included). */
  get seriesCount(): number {
    return this.values.size;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.values.size === 0 && this.labelNames.length === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.values) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
    return out;
  }
}

export class Gauge implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly values = new Map<string, number>();
  private readonly collect: (() => number | Array<[Labels, number]>) | undefined;
  private readonly guard: SeriesGuard;
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: () => number | Array<[Labels, number]>,
    opts?: SeriesOptions,
  ) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.collect = collect;
    this.guard = new SeriesGuard(name, labelNames, opts);
  }
  set(value: number, labels?: Labels): void {
    this.values.set(this.guard.admit(this.values, labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    const k = this.guard.admit(this.values, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    if (this.collect) {
      const c = this.collect();
      if (typeof c === 'number') return c;
      const want = this.guard.key(labels);
      for (const [l, v] of c) if (this.guard.key(l) === want) return v;
      return 0;
    }
    return this.values.get(this.guard.key(labels)) ?? 0;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect) {
      const c = this.collect();
      if (typeof c === 'number') return `${out}${this.name} ${fmt(c)}\n`;
      for (const [k, v] of this.guard.collected(c, false)) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
      return out;
    }
    if (this.values.size === 0 && this.labelNames.length === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.values) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
    return out;
  }
}

/** A counter whose value is read from the component that owns it at scrape time. */
export class CallbackCounter implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly collect: () => number | Array<[Labels, number]>;
  private readonly guard: SeriesGuard;
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: () => number | Array<[Labels, number]>,
    opts?: SeriesOptions,
  ) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.collect = collect;
    this.guard = new SeriesGuard(name, labelNames, opts);
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    const c = this.collect();
    if (typeof c === 'number') return `${out}${this.name} ${fmt(c)}\n`;
    for (const [k, v] of this.guard.collected(c, true)) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
    return out;
  }
}

export class Histogram implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly buckets: readonly number[];
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  private readonly guard: SeriesGuard;
  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = [], opts?: SeriesOptions) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.labelNames = labelNames;
    this.guard = new SeriesGuard(name, labelNames, opts);
  }
  observe(value: number, labels?: Labels): void {
    const k = this.guard.admit(this.series, labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  count(labels?: Labels): number {
    return this.series.get(this.guard.key(labels))?.count ?? 0;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [k, s] of this.series) {
      const pre = k ? `${k},` : '';
      for (let i = 0; i < this.buckets.length; i++) {
        out += `${this.name}_bucket{${pre}le="${fmt(this.buckets[i]!)}"} ${s.counts[i]}\n`;
      }
      out += `${this.name}_bucket{${pre}le="+Inf"} ${s.count}\n`;
      out += `${this.name}_sum${k ? `{${k}}` : ''} ${fmt(s.sum)}\n`;
      out += `${this.name}_count${k ? `{${k}}` : ''} ${s.count}\n`;
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();
  private readonly series: SeriesOptions;

  /** `limits` bounds every metric of this registry (default DEFAULT_SERIES_LIMITS). */
  constructor(opts: { limits?: Partial<SeriesLimits> } = {}) {
    // Its one label is a metric name (fixed in code), so it needs no cap of its own.
    const overflow = new Counter(
      'scorecar_metrics_series_overflow_total',
      'Observations recorded in a metric\'s overflow series because it already held its maximum number of label sets',
      ['metric'],
      { limits: { maxSeries: Number.POSITIVE_INFINITY, maxLabelValueLength: DEFAULT_SERIES_LIMITS.maxLabelValueLength } },
    );
    this.add(overflow);
    this.series = {
      limits: { ...DEFAULT_SERIES_LIMITS, ...opts.limits },
      onOverflow: (metric) => overflow.inc({ metric }),
    };
  }

  private add<T extends Metric>(m: T): T {
    const existing = this.metrics.get(m.name);
    if (existing) return existing as T; // idempotent: components may be rebuilt in tests
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames, this.series));
  }
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: () => number | Array<[Labels, number]>,
  ): Gauge {
    return this.add(new Gauge(name, help, labelNames, collect, this.series));
  }
  counterFunc(
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: () => number | Array<[Labels, number]>,
  ): CallbackCounter {
    return this.add(new CallbackCounter(name, help, labelNames, collect, this.series));
  }
  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames, this.series));
  }
  get(name: string): Metric | undefined {
    return this.metrics.get(name);
  }
  render(): string {
    let out = '';
    for (const m of this.metrics.values()) out += m.render();
    return out;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
