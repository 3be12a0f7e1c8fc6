// Full decode of buffered spans and log records into plain objects, done once per completed
// trace (never on the receive path). Attribute values become plain JS values; int64 values become numbers
// (exact up to 2^53, which covers token counts, sizes and epoch milliseconds).
import type Long from 'long';
import type { ResourceRef, ScopeRef } from './reframe.ts';
import { otlpType, TYPE } from './proto.ts';

export type AttrValue = string | number | boolean | Uint8Array | null | AttrValue[] | { [k: string]: AttrValue };
export type Attributes = Record<string, AttrValue>;

export interface SpanEventData {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
}

export interface SpanLinkData {
  traceId: string;
  spanId: string;
  attributes: Attributes;
}

export const STATUS_UNSET = 0;
export const STATUS_OK = 1;
export const STATUS_ERROR = 2;

export interface ScopeData {
  name: string;
  version: string;
  attributes: Attributes;
}

export interface SpanData {
  traceId: string; // lowercase hex
  spanId: string;
  parentSpanId: string; // '' for a root span
  traceState: string;
  flags: number;
  name: string;
  kind: number; // OTLP SpanKind value
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  startTimeMs: number;
  endTimeMs: number;
  attributes: Attributes;
  events: SpanEventData[];
  links: SpanLinkData[];
  status: { code: number; message: string };
  /** Attributes of the span's resource; the same object for spans that shared a resource. */
  resource: Attributes;
  scope: ScopeData;
  /** Experiment header of the request that carried this span, if any. */
  experimentHeader: string | undefined;
  /**
   * Log records of the trace that name this span (set by the GenAI view, which joins them;
   * absent when there are none), ordered by time.
   */
  logs?: LogRecordData[];
}

export interface LogRecordData {
  traceId: string; // lowercase hex
  spanId: string; // '' when the record names no span
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  /** The record's event_name field ('' when unset; older SDKs put it in an `event.name` attribute). */
  eventName: string;
  /** The body as a plain value (a kvlist body becomes an object); null when absent. */
  body: AttrValue;
  attributes: Attributes;
  resource: Attributes;
  scope: ScopeData;
}

interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Long | number;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
interface PbKeyValue {
  key?: string;
  value?: PbAnyValue;
}

function longToNumber(v: Long | number | undefined): number {
  if (v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function longToBigInt(v: Long | number | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

export function anyValueToJs(v: PbAnyValue | undefined): AttrValue {
  if (v === undefined || v === null) return null;
  // Decoded messages carry prototype defaults for every oneof member, so the oneof's
  // discriminator (named `value` in common.proto) says which one is really set.
  switch ((v as { value?: string }).value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue':
      return longToNumber(v.intValue);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(anyValueToJs);
    case 'kvlistValue':
      return attributesToJs(v.kvlistValue?.values);
    case 'bytesValue':
      return v.bytesValue ?? new Uint8Array();
    default:
      return null;
  }
}

export function attributesToJs(kvs: PbKeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  if (!kvs) return out;
  for (const kv of kvs) {
    if (kv.key === undefined) continue;
    out[kv.key] = anyValueToJs(kv.value);
  }
  return out;
}

const hex = (b: Uint8Array | undefined): string => (b && b.length > 0 ? Buffer.from(b).toString('hex') : '');

const NS_PER_MS = 1_000_000n;
const nsToMs = (ns: bigint): number => Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;

const resourceCache = new WeakMap<ResourceRef, Attributes>();
const scopeCache = new WeakMap<ScopeRef, ScopeData>();

export function decodeResource(ref: ResourceRef): Attributes {
  let attrs = resourceCache.get(ref);
  if (!attrs) {
    attrs = ref.bytes
      ? attributesToJs((otlpType(TYPE.resource).decode(ref.bytes) as { attributes?: PbKeyValue[] }).attributes)
      : {};
    resourceCache.set(ref, attrs);
  }
  return attrs;
}

export function decodeScope(ref: ScopeRef): ScopeData {
  let s = scopeCache.get(ref);
  if (!s) {
    if (ref.bytes) {
      const m = otlpType(TYPE.scope).decode(ref.bytes) as {
        name?: string;
        version?: string;
        attributes?: PbKeyValue[];
      };
      s = { name: m.name ?? '', version: m.version ?? '', attributes: attributesToJs(m.attributes) };
    } else s = { name: '', version: '', attributes: {} };
    scopeCache.set(ref, s);
  }
  return s;
}

interface PbSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  traceState?: string;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: Long | number;
  endTimeUnixNano?: Long | number;
  attributes?: PbKeyValue[];
  events?: { name?: string; timeUnixNano?: Long | number; attributes?: PbKeyValue[] }[];
  links?: { traceId?: Uint8Array; spanId?: Uint8Array; attributes?: PbKeyValue[] }[];
  status?: { code?: number; message?: string };
}

export function decodeSpan(bytes: Uint8Array, resource: ResourceRef, scope: ScopeRef): SpanData {
  const m = otlpType(TYPE.span).decode(bytes) as PbSpan;
  const start = longToBigInt(m.startTimeUnixNano);
  const end = longToBigInt(m.endTimeUnixNano);
  const parent = m.parentSpanId?.some((b) => b !== 0) ? hex(m.parentSpanId) : '';
  return {
    traceId: hex(m.traceId),
    spanId: hex(m.spanId),
    parentSpanId: parent,
    traceState: m.traceState ?? '',
    flags: m.flags ?? 0,
    name: m.name ?? '',
    kind: m.kind ?? 0,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    startTimeMs: nsToMs(start),
    endTimeMs: nsToMs(end),
    attributes: attributesToJs(m.attributes),
    events: (m.events ?? []).map((e) => ({
      name: e.name ?? '',
      timeUnixNano: longToBigInt(e.timeUnixNano),
      attributes: attributesToJs(e.attributes),
    })),
    links: (m.links ?? []).map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId), attributes: attributesToJs(l.attributes) })),
    status: { code: m.status?.code ?? 0, message: m.status?.message ?? '' },
    resource: decodeResource(resource),
    scope: decodeScope(scope),
    experimentHeader: resource.experimentHeader,
  };
}

interface PbLogRecord {
  timeUnixNano?: Long | number;
  observedTimeUnixNano?: Long | number;
  severityNumber?: number;
  severityText?: string;
  body?: PbAnyValue;
  attributes?: PbKeyValue[];
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  eventName?: string;
}

export function decodeLogRecord(bytes: Uint8Array, resource: ResourceRef, scope: ScopeRef): LogRecordData {
  const m = otlpType(TYPE.logRecord).decode(bytes) as PbLogRecord;
  return {
    traceId: hex(m.traceId),
    spanId: m.spanId?.some((b) => b !== 0) ? hex(m.spanId) : '',
    timeUnixNano: longToBigInt(m.timeUnixNano),
    observedTimeUnixNano: longToBigInt(m.observedTimeUnixNano),
    severityNumber: m.severityNumber ?? 0,
    severityText: m.severityText ?? '',
    eventName: m.eventName ?? '',
    body: anyValueToJs(m.body),
    attributes: attributesToJs(m.attributes),
    resource: decodeResource(resource),
    scope: decodeScope(scope),
  };
}
