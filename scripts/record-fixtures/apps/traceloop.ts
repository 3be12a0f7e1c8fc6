// RAG app traced with OpenLLMetry (@traceloop/node-server-sdk): a workflow span per question,
// a retrieval task wrapping a vector DB query span that reports its results, and the OpenAI SDK
// auto-instrumented; session and user as association properties.
import * as traceloop from '@traceloop/node-server-sdk';
import OpenAI from 'openai';
import { chatMessages, KB, retrieve } from '../kb.ts';
import { askModel, otlpBase, runTurns } from './common.ts';

// The SDK types `openAI` against openai's CommonJS typings; this ES module imports the ESM ones.
type TraceloopOpenAI = NonNullable<
  NonNullable<Parameters<typeof traceloop.initialize>[0]>['instrumentModules']
>['openAI'];

traceloop.initialize({
  appName: 'rag-openllmetry',
  baseUrl: otlpBase(),
  apiKey: 'fixture',
  disableBatch: true,
  silenceInitializationMessage: true,
  traceloopSyncEnabled: false,
  instrumentModules: { openAI: OpenAI as unknown as TraceloopOpenAI },
});
const client = new OpenAI();

async function answer(question: string, stream: boolean): Promise<string> {
  return traceloop.withWorkflow(
    { name: 'rag_query', associationProperties: { session_id: KB.session, user_id: KB.user } },
    async () => {
      const docs = await traceloop.withTask({ name: 'retrieve' }, () =>
        traceloop.withVectorDBCall({ vendor: 'memory', type: 'query' }, ({ span }) => {
          const found = retrieve(question);
          span.reportResults({
            results: found.map((d) => ({
              ids: d.id,
              scores: d.score,
              documents: d.content,
              metadata: d.metadata,
            })),
          });
          return found;
        }),
      );
      return (await askModel(client, chatMessages(question, docs), stream)).text;
    },
    question,
  );
}

await runTurns((turn) => answer(turn.question, turn.stream));
await traceloop.forceFlush();
