// Over-the-wire benchmark: scorecar runs as its own process (`bin/scorecar.js start`), this
// process is both the load generator (OTLP/HTTP protobuf) and the downstream sink. Reports
// spans per CPU-second of the scorecar process (its "one core" figure: user + system time of
// all its threads, from /proc), wall throughput, and the latency scorecar adds between a request
// leaving the sender and its bytes reaching downstream.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPAN_STRIDE, scanTraceRequest } from '../src/wire/index.ts';
import { type ChildScorecar, type MetricsPage, readMetrics, startChild } from './child.ts';
import { makeRequest } from './payload.ts';
import type { ProbeReport } from './probe.ts';

const CLK_TCK = 100;
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

interface ProcStat {
  user: number;
  system: number;
  minorFaults: number;
}

/** CPU seconds per thread name (main thread, V8 workers, libuv pool) of a process. */
export function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')).replace(/\d+$/, '#');
      const p = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out[`${name} user`] = (out[`${name} user`] ?? 0) + Number(p[11]) / CLK_TCK;
      out[`${name} sys`] = (out[`${name} sys`] ?? 0) + Number(p[12]) / CLK_TCK;
    } catch {
      // the thread ended
    }
  }
  return out;
}

export function procStat(pid: number): ProcStat {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const p = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state(0) ppid pgrp session tty tpgid flags minflt(7) cminflt
  // majflt cmajflt utime(11) stime(12).
  return { user: Number(p[11]) / CLK_TCK, system: Number(p[12]) / CLK_TCK, minorFaults: Number(p[7]) };
}

