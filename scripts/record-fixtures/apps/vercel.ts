// RAG app on the Vercel AI SDK with experimental_telemetry: the app's own request span, embed()
// of the question, a retrieval span in the OTel GenAI semconv shape (the SDK has no retriever
// concept), then generateText (turns 1 and 3) or streamText (turn 2). Session and user ride in
// the telemetry metadata, as Vercel's docs suggest.
import { createOpenAI } from '@ai-sdk/openai';
import { SpanStatusCode } from '@opentelemetry/api';
import { embed, generateText, streamText } from 'ai';
import { KB, MODEL, retrieve, systemMessage } from '../kb.ts';
import { modelBaseUrl, runTurns, tracerProvider } from './common.ts';

const provider = tracerProvider('rag-vercel-ai');
provider.register();
const tracer = provider.getTracer('rag-app');
const openai = createOpenAI({ baseURL: modelBaseUrl(), apiKey: 'sk-fixture' });
const telemetry = (functionId: string) => ({
  isEnabled: true,
  functionId,
  metadata: { sessionId: KB.session, userId: KB.user },
});

async function answer(question: string, stream: boolean): Promise<string> {
  return tracer.startActiveSpan('rag-query', async (root) => {
    try {
      await embed({
        model: openai.embedding('text-embedding-3-small'),
        value: question,
        experimental_telemetry: telemetry('embed-question'),
      });
      const docs = tracer.startActiveSpan('retrieval kb', (span) => {
        const found = retrieve(question);
        span.setAttributes({
          'gen_ai.operation.name': 'retrieval',
          'gen_ai.data_source.id': 'kb',
          'gen_ai.retrieval.query.text': question,
          'gen_ai.retrieval.documents': JSON.stringify(
            found.map((d) => ({ id: d.id, score: d.score, content: d.content, metadata: d.metadata })),
          ),
        });
        span.end();
        return found;
      });
      const call = {
        model: openai.chat(MODEL),
        system: systemMessage(docs),
        prompt: question,
        maxRetries: 0,
        experimental_telemetry: telemetry('rag-answer'),
      };
      if (stream) {
        const s = streamText({ ...call, onError: () => {} });
        let text = '';
        for await (const part of s.textStream) text += part;
        return text;
      }
      return (await generateText(call)).text;
    } catch (e) {
      root.recordException(e as Error);
      root.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      throw e;
    } finally {
      root.end();
    }
  });
}

await runTurns((turn) => answer(turn.question, turn.stream));
await provider.shutdown();
