// The two archive tables' schemas, written once here and rendered two ways: as Delta's JSON
// schema string (the table's metaData.schemaString, what every reader sees) and as the Parquet
// schema of the data files (hyparquet-writer SchemaElements). Both come from one description so
// they cannot disagree.
//
// traces mirrors MLflow's archived GenAI trace view (mlflow/tracing/databricks_archival.py,
// `_create_genai_trace_view`): one row per completed trace, its spans as a nested list. Where
// MLflow has VARIANT we write a JSON string; span and event times are microseconds (UTC), not
// MLflow's milliseconds, since OTLP carries nanoseconds. Verdicts arrive after their trace is
// archived, so they are not a column of traces but rows of their own table, assessments, joined
// on trace_id (README "Archive, search and backfills").
//
// Type rules (shared/notes/delta.md §5, verified with delta-rs, DuckDB and Spark): Delta
// timestamp = Parquet INT64 TIMESTAMP(isAdjustedToUTC, MICROS); long = INT64 written as BigInt;
// lists and maps in their three-level form; NOT NULL = REQUIRED; the partition column is in the
// Delta schema but not in the files.

export type PrimitiveType = 'string' | 'long' | 'integer' | 'double' | 'boolean' | 'timestamp' | 'date';

export type DeltaType =
  | PrimitiveType
  | { type: 'struct'; fields: readonly DeltaField[] }
  | { type: 'array'; elementType: DeltaType; containsNull: boolean }
  | { type: 'map'; keyType: 'string'; valueType: DeltaType; valueContainsNull: boolean };

export interface DeltaField {
  name: string;
  type: DeltaType;
  nullable: boolean;
}

export interface TableSchema {
  /** Every column, the partition column included (last). */
  fields: readonly DeltaField[];
  partitionColumn: string;
  /**
   * Top-level primitive columns whose min/max go into each file's stats (data skipping). Text
   * columns are left out: their values are long, and a truncated bound would need Spark's
   * `\u007f` convention to stay correct.
   */
  statsColumns: readonly string[];
}

const f = (name: string, type: DeltaType, nullable = true): DeltaField => ({ name, type, nullable });
const struct = (...fields: DeltaField[]): DeltaType => ({ type: 'struct', fields });
const array = (elementType: DeltaType, containsNull = true): DeltaType => ({ type: 'array', elementType, containsNull });
const stringMap: DeltaType = { type: 'map', keyType: 'string', valueType: 'string', valueContainsNull: true };

const EVENT = struct(f('name', 'string'), f('timestamp', 'timestamp'), f('attributes', stringMap));

const SPAN = struct(
  f('trace_id', 'string'),
  f('span_id', 'string'),
  f('trace_state', 'string'),
  f('flags', 'integer'),
  f('name', 'string'),
  f('kind', 'string'),
  f('attributes', stringMap),
  f('dropped_attributes_count', 'integer'),
  f('dropped_events_count', 'integer'),
  f('dropped_links_count', 'integer'),
  f('parent_id', 'string'),
  f('start_time', 'timestamp'),
  f('end_time', 'timestamp'),
  f('status_code', 'string'),
  f('status_message', 'string'),
  f('events', array(EVENT)),
);

export const TRACES_SCHEMA: TableSchema = {
  fields: [
    f('trace_id', 'string', false),
    f('client_request_id', 'string'),
    f('experiment_id', 'string'),
    f('request_time', 'timestamp', false),
    f('state', 'string'),
    f('execution_duration_ms', 'long'),
    f('request_preview', 'string'),
    f('response_preview', 'string'),
    f('request', 'string'),
    f('response', 'string'),
    f('trace_metadata', stringMap),
    f('tags', stringMap),
    f(
      'trace_location',
      struct(
        f('type', 'string'),
        f('mlflow_experiment', struct(f('experiment_id', 'string'))),
        f('inference_table', struct(f('full_table_name', 'string'))),
      ),
    ),
    f('spans', array(SPAN)),
    f('request_date', 'date'),
  ],
  partitionColumn: 'request_date',
  statsColumns: ['trace_id', 'client_request_id', 'experiment_id', 'request_time', 'state', 'execution_duration_ms'],
};

