// Edge cases of each convention reader, on hand-built spans: malformed JSON keeps the raw text,
// missing attributes answer undefined, odd value types never throw.
import { describe, expect, it } from 'vitest';
import { normalizeDocuments } from '../../src/genai/documents.ts';
import { langfuse } from '../../src/genai/langfuse.ts';
import { mlflow } from '../../src/genai/mlflow.ts';
import { openinference } from '../../src/genai/openinference.ts';
import { openllmetry } from '../../src/genai/openllmetry.ts';
import { semconv } from '../../src/genai/semconv.ts';
import { indexedRecords, parseJsonLoose, stringList, unquote } from '../../src/genai/values.ts';
import { vercel } from '../../src/genai/vercel.ts';
import {
  READERS,
  readSpanDocuments,
  readSpanInputs,
  readSpanOutputs,
  readSpanType,
  readSpanUsage,
} from '../../src/genai/view.ts';
import type { Attributes, SpanData, SpanEventData } from '../../src/wire/decode.ts';

function span(attributes: Attributes = {}, events: Partial<SpanEventData>[] = []): SpanData {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    parentSpanId: '',
    traceState: '',
    flags: 0,
    name: 'test',
    kind: 1,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 1_000_000n,
    startTimeMs: 0,
    endTimeMs: 1,
    attributes,
    events: events.map((e) => ({ name: e.name ?? '', timeUnixNano: 0n, attributes: e.attributes ?? {} })),
    links: [],
    status: { code: 0, message: '' },
    resource: {},
    scope: { name: 'test', version: '', attributes: {} },
    experimentHeader: undefined,
  };
}

describe('values', () => {
  it('parses JSON-looking text and keeps everything else', () => {
    expect(parseJsonLoose('{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonLoose('"quoted"')).toBe('quoted');
    expect(parseJsonLoose('42')).toBe(42);
    expect(parseJsonLoose('null')).toBeNull();
    expect(parseJsonLoose('{not json')).toBe('{not json');
    expect(parseJsonLoose('hello world')).toBe('hello world');
    expect(parseJsonLoose('trueish')).toBe('trueish');
    expect(unquote('"x"')).toBe('x');
    expect(unquote('"broken')).toBe('"broken');
    expect(unquote('"a" and "b"')).toBe('"a" and "b"');
  });

  it('collects indexed attributes in index order, skipping non-numeric indexes', () => {
    const recs = indexedRecords(
      {
        'p.10.role': 'c',
        'p.2.role': 'b',
        'p.0.role': 'a',
        'p.0.content': 'x',
        'p.x.role': 'no',
        'p.3': 'no',
        'q.0.role': 'no',
      },
      'p',
    );
    expect(recs).toEqual([{ role: 'a', content: 'x' }, { role: 'b' }, { role: 'c' }]);
  });

  it('reads string lists from arrays, JSON arrays and single strings', () => {
    expect(stringList(['a', 1, { x: 1 }])).toEqual(['a', '1']);
    expect(stringList('["a","b"]')).toEqual(['a', 'b']);
    expect(stringList('one')).toEqual(['one']);
    expect(stringList(7)).toBeUndefined();
  });
});

describe('MLflow reader', () => {
  it('decodes JSON-encoded values and keeps malformed ones raw', () => {
    const s = span({
      'mlflow.spanType': '"RETRIEVER"',
      'mlflow.spanInputs': '{not json',
      'mlflow.spanOutputs': '"done"',
    });
    expect(mlflow.detect(s)).toBe(true);
    expect(mlflow.spanType!(s)).toBe('RETRIEVER');
    expect(mlflow.inputs!(s)).toEqual({ value: '{not json' });
    expect(mlflow.outputs!(s)).toEqual({ value: 'done' });
  });

  it('maps span types outside the filter vocabulary to UNKNOWN, and reads usage', () => {
    expect(mlflow.spanType!(span({ 'mlflow.spanType': '"MEMORY"' }))).toBe('UNKNOWN');
    expect(mlflow.spanType!(span({ 'mlflow.spanType': 'CHAT_MODEL' }))).toBe('CHAT_MODEL');
    expect(
      mlflow.usage!(span({ 'mlflow.chat.tokenUsage': '{"input_tokens": 3, "output_tokens": "4"}' })),
    ).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      totalTokens: 7,
    });
    expect(mlflow.usage!(span({ 'mlflow.chat.tokenUsage': '[1,2' }))).toBeUndefined();
    expect(mlflow.usage!(span({ 'mlflow.chat.tokenUsage': 12 }))).toBeUndefined();
  });

  it('answers nothing for a span without MLflow attributes', () => {
    const s = span({ other: 1 });
    expect(mlflow.detect(s)).toBe(false);
    expect(mlflow.inputs!(s)).toBeUndefined();
    expect(mlflow.spanType!(s)).toBeUndefined();
    expect(readSpanType(s)).toBe('UNKNOWN');
  });

  it('reads retriever documents from its outputs; malformed outputs give no documents', () => {
    const docs = [{ page_content: 'A', metadata: { doc_uri: 'u', score: 0.5 }, id: 'd1' }, 'plain text'];
    const s = span({ 'mlflow.spanType': '"RETRIEVER"', 'mlflow.spanOutputs': JSON.stringify(docs) });
    expect(readSpanDocuments(s)).toEqual([
      { content: 'A', id: 'd1', score: 0.5, metadata: { doc_uri: 'u', score: 0.5 } },
      { content: 'plain text' },
    ]);
    expect(
      readSpanDocuments(span({ 'mlflow.spanType': '"RETRIEVER"', 'mlflow.spanOutputs': '[{"page_content"' })),
    ).toEqual([]);
  });
});

