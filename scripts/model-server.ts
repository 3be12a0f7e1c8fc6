// A local, deterministic judge-model server for tests and demos. It speaks enough of the OpenAI
// chat completions API and of the Anthropic messages API for scorecar's judges (and for any
// client of those APIs), answers every judge question with a verdict that follows from the
// prompt by the rule below, and can be told to misbehave.
//
//   node_modules/.bin/node scripts/model-server.ts [--port 8089] [--host 127.0.0.1] [--api-key KEY]
//
// Endpoints
//   POST /v1/chat/completions   OpenAI shape (usage included). With response_format
//                               json_object / json_schema the content is bare JSON; without it
//                               the JSON comes inside a ```json fence with a sentence around it,
//                               as chatty models answer.
//   POST /v1/messages           Anthropic shape; content is the fenced form.
//   GET  /v1/models             one model, "scorecar-judge" (any model name is accepted).
//   POST /_control/fault        {kind: none|429|500|slow|malformed|wrong_schema|401,
//                                retryAfterSeconds?, delayMs?, durationMs?, count?}
//                               The fault applies to model requests (the two POST routes) until
//                               durationMs has passed and/or count requests have had it.
//                               429 sends Retry-After when retryAfterSeconds is given; slow
//                               answers normally after delayMs (default 5000).
//   GET  /_control/stats        counters (see ModelServerStats)
//   POST /_control/reset        counters to zero, fault off
// With an api key configured, model requests need `Authorization: Bearer KEY` or `x-api-key: KEY`.
//
// Verdict rule (deterministic; lets a test predict every judge's answer from the trace)
//   1. The material is the text of the user messages only (system prompts are ignored), so
//      the judge's own instructions never influence the verdict.
//   2. The answer kind comes from the sentence `The value of "result" must be ...` that
//      scorecar's judges put in their system prompt: "yes" or "no" | true or false | a number |
//      a short string | exactly one of: "a", "b". Without that sentence: the [[label]]
//      categories of the material if it has any, else yes/no.
//   3. Negative verdict when the material contains one of the marker words BAD, WRONG, UNSAFE,
//      IRRELEVANT, UNGROUNDED, INSUFFICIENT (upper case, whole word).
//        yes/no → "no" with a marker, else "yes";   boolean → false / true;
//        string → "no" / "yes";
//        number → N when the material contains SCORE=N, else 0 with a marker, else 1.
//   4. Categories: the material with every [[...]] removed is searched for each label as a
//      whole word, case-insensitive, in the order the labels are declared; the first label
//      found wins, else the first label. (So a fixture template names each label only inside
//      its [[...]] and the response text decides.)
//   5. Usage: prompt tokens = ceil(characters of all messages / 4), completion tokens =
//      ceil(characters of the answer / 4).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

export type FaultKind = 'none' | '429' | '500' | 'slow' | 'malformed' | 'wrong_schema' | '401';
export const FAULT_KINDS: readonly FaultKind[] = [
  'none',
  '429',
  '500',
  'slow',
  'malformed',
  'wrong_schema',
  '401',
];

export interface Fault {
  kind: FaultKind;
  retryAfterSeconds?: number;
  delayMs?: number;
  /** The fault switches itself off this long after it was set. */
  durationMs?: number;
  /** The fault applies to the next `count` model requests only. */
  count?: number;
}

export interface ModelServerStats {
  /** Model requests received (chat completions + messages), faulted or not. */
  requests: number;
  /** Verdicts answered normally (including slow ones). */
  ok: number;
  /** Requests answered with a fault (429, 500, 401, malformed, wrong_schema; slow is counted here too). */
  faulted: number;
  byFault: Record<string, number>;
  byPath: Record<string, number>;
  /** Requests refused because the api key was missing or wrong. */
  unauthorized: number;
  inFlight: number;
  /** The current fault, if any. */
  fault: FaultKind;
  last?: { path: string; model: string; responseFormat: string | null; authorized: boolean };
}

export interface ModelServer {
  url: string;
  port: number;
  setFault(f: Fault): void;
  stats(): ModelServerStats;
  reset(): void;
  close(): Promise<void>;
}

export interface ModelServerOptions {
  port?: number;
  host?: string;
  /** When set, model requests must carry this key. */
  apiKey?: string;
}

