// Preloaded into the scorecar child by the wire benchmark (NODE_OPTIONS=--import): records
// event-loop delay and GC pauses inside the process under test, and writes them as JSON to
// $SCORECAR_PROBE_OUT when the process exits. It changes nothing in scorecar itself.
import { writeFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

export interface ProbeReport {
  loopDelayMs: { p50: number; p99: number; max: number };
  /** Pauses per GC kind: count, total and max milliseconds. */
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
  /** The longest pauses, in the order they happened, with their kind and start (ms since probe start). */
  longest: Array<{ kind: string; ms: number; atMs: number }>;
}

// V8 flags that NODE_OPTIONS refuses (e.g. --trace-gc, --max-semi-space-size) for experiments.
for (const flag of (process.env.SCORECAR_PROBE_V8_FLAGS ?? '').split(' ').filter(Boolean)) v8.setFlagsFromString(flag);

const out = process.env.SCORECAR_PROBE_OUT;
if (out) {
  const t0 = performance.now();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
  };
  const gc: ProbeReport['gc'] = {};
  const pauses: Array<{ kind: string; ms: number; atMs: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kinds[(e as unknown as { detail?: { kind: number } }).detail?.kind ?? -1] ?? 'other';
      const g = gc[kind] ?? { count: 0, totalMs: 0, maxMs: 0 };
      gc[kind] = g;
      g.count++;
      g.totalMs += e.duration;
      g.maxMs = Math.max(g.maxMs, e.duration);
      pauses.push({ kind, ms: e.duration, atMs: e.startTime - t0 });
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  // The first SIGUSR2 marks the start of the measured phase (forget startup and warm-up), the
  // second its end (shutdown is not measured).
  let marks = 0;
  process.on('SIGUSR2', () => {
    marks++;
    if (marks === 1) {
      loop.reset();
      for (const k of Object.keys(gc)) delete gc[k];
      pauses.length = 0;
    } else {
      loop.disable();
      obs.disconnect();
    }
  });
  process.on('exit', () => {
    if (marks < 2) loop.disable();
    const ns = 1e6;
    const report: ProbeReport = {
      loopDelayMs: { p50: loop.percentile(50) / ns, p99: loop.percentile(99) / ns, max: loop.max / ns },
      gc,
      longest: pauses
        .slice()
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 20)
        .sort((a, b) => a.atMs - b.atMs),
    };
    writeFileSync(out, JSON.stringify(report));
  });
}
