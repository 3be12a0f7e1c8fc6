// The GenAI view reading message content from log records: the recorded OpenTelemetry JS OpenAI
// instrumentation (content only in gen_ai.* log events), then hand-written edge cases: which span
// a record is joined to, order, duplicates, event-name sources, the operation-details event, and
// precedence against span events and span attributes.
import { describe, expect, it } from 'vitest';
import { tracesFromRequest } from '../../src/assembly/collect.ts';
import type { CompleteTrace } from '../../src/assembly/types.ts';
import { traceViewJson } from '../../src/genai/json.ts';
import { buildTraceView } from '../../src/genai/view.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { KB } from '../../scripts/record-fixtures/kb.ts';
import {
  anyValue,
  DEFAULT_VIEW_OPTIONS,
  fixtureTraces,
  fixtureViewsByTurn,
  otlpAttributes,
  type SyntheticSpan,
  syntheticRequest,
} from '../support/fixtures.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const id = (n: number) => n.toString(16).padStart(16, '0');
const EPOCH_NS = 1_700_000_000_000_000_000n;

interface SyntheticLog {
  spanId?: string;
  traceId?: string;
  /** Event name in the event_name field. */
  eventName?: string;
  /** Event name in an `event.name` attribute instead (older SDKs). */
  eventAttr?: string;
  body?: unknown;
  attributes?: Record<string, unknown>;
  /** Milliseconds after the epoch of syntheticRequest. */
  at?: number;
}

function logsRequest(logs: SyntheticLog[]): Buffer {
  return jsonToProtobuf(
    'logs',
    JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: otlpAttributes({ 'service.name': 'synthetic' }) },
          scopeLogs: [
            {
              scope: { name: 'genai-instrumentation' },
              logRecords: logs.map((l) => ({
                traceId: l.traceId ?? TRACE_ID,
                ...(l.spanId ? { spanId: l.spanId } : {}),
                ...(l.eventName ? { eventName: l.eventName } : {}),
                ...(l.at !== undefined ? { timeUnixNano: String(EPOCH_NS + BigInt(l.at) * 1_000_000n) } : {}),
                ...(l.body !== undefined ? { body: anyValue(l.body) } : {}),
                attributes: otlpAttributes({ ...(l.eventAttr ? { 'event.name': l.eventAttr } : {}), ...l.attributes }),
              })),
            },
          ],
        },
      ],
    }),
  );
}

function traceWithLogs(spans: SyntheticSpan[], logs: SyntheticLog[]): CompleteTrace {
  const req = jsonToProtobuf('traces', JSON.stringify(syntheticRequest(spans, { 'service.name': 'synthetic' }, TRACE_ID)));
  const [trace] = tracesFromRequest(req, { nowMs: 0, logs: logsRequest(logs) });
  return trace!;
}

const view = (spans: SyntheticSpan[], logs: SyntheticLog[]) => buildTraceView(traceWithLogs(spans, logs), DEFAULT_VIEW_OPTIONS);

/** A root span and one chat span under it, as the JS instrumentation writes them. */
const CHAT: SyntheticSpan[] = [
  { spanId: id(1), name: 'app', start: 0, end: 100 },
  { spanId: id(2), parentSpanId: id(1), name: 'chat gpt', start: 10, end: 90, attributes: { 'gen_ai.operation.name': 'chat' } },
];