export type AnswerKind =
  | { kind: 'yes_no' }
  | { kind: 'bool' }
  | { kind: 'number' }
  | { kind: 'string' }
  | { kind: 'choice'; choices: string[] };

export const NEGATIVE_MARKERS = [
  'BAD',
  'WRONG',
  'UNSAFE',
  'IRRELEVANT',
  'UNGROUNDED',
  'INSUFFICIENT',
] as const;
const MARKER_RE = new RegExp(`\\b(${NEGATIVE_MARKERS.join('|')})\\b`);
const SCORE_RE = /\bSCORE=(-?\d+(?:\.\d+)?)/;
const LABEL_RE = /\[\[([\w ]+)\]\]/g;
const MAX_BODY = 10 * 1024 * 1024;

/** Step 2 of the rule: what kind of answer the prompt asks for. */
export function answerKind(system: string, material: string): AnswerKind {
  const m = /The value of "result" must be (.+)$/m.exec(`${system}\n${material}`);
  if (m) {
    const spec = m[1]!;
    if (spec.startsWith('exactly one of:')) {
      const choices: string[] = [];
      for (const q of spec.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
        try {
          choices.push(JSON.parse(`"${q[1]}"`) as string);
        } catch {
          choices.push(q[1]!);
        }
      }
      if (choices.length > 0) return { kind: 'choice', choices };
    }
    if (spec.startsWith('true or false')) return { kind: 'bool' };
    if (spec.startsWith('a number')) return { kind: 'number' };
    if (spec.startsWith('a short string')) return { kind: 'string' };
    return { kind: 'yes_no' };
  }
  const labels = [...new Set([...material.matchAll(LABEL_RE)].map((x) => x[1]!.trim()))];
  return labels.length > 0 ? { kind: 'choice', choices: labels } : { kind: 'yes_no' };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The deterministic verdict for a prompt (steps 1-4 of the rule). */
export function verdictFor(
  system: string,
  material: string,
): { result: string | number | boolean; rationale: string } {
  const kind = answerKind(system, material);
  const marker = MARKER_RE.exec(material)?.[1];
  const because = marker
    ? `the material contains the marker word ${marker}`
    : 'the material contains no marker word';
  switch (kind.kind) {
    case 'yes_no':
      return { result: marker ? 'no' : 'yes', rationale: `Deterministic verdict: ${because}.` };
    case 'bool':
      return { result: !marker, rationale: `Deterministic verdict: ${because}.` };
    case 'string':
      return { result: marker ? 'no' : 'yes', rationale: `Deterministic verdict: ${because}.` };
    case 'number': {
      const s = SCORE_RE.exec(material);
      if (s)
        return { result: Number(s[1]), rationale: `Deterministic verdict: the material sets SCORE=${s[1]}.` };
      return { result: marker ? 0 : 1, rationale: `Deterministic verdict: no SCORE=N, and ${because}.` };
    }
    case 'choice': {
      const stripped = material.replace(LABEL_RE, ' ');
      for (const c of kind.choices) {
        if (new RegExp(`(^|[^\\w])${escapeRe(c)}($|[^\\w])`, 'i').test(stripped)) {
          return { result: c, rationale: `Deterministic verdict: the label "${c}" appears in the material.` };
        }
      }
      return {
        result: kind.choices[0]!,
        rationale: 'Deterministic verdict: no label appears in the material, so the first one.',
      };
    }
  }
}

function tokens(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p: unknown) =>
        p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join('\n');
  }
  return '';
}

interface Prompt {
  model: string;
  system: string;
  material: string;
  responseFormat: string | null;
}

function readPrompt(path: string, body: Record<string, unknown>): Prompt | string {
  const model = typeof body.model === 'string' ? body.model : '';
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return '"messages" must be a non-empty array';
  const system: string[] = [];
  const user: string[] = [];
  if (path === '/v1/messages') {
    if (model === '') return '"model" is required';
    if (typeof body.max_tokens !== 'number') return '"max_tokens" is required';
    system.push(textOf(body.system));
  }
  for (const m of messages as Array<{ role?: unknown; content?: unknown }>) {
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') return 'every message needs a role';
    if (m.role === 'system' || m.role === 'developer') system.push(textOf(m.content));
    else if (m.role === 'user') user.push(textOf(m.content));
  }
  const rf = body.response_format as { type?: unknown } | undefined;
  return {
    model,
    system: system.join('\n'),
    material: user.join('\n'),
    responseFormat: rf && typeof rf.type === 'string' ? rf.type : null,
  };
}

