// The archive stage: per experiment, every completed trace and every assessment goes to the
// experiment's Delta tables (writer.ts), written by a worker thread (worker.ts).
//
// On the receive thread it only does cheap work: the experiment of a completed trace (its
// resource, decoded once), a copy of the trace's bytes into one transferable buffer, and a
// postMessage. The trace's GenAI view, its row, the Parquet encoding and the commits happen on
// the writer thread. What waits there for its commit is counted (an estimate: VIEW_BYTES_PER_
// WIRE_BYTE times the trace's wire size) against archive.maxBufferBytes, beyond which traces are
// dropped and counted, and against the memory budget (limits.memoryBytes), so senders are asked
// to slow down before the heap grows.
//
// Trace interest: an archived experiment's traces must be reassembled even when no scorer could
// sample them, so the pipeline asks this stage too (wants), and only those are buffered.
//
// Which experiments are archived: archive.tables (config as code, applied at every start) and
// POST/DELETE /api/v1/experiments/{exp}/archival at run time, remembered in
// <storage.dir>/archival.json so a restart keeps them.
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Assessment } from '../assessments/index.ts';
import type { CompleteTrace, TraceInterest } from '../assembly/index.ts';
import type { Component, Consumer } from '../component/index.ts';
import type { ArchiveConfig } from '../config/index.ts';
import { experimentOfResource, resolveExperiment } from '../genai/index.ts';
import { errorFields, type Logger, type MetricsRegistry, ScorecarError } from '../util/index.ts';
import type { ResourceRef } from '../wire/index.ts';
import { type HostOptions, type Item, type Reply, type Report, type Request, WriterHost } from './host.ts';
import { packTrace } from './rows.ts';
import {
  type ArchivedTrace,
  type SearchQuery,
  type TraceArchiveReader as Reader,
  TraceArchiveReader,
  type TraceInfo,
} from './search.ts';
import type { ArchiveStatus } from './writer.ts';

/** Decoded rows take about this many times their trace's wire size (as a trace view does). */
export const ROW_BYTES_PER_WIRE_BYTE = 3;

export const ARCHIVAL_FILE_NAME = 'archival.json';

export interface ArchiverOptions {
  config: ArchiveConfig;
  storageDir: string;
  resolution: readonly string[];
  defaultExperiment: string;
  /** 'scorecar <version>': commitInfo.engineInfo and the files' created_by. */
  engineInfo: string;
  metrics: MetricsRegistry;
  log: Logger;
  /** Run the writer on this thread (tests); the default is a worker thread. */
  inline?: boolean;
  /**
   * Wire bytes of traces still being assembled, which may come to the archive when they
   * complete (the assembler's buffer): counted by the receive-side refusal (precheck).
   */
  upstreamBytes?: () => number;
}

/** One archived experiment, as the API shows it. */
export interface Archival {
  experimentId: string;
  tablePath: string;
  /** The traces and assessments tables (Delta) under tablePath. */
  tracesTable: string;
  assessmentsTable: string;
  source: 'config' | 'api';
  enabledAt: string;
}

interface Persisted {
  experiments: Record<string, { tablePath: string; enabledAt: string }>;
}

/** The writer, wherever it runs. */
interface WriterPort {
  item(it: Item, transfer?: ArrayBuffer[]): void;
  request(req: Request): Promise<Reply>;
  close(): Promise<void>;
}

function workerUrl(): URL {
  // Sources run as .ts under type stripping; a compiled build has .js next to this file.
  return new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
}

export class Archiver implements Consumer<CompleteTrace>, TraceInterest, Component {
  private readonly o: ArchiverOptions;
  private readonly log: Logger;
  private readonly enabled = new Map<string, Archival>();
  private readonly resourceExperiment = new WeakMap<ResourceRef, string | null>();
  private port: WriterPort | undefined;
  private pendingBytes = 0;
  private closed = false;
  private warnedFull = false;
  private readonly m;
  readonly defaultDir: string;

