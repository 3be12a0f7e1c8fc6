// Connections that never become requests: silent TCP connections, headers that never finish,
// HTTP/2 prefaces with nothing after them, idle keep-alive connections. Each is closed within its
// configured timeout (the tests wait for the sockets' close events, with small timeouts
// configured), connections beyond maxConnections are refused as they arrive, and a real sender
// keeps working throughout.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { postHead, RawConnection } from '../support/raw.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

function goodBody(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex') }] }] }] }));
}

/** A good request on a raw connection; resolves with the status of its answer. */
async function send(c: RawConnection): Promise<number> {
  const body = goodBody();
  const n = c.responses().filter((r) => r.status >= 200).length;
  c.write(postHead('/v1/traces', { 'content-type': 'application/x-protobuf', 'content-length': body.length }));
  c.write(body);
  const finals = await c.finalResponses(n + 1);
  return finals[n]!.status;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('OTLP/HTTP connections that never become requests', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar(`receivers: {otlp: {http: {headerTimeoutMs: 300, idleTimeoutMs: 300}}}`);
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('silent connections and unfinished headers are closed after headerTimeoutMs', async () => {
    const port = portOf(sc.httpUrl);
    const silent = Array.from({ length: 20 }, () => new RawConnection(port));
    const partial = Array.from({ length: 20 }, () => new RawConnection(port));
    await Promise.all([...silent, ...partial].map((c) => c.connected));
    for (const c of partial) c.write('POST /v1/traces HTTP/1.1\r\nHost: scorecar\r\nContent-Type: appl');
    await Promise.all([...silent, ...partial].map((c) => c.closedP));
    for (const c of [...silent, ...partial]) expect(c.responses().map((r) => r.status)).toEqual([408]);
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'http', reason: 'header_timeout' })).toBe(40);
  }, 30_000);

  it('a keep-alive connection left idle is closed after idleTimeoutMs', async () => {
    const c = new RawConnection(portOf(sc.httpUrl));
    await c.connected;
    expect(await send(c)).toBe(200);
    await c.closedP;
    expect(c.error).toBeUndefined();
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'http', reason: 'idle_timeout' })).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('OTLP/HTTP maxConnections', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar(`receivers: {otlp: {http: {maxConnections: 10, headerTimeoutMs: 120000}}}`);
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('refuses connections beyond the limit as they arrive; a connected sender keeps working', async () => {
    const port = portOf(sc.httpUrl);
    const open = (): Promise<number> => sc.metric('scorecar_receiver_connections', { transport: 'http' });
    const real = new RawConnection(port);
    await real.connected;
    expect(await send(real)).toBe(200);
    const hogs = Array.from({ length: 9 }, () => new RawConnection(port));
    await Promise.all(hogs.map((c) => c.connected));
    await waitFor(async () => (await open()) === 10, 20_000, 'ten connections open');
    const beyond = Array.from({ length: 5 }, () => new RawConnection(port));
    await Promise.all(beyond.map((c) => c.closedP));
    expect(beyond.map((c) => c.received.length)).toEqual([0, 0, 0, 0, 0]);
    expect(hogs.filter((c) => c.closed)).toEqual([]);
    expect(await sc.metric('scorecar_receiver_connections_refused_total', { transport: 'http' })).toBe(5);
    expect(await send(real)).toBe(200);
    // Once the hogs go, new connections are taken again.
    for (const c of hogs) c.destroy();
    await waitFor(async () => (await open()) === 1, 20_000, 'the hogs to be gone');
    const fresh = new RawConnection(port);
    await fresh.connected;
    expect(await send(fresh)).toBe(200);
    fresh.destroy();
    real.destroy();
  }, 30_000);
});
