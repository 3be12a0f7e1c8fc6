// Loopback servers for recording fixtures: a deterministic OpenAI-compatible model server and an
// OTLP/HTTP capture endpoint. The capture endpoint files each request under the path prefix the
// exporter was pointed at (`/<convention>/<name>/v1/traces`), so one endpoint serves every app.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { countTokens, KB } from './kb.ts';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
  if (enc === 'gzip') return gunzipSync(raw);
  if (enc === 'deflate') return inflateSync(raw);
  return raw;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- model server

interface ChatMessage {
  role?: string;
  content?: unknown;
}

function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) =>
        p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join('');
  }
  return '';
}

const CREATED = 1_700_000_000;

function answerFor(messages: ChatMessage[]): { answer: string | null; key: string } {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const text = messageText(lastUser?.content);
  const i = KB.turns.findIndex((t) => text.includes(t.question));
  if (i < 0) return { answer: 'I do not know.', key: 'unknown' };
  return { answer: KB.turns[i]!.answer, key: `turn${i + 1}` };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function chatCompletion(body: Record<string, unknown>, res: ServerResponse): void {
  const messages = Array.isArray(body.messages) ? (body.messages as ChatMessage[]) : [];
  const model = typeof body.model === 'string' ? body.model : 'unknown';
  const { answer, key } = answerFor(messages);
  if (answer === null) {
    json(res, 400, {
      error: {
        message: 'The fixture model refuses this request.',
        type: 'invalid_request_error',
        code: 'fixture_refusal',
      },
    });
    return;
  }
  const promptTokens = messages.reduce((n, m) => n + countTokens(messageText(m.content)), 0);
  const completionTokens = countTokens(answer);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  const id = `chatcmpl-fixture-${key}`;
  if (body.stream !== true) {
    json(res, 200, {
      id,
      object: 'chat.completion',
      created: CREATED,
      model,
      system_fingerprint: 'fp_fixture',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: answer, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage,
    });
    return;
  }
  const includeUsage =
    (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const base = {
    id,
    object: 'chat.completion.chunk',
    created: CREATED,
    model,
    system_fingerprint: 'fp_fixture',
  };
  const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
  send({
    ...base,
    choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
  });
  const words = answer.split(' ');
  words.forEach((w, i) => {
    send({
      ...base,
      choices: [{ index: 0, delta: { content: i === 0 ? w : ` ${w}` }, logprobs: null, finish_reason: null }],
    });
  });
  send({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] });
  if (includeUsage) send({ ...base, choices: [], usage });
  res.write('data: [DONE]\n\n');
  res.end();
}

/** A fixed 8-dimension vector per text: enough for apps that embed before retrieving. */
function embedding(text: string): number[] {
  const v = new Array<number>(8).fill(0);
  for (let i = 0; i < text.length; i++) v[i % 8]! += text.charCodeAt(i) / 1000;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

function embeddings(body: Record<string, unknown>, res: ServerResponse): void {
  const input = body.input;
  const texts = Array.isArray(input) ? input.map((x) => String(x)) : [String(input ?? '')];
  const tokens = texts.reduce((n, t) => n + countTokens(t), 0);
  json(res, 200, {
    object: 'list',
    data: texts.map((t, index) => ({ object: 'embedding', index, embedding: embedding(t) })),
    model: typeof body.model === 'string' ? body.model : 'unknown',
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

/** An OpenAI-compatible server with canned answers (see kb.json); base URL ends in /v1. */
export async function startModelServer(): Promise<RunningServer & { requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = (req.url ?? '').split('?')[0] ?? '';
      requests.push(`${req.method} ${path}`);
      let parsed: Record<string, unknown> = {};
      try {
        parsed = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        json(res, 400, { error: { message: 'invalid JSON', type: 'invalid_request_error' } });
        return;
      }
      if (req.method === 'POST' && path.endsWith('/chat/completions')) chatCompletion(parsed, res);
      else if (req.method === 'POST' && path.endsWith('/embeddings')) embeddings(parsed, res);
      else json(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'not_found' } });
    })().catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { message: String(e), type: 'server_error' } });
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/v1`, requests, close: () => close(server) };
}

// ---------------------------------------------------------------- OTLP capture

export interface CapturedRequest {
  /** `<convention>/<name>` from the path prefix. */
  target: string;
  signal: 'traces' | 'logs' | 'metrics';
  contentType: string;
  body: Buffer;
  headers: Record<string, string>;
}

const SIGNAL_RE = /^\/(.+?)(?:\/api\/public\/otel)?\/v1\/(traces|logs|metrics)$/;

/** Accepts OTLP/HTTP on any `/<convention>/<name>/v1/<signal>` path and keeps every request. */
export async function startCaptureServer(): Promise<RunningServer & { captured: CapturedRequest[] }> {
  const captured: CapturedRequest[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = (req.url ?? '').split('?')[0] ?? '';
      const m = SIGNAL_RE.exec(path);
      const contentType = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim();
      if (req.method !== 'POST' || !m) {
        res.writeHead(404).end();
        return;
      }
      const headers: Record<string, string> = {};
      for (const h of ['x-mlflow-experiment-id', 'user-agent']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      captured.push({ target: m[1]!, signal: m[2] as CapturedRequest['signal'], contentType, body, headers });
      if (contentType === 'application/json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        // An empty Export*ServiceResponse encodes to zero bytes.
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, captured, close: () => close(server) };
}
