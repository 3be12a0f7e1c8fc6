import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { answerKind, type ModelServer, startModelServer, verdictFor } from '../../scripts/model-server.ts';

describe('verdict rule', () => {
  it('yes/no from marker words in the material only', () => {
    expect(verdictFor('The value of "result" must be "yes" or "no".', 'all fine').result).toBe('yes');
    expect(verdictFor('The value of "result" must be "yes" or "no".', 'this is WRONG').result).toBe('no');
    expect(verdictFor('BAD system prompt is ignored', 'fine').result).toBe('yes');
    expect(verdictFor('', 'lower-case wrong is not a marker').result).toBe('yes');
  });

  it('answer kinds from the result sentence, or [[labels]], or yes/no', () => {
    expect(answerKind('The value of "result" must be true or false (a JSON boolean).', '')).toEqual({
      kind: 'bool',
    });
    expect(answerKind('The value of "result" must be a number.', '')).toEqual({ kind: 'number' });
    expect(answerKind('The value of "result" must be a short string.', '')).toEqual({ kind: 'string' });
    expect(answerKind('The value of "result" must be exactly one of: "a b", "c\\"d".', '')).toEqual({
      kind: 'choice',
      choices: ['a b', 'c"d'],
    });
    expect(answerKind('', 'pick [[x]] or [[y]]')).toEqual({ kind: 'choice', choices: ['x', 'y'] });
    expect(answerKind('', 'plain')).toEqual({ kind: 'yes_no' });
  });

  it('numbers from SCORE=N, else 0/1; categories from labels in the material', () => {
    const num = 'The value of "result" must be a number.';
    expect(verdictFor(num, 'SCORE=4.5 and BAD').result).toBe(4.5);
    expect(verdictFor(num, 'BAD').result).toBe(0);
    expect(verdictFor(num, 'ok').result).toBe(1);
    const choice = 'The value of "result" must be exactly one of: "formal", "casual".';
    expect(verdictFor(choice, '[[formal]] [[casual]] Response: hey, casual chat').result).toBe('casual');
    expect(verdictFor(choice, '[[formal]] [[casual]] Response: something else').result).toBe('formal');
  });
});