interface Sink {
  url: string;
  bytes: number;
  requests: number;
  /** First arrival time of each tracked trace id (the first trace of every ScopeSpans). */
  arrivals: Map<string, number>;
  track: boolean;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const sink: Sink = { url: '', bytes: 0, requests: 0, arrivals: new Map(), track: false, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      sink.bytes += c.length;
      if (sink.track) chunks.push(c);
    });
    req.on('end', () => {
      sink.requests++;
      if (sink.track) {
        const now = performance.now();
        const b = Buffer.concat(chunks);
        for (const rs of scanTraceRequest(b).resources)
          for (const ss of rs.scopes) {
            const off = ss.spans[2];
            if (off === undefined || off < 0) continue;
            // First arrival only: with scorers, the evaluation span of a scored trace is
            // exported later under the same trace id.
            const id = b.toString('hex', off, off + 16);
            if (!sink.arrivals.has(id)) sink.arrivals.set(id, now);
          }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = () =>
    new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return sink;
}

function post(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

/**
 * Request bodies whose trace ids are rewritten per use, so every request carries new traces.
 * Bodies are rewritten in place, not copied: a body is reused only after `n` further requests,
 * and at most `concurrency` (< n) are in flight, each fully written before its response.
 */
export function bodyPool(n: number, tracesPerRequest: number) {
  const reqs = Array.from({ length: n }, (_, i) => makeRequest({ tracesPerRequest }, i));
  const offsets = reqs.map((r) => {
    const o: number[] = [];
    for (const rs of scanTraceRequest(r.body).resources)
      for (const ss of rs.scopes) for (let j = 0; j < ss.spans.length; j += SPAN_STRIDE) o.push(ss.spans[j + 2]!);
    return o;
  });
  let seq = 0;
  return {
    spansPer: reqs[0]!.spans,
    bytesPer: reqs[0]!.body.length,
    next(): { body: Buffer; firstTrace: string } {
      const i = seq % n;
      const r = reqs[i]!;
      seq++;
      for (const off of offsets[i]!) r.body.writeUInt32BE(seq, off);
      const first = offsets[i]![0]!;
      return { body: r.body, firstTrace: r.body.toString('hex', first, first + 16) };
    },
  };
}

function readProbe(file: string): ProbeReport | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ProbeReport;
  } catch {
    return undefined;
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * `nodeOptions` are Node options for the scorecar process; words written `v8:--flag` are V8
 * flags NODE_OPTIONS refuses (e.g. v8:--trace-gc), set by the probe at startup instead.
 */
function probeEnv(file: string, nodeOptions = ''): Record<string, string> {
  const words = nodeOptions.split(' ').filter(Boolean);
  return {
    NODE_OPTIONS: [`--import ${PROBE}`, ...words.filter((w) => !w.startsWith('v8:'))].join(' '),
    SCORECAR_PROBE_OUT: file,
    SCORECAR_PROBE_V8_FLAGS: words
      .filter((w) => w.startsWith('v8:'))
      .map((w) => w.slice(3))
      .join(' '),
  };
}

/** What the scorecar process did with the spans of the measured phase (deltas of its /metrics). */
export interface PipelineCounters {
  /** Spans the assembler buffered, and spans it only forwarded (no scorer could select their trace). */
  spansBuffered: number;
  spansNotSampled: number;
  spansEvicted: number;
  tracesEvicted: number;
  tracesCompleted: number;
  /** (trace, scorer) pairs the filter passed, and pairs inside the sample the filter excluded. */
  selected: number;
  filteredOut: number;
  /** Sampled traces dropped before their view was built (selection queue full). */
  viewsDropped: number;
  /** Jobs not run (scoring queue full, mostly), and assessments emitted. */
  jobsDropped: number;
  assessments: number;
}

function counters(m: MetricsPage): PipelineCounters {
  const spans = (outcome: string) => m.sum('scorecar_assembler_spans_total', { outcome });
  return {
    spansBuffered: spans('buffered'),
    spansNotSampled: spans('not_sampled'),
    spansEvicted: spans('evicted'),
    tracesEvicted: m.sum('scorecar_assembler_traces_evicted_total'),
    tracesCompleted: m.sum('scorecar_assembler_traces_completed_total'),
    selected: m.sum('scorecar_sampler_selected_total'),
    filteredOut: m.sum('scorecar_sampler_filtered_out_total'),
    viewsDropped: m.sum('scorecar_sampler_dropped_traces_total'),
    jobsDropped: m.sum('scorecar_scoring_jobs_dropped_total'),
    assessments: m.sum('scorecar_assessments_total'),
  };
}

function minus(a: PipelineCounters, b: PipelineCounters): PipelineCounters {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof PipelineCounters)[]) out[k] = a[k] - b[k];
  return out;
}

export interface ThroughputResult {
  /** Accepted spans per CPU-second (user + system) of the scorecar process. */
  spansPerCpuSec: number;
  spansPerSec: number;
  cpu: number;
  userShare: number;
  accepted: number;
  forwarded: number;
  /** Page faults per accepted span (fresh memory the kernel had to map). */
  faultsPerKSpan: number;
  /** Share of the scorecar process's CPU time spent in GC pauses on its main thread. */
  gcShare: number;
  /** CPU seconds by thread name over the measured interval. */
  threads: Record<string, number>;
  /** Peak resident set size of the scorecar process (VmHWM), bytes. */
  peakRss: number;
  /** Over the measured interval; `assessments` also counts jobs still queued at its end. */
  counters: PipelineCounters;
  wall: number;
  probe: ProbeReport | undefined;
  output: string;
}

export interface ThroughputOptions {
  concurrency?: number;
  /** false: no downstream configured (scoring only). */
  downstream?: boolean;
  /** Extra node flags for the scorecar process. */
  nodeOptions?: string;
  /** Extra YAML appended to the scorecar config (e.g. `scorers:`, `experiments:`). */
  yaml?: string;
  /** Extra keys of the assembler section, e.g. "settleMs: 600000". */
  assembler?: string;
  tracesPerRequest?: number;
  /** Seconds of traffic before measuring (default 2.5). */
  warmupSeconds?: number;
}

export async function throughput(seconds: number, opts: ThroughputOptions = {}): Promise<ThroughputResult> {
  const concurrency = opts.concurrency ?? 8;
  const sink = await startSink();
  const probeFile = join(tmpdir(), `scorecar-probe-${process.pid}-${Date.now()}.json`);
  const sc: ChildScorecar = await startChild(
    `exporters: {otlp: {endpoint: "${opts.downstream === false ? '' : sink.url}", queue: {maxBytes: 268435456}}}\nassembler: {maxBytes: 2147483648${opts.assembler ? `, ${opts.assembler}` : ''}}\nlimits: {memoryBytes: 4294967296}\nlogging: {level: warn}\n${opts.yaml ?? ''}`,
    probeEnv(probeFile, opts.nodeOptions),
  );
  const pool = bodyPool(4 * concurrency, opts.tracesPerRequest ?? 64);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `${sc.httpUrl}/v1/traces`;
  // Warm-up: JIT, connections, and a buffer of traces at its steady-state size (settle window).
  const warmUntil = performance.now() + (opts.warmupSeconds ?? 2.5) * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < warmUntil) await post(agent, url, pool.next().body);
    }),
  );
  sc.proc.kill('SIGUSR2'); // the probe starts its measured phase
  const m0 = await readMetrics(sc.adminUrl);
  const s0 = procStat(sc.proc.pid!);
  const th0 = threadCpu(sc.proc.pid!);
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const s = await post(agent, url, pool.next().body);
        if (s !== 200) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  sc.proc.kill('SIGUSR2'); // end of the measured phase
  const s1 = procStat(sc.proc.pid!);
  const th1 = threadCpu(sc.proc.pid!);
  const m1 = await readMetrics(sc.adminUrl);
  const threads: Record<string, number> = {};
  for (const [k, v] of Object.entries(th1)) threads[k] = v - (th0[k] ?? 0);
  const accepted = m1.sum('scorecar_receiver_accepted_items_total') - m0.sum('scorecar_receiver_accepted_items_total');
  const peakRss = sc.peakRss();
  await new Promise((r) => setTimeout(r, 500));
  const forwarded = (await readMetrics(sc.adminUrl)).sum('scorecar_exporter_sent_items_total');
  agent.destroy();
  await sc.terminate();
  await sink.close();
  const probe = readProbe(probeFile);
  const cpu = s1.user + s1.system - s0.user - s0.system;
  const gcMs = probe ? Object.values(probe.gc).reduce((n, g) => n + g.totalMs, 0) : 0;
  return {
    spansPerCpuSec: accepted / cpu,
    spansPerSec: accepted / wall,
    cpu,
    userShare: (s1.user - s0.user) / cpu,
    accepted,
    forwarded,
    faultsPerKSpan: ((s1.minorFaults - s0.minorFaults) / accepted) * 1000,
    // Whole-run GC time over measured CPU: an approximation (the warm-up is included).
    gcShare: gcMs / 1000 / (s1.user + s1.system),
    threads,
    peakRss,
    counters: minus(counters(m1), counters(m0)),
    wall,
    probe,
    output: sc.output(),
  };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