describe('GenAI content from log records: the recorded JS instrumentation', () => {
  it('joins each log event to the chat span it names, in the order the app logged them', () => {
    const views = fixtureViewsByTurn('genai-semconv', 'openai-js');
    expect(views).toHaveLength(KB.turns.length);
    views.forEach((v, t) => {
      const chat = v.spans.find((s) => s.name === 'chat gpt-4o-mini')!;
      const names = (chat.logs ?? []).map((l) => l.attributes['event.name']);
      const answered = KB.turns[t]!.answer !== null;
      expect(names).toEqual(['gen_ai.system.message', 'gen_ai.user.message', ...(answered ? ['gen_ai.choice'] : [])]);
      expect(chat.logs!.every((l) => l.spanId === chat.spanId && l.traceId === v.traceId)).toBe(true);
      // No other span gets a record: every record names the chat span.
      expect(v.spans.filter((s) => s !== chat && s.logs !== undefined)).toEqual([]);
    });
  });

  it('without the log records the same traces have no inputs or outputs (what judges saw before)', () => {
    for (const trace of fixtureTraces('genai-semconv', 'openai-js', { logs: false })) {
      const v = buildTraceView(trace, DEFAULT_VIEW_OPTIONS);
      expect(v.inputs).toBeUndefined();
      expect(v.outputs).toBeUndefined();
    }
    // With them, every turn has its question among the inputs.
    const withLogs = fixtureViewsByTurn('genai-semconv', 'openai-js');
    withLogs.forEach((v, t) => {
      expect(JSON.stringify(v.inputs)).toContain(JSON.stringify(KB.turns[t]!.question));
    });
  });

  it('counts the log records in the trace size the selection stage budgets with', () => {
    const [withLogs] = fixtureTraces('genai-semconv', 'openai-js');
    const [without] = fixtureTraces('genai-semconv', 'openai-js', { logs: false });
    const logBytes = withLogs!.logs!.reduce((n, b) => n + b.length, 0);
    expect(logBytes).toBeGreaterThan(0);
    expect(withLogs!.wireBytes).toBe(without!.wireBytes + logBytes);
  });
});