describe('GenAI semconv reader', () => {
  it('reads current messages with system instructions first; malformed JSON stays raw', () => {
    const s = span({
      'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
      'gen_ai.system_instructions': '[{"type":"text","content":"be brief"}]',
      'gen_ai.output.messages': '[{"role":"assistant"',
    });
    expect(semconv.inputs!(s)).toEqual({
      value: [
        { role: 'system', parts: [{ type: 'text', content: 'be brief' }] },
        { role: 'user', parts: [{ type: 'text', content: 'hi' }] },
      ],
    });
    expect(semconv.outputs!(s)).toEqual({ value: '[{"role":"assistant"' });
  });

  it('reads the older indexed prompt and completion attributes', () => {
    const s = span({
      'gen_ai.prompt.1.role': 'user',
      'gen_ai.prompt.1.content': 'q',
      'gen_ai.prompt.0.role': 'system',
      'gen_ai.prompt.0.content': '{"not": "parsed"}',
      'gen_ai.completion.0.role': 'assistant',
      'gen_ai.completion.0.content': 'a',
    });
    expect(readSpanInputs(s)).toEqual({
      value: [
        { role: 'system', content: '{"not": "parsed"}' },
        { role: 'user', content: 'q' },
      ],
    });
    expect(readSpanOutputs(s)).toEqual({ value: [{ role: 'assistant', content: 'a' }] });
  });

  it('reads message events, including a JSON payload and the oldest content events', () => {
    const s = span({}, [
      { name: 'gen_ai.system.message', attributes: { 'gen_ai.system': 'openai', content: 'sys' } },
      { name: 'gen_ai.user.message', attributes: { content: 'q' } },
      { name: 'gen_ai.choice', attributes: { index: 0, finish_reason: 'stop', message: '{"content":"a"}' } },
    ]);
    expect(readSpanInputs(s)).toEqual({
      value: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'q' },
      ],
    });
    expect(readSpanOutputs(s)).toEqual({
      value: [{ index: 0, finish_reason: 'stop', message: { content: 'a' } }],
    });
    const old = span({}, [
      { name: 'gen_ai.content.prompt', attributes: { 'gen_ai.prompt': '[{"role":"user","content":"q"}]' } },
      { name: 'gen_ai.content.completion', attributes: { 'gen_ai.completion': 'plain' } },
    ]);
    expect(readSpanInputs(old)).toEqual({ value: [{ role: 'user', content: 'q' }] });
    expect(readSpanOutputs(old)).toEqual({ value: 'plain' });
    const payload = span({}, [
      {
        name: 'gen_ai.user.message',
        attributes: { 'gen_ai.event.content': '{"role":"user","content":"x"}' },
      },
    ]);
    expect(readSpanInputs(payload)).toEqual({ value: [{ role: 'user', content: 'x' }] });
  });

  it('reads usage in both generations, int64 as strings, and operation types', () => {
    expect(
      readSpanUsage(span({ 'gen_ai.usage.prompt_tokens': '5', 'gen_ai.usage.completion_tokens': 2 })),
    ).toEqual({
      inputTokens: 5,
      outputTokens: 2,
      totalTokens: 7,
    });
    expect(readSpanUsage(span({ 'gen_ai.usage.input_tokens': 'many' }))).toBeUndefined();
    expect(readSpanType(span({ 'gen_ai.operation.name': 'chat' }))).toBe('CHAT_MODEL');
    expect(readSpanType(span({ 'gen_ai.operation.name': 'execute_tool' }))).toBe('TOOL');
    expect(readSpanType(span({ 'gen_ai.operation.name': 'invoke_agent' }))).toBe('AGENT');
    expect(readSpanType(span({ 'gen_ai.operation.name': 'something_new' }))).toBe('UNKNOWN');
  });

  it('reads retrieval documents and query; malformed documents give none', () => {
    const s = span({
      'gen_ai.operation.name': 'retrieval',
      'gen_ai.retrieval.query.text': '42',
      'gen_ai.retrieval.documents': '[{"id": 7, "score": "0.5", "content": "c"}]',
    });
    expect(readSpanDocuments(s)).toEqual([{ content: 'c', id: '7', score: 0.5 }]);
    expect(semconv.query!(s)).toEqual({ value: '42' });
    expect(
      readSpanDocuments(span({ 'gen_ai.operation.name': 'retrieval', 'gen_ai.retrieval.documents': '[{' })),
    ).toEqual([]);
  });
});

