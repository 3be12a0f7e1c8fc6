// buildTraceView and resolveExperiment on hand-written traces: root election (several roots, no
// root), status, timing, token usage roll-ups, I/O fallbacks, tags, metadata, expectations,
// experiment rules, and traces with undecodable or duplicate spans.
import { describe, expect, it } from 'vitest';
import type { CompleteTrace } from '../../src/assembly/types.ts';
import { encodedSpanHasParent, resolveExperiment } from '../../src/genai/experiment.ts';
import { buildTraceView } from '../../src/genai/view.ts';
import { isScorecarError } from '../../src/util/errors.ts';
import {
  DEFAULT_VIEW_OPTIONS,
  type SyntheticSpan,
  syntheticTrace,
  syntheticView,
} from '../support/fixtures.ts';

const id = (n: number) => n.toString(16).padStart(16, '0');

describe('root, status and timing', () => {
  it('picks the earliest-starting of several parentless spans', () => {
    const v = syntheticView([
      { spanId: id(1), name: 'late-root', start: 50, end: 60 },
      { spanId: id(2), name: 'early-root', start: 10, end: 30 },
      { spanId: id(3), parentSpanId: id(2), name: 'child', start: 12, end: 20 },
    ]);
    expect(v.rootSpan.name).toBe('early-root');
    expect(v.name).toBe('early-root');
    expect(v.spans.map((s) => s.name)).toEqual(['early-root', 'child', 'late-root']);
    expect(v.executionTimeMs).toBeCloseTo(20, 6);
    expect(v.startTimeMs).toBe(v.rootSpan.startTimeMs);
  });

  it('without a parentless span, takes the earliest span whose parent is missing and the whole extent', () => {
    const v = syntheticView([
      { spanId: id(5), parentSpanId: id(4), name: 'grandchild', start: 1, end: 3 },
      { spanId: id(4), parentSpanId: id(99), name: 'orphan', start: 2, end: 9 },
    ]);
    expect(v.rootSpan.name).toBe('orphan');
    expect(v.executionTimeMs).toBeCloseTo(8, 6);
    expect(v.endTimeMs - v.startTimeMs).toBeCloseTo(8, 6);
  });

  it('with a parent cycle and no orphan, takes the earliest span and still terminates', () => {
    const v = syntheticView([
      {
        spanId: id(1),
        parentSpanId: id(2),
        name: 'a',
        start: 5,
        attributes: { 'gen_ai.usage.input_tokens': 1 },
      },
      {
        spanId: id(2),
        parentSpanId: id(1),
        name: 'b',
        start: 3,
        attributes: { 'gen_ai.usage.input_tokens': 2 },
      },
    ]);
    expect(v.rootSpan.name).toBe('b');
    expect(v.spans).toHaveLength(2);
  });

  it('puts parents first among spans that start together', () => {
    const v = syntheticView([
      { spanId: id(3), parentSpanId: id(2), name: 'inner', start: 5 },
      { spanId: id(2), parentSpanId: id(1), name: 'middle', start: 5 },
      { spanId: id(1), name: 'root', start: 5 },
    ]);
    expect(v.spans.map((s) => s.name)).toEqual(['root', 'middle', 'inner']);
  });

  it('is ERROR only when the root failed (OTel status or Langfuse level)', () => {
    const child = { spanId: id(2), parentSpanId: id(1), status: 2 };
    expect(syntheticView([{ spanId: id(1), status: 0 }, child]).status).toBe('OK');
    expect(syntheticView([{ spanId: id(1), status: 1 }]).status).toBe('OK');
    expect(syntheticView([{ spanId: id(1), status: 2 }]).status).toBe('ERROR');
    expect(
      syntheticView([{ spanId: id(1), attributes: { 'langfuse.observation.level': 'ERROR' } }]).status,
    ).toBe('ERROR');
  });

  it('drops duplicate span ids (first copy wins)', () => {
    const v = syntheticView([
      { spanId: id(1), name: 'root' },
      { spanId: id(2), parentSpanId: id(1), name: 'first copy' },
      { spanId: id(2), parentSpanId: id(1), name: 'second copy' },
    ]);
    expect(v.spans.map((s) => s.name)).toEqual(['root', 'first copy']);
    expect(v.spanTypes).toHaveLength(2);
  });
});

