// A large OTLP/JSON request (~18 MiB: seconds of parse + encode) is converted off the event
// loop: while it is being converted, another sender's small protobuf requests are answered one
// after another, all before the large one's answer. The order of the answers is the assertion.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const MiB = 1024 * 1024;
const SMALL = 10;

/** An OTLP/JSON trace request of about `bytes`, spans with many small attributes. */
function largeJson(bytes: number): { body: Buffer; spans: number } {
  const traceId = randomBytes(16).toString('hex');
  const attributes = Array.from({ length: 20 }, (_, i) =>
    i % 2 === 0 ? { key: `attr.int.${i}`, value: { intValue: String(1_000_000 + i) } } : { key: `attr.str.${i}`, value: { stringValue: `value-${i}` } },
  );
  const one = JSON.stringify({ traceId, spanId: '0000000000000000', name: 'span', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes });
  const spans = Math.ceil(bytes / one.length);
  const list = Array.from({ length: spans }, () => ({ traceId, spanId: randomBytes(8).toString('hex'), name: 'span', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes }));
  return { body: Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: list }] }] })), spans };
}

function smallProtobuf(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex') }] }] }] }));
}

function post(url: string, body: Buffer, type: string, agent: http.Agent, sent?: () => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (sent) req.on('finish', sent);
    req.end(body);
  });
}

describe('a large OTLP/JSON request and another sender', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar('');
  });
  afterAll(async () => {
    await sc.stop();
  });

  it(`the other sender's ${SMALL} small protobuf requests are all answered before the large JSON one`, async () => {
    const large = largeJson(18 * MiB);
    const order: string[] = [];
    const bigAgent = new http.Agent({ keepAlive: true });
    const smallAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let bodySent!: () => void;
    const sentP = new Promise<void>((r) => {
      bodySent = r;
    });
    const big = post(`${sc.httpUrl}/v1/traces`, large.body, 'application/json', bigAgent, bodySent).then((status) => {
      order.push('large');
      return status;
    });
    // Once the large body is on its way, the other sender sends its requests one by one.
    await sentP;
    const small: number[] = [];
    for (let i = 0; i < SMALL; i++) {
      small.push(await post(`${sc.httpUrl}/v1/traces`, smallProtobuf(), 'application/x-protobuf', smallAgent));
      order.push('small');
    }
    expect(await big).toBe(200);
    expect(small).toEqual(Array(SMALL).fill(200));
    expect(order).toEqual([...Array(SMALL).fill('small'), 'large']);
    expect(await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'http' })).toBe(large.spans + SMALL);
    bigAgent.destroy();
    smallAgent.destroy();
  }, 60_000);

  it('a JSON refusal from a worker is the same as inline: 400 naming the field', async () => {
    const large = largeJson(MiB);
    const bad = Buffer.from(large.body.toString().replace('"startTimeUnixNano":"1700000000000000000"', '"startTimeUnixNano":"17e17"'));
    const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body: bad, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe('resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: "17e17" is not an integer');
  });
});

describe("one client's concurrent OTLP/JSON requests", () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar('assembler: {settleMs: 100}', { captureTraces: true });
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('are handed on in the order they arrived: a small one does not overtake a large one being converted', async () => {
    // The large request carries a child span (and ~18 MiB of other spans), the small one sent
    // after it the child's root. Handed on out of order, the trace would be completed (100 ms
    // after its root) while the child is still being converted.
    const traceId = randomBytes(16).toString('hex');
    const rootId = randomBytes(8).toString('hex');
    const filler = JSON.parse(largeJson(18 * MiB).body.toString()) as { resourceSpans: [{ scopeSpans: [{ spans: unknown[] }] }] };
    filler.resourceSpans[0].scopeSpans[0].spans.push({ traceId, spanId: randomBytes(8).toString('hex'), parentSpanId: rootId, name: 'child' });
    const large = Buffer.from(JSON.stringify(filler));
    const small = Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: rootId, name: 'root' }] }] }] }));
    const agent = new http.Agent({ keepAlive: true });
    let asked!: () => void;
    const continued = new Promise<void>((r) => {
      asked = r;
    });
    const bigDone = new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${sc.httpUrl}/v1/traces`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': large.length, expect: '100-continue' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.on('continue', () => {
        req.end(large);
        asked();
      });
      req.flushHeaders();
    });
    // Asked for its body: the receiver has taken the large request in, so it came first.
    await continued;
    expect(await post(`${sc.httpUrl}/v1/traces`, small, 'application/json', agent)).toBe(200);
    expect(await bigDone).toBe(200);
    await waitFor(() => sc.traces.some((t) => t.traceId === traceId), 30_000, 'the trace to complete');
    const trace = sc.traces.find((t) => t.traceId === traceId)!;
    expect(trace.spans.length).toBe(2);
    agent.destroy();
  }, 60_000);
});
