// RAG app traced with the OpenTelemetry JS contrib OpenAI instrumentation
// (@opentelemetry/instrumentation-openai, OTel GenAI semantic conventions). It records usage on
// spans and message content as gen_ai.* log events, so this app exports logs too. The app's own
// root span carries gen_ai.conversation.id and user.id; the retrieval span follows the GenAI
// semconv retrieval shape.
import { SpanStatusCode } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import OpenAI from 'openai';
import { VERSION as OPENAI_VERSION } from 'openai/version';
import { chatMessages, KB, retrieve } from '../kb.ts';
import { askModel, otlpBase, runTurns, tracerProvider } from './common.ts';

const provider = tracerProvider('rag-genai-semconv');
provider.register();
const loggerProvider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'rag-genai-semconv' }),
  processors: [
    new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${otlpBase()}/v1/logs` }) }),
  ],
});
logs.setGlobalLoggerProvider(loggerProvider);
const instrumentation = new OpenAIInstrumentation({ captureMessageContent: true });
instrumentation.setTracerProvider(provider);
instrumentation.setLoggerProvider(loggerProvider);
// Its metric instruments exist only once a meter provider is set (no reader: metrics are not recorded).
instrumentation.setMeterProvider(new MeterProvider());
// The app is an ES module, so the require hook never sees `openai`: apply the instrumentation's
// own module patch to the loaded module, as its require hook would.
for (const def of instrumentation.getModuleDefinitions()) def.patch?.({ OpenAI }, OPENAI_VERSION);
const tracer = provider.getTracer('rag-app');
const client = new OpenAI();

async function answer(question: string, stream: boolean): Promise<string> {
  return tracer.startActiveSpan(
    'rag-query',
    { attributes: { 'gen_ai.conversation.id': KB.session, 'user.id': KB.user } },
    async (root) => {
      try {
        const docs = tracer.startActiveSpan('retrieval kb', (span) => {
          const found = retrieve(question);
          span.setAttributes({
            'gen_ai.operation.name': 'retrieval',
            'gen_ai.data_source.id': 'kb',
            'gen_ai.retrieval.query.text': question,
            'gen_ai.retrieval.documents': JSON.stringify(
              found.map((d) => ({ id: d.id, score: d.score, content: d.content })),
            ),
          });
          span.end();
          return found;
        });
        const { text } = await askModel(client, chatMessages(question, docs), stream);
        return text;
      } catch (e) {
        root.recordException(e as Error);
        root.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
        throw e;
      } finally {
        root.end();
      }
    },
  );
}

await runTurns((turn) => answer(turn.question, turn.stream));
await provider.shutdown();
await loggerProvider.shutdown();
