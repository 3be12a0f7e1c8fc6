// Recorded GenAI trace fixtures (test/fixtures/<convention>/<name>.json, recorded by
// scripts/record-fixtures/record.ts) in every form tests need: the OTLP/JSON object, protobuf
// bytes of an ExportTraceServiceRequest (and of the ExportLogsServiceRequest of <name>.logs.json),
// assembled CompleteTraces (log records joined) and built TraceViews.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tracesFromRequest } from '../../src/assembly/collect.ts';
import type { CompleteTrace } from '../../src/assembly/types.ts';
import type { TraceView } from '../../src/genai/types.ts';
import { buildTraceView, type TraceViewOptions } from '../../src/genai/view.ts';
import { jsonToProtobuf } from '../../src/wire/json.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface FixtureRef {
  /** Folder under test/fixtures: mlflow, genai-semconv, openinference, openllmetry, vercel-ai, langfuse. */
  convention: string;
  /** File name without .json. */
  name: string;
  /** Whether a <name>.logs.json with the app's log records sits beside it. */
  hasLogs: boolean;
}

/** Every recorded trace fixture, sorted by convention then name. */
export const ALL_FIXTURES: readonly FixtureRef[] = listFixtures();

function listFixtures(): FixtureRef[] {
  const out: FixtureRef[] = [];
  for (const entry of readdirSync(FIXTURES_DIR, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const files = readdirSync(join(FIXTURES_DIR, entry.name));
    for (const f of files) {
      if (!f.endsWith('.json') || f.endsWith('.logs.json')) continue;
      const name = f.slice(0, -'.json'.length);
      out.push({ convention: entry.name, name, hasLogs: files.includes(`${name}.logs.json`) });
    }
  }
  return out.sort((a, b) => a.convention.localeCompare(b.convention) || a.name.localeCompare(b.name));
}

/** Default experiment options (config defaults of experiments.resolution / .default). */
export const DEFAULT_VIEW_OPTIONS: TraceViewOptions = {
  resolution: ['resource:mlflow.experimentId', 'header:x-mlflow-experiment-id', 'resource:service.name'],
  defaultExperiment: 'default',
};

function path(convention: string, name: string, logs = false): string {
  return join(FIXTURES_DIR, convention, `${name}${logs ? '.logs' : ''}.json`);
}

/** The fixture's OTLP/JSON ExportTraceServiceRequest (a fresh object on every call). */
export function loadFixture(convention: string, name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path(convention, name), 'utf8')) as Record<string, unknown>;
}