  constructor(o: ArchiverOptions) {
    this.o = o;
    this.log = o.log;
    this.defaultDir = o.config.dir ? resolve(o.config.dir) : resolve(o.storageDir, 'archive');
    const m = o.metrics;
    this.m = {
      rows: m.counter('scorecar_archive_rows_total', 'Rows committed to archive tables', [
        'experiment',
        'table',
      ]),
      files: m.counter('scorecar_archive_files_total', 'Parquet files committed to archive tables', [
        'experiment',
        'table',
      ]),
      bytes: m.counter(
        'scorecar_archive_file_bytes_total',
        'Bytes of Parquet files committed to archive tables',
        ['experiment', 'table'],
      ),
      commits: m.counter('scorecar_archive_commits_total', 'Delta commits to archive tables', [
        'experiment',
        'table',
      ]),
      commitErrors: m.counter(
        'scorecar_archive_commit_errors_total',
        'Failed archive commits (rows kept for the next one unless the table refuses them)',
        ['experiment', 'table'],
      ),
      dropped: m.counter(
        'scorecar_archive_dropped_total',
        'Traces and assessments of archived experiments not written, by reason (duplicate: archived before)',
        ['experiment', 'table', 'reason'],
      ),
      received: m.counter(
        'scorecar_archive_received_total',
        'Traces and assessments handed to the archive writer',
        ['experiment', 'table'],
      ),
    };
    m.gauge(
      'scorecar_archive_buffer_bytes',
      'Estimated memory of archive rows waiting for their commit',
      [],
      () => this.pendingBytes,
    );
  }

  /** Memory held for the archive (the memory budget counts it). */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** The archived experiments. */
  list(): Archival[] {
    return [...this.enabled.values()].sort((a, b) => a.experimentId.localeCompare(b.experimentId));
  }

  get(experimentId: string): Archival | undefined {
    return this.enabled.get(experimentId);
  }

  private readonly readers = new Map<string, Reader>();

  private readerFor(a: Archival): Reader {
    let r = this.readers.get(a.experimentId);
    if (!r || r.tablePath !== a.tablePath) {
      r = new TraceArchiveReader(a.tablePath, a.experimentId);
      this.readers.set(a.experimentId, r);
    }
    return r;
  }

  /** Searches an archived experiment's traces (NOT_FOUND when it is not archived). */
  search(
    experimentId: string,
    q: SearchQuery,
    assessmentsOf: (traceId: string) => Promise<Assessment[]>,
  ): Promise<{ traces: TraceInfo[]; nextPageToken?: string }> {
    const a = this.enabled.get(experimentId);
    if (!a) {
      return Promise.reject(
        new ScorecarError(
          'NOT_FOUND',
          `experiment ${experimentId} is not archived (POST /api/v1/experiments/{exp}/archival)`,
          {
            details: { resource: 'archival' },
          },
        ),
      );
    }
    return this.readerFor(a).search(q, assessmentsOf);
  }

  /** A trace with its spans from whichever archived experiment holds it. */
  async getTrace(traceId: string): Promise<ArchivedTrace | undefined> {
    for (const a of this.list()) {
      const t = await this.readerFor(a).get(traceId);
      if (t) return t;
    }
    return undefined;
  }

  /** Where an experiment's tables go when no path is given. */
  defaultTablePath(experimentId: string): string {
    return join(this.defaultDir, encodeURIComponent(experimentId));
  }

  async start(): Promise<void> {
    if (this.port) return;
    this.port = this.o.inline ? this.inlinePort() : await this.workerPort();
    const persisted = this.readPersisted();
    const wanted = new Map<string, { tablePath: string; enabledAt: string; source: Archival['source'] }>();
    for (const [exp, p] of Object.entries(persisted.experiments)) wanted.set(exp, { ...p, source: 'api' });
    for (const [exp, t] of Object.entries(this.o.config.tables)) {
      wanted.set(exp, {
        tablePath: this.absolute(t.tablePath ?? this.defaultTablePath(exp)),
        enabledAt: wanted.get(exp)?.enabledAt ?? new Date().toISOString(),
        source: 'config',
      });
    }
    for (const [exp, w] of wanted) await this.openTables(exp, w.tablePath, w.source, w.enabledAt);
  }

  private absolute(p: string): string {
    return isAbsolute(p) ? p : resolve(p);
  }

