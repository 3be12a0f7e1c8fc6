// Archive figures (issue 9): how fast the archive writes while the data plane runs, how fast a
// backfill scores archived traces, and how long a search takes over a million archived traces.
//  - write: scorecar in its own process archiving every trace of the realistic payload (no
//    scorer, so every trace is assembled for the archive alone), OTLP/HTTP at full speed: rows
//    committed per second, per CPU-second of the archive's writer thread, and the wire MB/s that
//    represents; the data plane's spans/s meanwhile, and the Parquet bytes per row.
//  - backfill: the same traces archived, then a backfill of a code scorer at rate 1.0: traces/s.
//  - search: a traces table of 1,000,000 synthetic rows over 7 days (built once, cached under
//    .cache/bench-archive), read in-process: a newest-first page, a one-hour page with a
//    trace-level filter, a one-day page with a span filter (reads the spans column), and a
//    lookup by id; median of 5 warm runs and the first (cold) one.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { TableWriter, TraceArchiveReader } from '../src/archive/index.ts';
import { readMetrics, ROOT, startChild } from './child.ts';
import { bodyPool, threadCpu } from './wire.ts';


function post(agent: http.Agent, url: string, body: Buffer, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const YAML = `
exporters: {otlp: {endpoint: ""}}
assembler: {maxBytes: 2147483648, settleMs: 500}
limits: {memoryBytes: 4294967296}
logging: {level: warn}
archive: {tables: {chat-app: {}}, commitIntervalMs: 2000, maxBufferBytes: 1073741824}
`;

export interface ArchiveWriteResult {
  rowsPerSec: number;
  rowsPerWriterCpuSec: number;
  wireMBPerWriterCpuSec: number;
  spansPerSec: number;
  parquetBytesPerRow: number;
  writerCpuShare: number;
}

/** Archive throughput while the data plane runs (see the header). */
export async function archiveWrite(seconds: number): Promise<ArchiveWriteResult> {
  const sc = await startChild(YAML);
  const pool = bodyPool(16, 64);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const url = `${sc.httpUrl}/v1/traces`;
  const m0 = await readMetrics(sc.adminUrl);
  const th0 = threadCpu(sc.proc.pid!);
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let wireBytes = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < until) {
        const b = pool.next();
        const s = await post(agent, url, b.body);
        if (s === 200) wireBytes += b.body.length;
        else await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  // Let the writer commit what was sent, then read its work.
  const sent = (await readMetrics(sc.adminUrl)).sum('scorecar_archive_received_total');
  for (let i = 0; i < 600; i++) {
    const m = await readMetrics(sc.adminUrl);
    if (m.sum('scorecar_archive_rows_total') + m.sum('scorecar_archive_dropped_total') >= sent) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const wall = (performance.now() - t0) / 1000;
  const th1 = threadCpu(sc.proc.pid!);
  const m1 = await readMetrics(sc.adminUrl);
  agent.destroy();
  await sc.terminate();
  let writerCpu = 0;
  let total = 0;
  for (const [k, v] of Object.entries(th1)) {
    const d = v - (th0[k] ?? 0);
    total += d;
    if (k.startsWith('WorkerThread')) writerCpu += d;
  }
  const rows = m1.sum('scorecar_archive_rows_total', { table: 'traces' }) - m0.sum('scorecar_archive_rows_total', { table: 'traces' });
  const spans = m1.sum('scorecar_receiver_accepted_items_total') - m0.sum('scorecar_receiver_accepted_items_total');
  const fileBytes = m1.sum('scorecar_archive_file_bytes_total', { table: 'traces' });
  return {
    rowsPerSec: rows / wall,
    rowsPerWriterCpuSec: rows / Math.max(writerCpu, 0.001),
    wireMBPerWriterCpuSec: wireBytes / 1e6 / Math.max(writerCpu, 0.001),
    spansPerSec: spans / seconds,
    parquetBytesPerRow: fileBytes / Math.max(rows, 1),
    writerCpuShare: writerCpu / Math.max(total, 0.001),
  };
}

export interface BackfillResult {
  traces: number;
  tracesPerSec: number;
}

/** A backfill of a code scorer at rate 1.0 over `traces` archived realistic traces. */
export async function backfillRate(traces: number): Promise<BackfillResult> {
  const sc = await startChild(
    `${YAML}\nscorers:\n  - experiment: chat-app\n    name: one\n    definition: { type: code, source: "(ctx) => 1" }\n    sampleRate: 0\n`,
  );
  const pool = bodyPool(16, 64);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let sent = 0;
  while (sent < traces) {
    if ((await post(agent, `${sc.httpUrl}/v1/traces`, pool.next().body)) === 200) sent += 64;
  }
  for (let i = 0; i < 1200; i++) {
    const m = await readMetrics(sc.adminUrl);
    if (m.sum('scorecar_archive_rows_total') >= sent) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = `${sc.adminUrl}/api/v1`;
  const t0 = performance.now();
  const res = await fetch(`${api}/experiments/chat-app/backfills`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scorers: [{ name: 'one', sampleRate: 1 }], startTime: 0 }),
  });
  const job = (await res.json()) as { jobId: string };
  let state = { state: 'running', tracesScanned: 0, scored: 0 };
  while (state.state === 'running' || state.state === 'pending') {
    await new Promise((r) => setTimeout(r, 100));
    state = (await (await fetch(`${api}/backfills/${job.jobId}`)).json()) as typeof state;
  }
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  await sc.terminate();
  return { traces: state.tracesScanned, tracesPerSec: state.tracesScanned / wall };
}

