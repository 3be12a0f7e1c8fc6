// Model providers: one chat call to a judge model named by an MLflow-style URI, over global
// fetch, with a per-attempt timeout, retries (exponential backoff + jitter, Retry-After
// honoured) on 429 / 408 / 5xx / timeouts / connection errors, none on other 4xx, a
// concurrency limit per endpoint, and token usage + cost from the response.
//
// Wire formats: OpenAI chat completions (`openai:/`, any OpenAI-compatible base URL, and
// Databricks serving endpoints, whose /invocations route takes and returns the same chat
// shape) and Anthropic messages (`anthropic:/`).
//
// Credentials: a key is sent only to the endpoint it was configured for. A model URI that names
// its own base URL (`openai:/m@http://host/v1`) gets the provider's key only when that base URL
// is the configured (or default) one; point scoring.providers.openai.baseUrl at a gateway to
// use its key.
import { type ModelProvider, type ModelUri, modelUriWithoutBase, parseModelUri } from '../../definitions/index.ts';
import { type Clock, type ErrorCode, parseRetryAfter, realClock, ScorecarError } from '../../util/index.ts';
import { nextDelay, Semaphore, sleep } from './retry.ts';
import {
  MODEL_DEFAULTS,
  type ModelCallInfo,
  type ModelClientOptions,
  type ModelCompletion as Completion,
  type ModelRequest,
  type ProviderOptions,
  type RetryPolicy,
} from './types.ts';

export interface ModelCompletion extends Completion {
  latencyMs: number;
}

export interface ModelClient {
  /** One judge call, retried as the policy allows. Rejects with ScorecarError, or with the signal's reason when aborted. */
  complete(modelUri: string, prompt: ModelRequest, signal?: AbortSignal): Promise<ModelCompletion>;
  /** The endpoint (concurrency key) a model URI resolves to, or a ScorecarError when it cannot be resolved. */
  endpointFor(modelUri: string): string;
  /** Requests in flight and waiting, per endpoint. */
  stats(): Record<string, { inFlight: number; waiting: number; limit: number }>;
  /** Aborts every call in flight; later calls reject. */
  close(): void;
}

interface Endpoint {
  provider: ModelProvider;
  url: string;
  headers: Record<string, string>;
  concurrencyKey: string;
  limit: number;
}

const DEFAULT_BASE: Record<Exclude<ModelProvider, 'databricks'>, string> = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
};
const ENV_BASE: Record<ModelProvider, string> = {
  openai: 'OPENAI_BASE_URL',
  anthropic: 'ANTHROPIC_BASE_URL',
  databricks: 'DATABRICKS_HOST',
};
const ENV_KEY: Record<ModelProvider, string> = {
  openai: 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
  databricks: 'DATABRICKS_TOKEN',
};
const ANTHROPIC_VERSION = '2023-06-01';
const ANTHROPIC_MAX_TOKENS = 1024;
const MAX_ERROR_SNIPPET = 300;

function trimSlash(s: string): string {
  return s.replace(/\/+$/, '');
}

function withScheme(host: string): string {
  return /^https?:\/\//i.test(host) ? host : `https://${host}`;
}

function sameBase(a: string, b: string): boolean {
  try {
    const ua = new URL(a);
    const ub = new URL(b);
    return ua.origin === ub.origin && trimSlash(ua.pathname) === trimSlash(ub.pathname);
  } catch {
    return false;
  }
}

/** OpenAI's reasoning models refuse a temperature other than the default. */
function acceptsTemperature(uri: ModelUri): boolean {
  return !(uri.provider === 'openai' && /^(o\d|gpt-5)/i.test(uri.model));
}

interface Attempt {
  ok: boolean;
  status: number;
  text?: string;
  inputTokens?: number;
  outputTokens?: number;
  code?: ErrorCode;
  message?: string;
  retryable?: boolean;
  retryAfterMs?: number;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function errorDetail(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const e = j.error;
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
      return (e as { message: string }).message;
    }
    if (typeof j.message === 'string') return j.message;
    if (typeof j.detail === 'string') return j.detail;
  } catch {
    // not JSON: fall through to the raw text
  }
  const t = body.replace(/\s+/g, ' ').trim();
  return t.length > MAX_ERROR_SNIPPET ? `${t.slice(0, MAX_ERROR_SNIPPET)}…` : t;
}

