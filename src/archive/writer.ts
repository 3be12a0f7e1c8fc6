// The archive's writing side: per experiment, a `traces` and an `assessments` Delta table, each
// with a buffer of rows committed every `commitIntervalMs` or `commitMaxRows` rows, whichever
// comes first. A commit writes one Parquet file per partition date in the buffer (usually one),
// fsyncs it, then commits its `add` in one put-if-absent Delta commit (delta.ts). It runs in the
// archive's worker thread (worker.ts), so encoding and I/O never hold the receivers up; tests
// drive it in-process.
//
// Crash behaviour: a crash loses the rows still buffered (at most one interval's worth) and
// nothing committed; the table stays readable (see delta.ts). A restart opens the same tables and
// appends at the next version. Trace rows are never duplicated by a restart: the ids of the most
// recently committed traces (dedupWindow, read back from the newest files' trace_id column when a
// table is opened) are remembered, and a trace completed again with a known id — a sender that
// retried a request the crashed process had already acknowledged, spans arriving after their
// trace was archived — is skipped and counted as a duplicate.
import { zstdDecompressSync } from 'node:zlib';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import type { Assessment } from '../assessments/index.ts';
import { buildTraceView } from '../genai/index.ts';
import { errorFields, errorMessage, isScorecarError, type Logger, silentLogger } from '../util/index.ts';
import { type AddAction, dataFilePath, DeltaTable, writeDurable } from './delta.ts';
import { encodeParquet, fileStats, type Row } from './parquet.ts';
import { assessmentRow, type PackedTrace, traceRow, unpackTrace } from './rows.ts';
import { ASSESSMENTS_SCHEMA, type TableSchema, TRACES_SCHEMA } from './schema.ts';
import { mkdir, unlink } from 'node:fs/promises';

/** hyparquet reads ZSTD through node:zlib (its built-ins are Snappy only). */
export const PARQUET_DECOMPRESSORS = {
  ZSTD: (input: Uint8Array) => new Uint8Array(zstdDecompressSync(input)),
};

export interface WriterOptions {
  /** commitInfo.engineInfo and the files' created_by, e.g. 'scorecar 0.1.0'. */
  engineInfo: string;
  commitIntervalMs: number;
  commitMaxRows: number;
  /** Trace ids remembered per experiment to skip a trace archived already. */
  dedupWindow: number;
  /** For the GenAI view of archived traces (config experiments.*). */
  resolution: readonly string[];
  defaultExperiment: string;
  log?: Logger;
  now?: () => number;
}

/** What one flush of one table did, for metrics (the main thread counts these). */
export interface FlushReport {
  experimentId: string;
  table: 'traces' | 'assessments';
  rows: number;
  files: number;
  fileBytes: number;
  version: number;
  /** Sum of the rows' memory estimates, released from the memory budget. */
  releasedBytes: number;
  /** Rows given up on (the table became incompatible): counted as dropped. */
  droppedRows: number;
  error?: string;
}

/** One Delta table with its buffer of rows waiting to be committed. */
export class TableWriter {
  readonly name: 'traces' | 'assessments';
  readonly schema: TableSchema;
  readonly table: DeltaTable;
  private readonly engineInfo: string;
  private buffer = new Map<string, Row[]>();
  private rows = 0;
  private estBytes = 0;
  private firstAt = 0;
  private flushing: Promise<FlushReport> | undefined;
  /** Rows and bytes committed since open. */
  committedRows = 0;
  committedFiles = 0;

  private constructor(name: 'traces' | 'assessments', schema: TableSchema, table: DeltaTable, engineInfo: string) {
    this.name = name;
    this.schema = schema;
    this.table = table;
    this.engineInfo = engineInfo;
  }

  static async open(name: 'traces' | 'assessments', root: string, engineInfo: string): Promise<TableWriter> {
    const schema = name === 'traces' ? TRACES_SCHEMA : ASSESSMENTS_SCHEMA;
    const table = await DeltaTable.open(root);
    await table.create(schema, engineInfo);
    return new TableWriter(name, schema, table, engineInfo);
  }

  get pendingRows(): number {
    return this.rows;
  }

  get pendingBytes(): number {
    return this.estBytes;
  }

  add(row: Row, date: string, estBytes: number, now: number): void {
    let list = this.buffer.get(date);
    if (!list) {
      list = [];
      this.buffer.set(date, list);
    }
    list.push(row);
    if (this.rows === 0) this.firstAt = now;
    this.rows++;
    this.estBytes += estBytes;
  }

