// Small, total helpers for reading attribute values that instrumentation libraries encode in
// different ways (JSON strings, flattened indexed keys, int64 as numbers). None of them throws:
// a value that cannot be read as asked is reported as absent, and malformed JSON stays the raw
// string it arrived as.
import type { Attributes, AttrValue } from '../wire/index.ts';

/** A value that was present (even if null), as opposed to an absent attribute. */
export interface Found {
  value: unknown;
}

const JSON_START = /^\s*[[{"]/;
const JSON_SCALAR = /^\s*(?:-?\d|true\s*$|false\s*$|null\s*$)/;

/**
 * Parses JSON when the text looks like JSON (object, array, string literal, number, true, false,
 * null); otherwise, or when it does not parse, returns the text unchanged.
 */
export function parseJsonLoose(text: string): unknown {
  if (!JSON_START.test(text) && !JSON_SCALAR.test(text)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Parses only structured JSON (objects and arrays); plain text stays text. */
export function parseJsonStructured(text: string): unknown {
  if (!/^\s*[[{]/.test(text)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** `"x"` (a JSON string literal, as MLflow writes every string) becomes `x`; anything else is kept. */
export function unquote(text: string): string {
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    try {
      const v = JSON.parse(text) as unknown;
      if (typeof v === 'string') return v;
    } catch {
      // not a JSON string literal: keep it
    }
  }
  return text;
}

/** Attribute value to plain JS for the view: strings parsed as JSON when they look like JSON. */
export function attrJson(attrs: Attributes, key: string): Found | undefined {
  if (!Object.hasOwn(attrs, key)) return undefined;
  const v = attrs[key];
  if (v === undefined) return undefined;
  return { value: typeof v === 'string' ? parseJsonLoose(v) : plain(v) };
}

/** A string attribute (numbers and booleans are stringified); undefined when absent or empty. */
export function attrString(attrs: Attributes, key: string): string | undefined {
  const v = attrs[key];
  if (typeof v === 'string') {
    const s = unquote(v);
    return s === '' ? undefined : s;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** A numeric attribute; numeric strings are accepted (int64 may arrive as text). */
export function attrNumber(attrs: Attributes, key: string): number | undefined {
  return toNumber(attrs[key]);
}

export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Converts decoded attribute values to JSON-friendly values (bytes become base64 text). */
export function plain(v: AttrValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

/** A string for metadata maps: strings as they are, everything else as JSON. */
export function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return String(v);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Collects flattened indexed attributes `<prefix>.<N>.<rest>` into an array of records keyed by
 * `<rest>` (N ascending; gaps are dropped). One pass over the keys.
 */
export function indexedRecords(attrs: Attributes, prefix: string): Record<string, AttrValue>[] {
  const p = `${prefix}.`;
  const byIndex = new Map<number, Record<string, AttrValue>>();
  for (const key of Object.keys(attrs)) {
    if (!key.startsWith(p)) continue;
    const rest = key.slice(p.length);
    const dot = rest.indexOf('.');
    if (dot <= 0) continue;
    const idx = rest.slice(0, dot);
    if (!/^\d+$/.test(idx)) continue;
    const n = Number(idx);
    let rec = byIndex.get(n);
    if (!rec) {
      rec = {};
      byIndex.set(n, rec);
    }
    rec[rest.slice(dot + 1)] = attrs[key] ?? null;
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

/** Whether any attribute key starts with one of the prefixes. */
export function hasKeyPrefix(attrs: Attributes, prefixes: readonly string[]): boolean {
  for (const key of Object.keys(attrs)) {
    for (const p of prefixes) if (key.startsWith(p)) return true;
  }
  return false;
}

/** A list of strings from an array attribute, a JSON array string, or a single string. */
export function stringList(v: unknown): string[] | undefined {
  const value = typeof v === 'string' ? parseJsonLoose(v) : v;
  if (Array.isArray(value)) {
    const out = value.filter((x): x is string | number | boolean =>
      ['string', 'number', 'boolean'].includes(typeof x),
    );
    return out.map(String);
  }
  if (typeof value === 'string' && value !== '') return [value];
  return undefined;
}
