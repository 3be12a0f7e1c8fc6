import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createModelClient,
  type JudgePrompt,
  type ModelCallInfo,
  nextDelay,
  type RetryPolicy,
  Semaphore,
} from '../../src/scoring/index.ts';
import { backoffInterval, jitteredInterval, parseRetryAfter, ScorecarError } from '../../src/util/index.ts';

type Step = Response | 'hang' | Error;
interface Call {
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  at: number;
}

function scripted(steps: Step[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({
      url: String(input),
      headers: { ...(init?.headers as Record<string, string>) },
      body: JSON.parse(String(init?.body)) as Record<string, unknown>,
      at: Date.now(),
    });
    const s = steps.length > 1 ? steps.shift()! : steps[0]!;
    if (s === 'hang') {
      return new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
      });
    }
    if (s instanceof Error) throw s;
    return s.clone();
  };
  return { fetch: f as typeof fetch, calls };
}

function chat(content: string, usage = { prompt_tokens: 100, completion_tokens: 20 }): Response {
  return new Response(JSON.stringify({ choices: [{ message: { role: 'assistant', content } }], usage }), {
    status: 200,
    headers: { 'content-type': 'application/json' },
  });
}

function status(code: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { message: `status ${code}` } }), { status: code, headers });
}

const prompt: JudgePrompt = {
  system: 'Answer in JSON.',
  user: '<response>\nhi\n</response>',
  answer: { kind: 'yes_no' },
};
const VERDICT = '{"result": "yes", "rationale": "ok"}';
const policy: Partial<RetryPolicy> = {
  initialIntervalMs: 100,
  maxIntervalMs: 10_000,
  maxElapsedMs: 1000,
  multiplier: 2,
  randomizationFactor: 0,
};