const SEARCH_ROWS = 1_000_000;
const ROWS_PER_FILE = 20_000;
const DAY_US = 86_400_000_000;

/** The cached 1M-row table (built on first use: a minute or two). */
async function millionRowTable(): Promise<{ path: string; endUs: number }> {
  const dir = join(ROOT, '.cache', 'bench-archive', `v1-${SEARCH_ROWS}`);
  const endUs = Date.UTC(2025, 5, 8) * 1000;
  if (existsSync(join(dir, 'traces', '.complete'))) return { path: dir, endUs };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const w = await TableWriter.open('traces', join(dir, 'traces'), 'scorecar bench');
  const startUs = endUs - 7 * DAY_US;
  const step = (7 * DAY_US) / SEARCH_ROWS;
  for (let i = 0; i < SEARCH_ROWS; i++) {
    const t = Math.floor(startUs + i * step);
    const id = (BigInt(i) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32);
    const root = {
      trace_id: id,
      span_id: id.slice(0, 16),
      trace_state: '',
      flags: 1,
      name: i % 10 === 0 ? 'retrieve' : 'chat',
      kind: 'SPAN_KIND_INTERNAL',
      attributes: { 'mlflow.spanType': '"\\"CHAIN\\""', 'session.id': `"s-${i % 50}"` },
      dropped_attributes_count: null,
      dropped_events_count: null,
      dropped_links_count: null,
      parent_id: null,
      start_time: t,
      end_time: t + 1_500_000,
      status_code: i % 20 === 0 ? 'STATUS_CODE_ERROR' : 'STATUS_CODE_OK',
      status_message: '',
      events: [],
    };
    w.add(
      {
        trace_id: id,
        experiment_id: 'chat-app',
        request_time: t,
        state: i % 20 === 0 ? 'ERROR' : 'OK',
        execution_duration_ms: BigInt(1500 + (i % 700)),
        request_preview: `question ${i} about shipping and refunds`,
        response_preview: `answer ${i}: the refund policy says …`,
        request: JSON.stringify({ question: `question ${i}` }),
        response: JSON.stringify(`answer ${i}`),
        trace_metadata: { 'session.id': `s-${i % 50}`, 'service.name': 'chat-app' },
        tags: { env: i % 3 === 0 ? 'prod' : 'staging' },
        spans: [root],
      },
      new Date(Math.floor(t / 1000)).toISOString().slice(0, 10),
      0,
      0,
    );
    if ((i + 1) % ROWS_PER_FILE === 0) {
      const r = await w.flush('chat-app', Date.now());
      if (r.error) throw new Error(r.error);
    }
  }
  await w.flush('chat-app', Date.now());
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'traces', '.complete'), '');
  return { path: dir, endUs };
}

export interface SearchResult {
  rows: number;
  files: number;
  /** Median of warm runs, and the first run, in ms. */
  newestPage: [number, number];
  hourFiltered: [number, number];
  daySpanFilter: [number, number];
  getById: [number, number];
  hits: { hour: number; day: number };
}

async function time(fn: () => Promise<unknown>): Promise<[number, number]> {
  const runs: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  const first = runs[0]!;
  const warm = runs.slice(1).sort((a, b) => a - b);
  return [warm[Math.floor(warm.length / 2)]!, first];
}

/** Search latency over the 1M-row table (see the header). */
export async function searchLatency(): Promise<SearchResult> {
  const { path, endUs } = await millionRowTable();
  const reader = new TraceArchiveReader(path, 'chat-app');
  const none = async () => [];
  let hour = 0;
  let day = 0;
  const endMs = endUs / 1000;
  const files = (await reader.rangeFiles(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)).length;
  const newestPage = await time(() => reader.search({ maxResults: 100 }, none));
  const hourFiltered = await time(async () => {
    const r = await reader.search({ maxResults: 100, startTimeMs: endMs - 3_600_000, endTimeMs: endMs, filter: "trace.status = 'ERROR' AND tag.env = 'prod'" }, none);
    hour = r.traces.length;
  });
  const daySpanFilter = await time(async () => {
    const r = await reader.search({ maxResults: 100, startTimeMs: endMs - 86_400_000, endTimeMs: endMs, filter: "span.name = 'retrieve'" }, none);
    day = r.traces.length;
  });
  const probe = (BigInt(Math.floor(SEARCH_ROWS / 3)) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32);
  const getById = await time(async () => {
    if (!(await reader.get(probe))) throw new Error('probe trace not found');
  });
  return { rows: SEARCH_ROWS, files, newestPage, hourFiltered, daySpanFilter, getById, hits: { hour, day } };
}