describe('token usage', () => {
  it('sums leaf reports and skips parents that roll up their children', () => {
    const spans: SyntheticSpan[] = [
      {
        spanId: id(1),
        name: 'agent',
        attributes: { 'gen_ai.usage.input_tokens': 30, 'gen_ai.usage.output_tokens': 12 },
      },
      {
        spanId: id(2),
        parentSpanId: id(1),
        attributes: { 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 4 },
      },
      {
        spanId: id(3),
        parentSpanId: id(1),
        attributes: { 'ai.usage.inputTokens': 20, 'ai.usage.outputTokens': 8 },
      },
      { spanId: id(4), parentSpanId: id(3), name: 'tool without usage' },
      {
        spanId: id(5),
        name: 'other root',
        attributes: { 'llm.token_count.prompt': 1, 'llm.token_count.total': 9 },
      },
    ];
    expect(syntheticView(spans).tokenUsage).toEqual({ inputTokens: 31, outputTokens: 12, totalTokens: 51 });
  });

  it('is empty when no span reports usage', () => {
    expect(syntheticView([{ spanId: id(1) }]).tokenUsage).toEqual({});
  });

  it('handles a deep chain (no recursion limits)', () => {
    const n = 3000;
    const spans: SyntheticSpan[] = [];
    for (let i = 1; i <= n; i++) {
      spans.push({
        spanId: id(i),
        ...(i > 1 ? { parentSpanId: id(i - 1) } : {}),
        start: i,
        end: 2 * n - i,
        attributes:
          i === n
            ? { 'gen_ai.usage.input_tokens': 7, 'gen_ai.operation.name': 'chat' }
            : { 'gen_ai.operation.name': 'chat' },
      });
    }
    const v = syntheticView(spans);
    expect(v.tokenUsage).toEqual({ inputTokens: 7, totalTokens: 7 });
    expect(v.spans).toHaveLength(n);
  });
});

describe('inputs and outputs', () => {
  it('uses the root span first, then Langfuse trace-level values override', () => {
    const base: SyntheticSpan[] = [
      { spanId: id(1), attributes: { 'input.value': 'root in', 'output.value': 'root out' } },
      { spanId: id(2), parentSpanId: id(1), attributes: { 'langfuse.trace.input': '{"q":1}' } },
    ];
    const v = syntheticView(base);
    expect(v.inputs).toEqual({ q: 1 });
    expect(v.outputs).toBe('root out');
  });

  it('falls back to the outermost LLM span: first to start for inputs, last to end for outputs', () => {
    const v = syntheticView([
      { spanId: id(1), name: 'app', start: 0, end: 100 },
      {
        spanId: id(2),
        parentSpanId: id(1),
        name: 'retriever',
        start: 1,
        end: 2,
        attributes: {
          'openinference.span.kind': 'RETRIEVER',
          'input.value': 'query',
          'output.value': '["doc"]',
        },
      },
      {
        spanId: id(3),
        parentSpanId: id(1),
        name: 'llm1',
        start: 10,
        end: 20,
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.input.messages': '["first"]',
          'gen_ai.output.messages': '["draft"]',
        },
      },
      {
        spanId: id(4),
        parentSpanId: id(3),
        name: 'nested llm',
        start: 11,
        end: 19,
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.input.messages': '["nested"]',
          'gen_ai.output.messages': '["nested out"]',
        },
      },
      {
        spanId: id(5),
        parentSpanId: id(1),
        name: 'llm2',
        start: 30,
        end: 40,
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.input.messages': '["second"]',
          'gen_ai.output.messages': '["final"]',
        },
      },
    ]);
    expect(v.inputs).toEqual(['first']);
    expect(v.outputs).toEqual(['final']);
  });

  it('falls back to other spans, never to retrievers, and leaves I/O undefined when none has any', () => {
    const withChain = syntheticView([
      { spanId: id(1), name: 'app' },
      {
        spanId: id(2),
        parentSpanId: id(1),
        attributes: { 'openinference.span.kind': 'RETRIEVER', 'input.value': 'query' },
      },
      {
        spanId: id(3),
        parentSpanId: id(1),
        attributes: { 'traceloop.span.kind': 'task', 'traceloop.entity.input': '"task in"' },
      },
    ]);
    expect(withChain.inputs).toBe('task in');
    expect(withChain.outputs).toBeUndefined();
    const bare = syntheticView([{ spanId: id(1) }]);
    expect(bare.inputs).toBeUndefined();
    expect(bare.outputs).toBeUndefined();
  });
});