export interface LatencyResult {
  direct: { p50: number; p99: number; max: number; n: number };
  via: { p50: number; p99: number; max: number; n: number };
  /** Latencies through scorecar, in send order. */
  viaAll: number[];
  probe: ProbeReport | undefined;
  /** What the scorecar process printed (e.g. --trace-gc lines). */
  output: string;
}

export interface LatencyOptions {
  requestsPerSec?: number;
  seconds?: number;
  tracesPerRequest?: number;
  yaml?: string;
  nodeOptions?: string;
  /** Seconds of traffic through scorecar before measuring (JIT, connections); 0 measures cold. */
  warmupSeconds?: number;
}

/**
 * p50/p99 from send to downstream arrival, directly and through scorecar, at a steady request
 * rate. Direct and via phases alternate in slices so both see the same machine state.
 */
export async function latency(opts: LatencyOptions = {}): Promise<LatencyResult> {
  const rate = opts.requestsPerSec ?? 100;
  const seconds = opts.seconds ?? 8;
  const sink = await startSink();
  sink.track = true;
  const probeFile = join(tmpdir(), `scorecar-probe-${process.pid}-${Date.now()}.json`);
  const sc = await startChild(
    `exporters: {otlp: {endpoint: "${sink.url}"}}\nlogging: {level: warn}\n${opts.yaml ?? ''}`,
    probeEnv(probeFile, opts.nodeOptions),
  );
  const pool = bodyPool(64, opts.tracesPerRequest ?? 16);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const run = async (url: string, n: number): Promise<Map<string, number>> => {
    const sent = new Map<string, number>();
    const pending: Promise<number>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const { body, firstTrace } = pool.next();
      sent.set(firstTrace, performance.now());
      pending.push(post(agent, url, body));
    }
    await Promise.all(pending);
    return sent;
  };
  const directUrl = `${sink.url}/v1/traces`;
  const viaUrl = `${sc.httpUrl}/v1/traces`;
  const warm = opts.warmupSeconds ?? 2;
  if (warm > 0) {
    await run(viaUrl, Math.round(warm * rate));
    await run(directUrl, Math.round(warm * rate));
  }
  sc.proc.kill('SIGUSR2'); // the probe starts its measured phase
  const sentDirect = new Map<string, number>();
  const sentVia = new Map<string, number>();
  const slices = 4;
  for (let k = 0; k < slices; k++) {
    for (const [id, t] of await run(directUrl, Math.round((seconds * rate) / slices))) sentDirect.set(id, t);
    for (const [id, t] of await run(viaUrl, Math.round((seconds * rate) / slices))) sentVia.set(id, t);
  }
  await new Promise((r) => setTimeout(r, 500));
  sc.proc.kill('SIGUSR2'); // end of the measured phase
  const lat = (sent: Map<string, number>): number[] => {
    const out: number[] = [];
    for (const [id, t] of sent) {
      const a = sink.arrivals.get(id);
      if (a !== undefined) out.push(a - t);
    }
    return out;
  };
  const direct = lat(sentDirect);
  const via = lat(sentVia);
  agent.destroy();
  await sc.terminate();
  await sink.close();
  const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs), n: xs.length });
  return { direct: stats(direct), via: stats(via), viaAll: via, probe: readProbe(probeFile), output: sc.output() };
}

if (import.meta.main) {
  const t = await throughput(Number(process.argv[2] ?? 10));
  console.log(
    `wire: ${Math.round(t.spansPerCpuSec).toLocaleString()} spans per scorecar CPU-second; ${Math.round(t.spansPerSec).toLocaleString()} spans/s wall (${t.accepted} spans, ${t.cpu.toFixed(1)} CPU s, ${(t.userShare * 100).toFixed(0)}% user, ${t.faultsPerKSpan.toFixed(0)} page faults/1k spans, GC ${(t.gcShare * 100).toFixed(1)}%)`,
  );
  const l = await latency();
  const f = (x: { p50: number; p99: number; max: number }) => `${x.p50.toFixed(2)}/${x.p99.toFixed(2)}/${x.max.toFixed(1)}`;
  console.log(`latency send->downstream p50/p99/max: direct ${f(l.direct)} ms, via scorecar ${f(l.via)} ms`);
  if (l.probe) console.log(`scorecar event-loop delay p99 ${l.probe.loopDelayMs.p99.toFixed(1)} ms, max ${l.probe.loopDelayMs.max.toFixed(1)} ms; GC ${JSON.stringify(l.probe.gc)}`);
}
