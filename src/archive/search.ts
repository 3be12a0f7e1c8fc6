// Trace search over an experiment's archived traces table: MLflow filter strings (the same parser
// and evaluator as scorer filters, over a trace view rebuilt from the row), a time range, an
// order and keyset pagination; and the lookup of one trace by id.
//
// How a query stays cheap on a large table:
//  - the Delta log is replayed once and then only its new commits are read (DeltaTable.refresh);
//  - files are skipped by their request_time min/max stats outside [startTime, endTime];
//  - ordered by time (the default, newest first), files and then their row groups are visited in
//    that order, and the scan stops once no unread file or row group can hold a row that would
//    make the page (top-k on the files' Delta stats and the row groups' Parquet statistics);
//    ordered by execution time, every file in range is read;
//  - only the columns the filter needs are read for candidate rows (trace_id and request_time
//    always; tags, trace_metadata, state, execution_duration_ms when named; spans, the expensive
//    column, only for name, span.* and text clauses), then the page's own columns for its rows;
//  - Parquet footers are cached per file (files never change);
//  - a lookup by id reads each file's trace_id only where the Parquet bloom filter and the row
//    group's min/max allow the id, newest files first.
// The work yields to the event loop between files, so a long scan never holds up the receivers
// for more than one file's decoding.
import { join } from 'node:path';
import { asyncBufferFromFile, type FileMetaData, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { Assessment } from '../assessments/index.ts';
import { readSpanType, type TraceView } from '../genai/index.ts';
import { type CompiledFilter, compileFilter } from '../select/index.ts';
import { ScorecarError } from '../util/index.ts';
import type { SpanData } from '../wire/index.ts';
import { type AddAction, DeltaTable } from './delta.ts';
import { attributesFromMap } from './rows.ts';
import { PARQUET_DECOMPRESSORS } from './writer.ts';

/** Timestamps as epoch-microsecond numbers (hyparquet's default is a millisecond Date). */
const PARSERS = { timestampFromMicroseconds: (us: bigint | number) => Number(us) };

export const MAX_RESULTS_LIMIT = 1000;

export type OrderKey = 'timestamp_ms' | 'execution_time_ms';

export interface SearchQuery {
  filter?: string | undefined;
  /** Epoch ms, inclusive. */
  startTimeMs?: number | undefined;
  /** Epoch ms, exclusive. */
  endTimeMs?: number | undefined;
  /** MLflow order_by: 'timestamp_ms DESC' (default), 'timestamp_ms ASC', 'execution_time_ms DESC|ASC'. */
  orderBy?: string | undefined;
  maxResults: number;
  pageToken?: string | undefined;
}

/** One search result (MLflow TraceInfo-shaped). */
export interface TraceInfo {
  traceId: string;
  experimentId: string;
  requestTime: string;
  timestampMs: number;
  executionTimeMs: number;
  state: string;
  requestPreview: string | null;
  responsePreview: string | null;
  tags: Record<string, string>;
  metadata: Record<string, string>;
  assessments: Assessment[];
}

export interface ArchivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: string;
  startTimeUnixMicros: number;
  endTimeUnixMicros: number;
  status: { code: string; message: string };
  attributes: Record<string, unknown>;
  events: Array<{ name: string; timeUnixMicros: number; attributes: Record<string, unknown> }>;
}

export interface ArchivedTrace extends Omit<TraceInfo, 'assessments'> {
  request: unknown;
  response: unknown;
  spans: ArchivedSpan[];
}

interface Order {
  key: OrderKey;
  desc: boolean;
}

/** Position after the last row of a page: its sort value and trace id. */
interface Cursor {
  v: number;
  id: string;
}

const INFO_COLUMNS = ['trace_id', 'experiment_id', 'request_time', 'state', 'execution_duration_ms', 'request_preview', 'response_preview', 'tags', 'trace_metadata'];

function parseOrder(text: string | undefined): Order {
  if (text === undefined || text.trim() === '') return { key: 'timestamp_ms', desc: true };
  const m = /^\s*(?:(?:trace|attributes?)\.)?(timestamp_ms|timestamp|execution_time_ms|execution_time)(?:\s+(ASC|DESC))?\s*$/i.exec(text);
  if (!m) {
    throw new ScorecarError(
      'INVALID_ARGUMENT',
      `orderBy: expected 'timestamp_ms' or 'execution_time_ms', optionally followed by ASC or DESC; got '${text.slice(0, 100)}'`,
      { details: { field: 'query.orderBy' } },
    );
  }
  const key: OrderKey = m[1]!.toLowerCase().startsWith('timestamp') ? 'timestamp_ms' : 'execution_time_ms';
  return { key, desc: (m[2] ?? 'DESC').toUpperCase() === 'DESC' };
}