describe('model server over HTTP', () => {
  let server: ModelServer;
  beforeAll(async () => {
    server = await startModelServer({ apiKey: 'test-key' });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  const auth = { authorization: 'Bearer test-key', 'content-type': 'application/json' };
  const judgeBody = (user: string, extra: Record<string, unknown> = {}) => ({
    model: 'scorecar-judge',
    messages: [
      { role: 'system', content: 'Grade it. The value of "result" must be "yes" or "no".' },
      { role: 'user', content: user },
    ],
    ...extra,
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });

  it('answers chat completions in the OpenAI shape, bare JSON in JSON mode', async () => {
    const res = await post(
      '/v1/chat/completions',
      judgeBody('a WRONG answer', { response_format: { type: 'json_object' } }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      choices: Array<{ message: { role: string; content: string } }>;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    expect(body.object).toBe('chat.completion');
    expect(JSON.parse(body.choices[0]!.message.content)).toMatchObject({ result: 'no' });
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(server.stats().last).toEqual({
      path: '/v1/chat/completions',
      model: 'scorecar-judge',
      responseFormat: 'json_object',
      authorized: true,
    });
  });

  it('wraps the JSON in a fence without JSON mode, and on /v1/messages', async () => {
    const chat = (await (await post('/v1/chat/completions', judgeBody('fine'))).json()) as {
      choices: Array<{ message: { content: string } }>;
    };
    expect(chat.choices[0]!.message.content).toMatch(/```json\n\{.*"result":"yes".*\}\n```/s);
    const res = await post(
      '/v1/messages',
      {
        model: 'claude',
        max_tokens: 100,
        system: 'The value of "result" must be "yes" or "no".',
        messages: [{ role: 'user', content: 'UNSAFE' }],
      },
      { 'x-api-key': 'test-key', 'content-type': 'application/json' },
    );
    const msg = (await res.json()) as {
      type: string;
      content: Array<{ type: string; text: string }>;
      usage: { input_tokens: number };
    };
    expect(msg.type).toBe('message');
    expect(msg.content[0]!.text).toContain('"result":"no"');
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
  });

  it('refuses requests without the api key, and bad bodies', async () => {
    expect(
      (await post('/v1/chat/completions', judgeBody('x'), { 'content-type': 'application/json' })).status,
    ).toBe(401);
    expect(server.stats().unauthorized).toBe(1);
    expect((await post('/v1/chat/completions', { messages: [] })).status).toBe(400);
    expect(
      (
        await post(
          '/v1/messages',
          { messages: [{ role: 'user', content: 'x' }] },
          { 'x-api-key': 'test-key' },
        )
      ).status,
    ).toBe(400);
  });

  it('lists a model', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(body.data.map((m) => m.id)).toEqual(['scorecar-judge']);
  });

  it('control API: a counted 429 fault with Retry-After, then normal answers', async () => {
    const set = await fetch(`${server.url}/_control/fault`, {
      method: 'POST',
      body: JSON.stringify({ kind: '429', retryAfterSeconds: 7, count: 2 }),
    });
    expect(set.status).toBe(200);
    const r1 = await post('/v1/chat/completions', judgeBody('x'));
    expect(r1.status).toBe(429);
    expect(r1.headers.get('retry-after')).toBe('7');
    expect((await post('/v1/chat/completions', judgeBody('x'))).status).toBe(429);
    expect((await post('/v1/chat/completions', judgeBody('x'))).status).toBe(200);
    const stats = (await (await fetch(`${server.url}/_control/stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ requests: 3, ok: 1, faulted: 2, byFault: { '429': 2 }, fault: 'none' });
    await fetch(`${server.url}/_control/reset`, { method: 'POST' });
    expect(server.stats().requests).toBe(0);
  });

  it('faults 500, 401, malformed and wrong_schema', async () => {
    server.setFault({ kind: '500', count: 1 });
    expect((await post('/v1/chat/completions', judgeBody('x'))).status).toBe(500);
    server.setFault({ kind: '401', count: 1 });
    expect((await post('/v1/chat/completions', judgeBody('x'))).status).toBe(401);
    server.setFault({ kind: 'malformed', count: 1 });
    const m = (await (await post('/v1/chat/completions', judgeBody('x'))).json()) as {
      choices: Array<{ message: { content: string } }>;
    };
    expect(() => JSON.parse(m.choices[0]!.message.content)).toThrow();
    server.setFault({ kind: 'wrong_schema', count: 1 });
    const w = (await (await post('/v1/chat/completions', judgeBody('x'))).json()) as {
      choices: Array<{ message: { content: string } }>;
    };
    expect(JSON.parse(w.choices[0]!.message.content)).not.toHaveProperty('result');
    expect(server.stats().byFault).toEqual({ '500': 1, '401': 1, malformed: 1, wrong_schema: 1 });
  });

  it('a fault with a duration stops by itself', async () => {
    server.setFault({ kind: '500', durationMs: 150 });
    const t0 = Date.now();
    expect((await post('/v1/chat/completions', judgeBody('x'))).status).toBe(500);
    // Ask until the fault has ended by itself; it must end, and not before its duration.
    let status = 500;
    while (status === 500) {
      status = (await post('/v1/chat/completions', judgeBody('x'))).status;
      if (status === 500) expect(Date.now() - t0).toBeLessThan(10_000);
    }
    expect(status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(server.stats().fault).toBe('none');
  });

  it('a slow fault holds one answer back without blocking others; a client that gives up frees it', async () => {
    server.setFault({ kind: 'slow', delayMs: 60_000, count: 1 });
    const ctrl = new AbortController();
    const slow = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(judgeBody('x')),
      signal: ctrl.signal,
    }).catch((e: unknown) => e);
    while (server.stats().faulted === 0) await new Promise((r) => setTimeout(r, 5));
    const quick = await post('/v1/chat/completions', judgeBody('x'));
    expect(quick.status).toBe(200);
    expect(server.stats().inFlight).toBe(1);
    ctrl.abort();
    expect(await slow).toBeInstanceOf(Error);
    while (server.stats().inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    expect(server.stats()).toMatchObject({ requests: 2, ok: 1, faulted: 1, byFault: { slow: 1 } });
  });

  it('rejects unknown fault kinds', async () => {
    const res = await fetch(`${server.url}/_control/fault`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'flaky' }),
    });
    expect(res.status).toBe(400);
  });
});