export const ASSESSMENTS_SCHEMA: TableSchema = {
  fields: [
    f('assessment_id', 'string', false),
    f('trace_id', 'string', false),
    f('span_id', 'string'),
    f('experiment_id', 'string'),
    f('name', 'string'),
    f('scorer_name', 'string'),
    f('scorer_version', 'integer'),
    f('source', struct(f('source_type', 'string'), f('source_id', 'string'))),
    f('value', 'string'),
    f('rationale', 'string'),
    f('error', struct(f('error_code', 'string'), f('error_message', 'string'))),
    f('metadata', stringMap),
    f('sample_rate', 'double'),
    f('create_time', 'timestamp', false),
    f('create_date', 'date'),
  ],
  partitionColumn: 'create_date',
  statsColumns: ['assessment_id', 'trace_id', 'span_id', 'experiment_id', 'name', 'scorer_name', 'scorer_version', 'create_time'],
};

/** Delta's JSON form of a type (the Spark StructType JSON every Delta reader parses). */
function deltaTypeJson(t: DeltaType): unknown {
  if (typeof t === 'string') return t;
  switch (t.type) {
    case 'struct':
      return { type: 'struct', fields: t.fields.map(fieldJson) };
    case 'array':
      return { type: 'array', elementType: deltaTypeJson(t.elementType), containsNull: t.containsNull };
    case 'map':
      return { type: 'map', keyType: 'string', valueType: deltaTypeJson(t.valueType), valueContainsNull: t.valueContainsNull };
  }
}

function fieldJson(field: DeltaField): unknown {
  return { name: field.name, type: deltaTypeJson(field.type), nullable: field.nullable, metadata: {} };
}

/** metaData.schemaString of a table. */
export function schemaString(schema: TableSchema): string {
  return JSON.stringify({ type: 'struct', fields: schema.fields.map(fieldJson) });
}

/** hyparquet's SchemaElement, the fields we set. */
export interface ParquetElement {
  name: string;
  type?: 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY';
  repetition_type?: 'REQUIRED' | 'OPTIONAL' | 'REPEATED';
  num_children?: number;
  converted_type?: 'UTF8' | 'LIST' | 'MAP' | 'TIMESTAMP_MICROS' | 'DATE';
  logical_type?: { type: 'STRING' } | { type: 'TIMESTAMP'; isAdjustedToUTC: boolean; unit: 'MICROS' } | { type: 'DATE' };
}

function primitiveElement(name: string, t: PrimitiveType, rep: 'REQUIRED' | 'OPTIONAL'): ParquetElement {
  switch (t) {
    case 'string':
      return { name, type: 'BYTE_ARRAY', repetition_type: rep, converted_type: 'UTF8', logical_type: { type: 'STRING' } };
    case 'long':
      return { name, type: 'INT64', repetition_type: rep };
    case 'integer':
      return { name, type: 'INT32', repetition_type: rep };
    case 'double':
      return { name, type: 'DOUBLE', repetition_type: rep };
    case 'boolean':
      return { name, type: 'BOOLEAN', repetition_type: rep };
    case 'timestamp':
      return {
        name,
        type: 'INT64',
        repetition_type: rep,
        converted_type: 'TIMESTAMP_MICROS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      };
    case 'date':
      return { name, type: 'INT32', repetition_type: rep, converted_type: 'DATE', logical_type: { type: 'DATE' } };
  }
}

function elements(name: string, t: DeltaType, nullable: boolean, out: ParquetElement[]): void {
  const rep = nullable ? 'OPTIONAL' : 'REQUIRED';
  if (typeof t === 'string') {
    out.push(primitiveElement(name, t, rep));
    return;
  }
  switch (t.type) {
    case 'struct':
      out.push({ name, repetition_type: rep, num_children: t.fields.length });
      for (const c of t.fields) elements(c.name, c.type, c.nullable, out);
      return;
    case 'array':
      out.push({ name, repetition_type: rep, converted_type: 'LIST', num_children: 1 });
      out.push({ name: 'list', repetition_type: 'REPEATED', num_children: 1 });
      elements('element', t.elementType, t.containsNull, out);
      return;
    case 'map':
      out.push({ name, repetition_type: rep, converted_type: 'MAP', num_children: 1 });
      out.push({ name: 'key_value', repetition_type: 'REPEATED', num_children: 2 });
      out.push(primitiveElement('key', 'string', 'REQUIRED'));
      elements('value', t.valueType, t.valueContainsNull, out);
      return;
  }
}

/** The Parquet schema of a table's data files: every column but the partition column. */
export function parquetSchema(schema: TableSchema): ParquetElement[] {
  const cols = dataFields(schema);
  const out: ParquetElement[] = [{ name: 'root', num_children: cols.length }];
  for (const c of cols) elements(c.name, c.type, c.nullable, out);
  return out;
}

/** The columns stored in data files (the partition column lives in the path). */
export function dataFields(schema: TableSchema): readonly DeltaField[] {
  return schema.fields.filter((c) => c.name !== schema.partitionColumn);
}