function openAiText(json: unknown): { text?: string; inputTokens: number; outputTokens: number } {
  const j = json as {
    choices?: Array<{ message?: { content?: unknown } }>;
    usage?: Record<string, unknown>;
  };
  const content = j?.choices?.[0]?.message?.content;
  let text: string | undefined;
  if (typeof content === 'string') text = content;
  else if (Array.isArray(content)) {
    // Some compatible servers return content parts.
    text = content
      .map((p: unknown) =>
        p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join('');
  }
  const u = j?.usage ?? {};
  return {
    text,
    inputTokens: num(u.prompt_tokens ?? u.input_tokens),
    outputTokens: num(u.completion_tokens ?? u.output_tokens),
  };
}

function anthropicText(json: unknown): { text?: string; inputTokens: number; outputTokens: number } {
  const j = json as { content?: Array<{ type?: string; text?: unknown }>; usage?: Record<string, unknown> };
  const parts = Array.isArray(j?.content)
    ? j.content.filter((p) => p?.type === 'text' && typeof p.text === 'string')
    : [];
  const u = j?.usage ?? {};
  return {
    text: parts.length > 0 ? parts.map((p) => p.text as string).join('') : undefined,
    // Cached prompt tokens are still prompt tokens for budgets.
    inputTokens: num(u.input_tokens) + num(u.cache_creation_input_tokens) + num(u.cache_read_input_tokens),
    outputTokens: num(u.output_tokens),
  };
}

export function resolveRetryPolicy(p: Partial<RetryPolicy> | undefined): RetryPolicy {
  return { ...MODEL_DEFAULTS.retry, ...p };
}

export function createModelClient(options: ModelClientOptions = {}): ModelClient {
  const env = options.env ?? process.env;
  const clock: Clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  const doFetch =
    options.fetch ?? ((input: string | URL | Request, init?: RequestInit) => fetch(input, init));
  const policy = resolveRetryPolicy(options.retry);
  const timeoutMs = options.timeoutMs ?? MODEL_DEFAULTS.timeoutMs;
  const prices = options.prices ?? {};
  const semaphores = new Map<string, Semaphore>();
  const closer = new AbortController();

  const providerOptions = (p: ModelProvider): ProviderOptions => options.providers?.[p] ?? {};

  function resolve(modelUri: string): { uri: ModelUri; endpoint: Endpoint } {
    const parsed = parseModelUri(modelUri);
    if (!parsed.ok) throw new ScorecarError('INVALID_DEFINITION', parsed.message);
    const uri = parsed.value;
    const po = providerOptions(uri.provider);
    const configuredBase = po.baseUrl ?? env[ENV_BASE[uri.provider]];
    const key = po.apiKey ?? env[ENV_KEY[uri.provider]];
    let base: string;
    let keyApplies: boolean;
    if (uri.provider === 'databricks') {
      const host = uri.baseUrl ?? configuredBase;
      if (!host) {
        throw new ScorecarError(
          'PROVIDER_NOT_CONFIGURED',
          `no Databricks workspace for "${modelUri}": set DATABRICKS_HOST or scoring.providers.databricks.baseUrl`,
        );
      }
      base = trimSlash(withScheme(host));
      keyApplies =
        uri.baseUrl === undefined ||
        (configuredBase !== undefined && sameBase(withScheme(configuredBase), base));
    } else {
      const configured = trimSlash(configuredBase ?? DEFAULT_BASE[uri.provider]);
      base = uri.baseUrl ?? configured;
      keyApplies = uri.baseUrl === undefined || sameBase(configured, base);
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    let url: string;
    if (uri.provider === 'anthropic') {
      url = `${base}/v1/messages`;
      headers['anthropic-version'] = ANTHROPIC_VERSION;
      if (key && keyApplies) headers['x-api-key'] = key;
    } else {
      url =
        uri.provider === 'databricks'
          ? `${base}/serving-endpoints/${encodeURIComponent(uri.model)}/invocations`
          : `${base}/chat/completions`;
      if (key && keyApplies) headers.authorization = `Bearer ${key}`;
    }
    const concurrencyKey = uri.provider === 'databricks' ? url : base;
    const limit = po.concurrency ?? options.concurrency ?? MODEL_DEFAULTS.concurrency;
    return { uri, endpoint: { provider: uri.provider, url, headers, concurrencyKey, limit } };
  }

  function semaphoreFor(endpoint: Endpoint): Semaphore {
    let s = semaphores.get(endpoint.concurrencyKey);
    if (!s) {
      s = new Semaphore(endpoint.limit);
      semaphores.set(endpoint.concurrencyKey, s);
    }
    return s;
  }

  function requestBody(uri: ModelUri, prompt: ModelRequest): string {
    if (uri.provider === 'anthropic') {
      return JSON.stringify({
        model: uri.model,
        max_tokens: ANTHROPIC_MAX_TOKENS,
        temperature: 0,
        system: prompt.system,
        messages: [{ role: 'user', content: prompt.user }],
      });
    }
    const body: Record<string, unknown> = {
      messages: [
        { role: 'system', content: prompt.system },
        { role: 'user', content: prompt.user },
      ],
    };
    // Databricks routes by URL; some of its endpoint types refuse unknown fields, and JSON mode
    // is not offered by every served model, so it gets the prompt's own JSON instructions only.
    if (uri.provider === 'openai') {
      body.model = uri.model;
      body.response_format = { type: 'json_object' };
    }
    if (acceptsTemperature(uri)) body.temperature = 0;
    return JSON.stringify(body);
  }

  async function attemptOnce(
    uri: ModelUri,
    endpoint: Endpoint,
    body: string,
    signal: AbortSignal,
  ): Promise<Attempt> {
    const ctrl = new AbortController();
    let timedOut = false;
    const onAbort = (): void => ctrl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const cancelTimer = clock.setTimer(() => {
      timedOut = true;
      ctrl.abort(new Error('timeout'));
    }, timeoutMs);
    try {
      let res: Response;
      let text: string;
      try {
        res = await doFetch(endpoint.url, {
          method: 'POST',
          headers: endpoint.headers,
          body,
          signal: ctrl.signal,
        });
        text = await res.text();
      } catch (e) {
        if (timedOut) {
          return {
            ok: false,
            status: 0,
            code: 'TIMEOUT',
            retryable: true,
            message: `no answer within ${timeoutMs} ms`,
          };
        }
        if (signal.aborted) throw signal.reason;
        const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
        const detail = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
        return {
          ok: false,
          status: 0,
          code: 'PROVIDER_UNAVAILABLE',
          retryable: true,
          message: `connection failed (${String(detail)})`,
        };
      }
      const status = res.status;
      if (status >= 200 && status < 300) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          return {
            ok: false,
            status,
            code: 'PROVIDER_BAD_RESPONSE',
            retryable: false,
            message: `response body is not JSON: ${errorDetail(text)}`,
          };
        }
        const r = uri.provider === 'anthropic' ? anthropicText(json) : openAiText(json);
        if (r.text === undefined) {
          return {
            ok: false,
            status,
            code: 'PROVIDER_BAD_RESPONSE',
            retryable: false,
            message: `response has no message text: ${errorDetail(text)}`,
            inputTokens: r.inputTokens,
            outputTokens: r.outputTokens,
          };
        }
        return { ok: true, status, text: r.text, inputTokens: r.inputTokens, outputTokens: r.outputTokens };
      }
      const detail = errorDetail(text);
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), clock.now());
      if (status === 401 || status === 403) {
        return {
          ok: false,
          status,
          code: 'UNAUTHENTICATED',
          retryable: false,
          message: `HTTP ${status}: ${detail}`,
        };
      }
      if (status === 429)
        return {
          ok: false,
          status,
          code: 'RATE_LIMITED',
          retryable: true,
          retryAfterMs,
          message: `HTTP 429: ${detail}`,
        };
      if (status === 408)
        return {
          ok: false,
          status,
          code: 'TIMEOUT',
          retryable: true,
          retryAfterMs,
          message: `HTTP 408: ${detail}`,
        };
      if (status >= 500) {
        return {
          ok: false,
          status,
          code: 'PROVIDER_UNAVAILABLE',
          retryable: true,
          retryAfterMs,
          message: `HTTP ${status}: ${detail}`,
        };
      }
      return {
        ok: false,
        status,
        code: 'PROVIDER_REJECTED',
        retryable: false,
        message: `HTTP ${status}: ${detail}`,
      };
    } finally {
      cancelTimer();
      signal.removeEventListener('abort', onAbort);
    }
  }

  function priceOf(uri: ModelUri, inputTokens: number, outputTokens: number): number | undefined {
    const p = prices[uri.uri] ?? prices[modelUriWithoutBase(uri)];
    if (!p) return undefined;
    return (inputTokens * p.inputPerMillionTokens + outputTokens * p.outputPerMillionTokens) / 1_000_000;
  }

  async function complete(
    modelUri: string,
    prompt: ModelRequest,
    signal?: AbortSignal,
  ): Promise<ModelCompletion> {
    const { uri, endpoint } = resolve(modelUri);
    const combined = signal ? AbortSignal.any([signal, closer.signal]) : closer.signal;
    if (combined.aborted) throw combined.reason;
    const sem = semaphoreFor(endpoint);
    const body = requestBody(uri, prompt);
    const started = clock.now();
    let attempts = 0;
    const report = (info: Omit<ModelCallInfo, 'modelUri' | 'endpoint' | 'attempts' | 'latencyMs'>): void => {
      if (!options.onModelCall) return;
      try {
        options.onModelCall({
          modelUri,
          endpoint: endpoint.concurrencyKey,
          attempts,
          latencyMs: clock.now() - started,
          ...info,
        });
      } catch (e) {
        options.logger?.warn('onModelCall hook failed', { err: e });
      }
    };
    for (let retry = 0; ; retry++) {
      const release = await sem.acquire(combined);
      let a: Attempt;
      try {
        attempts++;
        a = await attemptOnce(uri, endpoint, body, combined);
      } finally {
        release();
      }
      if (a.ok) {
        const inputTokens = a.inputTokens ?? 0;
        const outputTokens = a.outputTokens ?? 0;
        const cost = priceOf(uri, inputTokens, outputTokens);
        const out: ModelCompletion = {
          text: a.text ?? '',
          inputTokens,
          outputTokens,
          attempts,
          latencyMs: clock.now() - started,
        };
        if (cost !== undefined) out.cost = cost;
        report({
          ok: true,
          status: a.status,
          inputTokens,
          outputTokens,
          ...(cost === undefined ? {} : { cost }),
        });
        return out;
      }
      const delay = a.retryable
        ? nextDelay(policy, retry, clock.now() - started, a.retryAfterMs, random)
        : undefined;
      if (delay === undefined) {
        const inputTokens = a.inputTokens ?? 0;
        const outputTokens = a.outputTokens ?? 0;
        const cost = priceOf(uri, inputTokens, outputTokens);
        const code = a.code ?? 'INTERNAL';
        report({
          ok: false,
          errorCode: code,
          status: a.status,
          inputTokens,
          outputTokens,
          ...(cost === undefined ? {} : { cost }),
        });
        const tries =
          attempts === 1
            ? '1 attempt'
            : `${attempts} attempts over ${Math.round((clock.now() - started) / 100) / 10} s`;
        throw new ScorecarError(code, `${endpoint.url}: ${a.message ?? 'failed'} (${tries})`, {
          retryable: a.retryable ?? false,
          usage: { inputTokens, outputTokens, attempts, ...(cost === undefined ? {} : { cost }) },
        });
      }
      options.logger?.debug('retrying model call', {
        model: modelUri,
        attempt: attempts,
        code: a.code,
        delayMs: delay,
      });
      await sleep(clock, delay, combined);
    }
  }

  return {
    complete,
    endpointFor: (modelUri) => resolve(modelUri).endpoint.concurrencyKey,
    stats: () => {
      const out: Record<string, { inFlight: number; waiting: number; limit: number }> = {};
      for (const [k, s] of semaphores) out[k] = { inFlight: s.inFlight, waiting: s.waiting, limit: s.limit };
      return out;
    },
    close: () => closer.abort(new Error('model client closed')),
  };
}