  due(now: number, intervalMs: number, maxRows: number): boolean {
    return this.rows >= maxRows || (this.rows > 0 && now - this.firstAt >= intervalMs);
  }

  /**
   * Writes the buffer's files and commits them (one commit for all partitions). On failure the
   * rows stay buffered for the next flush, unless the table refuses them for good.
   */
  flush(experimentId: string, now: number): Promise<FlushReport> {
    const run = async (): Promise<FlushReport> => {
      const report: FlushReport = { experimentId, table: this.name, rows: 0, files: 0, fileBytes: 0, version: -1, releasedBytes: 0, droppedRows: 0 };
      if (this.rows === 0) return report;
      const batch = this.buffer;
      const rows = this.rows;
      const est = this.estBytes;
      this.buffer = new Map();
      this.rows = 0;
      this.estBytes = 0;
      try {
        const adds: AddAction[] = [];
        for (const [date, list] of batch) {
          const rel = dataFilePath(this.schema.partitionColumn, date);
          const bytes = encodeParquet(this.schema, list, this.engineInfo);
          await mkdir(join(this.table.root, `${this.schema.partitionColumn}=${date}`), { recursive: true });
          await writeDurable(join(this.table.root, rel), bytes);
          adds.push({
            path: rel,
            partitionValues: { [this.schema.partitionColumn]: date },
            size: bytes.byteLength,
            modificationTime: now,
            dataChange: true,
            stats: JSON.stringify(fileStats(this.schema, list)),
          });
          report.fileBytes += bytes.byteLength;
        }
        report.version = await this.table.commit([
          {
            commitInfo: {
              timestamp: now,
              operation: 'WRITE',
              operationParameters: { mode: 'Append', partitionBy: JSON.stringify([this.schema.partitionColumn]) },
              isBlindAppend: true,
              engineInfo: this.engineInfo,
            },
          },
          ...adds.map((add) => ({ add })),
        ]);
        report.rows = rows;
        report.files = adds.length;
        report.releasedBytes = est;
        this.committedRows += rows;
        this.committedFiles += adds.length;
      } catch (e) {
        report.error = errorMessage(e);
        if (isScorecarError(e) && e.code === 'TABLE_INCOMPATIBLE') {
          report.droppedRows = rows;
          report.releasedBytes = est;
        } else {
          // Put the rows back in front of what arrived meanwhile; the next flush retries them.
          for (const [date, list] of this.buffer) {
            const mine = batch.get(date);
            if (mine) mine.push(...list);
            else batch.set(date, list);
          }
          this.buffer = batch;
          this.rows += rows;
          this.estBytes += est;
          this.firstAt = now;
        }
      }
      return report;
    };
    // One flush at a time per table: a second caller waits for the first, then flushes what is left.
    const prev = this.flushing;
    const next = (prev ? prev.then(run, run) : run()).finally(() => {
      if (this.flushing === next) this.flushing = undefined;
    });
    this.flushing = next;
    return next;
  }
}

/** What compaction aims for: files of about this size, made of files under half of it. */
export const COMPACT_TARGET_BYTES = 64 * 1024 * 1024;
/** A partition is compacted once it has this many small files. */
export const COMPACT_MIN_FILES = 8;
/** Timestamps as epoch-microsecond numbers, as the encoder takes them. */
const READ_PARSERS = { timestampFromMicroseconds: (us: bigint | number) => Number(us) };

/**
 * Rewrites a table's small files into bigger ones (Delta OPTIMIZE): per partition with at least
 * COMPACT_MIN_FILES files under half of COMPACT_TARGET_BYTES, groups of them up to the target
 * are read back, written as one file and swapped in by one commit. Frequent commits keep the
 * archive's latency low; this keeps the file count of a quiet experiment from growing by one per
 * commit interval. Returns how many files were replaced.
 */