function encodeToken(o: Order, c: Cursor, filter: string, start: number | undefined, end: number | undefined): string {
  return Buffer.from(JSON.stringify({ k: o.key, d: o.desc, v: c.v, id: c.id, f: filter, s: start ?? null, e: end ?? null })).toString('base64url');
}

function decodeToken(token: string, o: Order, filter: string, start: number | undefined, end: number | undefined): Cursor {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (t.k !== o.key || t.d !== o.desc || t.f !== filter || t.s !== (start ?? null) || t.e !== (end ?? null)) throw new Error('mismatch');
    if (typeof t.v !== 'number' || typeof t.id !== 'string') throw new Error('shape');
    return { v: t.v, id: t.id };
  } catch {
    throw new ScorecarError('INVALID_ARGUMENT', 'pageToken: not a token of this query (same filter, time range and order)', {
      details: { field: 'query.pageToken' },
    });
  }
}

/** Which row columns a filter reads (see the header). */
function filterColumns(f: CompiledFilter | null): { columns: string[]; spans: boolean } {
  const cols = new Set<string>();
  let spans = false;
  for (const c of f?.clauses ?? []) {
    switch (c.field.scope) {
      case 'tag':
        cols.add('tags');
        if (c.field.key === 'mlflow.traceName') spans = true;
        break;
      case 'metadata':
        cols.add('trace_metadata');
        break;
      case 'span':
      case 'span.attributes':
        spans = true;
        break;
      case 'trace':
        if (c.field.key === 'status') cols.add('state');
        else if (c.field.key === 'execution_time_ms' || c.field.key === 'end_time_ms') cols.add('execution_duration_ms');
        else if (c.field.key === 'name' || c.field.key === 'text') spans = true;
        break;
    }
  }
  if (spans) cols.add('spans');
  return { columns: [...cols], spans };
}

const STATUS_CODES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };
const KIND_CODES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};

type RawSpan = {
  trace_id: string;
  span_id: string;
  trace_state: string | null;
  flags: number | null;
  name: string;
  kind: string;
  attributes: Record<string, string> | null;
  parent_id: string | null;
  start_time: number;
  end_time: number;
  status_code: string;
  status_message: string | null;
  events: Array<{ name: string; timestamp: number; attributes: Record<string, string> | null }> | null;
};

function spanData(s: RawSpan): SpanData {
  const startNs = BigInt(s.start_time) * 1000n;
  const endNs = BigInt(s.end_time) * 1000n;
  return {
    traceId: s.trace_id,
    spanId: s.span_id,
    parentSpanId: s.parent_id ?? '',
    traceState: s.trace_state ?? '',
    flags: s.flags ?? 0,
    name: s.name,
    kind: KIND_CODES[s.kind] ?? 0,
    startTimeUnixNano: startNs,
    endTimeUnixNano: endNs,
    startTimeMs: s.start_time / 1000,
    endTimeMs: s.end_time / 1000,
    attributes: attributesFromMap(s.attributes),
    events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixNano: BigInt(e.timestamp) * 1000n, attributes: attributesFromMap(e.attributes) })),
    links: [],
    status: { code: STATUS_CODES[s.status_code] ?? 0, message: s.status_message ?? '' },
    resource: {},
    scope: { name: '', version: '', attributes: {} },
    experimentHeader: undefined,
  };
}

/** The trace view a filter reads, rebuilt from the columns read of a row. */
function viewOfRow(r: Record<string, unknown>, experimentId: string): TraceView {
  const spans = ((r.spans as RawSpan[] | undefined) ?? []).map(spanData);
  const root = spans.find((s) => s.parentSpanId === '') ?? spans[0] ?? spanData({
    trace_id: r.trace_id as string,
    span_id: '',
    trace_state: '',
    flags: 0,
    name: '',
    kind: 'SPAN_KIND_INTERNAL',
    attributes: {},
    parent_id: null,
    start_time: r.request_time as number,
    end_time: r.request_time as number,
    status_code: 'STATUS_CODE_UNSET',
    status_message: '',
    events: [],
  });
  const start = (r.request_time as number) / 1000;
  const exec = r.execution_duration_ms === undefined || r.execution_duration_ms === null ? 0 : Number(r.execution_duration_ms);
  return {
    traceId: r.trace_id as string,
    experimentId,
    rootSpan: root,
    spans,
    spanTypes: spans.map(readSpanType),
    name: root.name,
    status: r.state === 'ERROR' ? 'ERROR' : 'OK',
    startTimeMs: start,
    endTimeMs: start + exec,
    executionTimeMs: exec,
    tokenUsage: {},
    inputs: undefined,
    outputs: undefined,
    retrievals: [],
    expectations: {},
    tags: (r.tags as Record<string, string> | null) ?? {},
    metadata: (r.trace_metadata as Record<string, string> | null) ?? {},
    conventions: [],
    resource: {},
  };
}