describe('OpenInference reader', () => {
  it('parses input.value by mime type; malformed JSON stays raw; text that looks like JSON stays text', () => {
    expect(
      openinference.inputs!(span({ 'input.value': '{"a":1}', 'input.mime_type': 'application/json' })),
    ).toEqual({ value: { a: 1 } });
    expect(
      openinference.inputs!(span({ 'input.value': '{"a":', 'input.mime_type': 'application/json' })),
    ).toEqual({ value: '{"a":' });
    expect(
      openinference.inputs!(span({ 'input.value': '{"a":1}', 'input.mime_type': 'text/plain' })),
    ).toEqual({ value: '{"a":1}' });
    expect(openinference.inputs!(span({ 'input.value': '[1,2]' }))).toEqual({ value: [1, 2] });
    expect(openinference.inputs!(span({ 'input.value': '42' }))).toEqual({ value: '42' });
  });

  it('falls back to flattened messages, and reads token counts', () => {
    const s = span({
      'openinference.span.kind': 'LLM',
      'llm.input_messages.0.message.role': 'user',
      'llm.input_messages.0.message.content': 'q',
      'llm.output_messages.0.message.role': 'assistant',
      'llm.output_messages.0.message.content': 'a',
      'llm.token_count.prompt': 3,
      'llm.token_count.completion': 1,
    });
    expect(readSpanInputs(s)).toEqual({ value: [{ role: 'user', content: 'q' }] });
    expect(readSpanOutputs(s)).toEqual({ value: [{ role: 'assistant', content: 'a' }] });
    expect(readSpanUsage(s)).toEqual({ inputTokens: 3, outputTokens: 1, totalTokens: 4 });
    expect(readSpanType(s)).toBe('LLM');
  });

  it('reads flattened documents with missing content and malformed metadata', () => {
    const s = span({
      'openinference.span.kind': 'RETRIEVER',
      'retrieval.documents.0.document.id': 1,
      'retrieval.documents.0.document.metadata': '{bad',
      'retrieval.documents.1.document.content': 'two',
      'retrieval.documents.1.document.score': 'x',
      'retrieval.documents.1.document.metadata': '{"k":"v"}',
    });
    expect(readSpanDocuments(s)).toEqual([
      { content: '', id: '1' },
      { content: 'two', metadata: { k: 'v' } },
    ]);
  });
});

