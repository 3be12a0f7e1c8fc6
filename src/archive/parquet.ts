// Rows -> one Parquet file (hyparquet-writer, pure JS, pinned exactly in package.json) and the
// Delta statistics of that file, computed here from the same rows.
//
// Statistics are part of the table's meaning, not a hint: Spark and DataFusion answer count(*)
// from numRecords without reading a file, and every reader skips files by minValues/maxValues
// (shared/notes/delta.md §5.4). So numRecords is always written and exact; nullCount only for the
// columns whose count is exact (top-level primitives); min/max only for the short primitive
// columns of TableSchema.statsColumns, strings compared as UTF-8 bytes (the order readers use, not
// JS's UTF-16 order), timestamps as ISO milliseconds with the minimum floored and the maximum
// ceiled so a bound never excludes a row's microseconds.
import { constants, zstdCompressSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { dataFields, type DeltaType, parquetSchema, type TableSchema } from './schema.ts';

/** A row as the encoder takes it: strings, bigint (long), number (integer, double), µs numbers (timestamp), plain objects (struct, map), arrays. */
export type Row = Record<string, unknown>;

export interface FileStats {
  numRecords: number;
  minValues: Record<string, string | number>;
  maxValues: Record<string, string | number>;
  nullCount: Record<string, number>;
}

/** Rows per row group: big enough for good compression, small enough that readers page through. */
export const ROW_GROUP_ROWS = 5000;
/** String bounds longer than this are left out of the stats (see the header). */
const MAX_STAT_CHARS = 64;

const zstd = (input: Uint8Array): Uint8Array =>
  zstdCompressSync(input, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });

const ASCII = /^[\x00-\x7f]*$/;

/** a < b in UTF-8 byte order. */
function utf8Less(a: string, b: string): boolean {
  if (ASCII.test(a) && ASCII.test(b)) return a < b;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) < 0;
}

/** A timestamp bound as Delta stats write it: ISO-8601 milliseconds, Z. */
function isoMs(us: number, round: (x: number) => number): string {
  return new Date(round(us / 1000)).toISOString();
}

function primitiveOf(schema: TableSchema, name: string): DeltaType | undefined {
  return schema.fields.find((c) => c.name === name)?.type;
}

/** Delta statistics of a set of rows (see the header for what is included and why). */
export function fileStats(schema: TableSchema, rows: readonly Row[]): FileStats {
  const stats: FileStats = { numRecords: rows.length, minValues: {}, maxValues: {}, nullCount: {} };
  for (const field of dataFields(schema)) {
    if (typeof field.type !== 'string') continue;
    let nulls = 0;
    for (const r of rows) if (r[field.name] === null || r[field.name] === undefined) nulls++;
    stats.nullCount[field.name] = nulls;
  }
  for (const name of schema.statsColumns) {
    const t = primitiveOf(schema, name);
    let min: unknown;
    let max: unknown;
    let usable = true;
    for (const r of rows) {
      const v = r[name];
      if (v === null || v === undefined) continue;
      if (t === 'string') {
        const s = v as string;
        if (s.length > MAX_STAT_CHARS) {
          usable = false;
          break;
        }
        if (min === undefined || utf8Less(s, min as string)) min = s;
        if (max === undefined || utf8Less(max as string, s)) max = s;
      } else {
        const n = typeof v === 'bigint' ? Number(v) : (v as number);
        if (min === undefined || n < (min as number)) min = n;
        if (max === undefined || n > (max as number)) max = n;
      }
    }
    if (!usable || min === undefined) continue;
    if (t === 'timestamp') {
      stats.minValues[name] = isoMs(min as number, Math.floor);
      stats.maxValues[name] = isoMs(max as number, Math.ceil);
    } else {
      stats.minValues[name] = min as string | number;
      stats.maxValues[name] = max as string | number;
    }
  }
  return stats;
}

/**
 * One Parquet file (ZSTD, row groups of ROW_GROUP_ROWS) holding `rows`, without the partition
 * column. Throws when a REQUIRED column is missing in a row (hyparquet refuses it), which is a
 * bug of the row builder.
 */
export function encodeParquet(schema: TableSchema, rows: readonly Row[], createdBy: string): Uint8Array {
  const fields = dataFields(schema);
  const columnData = fields.map((field) => ({
    name: field.name,
    data: rows.map((r) => r[field.name] ?? null),
    // Point lookups by trace id (GET /traces/{id}) skip row groups whose filter excludes the id.
    ...(field.name === 'trace_id' ? { bloomFilter: true } : {}),
  }));
  const writer = new ByteWriter();
  const pq = new ParquetWriter({
    writer,
    // hyparquet's SchemaElement is structurally what parquetSchema builds.
    schema: parquetSchema(schema) as unknown as ConstructorParameters<typeof ParquetWriter>[0]['schema'],
    codec: 'ZSTD',
    compressors: { ZSTD: zstd },
    createdBy,
  });
  void pq.write({ columnData, rowGroupSize: ROW_GROUP_ROWS });
  void pq.finish();
  return new Uint8Array(writer.getBuffer());
}