describe('GenAI content from log records: joining and reading', () => {
  it('reads message events from the body, with the event name in event_name or an event.name attribute', () => {
    const v = view(CHAT, [
      { spanId: id(2), eventName: 'gen_ai.system.message', body: { content: 'be brief' }, at: 11 },
      { spanId: id(2), eventAttr: 'gen_ai.user.message', body: { content: 'hi?' }, attributes: { 'gen_ai.system': 'openai' }, at: 12 },
      { spanId: id(2), eventName: 'gen_ai.assistant.message', body: { tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f' } }] }, at: 13 },
      { spanId: id(2), eventName: 'gen_ai.tool.message', body: { content: '42', id: 'c1' }, at: 14 },
      { spanId: id(2), eventName: 'gen_ai.choice', body: { index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'hello' } }, at: 20 },
    ]);
    expect(v.inputs).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi?' },
      { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f' } }] },
      { role: 'tool', content: '42', id: 'c1' },
    ]);
    expect(v.outputs).toEqual([{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'hello' } }]);
    expect(v.conventions).toContain('genai-semconv');
  });

  it('orders a span’s records by time, whatever order they arrived in, and drops exact duplicates', () => {
    const user = { spanId: id(2), eventName: 'gen_ai.user.message', body: { content: 'second' }, at: 12 };
    const system = { spanId: id(2), eventName: 'gen_ai.system.message', body: { content: 'first' }, at: 11 };
    const v = view(CHAT, [user, system, user]);
    expect(v.inputs).toEqual([
      { role: 'system', content: 'first' },
      { role: 'user', content: 'second' },
    ]);
    expect(v.spans[1]!.logs).toHaveLength(2);
  });

  it('gives a record that names no span, or a span not in the trace, to the root span', () => {
    const v = view(CHAT, [
      { eventName: 'gen_ai.user.message', body: { content: 'no span id' }, at: 1 },
      { spanId: id(99), eventName: 'gen_ai.user.message', body: { content: 'lost span' }, at: 2 },
      { spanId: id(2), eventName: 'gen_ai.choice', body: { index: 0, message: { content: 'answer' } }, at: 3 },
    ]);
    expect(v.rootSpan.logs!.map((l) => (l.body as { content: string }).content)).toEqual(['no span id', 'lost span']);
    // The root's own inputs come first; outputs from the chat span (the root has none).
    expect(v.inputs).toEqual([
      { role: 'user', content: 'no span id' },
      { role: 'user', content: 'lost span' },
    ]);
    expect(v.outputs).toEqual([{ index: 0, message: { content: 'answer' } }]);
  });

  it('reads the operation-details event (messages as structured attributes)', () => {
    const v = view(CHAT, [
      {
        spanId: id(2),
        eventName: 'gen_ai.client.inference.operation.details',
        attributes: {
          'gen_ai.system_instructions': [{ type: 'text', content: 'be brief' }],
          'gen_ai.input.messages': [{ role: 'user', parts: [{ type: 'text', content: 'hi?' }] }],
          'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'stop' }]),
        },
      },
    ]);
    expect(v.inputs).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'be brief' }] },
      { role: 'user', parts: [{ type: 'text', content: 'hi?' }] },
    ]);
    expect(v.outputs).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: 'hello' }], finish_reason: 'stop' }]);
  });

  it('prefers a span’s GenAI span events to its log records, so both together do not double', () => {
    const spans: SyntheticSpan[] = [
      CHAT[0]!,
      { ...CHAT[1]!, events: [{ name: 'gen_ai.user.message', attributes: { content: 'from the span event' } }] },
    ];
    const v = view(spans, [{ spanId: id(2), eventName: 'gen_ai.user.message', body: { content: 'from the log' } }]);
    expect(v.inputs).toEqual([{ role: 'user', content: 'from the span event' }]);
  });

  it('follows the documented precedence: log events before MLflow attributes, after Vercel AI ones', () => {
    const mlflowSpan: SyntheticSpan[] = [
      { ...CHAT[0]!, attributes: { 'mlflow.spanInputs': JSON.stringify({ q: 'mlflow' }) } },
      CHAT[1]!,
    ];
    const log = { spanId: id(1), eventName: 'gen_ai.user.message', body: { content: 'event' } };
    expect(view(mlflowSpan, [log]).inputs).toEqual([{ role: 'user', content: 'event' }]);
    const vercelSpan: SyntheticSpan[] = [{ ...CHAT[0]!, attributes: { 'ai.prompt': JSON.stringify({ prompt: 'vercel' }) } }, CHAT[1]!];
    expect(view(vercelSpan, [log]).inputs).toEqual({ prompt: 'vercel' });
  });

  it('ignores log records that are not GenAI events, and skips records that do not decode', () => {
    const trace = traceWithLogs(CHAT, [
      { spanId: id(2), body: 'plain application log line', at: 5 },
      { spanId: id(2), eventName: 'gen_ai.user.message', body: { content: 'kept' }, at: 6 },
    ]);
    const garbage = new Uint8Array([0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const v = buildTraceView(
      {
        ...trace,
        logs: [garbage, ...trace.logs!],
        logResources: [trace.logResources![0]!, ...trace.logResources!],
        logScopes: [trace.logScopes![0]!, ...trace.logScopes!],
      },
      DEFAULT_VIEW_OPTIONS,
    );
    expect(v.spans[1]!.logs).toHaveLength(2);
    expect(v.inputs).toEqual([{ role: 'user', content: 'kept' }]);
  });

  it('lists each span’s log records in ctx.trace (JSON-safe), and an empty list for spans without', () => {
    const v = view(CHAT, [
      { spanId: id(2), eventAttr: 'gen_ai.user.message', body: { content: 'hi?' }, attributes: { n: 1 }, at: 12 },
    ]);
    const json = traceViewJson(v) as { spans: Array<{ name: string; logs: unknown[] }> };
    expect(json.spans.find((s) => s.name === 'app')!.logs).toEqual([]);
    expect(json.spans.find((s) => s.name === 'chat gpt')!.logs).toEqual([
      {
        eventName: 'gen_ai.user.message',
        timeUnixNano: String(EPOCH_NS + 12_000_000n),
        severityNumber: 0,
        severityText: '',
        body: { content: 'hi?' },
        attributes: { 'event.name': 'gen_ai.user.message', n: 1 },
        droppedAttributesCount: 0,
      },
    ]);
  });
});
