// OTLP/JSON <-> protobuf. OTLP's JSON differs from proto3 JSON: trace and span ids are hex,
// enums are integers, 64-bit integers are decimal strings (numbers accepted too). Every object
// key in OTLP JSON is a field name (attributes are lists of {key, value}), so keys can be
// normalised to lowerCamelCase without touching user data.
import { ScorecarError } from '../util/index.ts';
import { otlpType, TYPE } from './proto.ts';

export type Signal = 'traces' | 'logs' | 'metrics';

const REQUEST_TYPE: Record<Signal, string> = {
  traces: TYPE.traceRequest,
  logs: TYPE.logsRequest,
  metrics: TYPE.metricsRequest,
};

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function camel(key: string): string {
  return key.includes('_') ? key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : key;
}

function normalise(value: unknown, path: string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => normalise(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = camel(k);
    if (ID_FIELDS.has(key) && typeof v === 'string') {
      if (!HEX_RE.test(v)) {
        throw new ScorecarError('INVALID_JSON', `${path}.${key}: ids must be hex strings, got ${JSON.stringify(v.slice(0, 40))}`);
      }
      out[key] = Buffer.from(v, 'hex');
    } else out[key] = normalise(v, `${path}.${key}`);
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
  let msg: ReturnType<typeof type.fromObject>;
  try {
    msg = type.fromObject(normalise(parsed, '') as Record<string, unknown>);
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
