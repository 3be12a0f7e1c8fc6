// OTLP/JSON <-> protobuf. OTLP's JSON differs from proto3 JSON: trace and span ids are hex,
// enums are integers, 64-bit integers are decimal strings (numbers accepted too). Every object
// key in OTLP JSON is a field name (attributes are lists of {key, value}), so keys can be
// normalised to lowerCamelCase without touching user data.
//
// The request is walked along its message types before protobufjs encodes it, so every integer
// field is checked against its type: protobufjs on its own would turn "abc" into 0, "12abc" into
// 12 and wrap 2^70. A bad value refuses the request, naming the field:
// `resourceSpans[0].scopeSpans[0].spans[3].startTimeUnixNano: "12abc" is not an integer`.
import { ScorecarError } from '../util/index.ts';
import { otlpType, protobuf, TYPE } from './proto.ts';

export type Signal = 'traces' | 'logs' | 'metrics';

const REQUEST_TYPE: Record<Signal, string> = {
  traces: TYPE.traceRequest,
  logs: TYPE.logsRequest,
  metrics: TYPE.metricsRequest,
};

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
const INTEGER_RE = /^-?[0-9]+$/;

/** Range and width of each protobuf integer type. */
const INTEGER_TYPES: Record<string, { min: bigint; max: bigint; long: boolean; unsigned: boolean }> = {};
for (const [names, bits, unsigned] of [
  [['int64', 'sint64', 'sfixed64'], 64, false],
  [['uint64', 'fixed64'], 64, true],
  [['int32', 'sint32', 'sfixed32'], 32, false],
  [['uint32', 'fixed32'], 32, true],
] as const) {
  const min = unsigned ? 0n : -(2n ** BigInt(bits - 1));
  const max = unsigned ? 2n ** BigInt(bits) - 1n : 2n ** BigInt(bits - 1) - 1n;
  for (const n of names) INTEGER_TYPES[n] = { min, max, long: bits === 64, unsigned };
}

// protobufjs encodes 64-bit fields exactly when given a Long (it depends on the long package).
const Long = protobuf.util.Long as unknown as { fromBits(low: number, high: number, unsigned: boolean): unknown } | undefined;

function camel(key: string): string {
  return key.includes('_') ? key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : key;
}

function shown(v: unknown): string {
  return typeof v === 'string' && v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}…` : JSON.stringify(v);
}

/** An integer field's value (decimal string or JSON number), checked against its type. */
function integer(v: unknown, typeName: string, path: string): unknown {
  const t = INTEGER_TYPES[typeName]!;
  let n: bigint;
  if (typeof v === 'string' && INTEGER_RE.test(v)) n = BigInt(v);
  else if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
  else throw new ScorecarError('INVALID_JSON', `${path}: ${shown(v)} is not an integer`);
  if (n < t.min || n > t.max) {
    const why = n < 0n && t.unsigned ? `must not be negative (${typeName})` : `is out of range for ${typeName} (${t.min} to ${t.max})`;
    throw new ScorecarError('INVALID_JSON', `${path}: ${shown(v)} ${why}`);
  }
  if (!t.long) return Number(n);
  const bits = BigInt.asUintN(64, n);
  const low = Number(bits & 0xffffffffn) | 0;
  const high = Number(bits >> 32n) | 0;
  return Long ? Long.fromBits(low, high, t.unsigned) : { low, high, unsigned: t.unsigned };
}

function field(f: protobuf.Field, v: unknown, path: string): unknown {
  if (v === null) return v;
  if (f.resolvedType instanceof protobuf.Type) return message(v, f.resolvedType, path);
  if (f.type in INTEGER_TYPES) return integer(v, f.type, path);
  if (f.type === 'bytes' && typeof v === 'string' && ID_FIELDS.has(f.name)) {
    if (!HEX_RE.test(v)) throw new ScorecarError('INVALID_JSON', `${path}: ids must be hex strings, got ${shown(v)}`);
    return Buffer.from(v, 'hex');
  }
  return v;
}

/**
 * A JSON object as the plain object protobufjs encodes as `type`: keys in lowerCamelCase, ids
 * as bytes, integers checked and 64-bit ones as Longs. Keys that are no field are left out.
 */
function message(value: unknown, type: protobuf.Type, path: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value; // fromObject says what is wrong
  const out: Record<string, unknown> = {};
  const at = path === '' ? '' : `${path}.`;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = camel(k);
    const f = type.fields[key];
    if (f === undefined) continue;
    if (f.repeated && Array.isArray(v)) out[key] = v.map((e, i) => field(f, e, `${at}${key}[${i}]`));
    else out[key] = field(f, v, `${at}${key}`);
  }
  return out;
}

/** Parses an OTLP/JSON request body and encodes it as the protobuf request message. */
export function jsonToProtobuf(signal: Signal, body: Uint8Array | string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8'));
  } catch (e) {
    throw new ScorecarError('INVALID_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ScorecarError('INVALID_JSON', 'request body must be a JSON object');
  }
  const type = otlpType(REQUEST_TYPE[signal]);
  const normalised = message(parsed, type, '') as Record<string, unknown>;
  let msg: ReturnType<typeof type.fromObject>;
  try {
    msg = type.fromObject(normalised);
  } catch (e) {
    throw new ScorecarError('INVALID_JSON', `request does not match the OTLP schema: ${(e as Error).message}`);
  }
  return Buffer.from(type.encode(msg).finish());
}

function idsToHex(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToHex);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = ID_FIELDS.has(k) && typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : idsToHex(v);
  }
  return out;
}

/** Decodes a protobuf request into its OTLP/JSON object form (hex ids, int64 as strings). */
export function protobufToJson(signal: Signal, body: Uint8Array): Record<string, unknown> {
  const type = otlpType(REQUEST_TYPE[signal]);
  const obj = type.toObject(type.decode(body), { longs: String, enums: Number, bytes: String, defaults: false });
  return idsToHex(obj) as Record<string, unknown>;
}
