// A small Prometheus text-format registry. Counters are incremented per request or per trace,
// never per span, so label lookup cost stays off the per-span path.

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelKey(names: readonly string[], labels: Labels | undefined): string {
  if (names.length === 0) return '';
  let key = '';
  for (const n of names) key += `${n}="${escapeLabel(labels?.[n] ?? '')}",`;
  return key.slice(0, -1);
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
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }
  inc(labels?: Labels, by = 1): void {
    if (by === 0) return;
    const k = labelKey(this.labelNames, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(this.labelNames, labels)) ?? 0;
  }
  /** Sum over every label set. */
  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
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
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: () => number | Array<[Labels, number]>,
  ) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.collect = collect;
  }
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(this.labelNames, labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(this.labelNames, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    if (this.collect) {
      const c = this.collect();
      if (typeof c === 'number') return c;
      const want = labelKey(this.labelNames, labels);
      for (const [l, v] of c) if (labelKey(this.labelNames, l) === want) return v;
      return 0;
    }
    return this.values.get(labelKey(this.labelNames, labels)) ?? 0;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect) {
      const c = this.collect();
      if (typeof c === 'number') return `${out}${this.name} ${fmt(c)}\n`;
      for (const [l, v] of c) {
        const k = labelKey(this.labelNames, l);
        out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
      }
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
  constructor(name: string, help: string, labelNames: readonly string[], collect: () => number | Array<[Labels, number]>) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.collect = collect;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    const c = this.collect();
    if (typeof c === 'number') return `${out}${this.name} ${fmt(c)}\n`;
    for (const [l, v] of c) {
      const k = labelKey(this.labelNames, l);
      out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`;
    }
    return out;
  }
}

export class Histogram implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly buckets: readonly number[];
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.labelNames = labelNames;
  }
  observe(value: number, labels?: Labels): void {
    const k = labelKey(this.labelNames, labels);
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
    return this.series.get(labelKey(this.labelNames, labels))?.count ?? 0;
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

  private add<T extends Metric>(m: T): T {
    const existing = this.metrics.get(m.name);
    if (existing) return existing as T; // idempotent: components may be rebuilt in tests
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: () => number | Array<[Labels, number]>,
  ): Gauge {
    return this.add(new Gauge(name, help, labelNames, collect));
  }
  counterFunc(
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: () => number | Array<[Labels, number]>,
  ): CallbackCounter {
    return this.add(new CallbackCounter(name, help, labelNames, collect));
  }
  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames));
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