describe('retrievals, tags, metadata, expectations, session', () => {
  it('lists every retriever span, even one that returned nothing', () => {
    const v = syntheticView([
      { spanId: id(1), name: 'root' },
      {
        spanId: id(2),
        parentSpanId: id(1),
        name: 'r1',
        start: 1,
        attributes: {
          'mlflow.spanType': '"RETRIEVER"',
          'mlflow.spanInputs': '{"q":"x"}',
          'mlflow.spanOutputs': '[]',
        },
      },
      {
        spanId: id(3),
        parentSpanId: id(1),
        name: 'r2',
        start: 2,
        attributes: { 'openinference.span.kind': 'RETRIEVER' },
      },
    ]);
    expect(v.retrievals).toEqual([
      { spanId: id(2), spanName: 'r1', query: { q: 'x' }, documents: [] },
      { spanId: id(3), spanName: 'r2', documents: [] },
    ]);
  });

  it('collects tags from MLflow trace tags, Langfuse and OpenInference labels', () => {
    const v = syntheticView([
      { spanId: id(1), attributes: { 'mlflow.traceTag.env': '"prod"', 'tag.tags': ['beta'] } },
      { spanId: id(2), parentSpanId: id(1), attributes: { 'langfuse.trace.tags': ['vip', 'env'] } },
    ]);
    expect(v.tags).toEqual({ env: 'prod', beta: 'true', vip: 'true' });
  });

  it('stringifies root then resource attributes into metadata, plus metadata conventions', () => {
    const v = syntheticView(
      [
        {
          spanId: id(1),
          attributes: { 'service.name': 'from-root', n: 3, flag: true, list: ['a', 1], kv: { k: 'v' } },
        },
        {
          spanId: id(2),
          parentSpanId: id(1),
          attributes: { 'ai.telemetry.metadata.tenant': 'acme', 'user.id': 'u1' },
        },
      ],
      { 'service.name': 'svc', region: 'eu' },
    );
    expect(v.metadata).toMatchObject({
      'service.name': 'from-root',
      n: '3',
      flag: 'true',
      list: '["a",1]',
      kv: '{"k":"v"}',
      region: 'eu',
      tenant: 'acme',
      'mlflow.trace.user': 'u1',
    });
    expect(v.metadata['mlflow.trace.session']).toBeUndefined();
    expect(v.userId).toBe('u1');
    expect(v.sessionId).toBeUndefined();
    expect(v.resource).toEqual({ 'service.name': 'svc', region: 'eu' });
  });

  it('reads session and user ids by precedence, root first', () => {
    const v = syntheticView([
      { spanId: id(1), attributes: { 'gen_ai.conversation.id': 'conv-1' } },
      {
        spanId: id(2),
        parentSpanId: id(1),
        attributes: { 'session.id': 'other', 'langfuse.user.id': 'lf-user' },
      },
    ]);
    expect(v.sessionId).toBe('conv-1');
    expect(v.userId).toBe('lf-user');
    const ml = syntheticView([
      {
        spanId: id(1),
        attributes: { 'mlflow.trace.session': '"s-ml"', 'session.id': 's-otel', 'enduser.id': 'e' },
      },
    ]);
    expect(ml.sessionId).toBe('s-ml');
    expect(ml.userId).toBe('e');
  });

  it('reads expectations from the scorecar convention, MLflow tags and Langfuse experiment items', () => {
    const v = syntheticView([
      {
        spanId: id(1),
        attributes: {
          'scorecar.expectations.expected_response': '{"answer": 42}',
          'scorecar.expectations.expected_facts': ['fact a', 'fact b'],
          'mlflow.expectations.guidelines': 'Be polite',
          'scorecar.expectations.max_words': 50,
          'mlflow.traceTag.scorecar.expectations.guidelines': '["ignored: root attribute wins"]',
          expected_response: 'lower precedence',
        },
      },
    ]);
    expect(v.expectations).toEqual({
      expectedResponse: { answer: 42 },
      expectedFacts: ['fact a', 'fact b'],
      guidelines: ['Be polite'],
      max_words: 50,
    });
    const tagged = syntheticView([
      { spanId: id(1), attributes: { 'mlflow.traceTag.scorecar.expectations.guidelines': '"Cite sources"' } },
    ]);
    expect(tagged.expectations).toEqual({ guidelines: ['Cite sources'] });
    const lf = syntheticView([
      { spanId: id(1) },
      {
        spanId: id(2),
        parentSpanId: id(1),
        attributes: { 'langfuse.experiment.item.expected_output': '"Paris"' },
      },
    ]);
    expect(lf.expectations).toEqual({ expectedResponse: 'Paris' });
    expect(syntheticView([{ spanId: id(1), attributes: { expected_output: 'x' } }]).expectations).toEqual({
      expectedResponse: 'x',
    });
  });
});