export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServer> {
  const host = opts.host ?? '127.0.0.1';
  let fault: { f: Fault; until: number | undefined; remaining: number | undefined } | null = null;
  let counter = 0;
  const pending = new Set<ReturnType<typeof setTimeout>>();
  const fresh = (): ModelServerStats => ({
    requests: 0,
    ok: 0,
    faulted: 0,
    byFault: {},
    byPath: {},
    unauthorized: 0,
    inFlight: 0,
    fault: 'none',
  });
  let stats = fresh();

  function currentFault(): Fault | null {
    if (!fault) return null;
    if ((fault.until !== undefined && Date.now() >= fault.until) || fault.remaining === 0) {
      fault = null;
      return null;
    }
    if (fault.remaining !== undefined) fault.remaining--;
    return fault.f;
  }

  function setFault(f: Fault): void {
    if (!FAULT_KINDS.includes(f.kind)) throw new Error(`unknown fault kind ${String(f.kind)}`);
    fault =
      f.kind === 'none'
        ? null
        : {
            f,
            until: f.durationMs !== undefined ? Date.now() + f.durationMs : undefined,
            remaining: f.count !== undefined ? Math.max(0, Math.floor(f.count)) : undefined,
          };
  }

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    if (res.destroyed) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  }

  function errorBody(anthropic: boolean, type: string, message: string): unknown {
    return anthropic ? { type: 'error', error: { type, message } } : { error: { message, type, code: type } };
  }

  function answer(res: ServerResponse, path: string, p: Prompt, content: string): void {
    counter++;
    const promptTokens = tokens(p.system.length + p.material.length);
    const completionTokens = tokens(content.length);
    if (path === '/v1/messages') {
      send(res, 200, {
        id: `msg_scorecar_${counter}`,
        type: 'message',
        role: 'assistant',
        model: p.model,
        content: [{ type: 'text', text: content }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: promptTokens, output_tokens: completionTokens },
      });
    } else {
      send(res, 200, {
        id: `chatcmpl-scorecar-${counter}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: p.model || 'scorecar-judge',
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      });
    }
  }

  function verdictContent(p: Prompt, path: string): string {
    const json = JSON.stringify(verdictFor(p.system, p.material));
    const bare =
      path === '/v1/chat/completions' &&
      (p.responseFormat === 'json_object' || p.responseFormat === 'json_schema');
    return bare
      ? json
      : `Here is my assessment.\n\`\`\`json\n${json}\n\`\`\`\nLet me know if you need anything else.`;
  }

  async function handleModel(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    raw: string,
  ): Promise<void> {
    const anthropic = path === '/v1/messages';
    stats.requests++;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      send(res, 400, errorBody(anthropic, 'invalid_request_error', 'request body must be a JSON object'));
      return;
    }
    const p = readPrompt(path, body);
    const auth = req.headers.authorization;
    const authorized =
      opts.apiKey === undefined ||
      auth === `Bearer ${opts.apiKey}` ||
      req.headers['x-api-key'] === opts.apiKey;
    stats.last = {
      path,
      model: typeof p === 'string' ? '' : p.model,
      responseFormat: typeof p === 'string' ? null : p.responseFormat,
      authorized,
    };
    if (!authorized) {
      stats.unauthorized++;
      send(res, 401, errorBody(anthropic, 'authentication_error', 'invalid api key'));
      return;
    }
    if (typeof p === 'string') {
      send(res, 400, errorBody(anthropic, 'invalid_request_error', p));
      return;
    }
    const f = currentFault();
    if (f) {
      stats.faulted++;
      stats.byFault[f.kind] = (stats.byFault[f.kind] ?? 0) + 1;
      switch (f.kind) {
        case '429':
          send(
            res,
            429,
            errorBody(anthropic, 'rate_limit_error', 'rate limited by the scorecar model server fault'),
            f.retryAfterSeconds !== undefined ? { 'retry-after': String(f.retryAfterSeconds) } : {},
          );
          return;
        case '500':
          send(
            res,
            500,
            errorBody(anthropic, 'api_error', 'internal error injected by the scorecar model server fault'),
          );
          return;
        case '401':
          send(
            res,
            401,
            errorBody(
              anthropic,
              'authentication_error',
              'authentication failure injected by the scorecar model server fault',
            ),
          );
          return;
        case 'malformed':
          answer(
            res,
            path,
            p,
            '{"rationale": "this answer was cut short by the malformed fault", "result": "ye',
          );
          return;
        case 'wrong_schema':
          answer(
            res,
            path,
            p,
            JSON.stringify({ verdict: 'yes', explanation: 'the wrong_schema fault renames the fields' }),
          );
          return;
        case 'slow': {
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              pending.delete(t);
              resolve();
            }, f.delayMs ?? 5000);
            pending.add(t);
            res.once('close', () => {
              clearTimeout(t);
              pending.delete(t);
              resolve();
            });
          });
          if (res.destroyed || res.writableEnded) return;
          break;
        }
        case 'none':
          break;
      }
    }
    stats.ok++;
    answer(res, path, p, verdictContent(p, path));
  }

  function handleControl(res: ServerResponse, method: string, path: string, raw: string): void {
    if (path === '/_control/stats' && method === 'GET') {
      send(res, 200, { ...stats, fault: fault?.f.kind ?? 'none' });
      return;
    }
    if (path === '/_control/reset' && method === 'POST') {
      reset();
      send(res, 200, { ok: true });
      return;
    }
    if (path === '/_control/fault' && method === 'POST') {
      try {
        const f = JSON.parse(raw || '{}') as Fault;
        setFault(f);
        send(res, 200, { ok: true, fault: f });
      } catch (e) {
        send(res, 400, { error: { message: e instanceof Error ? e.message : String(e) } });
      }
      return;
    }
    send(res, 404, { error: { message: `no route ${method} ${path}` } });
  }

  function reset(): void {
    fault = null;
    const inFlight = stats.inFlight;
    stats = fresh();
    stats.inFlight = inFlight;
  }

  const server: Server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, { error: { message: 'request body too large' } });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (path.startsWith('/_control/')) {
        handleControl(res, method, path, raw);
        return;
      }
      if (method === 'GET' && path === '/v1/models') {
        stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
        send(res, 200, {
          object: 'list',
          data: [{ id: 'scorecar-judge', object: 'model', created: 0, owned_by: 'scorecar' }],
        });
        return;
      }
      if (method === 'POST' && (path === '/v1/chat/completions' || path === '/v1/messages')) {
        stats.inFlight++;
        handleModel(req, res, path, raw)
          .catch((e: unknown) =>
            send(res, 500, { error: { message: e instanceof Error ? e.message : String(e) } }),
          )
          .finally(() => {
            stats.inFlight--;
          });
        return;
      }
      send(res, 404, { error: { message: `no route ${method} ${path}` } });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    setFault,
    stats: () => ({
      ...stats,
      byFault: { ...stats.byFault },
      byPath: { ...stats.byPath },
      fault: fault?.f.kind ?? 'none',
    }),
    reset,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of pending) clearTimeout(t);
        pending.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      'usage: node scripts/model-server.ts [--port 8089] [--host 127.0.0.1] [--api-key KEY]\n',
    );
    return;
  }
  const portArg = argValue(args, '--port');
  const port = portArg === undefined ? 8089 : Number(portArg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${portArg}`);
  const o: ModelServerOptions = { port, host: argValue(args, '--host') ?? '127.0.0.1' };
  const key = argValue(args, '--api-key');
  if (key !== undefined) o.apiKey = key;
  const s = await startModelServer(o);
  process.stdout.write(
    `scorecar model server listening on ${s.url}\n` +
      `  OpenAI-compatible: openai:/scorecar-judge@${s.url}/v1   Anthropic: anthropic:/scorecar-judge@${s.url}\n`,
  );
  const stop = (): void => {
    void s.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolvePath(process.argv[1])) {
  main().catch((e: unknown) => {
    process.stderr.write(`model server failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
