// The archive: per-experiment Delta Lake tables of completed traces and their assessments,
// written by scorecar itself (Parquet through hyparquet-writer, its own Delta log with
// put-if-absent commits), trace search over them, and backfills of scorers over archived traces.
export { type Archival, ARCHIVAL_FILE_NAME, Archiver, type ArchiverOptions, ROW_BYTES_PER_WIRE_BYTE } from './archiver.ts';
export {
  BACKFILLS_FILE_NAME,
  type BackfillJobStore,
  type BackfillProgress,
  type BackfillRow,
  type BackfillState,
  type NewBackfill,
  PostgresBackfillStore,
  SqliteBackfillStore,
} from './backfill-store.ts';
export {
  type BackfillDeps,
  backfillEmitter,
  type BackfillJob,
  BackfillManager,
  type BackfillRequest,
  type BackfillScorer,
  SOURCE_METADATA,
} from './backfill.ts';
export { type AddAction, DeltaTable, LOG_DIR, type MetaData, type Protocol, type RemoveAction, versionFileName } from './delta.ts';
export { type HostOptions, type Item, type Reply, type Report, type Request, WriterHost } from './host.ts';
export { encodeParquet, type FileStats, fileStats, ROW_GROUP_ROWS, type Row } from './parquet.ts';
export {
  assessmentFromRow,
  type RowSpan,
  traceFromRow,
  assessmentRow,
  attributesFromMap,
  attributesMap,
  dateOfMicros,
  type PackedTrace,
  packTrace,
  PREVIEW_CHARS,
  traceRow,
  unpackTrace,
} from './rows.ts';
export {
  type ArchivedSpan,
  type ArchivedTrace,
  MAX_RESULTS_LIMIT,
  type OrderKey,
  type SearchQuery,
  TraceArchiveReader,
  type TraceInfo,
} from './search.ts';
export { ASSESSMENTS_SCHEMA, type DeltaField, type DeltaType, parquetSchema, schemaString, type TableSchema, TRACES_SCHEMA } from './schema.ts';
export {
  type ArchiveStatus,
  ArchiveWriter,
  COMPACT_MIN_FILES,
  COMPACT_TARGET_BYTES,
  compactTable,
  type FlushReport,
  loadRecentIds,
  PARQUET_DECOMPRESSORS,
  RecentIds,
  TableWriter,
  type WriterOptions,
} from './writer.ts';