describe('experiment resolution', () => {
  const spans: SyntheticSpan[] = [
    { spanId: id(2), parentSpanId: id(1), attributes: { 'app.experiment': 'from-child' } },
    { spanId: id(1), attributes: { 'app.experiment': '"from-root"' } },
  ];

  it('follows the default order: mlflow.experimentId, header, service.name, default', () => {
    const both = syntheticTrace(
      spans,
      { 'mlflow.experimentId': 123, 'service.name': 'svc' },
      { experimentHeader: 'hdr' },
    );
    expect(resolveExperiment(both, DEFAULT_VIEW_OPTIONS.resolution, 'dflt')).toBe('123');
    const header = syntheticTrace(spans, { 'service.name': 'svc' }, { experimentHeader: 'hdr' });
    expect(resolveExperiment(header, DEFAULT_VIEW_OPTIONS.resolution, 'dflt')).toBe('hdr');
    const svc = syntheticTrace(spans, { 'service.name': 'svc', 'mlflow.experimentId': '' });
    expect(resolveExperiment(svc, DEFAULT_VIEW_OPTIONS.resolution, 'dflt')).toBe('svc');
    expect(resolveExperiment(syntheticTrace(spans, {}), DEFAULT_VIEW_OPTIONS.resolution, 'dflt')).toBe(
      'dflt',
    );
  });

  it('reads span rules from the root span only, unquoting JSON strings', () => {
    const t = syntheticTrace(spans, {});
    expect(resolveExperiment(t, ['span:app.experiment'], 'd')).toBe('from-root');
    expect(
      buildTraceView(t, { resolution: ['span:app.experiment'], defaultExperiment: 'd' }).experimentId,
    ).toBe('from-root');
    expect(resolveExperiment(t, ['bogus', 'resource:', 'header:x-other', 'span:missing'], 'd')).toBe('d');
  });

  it('finds the root span from the encoded bytes', () => {
    const t = syntheticTrace(spans, {});
    expect(t.spans.map(encodedSpanHasParent)).toEqual([true, false]);
    expect(encodedSpanHasParent(new Uint8Array([0x22, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]))).toBe(false);
    expect(encodedSpanHasParent(new Uint8Array([0x22, 0x08, 0, 0]))).toBe(true);
    expect(encodedSpanHasParent(new Uint8Array([0xff]))).toBe(true);
    expect(encodedSpanHasParent(new Uint8Array())).toBe(false);
  });
});

describe('undecodable input', () => {
  const good = syntheticTrace([{ spanId: id(1), name: 'ok' }], {});
  const garbage = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);

  it('skips spans that do not decode', () => {
    const trace: CompleteTrace = {
      ...good,
      spans: [garbage, ...good.spans],
      resources: [good.resources[0]!, ...good.resources],
      scopes: [good.scopes[0]!, ...good.scopes],
    };
    const v = buildTraceView(trace, DEFAULT_VIEW_OPTIONS);
    expect(v.spans.map((s) => s.name)).toEqual(['ok']);
  });

  it('refuses a trace with no decodable span with a stable code', () => {
    const trace: CompleteTrace = {
      ...good,
      spans: [garbage],
      resources: [good.resources[0]!],
      scopes: [good.scopes[0]!],
    };
    let err: unknown;
    try {
      buildTraceView(trace, DEFAULT_VIEW_OPTIONS);
    } catch (e) {
      err = e;
    }
    expect(isScorecarError(err) && err.code).toBe('INVALID_PROTOBUF');
  });
});
