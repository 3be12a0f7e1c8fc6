// What every Node fixture app shares: where to export, a tracer provider that exports each span
// as it ends (so nothing is lost at exit), the chat call (streamed or not) and the loop over the
// conversation's turns.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type OpenAI from 'openai';
import { KB, type KbTurn, MODEL } from '../kb.ts';

/** `<capture url>/<convention>/<name>`: the exporter appends /v1/traces (or /v1/logs). */
export function otlpBase(): string {
  const base = process.env.FIXTURE_OTLP;
  if (!base)
    throw new Error('FIXTURE_OTLP is not set: run this app through scripts/record-fixtures/record.ts');
  return base;
}

export function modelBaseUrl(): string {
  const url = process.env.OPENAI_BASE_URL;
  if (!url)
    throw new Error('OPENAI_BASE_URL is not set: run this app through scripts/record-fixtures/record.ts');
  return url;
}

export function tracerProvider(serviceName: string): NodeTracerProvider {
  const exporter = new OTLPTraceExporter({ url: `${otlpBase()}/v1/traces` });
  return new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'deployment.environment.name': 'fixtures',
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
}

/** Runs every turn in order; a turn that fails is expected (kb.json says so) and only logged. */
export async function runTurns(fn: (turn: KbTurn, index: number) => Promise<unknown>): Promise<void> {
  for (const [i, turn] of KB.turns.entries()) {
    try {
      const out = await fn(turn, i);
      if (turn.answer === null)
        throw new Error(`turn ${i + 1} should have failed but returned ${JSON.stringify(out)}`);
    } catch (e) {
      if (turn.answer !== null) throw e;
      process.stderr.write(`turn ${i + 1} failed as planned: ${(e as Error).message}\n`);
    }
  }
}

/**
 * One chat completion through the app's (instrumented) client, streamed or not, as the apps'
 * turns ask; returns the answer text and the usage the server reported.
 */
export async function askModel(
  client: OpenAI,
  messages: OpenAI.ChatCompletionMessageParam[],
  stream: boolean,
): Promise<{ text: string; usage: OpenAI.CompletionUsage | undefined }> {
  if (stream) {
    const s = await client.chat.completions.create({
      model: MODEL,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of s) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    return { text, usage };
  }
  const r = await client.chat.completions.create({ model: MODEL, messages });
  return { text: r.choices[0]?.message.content ?? '', usage: r.usage };
}