/** The fixture's log records as an OTLP/JSON ExportLogsServiceRequest, or null when it has none. */
export function loadFixtureLogs(convention: string, name: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(path(convention, name, true), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The fixture as protobuf bytes of an ExportTraceServiceRequest. */
export function fixtureProtobuf(convention: string, name: string): Buffer {
  return jsonToProtobuf('traces', readFileSync(path(convention, name), 'utf8'));
}

/** The fixture's log records as protobuf bytes of an ExportLogsServiceRequest, or null. */
export function fixtureLogsProtobuf(convention: string, name: string): Buffer | null {
  const logs = loadFixtureLogs(convention, name);
  return logs ? jsonToProtobuf('logs', JSON.stringify(logs)) : null;
}

/**
 * The fixture's traces as the assembler would hand them on, in order of first appearance, with
 * the log records of <name>.logs.json joined to them (unless `logs: false`).
 * `experimentHeader` simulates an x-mlflow-experiment-id request header.
 */
export function fixtureTraces(
  convention: string,
  name: string,
  opts: { experimentHeader?: string; logs?: boolean } = {},
): CompleteTrace[] {
  const { logs: withLogs = true, ...rest } = opts;
  const logs = withLogs ? fixtureLogsProtobuf(convention, name) : null;
  return tracesFromRequest(fixtureProtobuf(convention, name), {
    ...rest,
    nowMs: 0,
    ...(logs ? { logs } : {}),
  });
}

/** TraceViews of the fixture's traces, in order of first appearance. */
export function fixtureViews(
  convention: string,
  name: string,
  opts: Partial<TraceViewOptions> & { experimentHeader?: string } = {},
): TraceView[] {
  const { experimentHeader, ...viewOpts } = opts;
  const o = { ...DEFAULT_VIEW_OPTIONS, ...viewOpts };
  return fixtureTraces(convention, name, experimentHeader === undefined ? {} : { experimentHeader }).map(
    (t) => buildTraceView(t, o),
  );
}

/** TraceViews ordered by root start time: the order the recorded app ran its turns in. */
export function fixtureViewsByTurn(
  convention: string,
  name: string,
  opts: Partial<TraceViewOptions> = {},
): TraceView[] {
  return fixtureViews(convention, name, opts).sort((a, b) => a.startTimeMs - b.startTimeMs);
}

// ---------------------------------------------------------------- synthetic traces

/** A JS value as an OTLP/JSON AnyValue (integers become intValue, other numbers doubleValue). */
export function anyValue(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v !== null && typeof v === 'object') {
    return { kvlistValue: { values: Object.entries(v).map(([key, x]) => ({ key, value: anyValue(x) })) } };
  }
  return {};
}

export function otlpAttributes(
  attrs: Record<string, unknown> = {},
): { key: string; value: Record<string, unknown> }[] {
  return Object.entries(attrs).map(([key, value]) => ({ key, value: anyValue(value) }));
}

export interface SyntheticSpan {
  spanId: string;
  parentSpanId?: string;
  name?: string;
  /** Milliseconds after an arbitrary epoch. */
  start?: number;
  end?: number;
  attributes?: Record<string, unknown>;
  events?: { name: string; attributes?: Record<string, unknown> }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status?: number;
}

const EPOCH_NS = 1_700_000_000_000_000_000n;
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

/** A hand-written OTLP/JSON trace request (for reader edge cases; real data lives in fixtures). */
export function syntheticRequest(
  spans: SyntheticSpan[],
  resource: Record<string, unknown> = { 'service.name': 'synthetic' },
  traceId = TRACE_ID,
): Record<string, unknown> {
  const ns = (ms: number) => String(EPOCH_NS + BigInt(Math.round(ms * 1000)) * 1000n);
  return {
    resourceSpans: [
      {
        resource: { attributes: otlpAttributes(resource) },
        scopeSpans: [
          {
            scope: { name: 'synthetic' },
            spans: spans.map((s, i) => ({
              traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name ?? `span-${i}`,
              kind: 1,
              startTimeUnixNano: ns(s.start ?? i),
              endTimeUnixNano: ns(s.end ?? (s.start ?? i) + 10),
              attributes: otlpAttributes(s.attributes),
              events: (s.events ?? []).map((e) => ({
                name: e.name,
                timeUnixNano: ns(s.start ?? i),
                attributes: otlpAttributes(e.attributes),
              })),
              status: { code: s.status ?? 0 },
            })),
          },
        ],
      },
    ],
  };
}

/** The single CompleteTrace of a synthetic request. */
export function syntheticTrace(
  spans: SyntheticSpan[],
  resource?: Record<string, unknown>,
  opts: { experimentHeader?: string } = {},
): CompleteTrace {
  const traces = tracesFromRequest(
    jsonToProtobuf('traces', JSON.stringify(syntheticRequest(spans, resource))),
    {
      ...opts,
      nowMs: 0,
    },
  );
  if (traces.length !== 1) throw new Error(`expected one trace, got ${traces.length}`);
  return traces[0]!;
}

/** The TraceView of a synthetic trace with the default experiment options. */
export function syntheticView(
  spans: SyntheticSpan[],
  resource?: Record<string, unknown>,
  opts: Partial<TraceViewOptions> & { experimentHeader?: string } = {},
): TraceView {
  const { experimentHeader, ...viewOpts } = opts;
  const trace = syntheticTrace(spans, resource, experimentHeader === undefined ? {} : { experimentHeader });
  return buildTraceView(trace, { ...DEFAULT_VIEW_OPTIONS, ...viewOpts });
}