  private async openTables(
    experimentId: string,
    tablePath: string,
    source: Archival['source'],
    enabledAt: string,
  ): Promise<Archival> {
    const reply = await this.port!.request({ op: 'open', experimentId, tablePath });
    if (!reply.ok) {
      throw new ScorecarError(
        reply.code === 'TABLE_INCOMPATIBLE' ? 'TABLE_INCOMPATIBLE' : 'INTERNAL',
        reply.message,
      );
    }
    const a: Archival = {
      experimentId,
      tablePath,
      tracesTable: join(tablePath, 'traces'),
      assessmentsTable: join(tablePath, 'assessments'),
      source,
      enabledAt,
    };
    this.enabled.set(experimentId, a);
    return a;
  }

  /** Archives an experiment from now on (its tables are created when missing). */
  async enable(experimentId: string, tablePath?: string): Promise<Archival> {
    if (this.closed || !this.port) throw new ScorecarError('SHUTTING_DOWN', 'the archive is shutting down');
    const path = this.absolute(tablePath ?? this.defaultTablePath(experimentId));
    const current = this.enabled.get(experimentId);
    if (current && current.tablePath === path) return current;
    const a = await this.openTables(experimentId, path, 'api', new Date().toISOString());
    await this.persist();
    this.log.info('archival enabled', { experiment: experimentId, tablePath: path });
    return a;
  }

  /** Stops archiving an experiment: what it buffers is committed first. False when it was not archived. */
  async disable(experimentId: string): Promise<boolean> {
    if (!this.enabled.has(experimentId)) return false;
    this.enabled.delete(experimentId);
    const reply = await this.port!.request({ op: 'close', experimentId });
    await this.persist();
    this.log.info('archival disabled', { experiment: experimentId });
    if (!reply.ok) throw new ScorecarError('INTERNAL', reply.message);
    return true;
  }

  /** Table versions and row counts of every archived experiment (from the writer). */
  async status(): Promise<ArchiveStatus[]> {
    if (!this.port) return [];
    const reply = await this.port.request({ op: 'status' });
    if (!reply.ok) throw new ScorecarError('INTERNAL', reply.message);
    return reply.value as ArchiveStatus[];
  }

  /** Commits everything buffered now (tests, shutdown). */
  async flush(): Promise<void> {
    if (!this.port) return;
    const reply = await this.port.request({ op: 'flush' });
    if (!reply.ok) throw new ScorecarError('INTERNAL', reply.message);
  }

  /** Runs retention, compaction and vacuum now. */
  async maintain(): Promise<{ removedFiles: number; deletedFiles: number; compactedFiles: number }> {
    if (!this.port) return { removedFiles: 0, deletedFiles: 0, compactedFiles: 0 };
    const reply = await this.port.request({ op: 'maintain' });
    if (!reply.ok) throw new ScorecarError('INTERNAL', reply.message);
    return reply.value as { removedFiles: number; deletedFiles: number; compactedFiles: number };
  }

  private readPersisted(): Persisted {
    try {
      const p = JSON.parse(readFileSync(join(this.o.storageDir, ARCHIVAL_FILE_NAME), 'utf8')) as Persisted;
      return p && typeof p.experiments === 'object' ? p : { experiments: {} };
    } catch {
      return { experiments: {} };
    }
  }

