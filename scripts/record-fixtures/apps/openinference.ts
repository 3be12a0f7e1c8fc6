// RAG app traced with OpenInference: the OpenAI SDK auto-instrumented by
// @arizeai/openinference-instrumentation-openai, plus the app's own CHAIN and RETRIEVER spans
// written with OpenInference's attribute names; session and user set through context.
import { OITracer, setSession, setUser } from '@arizeai/openinference-core';
import { OpenAIInstrumentation } from '@arizeai/openinference-instrumentation-openai';
import {
  MimeType,
  OpenInferenceSpanKind,
  SemanticConventions as SC,
} from '@arizeai/openinference-semantic-conventions';
import { context, SpanStatusCode } from '@opentelemetry/api';
import OpenAI from 'openai';
import { chatMessages, KB, retrieve } from '../kb.ts';
import { askModel, runTurns, tracerProvider } from './common.ts';

const provider = tracerProvider('rag-openinference');
provider.register();
const instrumentation = new OpenAIInstrumentation({ tracerProvider: provider });
instrumentation.manuallyInstrument(OpenAI);
const tracer = new OITracer({ tracer: provider.getTracer('rag-app') });
const client = new OpenAI();

async function answer(question: string, stream: boolean): Promise<string> {
  return tracer.startActiveSpan('rag-query', async (root) => {
    root.setAttributes({
      [SC.OPENINFERENCE_SPAN_KIND]: OpenInferenceSpanKind.CHAIN,
      [SC.INPUT_VALUE]: question,
      [SC.INPUT_MIME_TYPE]: MimeType.TEXT,
    });
    try {
      const docs = tracer.startActiveSpan('retrieve', (span) => {
        const found = retrieve(question);
        span.setAttributes({
          [SC.OPENINFERENCE_SPAN_KIND]: OpenInferenceSpanKind.RETRIEVER,
          [SC.INPUT_VALUE]: question,
        });
        found.forEach((d, i) => {
          const p = `${SC.RETRIEVAL_DOCUMENTS}.${i}`;
          span.setAttributes({
            [`${p}.${SC.DOCUMENT_ID}`]: d.id,
            [`${p}.${SC.DOCUMENT_CONTENT}`]: d.content,
            [`${p}.${SC.DOCUMENT_SCORE}`]: d.score,
            [`${p}.${SC.DOCUMENT_METADATA}`]: JSON.stringify(d.metadata),
          });
        });
        span.end();
        return found;
      });
      const { text } = await askModel(client, chatMessages(question, docs), stream);
      root.setAttributes({ [SC.OUTPUT_VALUE]: text, [SC.OUTPUT_MIME_TYPE]: MimeType.TEXT });
      return text;
    } catch (e) {
      root.recordException(e as Error);
      root.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      throw e;
    } finally {
      root.end();
    }
  });
}

const ctx = setUser(setSession(context.active(), { sessionId: KB.session }), { userId: KB.user });
await context.with(ctx, () => runTurns((turn) => answer(turn.question, turn.stream)));
await provider.shutdown();