function publicSpan(s: RawSpan): ArchivedSpan {
  return {
    traceId: s.trace_id,
    spanId: s.span_id,
    parentSpanId: s.parent_id,
    name: s.name,
    kind: s.kind,
    startTimeUnixMicros: s.start_time,
    endTimeUnixMicros: s.end_time,
    status: { code: s.status_code, message: s.status_message ?? '' },
    attributes: attributesFromMap(s.attributes),
    events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixMicros: e.timestamp, attributes: attributesFromMap(e.attributes) })),
  };
}

function info(r: Record<string, unknown>): Omit<TraceInfo, 'assessments'> {
  const us = r.request_time as number;
  return {
    traceId: r.trace_id as string,
    experimentId: (r.experiment_id as string | null) ?? '',
    requestTime: new Date(Math.floor(us / 1000)).toISOString(),
    timestampMs: Math.floor(us / 1000),
    executionTimeMs: r.execution_duration_ms === null || r.execution_duration_ms === undefined ? 0 : Number(r.execution_duration_ms),
    state: (r.state as string | null) ?? 'STATE_UNSPECIFIED',
    requestPreview: (r.request_preview as string | null) ?? null,
    responsePreview: (r.response_preview as string | null) ?? null,
    tags: (r.tags as Record<string, string> | null) ?? {},
    metadata: (r.trace_metadata as Record<string, string> | null) ?? {},
  };
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

interface FileBounds {
  add: AddAction;
  /** request_time bounds in µs (stats are ms: min floored, max ceiled). */
  minUs: number;
  maxUs: number;
}

/** One candidate row of a scan: where it is and its sort key. */
interface Hit {
  file: FileBounds;
  row: number;
  v: number;
  id: string;
}

export class TraceArchiveReader {
  readonly tablePath: string;
  readonly experimentId: string;
  private table: DeltaTable | undefined;
  private readonly footers = new Map<string, Promise<FileMetaData>>();
  private bounds = new Map<string, FileBounds>();

  /** `tablePath` is the archive directory (holding traces/ and assessments/). */
  constructor(tablePath: string, experimentId: string) {
    this.tablePath = tablePath;
    this.experimentId = experimentId;
  }

  private async files(): Promise<FileBounds[]> {
    this.table ??= await DeltaTable.open(join(this.tablePath, 'traces'));
    await this.table.refresh();
    const next = new Map<string, FileBounds>();
    for (const add of this.table.files()) {
      let b = this.bounds.get(add.path);
      if (!b) {
        let minUs = Number.NEGATIVE_INFINITY;
        let maxUs = Number.POSITIVE_INFINITY;
        try {
          const st = JSON.parse(add.stats ?? '{}') as { minValues?: Record<string, string>; maxValues?: Record<string, string> };
          if (st.minValues?.request_time) minUs = Date.parse(st.minValues.request_time) * 1000;
          if (st.maxValues?.request_time) maxUs = Date.parse(st.maxValues.request_time) * 1000 + 999;
        } catch {
          // no usable stats: the file is always read
        }
        b = { add, minUs, maxUs };
      }
      next.set(add.path, b);
    }
    this.bounds = next;
    return [...next.values()];
  }

  private footer(path: string): Promise<FileMetaData> {
    let f = this.footers.get(path);
    if (!f) {
      f = asyncBufferFromFile(path).then((b) => parquetMetadataAsync(b));
      f.catch(() => this.footers.delete(path));
      this.footers.set(path, f);
    }
    return f;
  }

  /**
   * A file's row groups with their request_time bounds in µs (the footer's statistics, whole
   * milliseconds: widened by one), so a time-ordered page reads only the groups it needs.
   */
  private async groups(file: FileBounds): Promise<Array<{ start: number; rows: number; minUs: number; maxUs: number }>> {
    const md = await this.footer(join(this.table!.root, file.add.path));
    const toUs = (v: unknown, inf: number): number => {
      if (v instanceof Date) return v.getTime() * 1000;
      if (typeof v === 'bigint' || typeof v === 'number') return Number(v);
      return inf;
    };
    const out: Array<{ start: number; rows: number; minUs: number; maxUs: number }> = [];
    let at = 0;
    for (const rg of md.row_groups) {
      const rows = Number(rg.num_rows);
      const st = rg.columns.find((c) => c.meta_data?.path_in_schema.join('.') === 'request_time')?.meta_data?.statistics;
      const minUs = toUs(st?.min_value, Number.NEGATIVE_INFINITY);
      const maxUs = toUs(st?.max_value, Number.POSITIVE_INFINITY);
      out.push({ start: at, rows, minUs: minUs - 1000, maxUs: maxUs + 1000 });
      at += rows;
    }
    return out;
  }

  private async read(file: FileBounds, columns: string[], rowStart?: number, rowEnd?: number): Promise<Record<string, unknown>[]> {
    const path = join(this.table!.root, file.add.path);
    const metadata = await this.footer(path);
    return parquetReadObjects({
      file: await asyncBufferFromFile(path),
      metadata,
      columns,
      compressors: PARQUET_DECOMPRESSORS,
      parsers: PARSERS,
      ...(rowStart !== undefined ? { rowStart } : {}),
      ...(rowEnd !== undefined ? { rowEnd } : {}),
    }) as Promise<Record<string, unknown>[]>;
  }

  /**
   * A page of traces matching the query, in order, with the token of the next page (absent on
   * the last). `assessmentsOf` adds each result's assessments.
   */
  async search(q: SearchQuery, assessmentsOf: (traceId: string) => Promise<Assessment[]>): Promise<{ traces: TraceInfo[]; nextPageToken?: string }> {
    const order = parseOrder(q.orderBy);
    const filterText = q.filter?.trim() ?? '';
    const filter = filterText === '' ? null : compileFilter(filterText);
    const max = Math.min(Math.max(1, Math.floor(q.maxResults)), MAX_RESULTS_LIMIT);
    const cursor = q.pageToken ? decodeToken(q.pageToken, order, filterText, q.startTimeMs, q.endTimeMs) : undefined;
    const startUs = q.startTimeMs === undefined ? Number.NEGATIVE_INFINITY : q.startTimeMs * 1000;
    const endUs = q.endTimeMs === undefined ? Number.POSITIVE_INFINITY : q.endTimeMs * 1000;
    const { columns: fcols } = filterColumns(filter);
    const scanCols = [...new Set(['trace_id', 'request_time', ...(order.key === 'execution_time_ms' ? ['execution_duration_ms'] : []), ...fcols])];

    const byTime = order.key === 'timestamp_ms';
    let files = (await this.files()).filter((f) => f.maxUs >= startUs && f.minUs < endUs);
    if (byTime) {
      files = files.sort((a, b) => (order.desc ? b.maxUs - a.maxUs : a.minUs - b.minUs));
      // Keyset: files entirely on the other side of the cursor are done.
      if (cursor) files = files.filter((f) => (order.desc ? f.minUs <= cursor.v : f.maxUs >= cursor.v));
    }
    const before = (a: { v: number; id: string }, b: { v: number; id: string }): boolean =>
      order.desc ? a.v > b.v || (a.v === b.v && a.id > b.id) : a.v < b.v || (a.v === b.v && a.id < b.id);
    // One more than a page, to know whether there is a next one.
    const want = max + 1;
    let hits: Hit[] = [];
    const beyondPage = (minUs: number, maxUs: number): boolean => {
      // With a full page, a range none of whose rows can come before its last row is skipped.
      if (!byTime || hits.length < want) return false;
      const last = hits[hits.length - 1]!;
      return order.desc ? maxUs < last.v : minUs > last.v;
    };
    for (const file of files) {
      // Files are sorted: no later one can do better either.
      if (beyondPage(file.minUs, file.maxUs)) break;
      let groups = await this.groups(file);
      if (byTime) groups = [...groups].sort((a, b) => (order.desc ? b.maxUs - a.maxUs : a.minUs - b.minUs));
      for (const g of groups) {
        if (g.maxUs < startUs || g.minUs >= endUs || beyondPage(g.minUs, g.maxUs)) continue;
        if (cursor && byTime && (order.desc ? g.minUs > cursor.v : g.maxUs < cursor.v)) continue;
        const rows = await this.read(file, scanCols, g.start, g.start + g.rows);
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!;
          const t = r.request_time as number;
          if (t < startUs || t >= endUs) continue;
          const v = byTime ? t : Number(r.execution_duration_ms ?? 0);
          const id = r.trace_id as string;
          if (cursor && !before(cursor, { v, id })) continue;
          if (filter && !filter.matches(viewOfRow(r, this.experimentId))) continue;
          hits.push({ file, row: g.start + i, v, id });
        }
        hits.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
        if (hits.length > want) hits = hits.slice(0, want);
      }
      await yieldToLoop();
    }
    const more = hits.length > max;
    const page = hits.slice(0, max);
    // The page's own columns, one read per file (the rows' span is what is decoded).
    const rowsOf = new Map<Hit, Record<string, unknown>>();
    const perFile = new Map<FileBounds, Hit[]>();
    for (const h of page) perFile.set(h.file, [...(perFile.get(h.file) ?? []), h]);
    for (const [file, list] of perFile) {
      const lo = Math.min(...list.map((h) => h.row));
      const hi = Math.max(...list.map((h) => h.row)) + 1;
      const rows = await this.read(file, INFO_COLUMNS, lo, hi);
      for (const h of list) rowsOf.set(h, rows[h.row - lo]!);
    }
    const traces = await Promise.all(page.map(async (h) => ({ ...info(rowsOf.get(h)!), assessments: await assessmentsOf(h.id) })));
    const last = page[page.length - 1];
    return more && last
      ? { traces, nextPageToken: encodeToken(order, { v: last.v, id: last.id }, filterText, q.startTimeMs, q.endTimeMs) }
      : { traces };
  }

  /**
   * The data files whose request times overlap [startUs, endUs), by path: a stable order a
   * backfill can resume in. Rows: each file's record count.
   */
  async rangeFiles(startUs: number, endUs: number): Promise<Array<{ path: string; rows: number }>> {
    return (await this.files())
      .filter((f) => f.maxUs >= startUs && f.minUs < endUs)
      .map((f) => {
        let rows = 0;
        try {
          rows = (JSON.parse(f.add.stats ?? '{}') as { numRecords?: number }).numRecords ?? 0;
        } catch {
          rows = 0;
        }
        return { path: f.add.path, rows };
      })
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Row groups of a data file (relative path), as [first row, row count]. */
  async rowGroups(path: string): Promise<Array<[number, number]>> {
    this.table ??= await DeltaTable.open(join(this.tablePath, 'traces'));
    const md = await this.footer(join(this.table.root, path));
    const out: Array<[number, number]> = [];
    let at = 0;
    for (const rg of md.row_groups) {
      const n = Number(rg.num_rows);
      out.push([at, n]);
      at += n;
    }
    return out;
  }

  /** Rows [rowStart, rowEnd) of a data file with what a backfill needs to rebuild the trace. */
  async readRows(path: string, rowStart: number, rowEnd: number): Promise<Record<string, unknown>[]> {
    this.table ??= await DeltaTable.open(join(this.tablePath, 'traces'));
    const full = join(this.table.root, path);
    return (await parquetReadObjects({
      file: await asyncBufferFromFile(full),
      metadata: await this.footer(full),
      columns: ['trace_id', 'request_time', 'tags', 'trace_metadata', 'spans'],
      compressors: PARQUET_DECOMPRESSORS,
      parsers: PARSERS,
      rowStart,
      rowEnd,
    })) as Record<string, unknown>[];
  }

  /** One archived trace with its spans, or undefined. Newest files first; bloom filters skip most. */
  async get(traceId: string): Promise<ArchivedTrace | undefined> {
    const files = (await this.files()).sort((a, b) => b.add.modificationTime - a.add.modificationTime);
    for (const file of files) {
      const path = join(this.table!.root, file.add.path);
      const metadata = await this.footer(path);
      const rows = (await parquetReadObjects({
        file: await asyncBufferFromFile(path),
        metadata,
        compressors: PARQUET_DECOMPRESSORS,
        parsers: PARSERS,
        rowFormat: 'object',
        filter: { trace_id: { $eq: traceId } },
        useBloomFilters: true,
      })) as Record<string, unknown>[];
      const r = rows.find((x) => x.trace_id === traceId);
      if (r) {
        const parse = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : undefined);
        return {
          ...info(r),
          request: parse(r.request),
          response: parse(r.response),
          spans: ((r.spans as RawSpan[] | null) ?? []).map(publicSpan),
        };
      }
      await yieldToLoop();
    }
    return undefined;
  }
}