describe('OpenLLMetry reader', () => {
  it('reads entity I/O, malformed JSON raw, association properties and kinds', () => {
    const s = span({
      'traceloop.span.kind': 'workflow',
      'traceloop.entity.input': '{"args":["q"],"kwargs":{}}',
      'traceloop.entity.output': '{oops',
      'traceloop.association.properties.sessionId': 's',
      'traceloop.association.properties.user_id': 'u',
    });
    expect(readSpanInputs(s)).toEqual({ value: { args: ['q'], kwargs: {} } });
    expect(readSpanOutputs(s)).toEqual({ value: '{oops' });
    expect(openllmetry.sessionId!(s)).toBe('s');
    expect(openllmetry.userId!(s)).toBe('u');
    expect(readSpanType(s)).toBe('CHAIN');
    expect(readSpanType(span({ 'llm.request.type': 'chat' }))).toBe('CHAT_MODEL');
  });

  it('reads vector DB result events as documents and types the span as a retriever', () => {
    const s = span({ 'db.system': 'memory' }, [
      {
        name: 'db.query.result',
        attributes: {
          'db.query.result.id': 'a',
          'db.query.result.score': 0.3,
          'db.query.result.document': 'A',
        },
      },
      { name: 'db.query.result', attributes: { 'db.query.result.metadata': 'not json' } },
      { name: 'other' },
    ]);
    expect(readSpanType(s)).toBe('RETRIEVER');
    expect(readSpanDocuments(s)).toEqual([{ content: 'A', id: 'a', score: 0.3 }, { content: '' }]);
  });
});

describe('Vercel AI reader', () => {
  it('types operations and keeps response text as text', () => {
    expect(readSpanType(span({ 'ai.operationId': 'ai.generateText' }))).toBe('LLM');
    expect(readSpanType(span({ 'ai.operationId': 'ai.streamObject.doStream' }))).toBe('CHAT_MODEL');
    expect(readSpanType(span({ 'ai.operationId': 'ai.embedMany' }))).toBe('EMBEDDING');
    expect(readSpanType(span({ 'ai.operationId': 'ai.toolCall' }))).toBe('TOOL');
    expect(readSpanType(span({ 'ai.operationId': 'ai.somethingElse' }))).toBe('UNKNOWN');
    const s = span({
      'ai.operationId': 'ai.generateText',
      'ai.prompt': '{"prompt":',
      'ai.response.text': '{"looks":"json"}',
    });
    expect(vercel.inputs!(s)).toEqual({ value: '{"prompt":' });
    expect(vercel.outputs!(s)).toEqual({ value: '{"looks":"json"}' });
  });

  it('reads objects, tool calls, older result keys, usage names and metadata ids', () => {
    expect(vercel.outputs!(span({ 'ai.response.object': '{"a":1}' }))).toEqual({ value: { a: 1 } });
    expect(vercel.outputs!(span({ 'ai.result.text': 'old' }))).toEqual({ value: 'old' });
    expect(vercel.inputs!(span({ 'ai.toolCall.args': '{"x":2}' }))).toEqual({ value: { x: 2 } });
    expect(readSpanUsage(span({ 'ai.usage.promptTokens': 2, 'ai.usage.completionTokens': 3 }))).toEqual({
      inputTokens: 2,
      outputTokens: 3,
      totalTokens: 5,
    });
    const m = span({ 'ai.telemetry.metadata.session_id': 's', 'ai.telemetry.metadata.userId': 'u' });
    expect(vercel.sessionId!(m)).toBe('s');
    expect(vercel.userId!(m)).toBe('u');
  });
});