async function failure(p: Promise<unknown>): Promise<ScorecarError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ScorecarError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('backoff policy', () => {
  const p: RetryPolicy = {
    initialIntervalMs: 1000,
    maxIntervalMs: 5000,
    maxElapsedMs: 20_000,
    multiplier: 2,
    randomizationFactor: 0.5,
  };

  it('grows exponentially and caps at the max interval', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffInterval(p, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('jitters within [1 - r, 1 + r] of the nominal interval', () => {
    expect(jitteredInterval(p, 1, () => 0)).toBe(1000);
    expect(jitteredInterval(p, 1, () => 0.999999)).toBe(3000);
    expect(jitteredInterval(p, 1, () => 0.5)).toBe(2000);
  });

  it('lets Retry-After lengthen a wait and stops at the elapsed budget', () => {
    expect(nextDelay(p, 0, 0, 7000, () => 0.5)).toBe(7000);
    expect(nextDelay(p, 0, 0, 10, () => 0.5)).toBe(1000);
    expect(nextDelay(p, 0, 19_500, undefined, () => 0.5)).toBeUndefined();
    expect(nextDelay({ ...p, maxElapsedMs: 0 }, 0, 0, undefined, () => 0.5)).toBeUndefined();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('Semaphore', () => {
  it('admits up to the limit and hands slots over in FIFO order', async () => {
    const s = new Semaphore(2);
    const r1 = await s.acquire();
    await s.acquire();
    const order: number[] = [];
    const w3 = s.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const w4 = s.acquire().then(() => order.push(4));
    expect(s.inFlight).toBe(2);
    expect(s.waiting).toBe(2);
    r1();
    r1(); // a second release of the same slot is ignored
    const r3 = await w3;
    expect(order).toEqual([3]);
    expect(s.waiting).toBe(1);
    r3();
    await w4;
    expect(order).toEqual([3, 4]);
    expect(s.inFlight).toBe(2);
  });

  it('drops an aborted waiter from the queue', async () => {
    const s = new Semaphore(1);
    await s.acquire();
    const ctrl = new AbortController();
    const w = s.acquire(ctrl.signal);
    ctrl.abort(new Error('stop'));
    await expect(w).rejects.toThrow('stop');
    expect(s.waiting).toBe(0);
  });
});

describe('request shapes and credentials', () => {
  it('OpenAI: chat completions with JSON mode, temperature 0 and the key from the environment', async () => {
    const { fetch, calls } = scripted([chat(VERDICT)]);
    const c = createModelClient({ fetch, env: { OPENAI_API_KEY: 'sk-test' } });
    const out = await c.complete('openai:/gpt-4.1-mini', prompt);
    expect(out).toMatchObject({ text: VERDICT, inputTokens: 100, outputTokens: 20, attempts: 1 });
    expect(calls[0]!.url).toBe('https://api.openai.com/v1/chat/completions');
    expect(calls[0]!.headers.authorization).toBe('Bearer sk-test');
    expect(calls[0]!.body).toEqual({
      model: 'gpt-4.1-mini',
      messages: [
        { role: 'system', content: prompt.system },
        { role: 'user', content: prompt.user },
      ],
      response_format: { type: 'json_object' },
      temperature: 0,
    });
  });

  it('OpenAI reasoning models get no temperature', async () => {
    const { fetch, calls } = scripted([chat(VERDICT)]);
    await createModelClient({ fetch, env: {} }).complete('openai:/o4-mini', prompt);
    expect(calls[0]!.body).not.toHaveProperty('temperature');
  });

  it('OPENAI_BASE_URL and config overrides, config first', async () => {
    const a = scripted([chat(VERDICT)]);
    await createModelClient({
      fetch: a.fetch,
      env: { OPENAI_BASE_URL: 'http://vllm:8000/v1/', OPENAI_API_KEY: 'k1' },
    }).complete('openai:/m', prompt);
    expect(a.calls[0]!.url).toBe('http://vllm:8000/v1/chat/completions');
    const b = scripted([chat(VERDICT)]);
    await createModelClient({
      fetch: b.fetch,
      env: { OPENAI_BASE_URL: 'http://vllm:8000/v1', OPENAI_API_KEY: 'k1' },
      providers: { openai: { baseUrl: 'http://gateway:4000/v1', apiKey: 'k2' } },
    }).complete('openai:/m', prompt);
    expect(b.calls[0]!.url).toBe('http://gateway:4000/v1/chat/completions');
    expect(b.calls[0]!.headers.authorization).toBe('Bearer k2');
  });

  it('sends a key only to the base URL it was configured for', async () => {
    const { fetch, calls } = scripted([chat(VERDICT)]);
    const c = createModelClient({
      fetch,
      env: { OPENAI_API_KEY: 'sk-secret', OPENAI_BASE_URL: 'http://gw:4000/v1' },
    });
    await c.complete('openai:/m@http://elsewhere:9000/v1', prompt);
    expect(calls[0]!.url).toBe('http://elsewhere:9000/v1/chat/completions');
    expect(calls[0]!.headers.authorization).toBeUndefined();
    await c.complete('openai:/m@http://gw:4000/v1/', prompt);
    expect(calls[1]!.headers.authorization).toBe('Bearer sk-secret');
  });

  it('Anthropic: messages API with x-api-key, version header, system and max_tokens', async () => {
    const body = {
      content: [{ type: 'text', text: VERDICT }],
      usage: { input_tokens: 50, output_tokens: 7, cache_read_input_tokens: 10 },
    };
    const { fetch, calls } = scripted([new Response(JSON.stringify(body), { status: 200 })]);
    const c = createModelClient({
      fetch,
      env: { ANTHROPIC_API_KEY: 'ak', ANTHROPIC_BASE_URL: 'http://claude-proxy:1234/' },
    });
    const out = await c.complete('anthropic:/claude-haiku-4-5', prompt);
    expect(out).toMatchObject({ text: VERDICT, inputTokens: 60, outputTokens: 7 });
    expect(calls[0]!.url).toBe('http://claude-proxy:1234/v1/messages');
    expect(calls[0]!.headers['x-api-key']).toBe('ak');
    expect(calls[0]!.headers['anthropic-version']).toBe('2023-06-01');
    expect(calls[0]!.body).toMatchObject({
      model: 'claude-haiku-4-5',
      system: prompt.system,
      messages: [{ role: 'user', content: prompt.user }],
    });
    expect(typeof calls[0]!.body.max_tokens).toBe('number');
  });

  it('Databricks: serving endpoint invocations on DATABRICKS_HOST with the token', async () => {
    const { fetch, calls } = scripted([chat(VERDICT)]);
    const c = createModelClient({
      fetch,
      env: { DATABRICKS_HOST: 'adb-1.azuredatabricks.net/', DATABRICKS_TOKEN: 'dapi1' },
    });
    await c.complete('databricks:/judge-endpoint', prompt);
    expect(calls[0]!.url).toBe(
      'https://adb-1.azuredatabricks.net/serving-endpoints/judge-endpoint/invocations',
    );
    expect(calls[0]!.headers.authorization).toBe('Bearer dapi1');
    expect(calls[0]!.body).not.toHaveProperty('model');
  });

  it('Databricks without a host is PROVIDER_NOT_CONFIGURED, without any request', async () => {
    const { fetch, calls } = scripted([chat(VERDICT)]);
    const e = await failure(createModelClient({ fetch, env: {} }).complete('databricks:/x', prompt));
    expect(e.code).toBe('PROVIDER_NOT_CONFIGURED');
    expect(calls).toHaveLength(0);
  });

  it('records cost from the price table, by full URI or by URI without its base URL', async () => {
    const prices = { 'openai:/m': { inputPerMillionTokens: 2, outputPerMillionTokens: 8 } };
    const { fetch } = scripted([chat(VERDICT, { prompt_tokens: 1_000_000, completion_tokens: 500_000 })]);
    const seen: ModelCallInfo[] = [];
    const c = createModelClient({ fetch, env: {}, prices, onModelCall: (i) => seen.push(i) });
    const out = await c.complete('openai:/m@http://local:1/v1', prompt);
    expect(out.cost).toBe(6);
    expect(seen).toEqual([
      expect.objectContaining({
        modelUri: 'openai:/m@http://local:1/v1',
        ok: true,
        status: 200,
        attempts: 1,
        inputTokens: 1_000_000,
        outputTokens: 500_000,
        cost: 6,
      }),
    ]);
    const other = await createModelClient({
      fetch: scripted([chat(VERDICT)]).fetch,
      env: {},
      prices,
    }).complete('openai:/n', prompt);
    expect(other.cost).toBeUndefined();
  });

  it('a 200 without message text is PROVIDER_BAD_RESPONSE, not retried', async () => {
    const { fetch, calls } = scripted([new Response('{"choices": []}', { status: 200 }), chat(VERDICT)]);
    const e = await failure(
      createModelClient({ fetch, env: {}, retry: policy }).complete('openai:/m', prompt),
    );
    expect(e.code).toBe('PROVIDER_BAD_RESPONSE');
    expect(calls).toHaveLength(1);
  });
});

describe('retries (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.parse('2025-01-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('honours Retry-After on 429 and then succeeds', async () => {
    const { fetch, calls } = scripted([status(429, { 'retry-after': '5' }), chat(VERDICT)]);
    const c = createModelClient({ fetch, env: {}, retry: { ...policy, maxElapsedMs: 60_000 } });
    const p = c.complete('openai:/m', prompt);
    await vi.advanceTimersByTimeAsync(4999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const out = await p;
    expect(calls).toHaveLength(2);
    expect(calls[1]!.at - calls[0]!.at).toBe(5000);
    expect(out.attempts).toBe(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const { fetch, calls } = scripted([
      status(503, { 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }),
      chat(VERDICT),
    ]);
    const p = createModelClient({ fetch, env: {}, retry: { ...policy, maxElapsedMs: 60_000 } }).complete(
      'openai:/m',
      prompt,
    );
    await vi.advanceTimersByTimeAsync(3000);
    await p;
    expect(calls[1]!.at - calls[0]!.at).toBe(3000);
  });

  it('backs off exponentially on 500 and gives up at the elapsed budget', async () => {
    const { fetch, calls } = scripted([status(500)]);
    const seen: ModelCallInfo[] = [];
    const p = failure(
      createModelClient({ fetch, env: {}, retry: policy, onModelCall: (i) => seen.push(i) }).complete(
        'openai:/m',
        prompt,
      ),
    );
    await vi.advanceTimersByTimeAsync(5000);
    const e = await p;
    expect(e.code).toBe('PROVIDER_UNAVAILABLE');
    expect(e.retryable).toBe(true);
    // waits 100, 200, 400; the next (800) would pass the 1000 ms budget
    expect(calls.map((c) => c.at - calls[0]!.at)).toEqual([0, 100, 300, 700]);
    expect(e.message).toContain('4 attempts');
    expect(seen).toEqual([
      expect.objectContaining({ ok: false, errorCode: 'PROVIDER_UNAVAILABLE', status: 500, attempts: 4 }),
    ]);
  });

  it('exhausted 429s end as RATE_LIMITED', async () => {
    const { fetch } = scripted([status(429)]);
    const p = failure(createModelClient({ fetch, env: {}, retry: policy }).complete('openai:/m', prompt));
    await vi.advanceTimersByTimeAsync(5000);
    expect((await p).code).toBe('RATE_LIMITED');
  });

  it.each([
    [401, 'UNAUTHENTICATED'],
    [403, 'UNAUTHENTICATED'],
    [400, 'PROVIDER_REJECTED'],
    [404, 'PROVIDER_REJECTED'],
  ])('does not retry HTTP %i (%s)', async (code, expected) => {
    const { fetch, calls } = scripted([status(code), chat(VERDICT)]);
    const e = await failure(
      createModelClient({ fetch, env: {}, retry: policy }).complete('openai:/m', prompt),
    );
    expect(e.code).toBe(expected);
    expect(e.retryable).toBe(false);
    expect(e.message).toContain(`status ${code}`);
    expect(calls).toHaveLength(1);
  });

  it('times an attempt out and retries it', async () => {
    const { fetch, calls } = scripted(['hang', chat(VERDICT)]);
    const p = createModelClient({
      fetch,
      env: {},
      retry: { ...policy, maxElapsedMs: 60_000 },
      timeoutMs: 1000,
    }).complete('openai:/m', prompt);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1 + 100);
    const out = await p;
    expect(calls).toHaveLength(2);
    expect(out.attempts).toBe(2);
  });

  it('a call that keeps timing out ends as TIMEOUT', async () => {
    const { fetch } = scripted(['hang']);
    const p = failure(
      createModelClient({
        fetch,
        env: {},
        retry: { ...policy, maxElapsedMs: 2500 },
        timeoutMs: 1000,
      }).complete('openai:/m', prompt),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await p).code).toBe('TIMEOUT');
  });

  it('retries connection errors', async () => {
    const refused = new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    const { fetch, calls } = scripted([refused, chat(VERDICT)]);
    const p = createModelClient({ fetch, env: {}, retry: policy }).complete('openai:/m', prompt);
    await vi.advanceTimersByTimeAsync(100);
    await p;
    expect(calls).toHaveLength(2);
  });

  it('maxElapsedMs 0 means a single attempt', async () => {
    const { fetch, calls } = scripted([status(503)]);
    const e = await failure(
      createModelClient({ fetch, env: {}, retry: { ...policy, maxElapsedMs: 0 } }).complete(
        'openai:/m',
        prompt,
      ),
    );
    expect(e.code).toBe('PROVIDER_UNAVAILABLE');
    expect(calls).toHaveLength(1);
  });

  it('an abort during a backoff wait rejects with the abort reason', async () => {
    const { fetch, calls } = scripted([status(500)]);
    const ctrl = new AbortController();
    const p = createModelClient({ fetch, env: {}, retry: { ...policy, initialIntervalMs: 500 } }).complete(
      'openai:/m',
      prompt,
      ctrl.signal,
    );
    const settled = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    ctrl.abort(new Error('engine stopping'));
    const e = await settled;
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toBe('engine stopping');
    expect(calls).toHaveLength(1);
  });

  it('limits requests in flight per endpoint', async () => {
    const { fetch, calls } = scripted(['hang']);
    const c = createModelClient({
      fetch,
      env: {},
      retry: { ...policy, maxElapsedMs: 0 },
      timeoutMs: 1000,
      providers: { openai: { concurrency: 2 } },
    });
    const all = Promise.allSettled([1, 2, 3, 4, 5].map(() => c.complete('openai:/m', prompt)));
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    expect(c.stats()['https://api.openai.com/v1']).toEqual({ inFlight: 2, waiting: 3, limit: 2 });
    // another endpoint has its own limit
    const other = c.complete('openai:/m@http://other:1/v1', prompt).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(2000);
    const results = await all;
    await other;
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toHaveLength(6);
  });
});