export async function compactTable(
  table: DeltaTable,
  schema: TableSchema,
  engineInfo: string,
  opts: { targetBytes?: number; minFiles?: number; now?: number } = {},
): Promise<{ replaced: number; written: number }> {
  const target = opts.targetBytes ?? COMPACT_TARGET_BYTES;
  const minFiles = opts.minFiles ?? COMPACT_MIN_FILES;
  await table.refresh();
  const byPart = new Map<string, AddAction[]>();
  for (const f of table.files()) {
    if (f.size >= target / 2) continue;
    const p = f.partitionValues[schema.partitionColumn] ?? '';
    byPart.set(p, [...(byPart.get(p) ?? []), f]);
  }
  let replaced = 0;
  let written = 0;
  for (const [part, files] of byPart) {
    if (files.length < minFiles) continue;
    files.sort((a, b) => a.modificationTime - b.modificationTime || (a.path < b.path ? -1 : 1));
    let group: AddAction[] = [];
    let bytes = 0;
    const groups: AddAction[][] = [];
    for (const f of files) {
      group.push(f);
      bytes += f.size;
      if (bytes >= target) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
    }
    if (group.length >= 2) groups.push(group);
    for (const g of groups) {
      const rows: Row[] = [];
      for (const f of g) {
        const read = (await parquetReadObjects({
          file: await asyncBufferFromFile(join(table.root, f.path)),
          compressors: PARQUET_DECOMPRESSORS,
          parsers: READ_PARSERS,
        })) as Row[];
        for (const r of read) rows.push(r);
      }
      const rel = dataFilePath(schema.partitionColumn, part);
      const bytesOut = encodeParquet(schema, rows, engineInfo);
      await mkdir(join(table.root, `${schema.partitionColumn}=${part}`), { recursive: true });
      const full = join(table.root, rel);
      await writeDurable(full, bytesOut);
      const now = opts.now ?? Date.now();
      const v = await table.replace(
        g,
        {
          path: rel,
          partitionValues: { [schema.partitionColumn]: part },
          size: bytesOut.byteLength,
          modificationTime: Math.max(...g.map((f) => f.modificationTime)),
          dataChange: false,
          stats: JSON.stringify(fileStats(schema, rows)),
        },
        engineInfo,
        now,
      );
      if (v < 0) {
        // Someone else changed these files first: ours is not part of the table.
        await unlink(full).catch(() => {});
        continue;
      }
      replaced += g.length;
      written++;
    }
  }
  return { replaced, written };
}

/** The trace ids most recently archived to one traces table (FIFO, bounded). */
export class RecentIds {
  private readonly set = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  has(id: string): boolean {
    return this.set.has(id);
  }

  add(id: string): void {
    if (this.max <= 0 || this.set.has(id)) return;
    this.set.add(id);
    this.order.push(id);
    if (this.order.length - this.head > this.max) {
      this.set.delete(this.order[this.head]!);
      this.head++;
      if (this.head > 4096 && this.head * 2 > this.order.length) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
    }
  }

  get size(): number {
    return this.set.size;
  }
}

/** Loads the trace ids of a table's newest files, newest last, up to `max`. */
export async function loadRecentIds(table: DeltaTable, max: number): Promise<RecentIds> {
  const recent = new RecentIds(max);
  if (max <= 0) return recent;
  const files = table.files().sort((a, b) => b.modificationTime - a.modificationTime);
  const chunks: string[][] = [];
  let n = 0;
  for (const f of files) {
    if (n >= max) break;
    const rows = await parquetReadObjects({
      file: await asyncBufferFromFile(join(table.root, f.path)),
      columns: ['trace_id'],
      compressors: PARQUET_DECOMPRESSORS,
    });
    const ids = rows.map((r) => r.trace_id as string);
    chunks.push(ids);
    n += ids.length;
  }
  for (let i = chunks.length - 1; i >= 0; i--) for (const id of chunks[i]!) recent.add(id);
  return recent;
}

/** The two tables of one experiment's archive. */
export interface ExperimentArchive {
  experimentId: string;
  tablePath: string;
  traces: TableWriter;
  assessments: TableWriter;
  recent: RecentIds;
}

export interface ArchiveStatus {
  experimentId: string;
  tablePath: string;
  traces: { version: number; files: number; pendingRows: number; committedRows: number };
  assessments: { version: number; files: number; pendingRows: number; committedRows: number };
}

/** Why a trace or assessment was not buffered. */
export type SkipReason = 'duplicate' | 'view_error' | 'not_archived';

export class ArchiveWriter {
  private readonly o: WriterOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  readonly archives = new Map<string, ExperimentArchive>();

  constructor(o: WriterOptions) {
    this.o = o;
    this.log = o.log ?? silentLogger;
    this.now = o.now ?? Date.now;
  }