  private async persist(): Promise<void> {
    const experiments: Persisted['experiments'] = {};
    for (const a of this.enabled.values()) {
      if (a.source === 'api')
        experiments[a.experimentId] = { tablePath: a.tablePath, enabledAt: a.enabledAt };
    }
    await mkdir(this.o.storageDir, { recursive: true });
    const file = join(this.o.storageDir, ARCHIVAL_FILE_NAME);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ experiments } satisfies Persisted, null, 2)}\n`);
    await rename(tmp, file);
  }

  // ------------------------------------------------------------------ the data path

  /**
   * Asked by the receivers before they read a request: when the archive's buffer, plus what the
   * assembler still holds (it may come here once complete), plus this request would pass three
   * quarters of archive.maxBufferBytes, trace requests are refused (429 MEMORY_BUDGET_FULL with a
   * retry hint: senders keep their data and retry) until commits catch up. Only beyond the whole
   * buffer are completed traces dropped (and counted).
   */
  precheck(signal: string, bytes: number): void {
    if (signal !== 'traces' || this.enabled.size === 0) return;
    const upstream = this.o.upstreamBytes?.() ?? 0;
    if (
      this.pendingBytes + (upstream + bytes) * ROW_BYTES_PER_WIRE_BYTE >
      this.o.config.maxBufferBytes * 0.75
    ) {
      throw new ScorecarError(
        'MEMORY_BUDGET_FULL',
        'the trace archive is behind on its commits (archive.maxBufferBytes); retry after the Retry-After delay',
      );
    }
  }

  wants(idBytes: Uint8Array, idOffset: number, resource: ResourceRef): boolean {
    if (this.enabled.size === 0 || this.closed) return false;
    let exp = this.resourceExperiment.get(resource);
    if (exp === undefined) {
      exp = experimentOfResource(resource, this.o.resolution, this.o.defaultExperiment) ?? null;
      this.resourceExperiment.set(resource, exp);
    }
    // A span: rule decides only once the root span is decoded: keep the trace, decide then.
    if (exp === null) return true;
    // Every trace of an archived experiment: the archive keeps them all, whatever the id.
    void idBytes;
    void idOffset;
    return this.enabled.has(exp);
  }

  consume(trace: CompleteTrace): void {
    if (this.enabled.size === 0) return;
    const experimentId = resolveExperiment(trace, this.o.resolution, this.o.defaultExperiment);
    if (!this.enabled.has(experimentId)) return;
    const labels = { experiment: experimentId, table: 'traces' };
    if (this.closed || !this.port) {
      this.m.dropped.inc({ ...labels, reason: 'shutdown' });
      return;
    }
    const est = trace.wireBytes * ROW_BYTES_PER_WIRE_BYTE;
    if (this.pendingBytes + est > this.o.config.maxBufferBytes) {
      this.m.dropped.inc({ ...labels, reason: 'buffer_full' });
      if (!this.warnedFull) {
        this.warnedFull = true;
        this.log.warn(
          'archive buffer full (archive.maxBufferBytes): traces are dropped from the archive until commits catch up',
          {
            bufferBytes: this.pendingBytes,
          },
        );
      }
      return;
    }
    const packed = packTrace(trace);
    this.pendingBytes += est;
    this.m.received.inc(labels);
    this.port.item({ op: 'trace', experimentId, packed, est }, [packed.buf]);
  }

  /** The emitter's listener: every assessment emitted for the first time. */
  readonly onAssessment = (a: Assessment): void => {
    if (!this.enabled.has(a.experimentId)) return;
    const labels = { experiment: a.experimentId, table: 'assessments' };
    if (this.closed || !this.port) {
      this.m.dropped.inc({ ...labels, reason: 'shutdown' });
      return;
    }
    const est = 512 + 2 * ((a.rationale?.length ?? 0) + JSON.stringify(a.metadata).length);
    this.pendingBytes += est;
    this.m.received.inc(labels);
    this.port.item({ op: 'assessment', assessment: a, est });
  };

  private onReport(r: Report): void {
    for (const f of r.flushes) {
      const labels = { experiment: f.experimentId, table: f.table };
      this.pendingBytes -= f.releasedBytes;
      if (f.rows > 0) {
        this.m.rows.inc(labels, f.rows);
        this.m.files.inc(labels, f.files);
        this.m.bytes.inc(labels, f.fileBytes);
        this.m.commits.inc(labels);
      }
      if (f.error) this.m.commitErrors.inc(labels);
      if (f.droppedRows > 0) this.m.dropped.inc({ ...labels, reason: 'incompatible' }, f.droppedRows);
    }
    for (const s of r.skipped) {
      this.pendingBytes -= s.est;
      this.m.dropped.inc({ experiment: s.experimentId, table: s.table, reason: s.reason }, s.count);
    }
    if (this.pendingBytes < 0) this.pendingBytes = 0;
    if (this.warnedFull && this.pendingBytes < this.o.config.maxBufferBytes / 2) this.warnedFull = false;
  }

  private hostOptions(): HostOptions {
    const c = this.o.config;
    return {
      engineInfo: this.o.engineInfo,
      commitIntervalMs: c.commitIntervalMs,
      commitMaxRows: c.commitMaxRows,
      dedupWindow: c.dedupWindow,
      resolution: [...this.o.resolution],
      defaultExperiment: this.o.defaultExperiment,
      retentionDays: c.retentionDays,
      vacuumRetainMs: c.vacuum.retainHours * 3_600_000,
    };
  }

  private tickMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.o.config.commitIntervalMs / 4)));
  }

  /** The writer on this thread: same host, timers here. */
  private inlinePort(): WriterPort {
    const host = new WriterHost(this.hostOptions(), this.log.child({ component: 'archive-writer' }));
    const deliver = (r: Report | undefined) => r && this.onReport(r);
    const tick = setInterval(() => void host.tick().then(deliver), this.tickMs());
    tick.unref();
    const maintainMs = this.o.config.vacuum.intervalMs;
    const maintain =
      maintainMs > 0 ? setInterval(() => void host.request({ op: 'maintain' }), maintainMs) : undefined;
    maintain?.unref();
    return {
      item: (it) => host.item(it),
      request: async (req) => {
        const reply = await host.request(req);
        deliver(host.takeReport());
        return reply;
      },
      close: async () => {
        clearInterval(tick);
        if (maintain) clearInterval(maintain);
      },
    };
  }

  private async workerPort(): Promise<WriterPort> {
    const worker = new Worker(workerUrl(), {
      workerData: {
        options: this.hostOptions(),
        tickMs: this.tickMs(),
        maintainMs: this.o.config.vacuum.intervalMs,
      },
    });
    const waiting = new Map<number, (r: Reply) => void>();
    let nextId = 1;
    let exited = false;
    const fail = (message: string) => {
      for (const [, resolveReply] of waiting) resolveReply({ ok: false, code: 'INTERNAL', message });
      waiting.clear();
    };
    worker.on('error', (e) => {
      this.log.error('the archive writer thread failed', { err: errorFields(e) });
      fail(`the archive writer thread failed: ${e.message}`);
    });
    worker.on('exit', (code) => {
      exited = true;
      if (!this.closed) this.log.error('the archive writer thread exited; archival stopped', { code });
      fail('the archive writer thread exited');
    });
    const ready = new Promise<void>((res, rej) => {
      worker.once('error', rej);
      const writerLog = this.log.child({ thread: 'writer' });
      worker.on(
        'message',
        (
          msg:
            | { kind: 'ready' }
            | { kind: 'report'; report: Report }
            | { kind: 'reply'; id: number; reply: Reply }
            | {
                kind: 'log';
                level: 'debug' | 'info' | 'warn' | 'error';
                msg: string;
                fields: Record<string, unknown>;
              },
        ) => {
          if (msg.kind === 'ready') res();
          else if (msg.kind === 'log') writerLog[msg.level](msg.msg, msg.fields);
          else if (msg.kind === 'report') this.onReport(msg.report);
          else {
            const r = waiting.get(msg.id);
            waiting.delete(msg.id);
            r?.(msg.reply);
          }
        },
      );
    });
    await ready;
    worker.unref();
    return {
      item: (it, transfer) => {
        if (!exited) worker.postMessage({ kind: 'item', item: it }, transfer ?? []);
      },
      request: (request) => {
        if (exited)
          return Promise.resolve({
            ok: false,
            code: 'SHUTTING_DOWN',
            message: 'the archive writer is stopped',
          });
        const id = nextId++;
        // A request in flight keeps the process alive (the idle worker does not).
        if (waiting.size === 0) worker.ref();
        return new Promise<Reply>((res) => {
          waiting.set(id, (r) => {
            if (waiting.size === 0) worker.unref();
            res(r);
          });
          worker.postMessage({ kind: 'request', id, request });
        });
      },
      close: async () => {
        await worker.terminate();
      },
    };
  }

  /**
   * Commits what is buffered (the emitter and the assembler have handed over their last items by
   * now), within the deadline; what could not be committed in time is lost and logged.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const port = this.port;
    if (!port) return;
    const left = Math.max(0, deadlineMs - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      port.request({ op: 'flush' }).then((r) => r.ok),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), left);
      }),
    ]);
    clearTimeout(timer);
    if (!flushed)
      this.log.warn('archive: buffered rows not committed before the shutdown deadline', {
        bufferBytes: this.pendingBytes,
      });
    await port.close();
  }
}