describe('Langfuse reader', () => {
  it('reads observation I/O, types, usage formats and failure level', () => {
    const s = span({
      'langfuse.observation.type': 'generation',
      'langfuse.observation.input': '[{"role":"user"',
      'langfuse.observation.output': 'plain answer',
      'langfuse.observation.usage_details': '{"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}',
      'langfuse.observation.level': 'ERROR',
    });
    expect(readSpanType(s)).toBe('LLM');
    expect(readSpanInputs(s)).toEqual({ value: '[{"role":"user"' });
    expect(readSpanOutputs(s)).toEqual({ value: 'plain answer' });
    expect(readSpanUsage(s)).toEqual({ inputTokens: 4, outputTokens: 1, totalTokens: 5 });
    expect(langfuse.failed(s)).toBe(true);
    expect(readSpanUsage(span({ 'langfuse.observation.usage_details': 'nope' }))).toBeUndefined();
  });

  it('a plain Langfuse span leaves the type to other conventions', () => {
    expect(readSpanType(span({ 'langfuse.observation.type': 'span', 'gen_ai.operation.name': 'chat' }))).toBe(
      'CHAT_MODEL',
    );
    expect(readSpanType(span({ 'langfuse.observation.type': 'span' }))).toBe('UNKNOWN');
  });
});

describe('precedence and robustness', () => {
  it('prefers Langfuse over MLflow over OpenInference over gen_ai messages', () => {
    const all = {
      'langfuse.observation.input': '"lf"',
      'mlflow.spanInputs': '"ml"',
      'input.value': 'oi',
      'gen_ai.input.messages': '[]',
    };
    expect(readSpanInputs(span(all))).toEqual({ value: 'lf' });
    const { 'langfuse.observation.input': _a, ...noLf } = all;
    expect(readSpanInputs(span(noLf))).toEqual({ value: 'ml' });
    const { 'mlflow.spanInputs': _b, ...noMl } = noLf;
    expect(readSpanInputs(span(noMl))).toEqual({ value: 'oi' });
    const { 'input.value': _c, ...onlySemconv } = noMl;
    expect(readSpanInputs(span(onlySemconv))).toEqual({ value: [] });
    expect(readSpanInputs(span({ input: '{"x":1}' }))).toEqual({ value: { x: 1 } });
  });

  it('never throws on odd value types', () => {
    const odd: Attributes = {};
    const keys = [
      'mlflow.spanType',
      'mlflow.spanInputs',
      'mlflow.chat.tokenUsage',
      'gen_ai.input.messages',
      'gen_ai.usage.input_tokens',
      'gen_ai.retrieval.documents',
      'input.value',
      'input.mime_type',
      'retrieval.documents.0.document.content',
      'traceloop.entity.input',
      'ai.operationId',
      'ai.prompt',
      'langfuse.observation.type',
      'langfuse.observation.usage_details',
      'session.id',
    ];
    for (const [i, k] of keys.entries()) {
      odd[k] = [null, new Uint8Array([1, 2]), { nested: [1, 'x'] }, [true], Number.NaN][i % 5]!;
    }
    const s = span(odd, [
      { name: 'gen_ai.user.message', attributes: { content: new Uint8Array([0]) } },
      { name: 'db.query.result' },
    ]);
    expect(() => {
      for (const r of READERS) {
        r.detect(s);
        r.spanType?.(s);
        r.inputs?.(s);
        r.outputs?.(s);
        r.usage?.(s);
        r.sessionId?.(s);
        r.userId?.(s);
        r.documents?.(s);
        r.query?.(s);
      }
      readSpanDocuments(s);
    }).not.toThrow();
  });
});

describe('document normaliser', () => {
  it('accepts wrapped lists, LangChain and plain shapes, and stringifies unknown objects', () => {
    expect(normalizeDocuments({ documents: [{ pageContent: 'a', metadata: '{"score": 0.1}' }] })).toEqual([
      { content: 'a', score: 0.1, metadata: { score: 0.1 } },
    ]);
    expect(normalizeDocuments([{ text: 't', doc_id: 3, relevance_score: 0.9 }, { x: 1 }, 5])).toEqual([
      { content: 't', id: '3', score: 0.9 },
      { content: '{"x":1}' },
    ]);
    expect(normalizeDocuments('["a"]')).toEqual([{ content: 'a' }]);
    expect(normalizeDocuments({ answer: 'no list' })).toBeUndefined();
    expect(normalizeDocuments('not json')).toBeUndefined();
  });
});