  /** Opens (creating if needed) the tables of an experiment's archive under `tablePath`. */
  async open(experimentId: string, tablePath: string): Promise<ArchiveStatus> {
    const existing = this.archives.get(experimentId);
    if (existing && existing.tablePath === tablePath) return this.status(existing);
    if (existing) await this.close(experimentId);
    const traces = await TableWriter.open('traces', join(tablePath, 'traces'), this.o.engineInfo);
    const assessments = await TableWriter.open('assessments', join(tablePath, 'assessments'), this.o.engineInfo);
    const recent = await loadRecentIds(traces.table, this.o.dedupWindow);
    const a: ExperimentArchive = { experimentId, tablePath, traces, assessments, recent };
    this.archives.set(experimentId, a);
    this.log.info('archive open', { experiment: experimentId, tablePath, tracesVersion: traces.table.version, recentIds: recent.size });
    return this.status(a);
  }

  /** Commits what the experiment's archive buffers, then forgets it. */
  async close(experimentId: string): Promise<FlushReport[]> {
    const a = this.archives.get(experimentId);
    if (!a) return [];
    const reports = await this.flushArchive(a, true);
    this.archives.delete(experimentId);
    return reports;
  }

  status(a: ExperimentArchive): ArchiveStatus {
    const s = (t: TableWriter) => ({
      version: t.table.version,
      files: t.table.files().length,
      pendingRows: t.pendingRows,
      committedRows: t.committedRows,
    });
    return { experimentId: a.experimentId, tablePath: a.tablePath, traces: s(a.traces), assessments: s(a.assessments) };
  }

  /** Buffers a completed trace's row; returns why not when it does not. */
  addTrace(experimentId: string, packed: PackedTrace, estBytes: number): SkipReason | undefined {
    const a = this.archives.get(experimentId);
    if (!a) return 'not_archived';
    if (a.recent.has(packed.traceId)) return 'duplicate';
    let built: ReturnType<typeof traceRow>;
    try {
      const view = buildTraceView(unpackTrace(packed), { resolution: this.o.resolution, defaultExperiment: this.o.defaultExperiment });
      built = traceRow(view);
    } catch (e) {
      this.log.warn('cannot build the row of a trace; not archived', { traceId: packed.traceId, err: errorFields(e) });
      return 'view_error';
    }
    a.recent.add(packed.traceId);
    a.traces.add(built.row, built.date, estBytes, this.now());
    return undefined;
  }

  addAssessment(a: Assessment, estBytes: number): SkipReason | undefined {
    const arch = this.archives.get(a.experimentId);
    if (!arch) return 'not_archived';
    const { row, date } = assessmentRow(a);
    arch.assessments.add(row, date, estBytes, this.now());
    return undefined;
  }

  private async flushArchive(a: ExperimentArchive, all: boolean): Promise<FlushReport[]> {
    const now = this.now();
    const out: FlushReport[] = [];
    for (const t of [a.traces, a.assessments]) {
      if (all || t.due(now, this.o.commitIntervalMs, this.o.commitMaxRows)) {
        const r = await t.flush(a.experimentId, now);
        if (r.rows > 0 || r.error || r.droppedRows > 0) out.push(r);
        if (r.error) this.log.error('archive commit failed', { experiment: a.experimentId, table: t.name, rowsKept: t.pendingRows, err: r.error });
      }
    }
    return out;
  }

  /** Commits every table whose buffer is due (or every one with `all`). */
  async flush(all = false): Promise<FlushReport[]> {
    const out: FlushReport[] = [];
    for (const a of [...this.archives.values()]) out.push(...(await this.flushArchive(a, all)));
    return out;
  }

  /** Retention and vacuum of every open archive (see the README for what each removes). */
  async maintain(retentionDays: number, vacuumRetainMs: number): Promise<{ removedFiles: number; deletedFiles: number; compactedFiles: number }> {
    let removedFiles = 0;
    let deletedFiles = 0;
    let compactedFiles = 0;
    const now = this.now();
    for (const a of this.archives.values()) {
      for (const t of [a.traces, a.assessments]) {
        try {
          if (retentionDays > 0) {
            const cut = new Date(now - retentionDays * 86_400_000).toISOString().slice(0, 10);
            removedFiles += (await t.table.removePartitionsBefore(t.schema.partitionColumn, cut, this.o.engineInfo, now)).files;
          }
          compactedFiles += (await compactTable(t.table, t.schema, this.o.engineInfo, { now })).replaced;
          deletedFiles += await t.table.vacuum(vacuumRetainMs, now);
        } catch (e) {
          this.log.error('archive maintenance failed', { experiment: a.experimentId, table: t.name, err: errorFields(e) });
        }
      }
    }
    return { removedFiles, deletedFiles, compactedFiles };
  }
}
