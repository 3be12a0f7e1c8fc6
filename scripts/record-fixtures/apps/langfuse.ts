// RAG app traced with the Langfuse SDK (@langfuse/tracing over OTel, exported by
// @langfuse/otel's LangfuseSpanProcessor): a root span, a retriever observation and a generation
// observation around plain OpenAI SDK calls; session, user, tags and metadata propagated.
import { LangfuseSpanProcessor } from '@langfuse/otel';
import { propagateAttributes, startActiveObservation, startObservation } from '@langfuse/tracing';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import OpenAI from 'openai';
import { chatMessages, KB, MODEL, retrieve } from '../kb.ts';
import { askModel, otlpBase, runTurns } from './common.ts';

const processor = new LangfuseSpanProcessor({
  publicKey: 'pk-lf-fixture',
  secretKey: 'sk-lf-fixture',
  baseUrl: otlpBase(),
  exportMode: 'immediate',
  environment: 'fixtures',
});
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'rag-langfuse' }),
  spanProcessors: [processor],
});
provider.register();
const client = new OpenAI();

async function answer(question: string, stream: boolean): Promise<string> {
  return startActiveObservation('rag-query', async (root) => {
    root.update({ input: { question } });
    const docs = await startActiveObservation(
      'retrieve',
      async (r) => {
        const found = retrieve(question);
        r.update({
          input: { query: question },
          output: found.map((d) => ({ id: d.id, content: d.content, score: d.score })),
        });
        return found;
      },
      { asType: 'retriever' },
    );
    const messages = chatMessages(question, docs);
    const generation = startObservation(
      'llm-call',
      { model: MODEL, input: messages },
      { asType: 'generation' },
    );
    try {
      const { text, usage } = await askModel(client, messages, stream);
      generation.update({
        output: { role: 'assistant', content: text },
        usageDetails: usage
          ? { input: usage.prompt_tokens, output: usage.completion_tokens, total: usage.total_tokens }
          : undefined,
      });
      root.update({ output: { answer: text } });
      return text;
    } catch (e) {
      generation.update({ level: 'ERROR', statusMessage: (e as Error).message });
      root.update({ level: 'ERROR', statusMessage: (e as Error).message });
      throw e;
    } finally {
      generation.end();
    }
  });
}

await propagateAttributes(
  { sessionId: KB.session, userId: KB.user, tags: ['rag', 'fixtures'], metadata: { channel: 'fixtures' } },
  () => runTurns((turn) => answer(turn.question, turn.stream)),
);
await provider.shutdown();
