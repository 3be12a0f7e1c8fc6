// Connections that never become requests: silent TCP connections, headers that never finish,
// HTTP/2 prefaces with nothing after them, idle keep-alive connections. Each is closed within its
// configured timeout (the tests wait for the sockets' close events, with small timeouts
// configured), connections beyond maxConnections are refused as they arrive, and a real sender
// keeps working throughout.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { H2_EMPTY_SETTINGS, H2_PREFACE, postHead, RawConnection } from '../support/raw.ts';
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

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer): Buffer => b;

function exportCall(client: grpc.Client): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.makeUnaryRequest(EXPORT, identity, identity, goodBody(), new grpc.Metadata(), {}, (e) => resolve(e)));
}

describe('OTLP/gRPC connections that never make a call', () => {
  let sc: TestScorecar;
  let client: grpc.Client;

  beforeAll(async () => {
    sc = await startScorecar(`receivers: {otlp: {grpc: {handshakeTimeoutMs: 300, idleTimeoutMs: 400}}}`);
    client = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await sc.stop();
  });

  it('silent connections and unfinished prefaces are closed after handshakeTimeoutMs, preface-only ones after idleTimeoutMs', async () => {
    const port = portOf(`http://${sc.grpcUrl}`);
    expect(await exportCall(client)).toBeNull();
    const silent = Array.from({ length: 30 }, () => new RawConnection(port));
    const half = Array.from({ length: 30 }, () => new RawConnection(port));
    const preface = Array.from({ length: 30 }, () => new RawConnection(port));
    // Preface-only clients that do not even read what scorecar sends them.
    const deaf = Array.from({ length: 10 }, () => new RawConnection(port));
    await Promise.all([...silent, ...half, ...preface, ...deaf].map((c) => c.connected));
    for (const c of half) c.write(H2_PREFACE.subarray(0, 12));
    for (const c of [...preface, ...deaf]) c.write(Buffer.concat([H2_PREFACE, H2_EMPTY_SETTINGS]));
    for (const c of deaf) c.socket.pause();
    // A real sender is served meanwhile.
    expect(await exportCall(client)).toBeNull();
    await Promise.all([...silent, ...half, ...preface].map((c) => c.closedP));
    // A client that does not read cannot see its connection close: scorecar's count of open
    // connections shows it (at most the real sender's is left), then its socket reads the end.
    await waitFor(async () => (await sc.metric('scorecar_receiver_connections', { transport: 'grpc' })) <= 1, 20_000, 'the deaf connections to be closed');
    for (const c of deaf) c.socket.resume();
    await Promise.all(deaf.map((c) => c.closedP));
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'grpc', reason: 'handshake_timeout' })).toBe(60);
    // The real sender's own connection may have idled out too, between its calls.
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'grpc', reason: 'idle_timeout' })).toBeGreaterThanOrEqual(40);
    // It reconnects as gRPC clients do after a GOAWAY.
    expect(await exportCall(client)).toBeNull();
  }, 30_000);
});

describe('OTLP/gRPC maxConnections', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar(`receivers: {otlp: {grpc: {maxConnections: 10, handshakeTimeoutMs: 120000}}}`);
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('refuses connections beyond the limit as they arrive; a connected sender keeps working', async () => {
    const port = portOf(`http://${sc.grpcUrl}`);
    const open = (): Promise<number> => sc.metric('scorecar_receiver_connections', { transport: 'grpc' });
    const real = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure());
    expect(await exportCall(real)).toBeNull();
    const hogs = Array.from({ length: 9 }, () => new RawConnection(port));
    await Promise.all(hogs.map((c) => c.connected));
    await waitFor(async () => (await open()) === 10, 20_000, 'ten connections open');
    const beyond = Array.from({ length: 5 }, () => new RawConnection(port));
    await Promise.all(beyond.map((c) => c.closedP));
    expect(beyond.map((c) => c.received.length)).toEqual([0, 0, 0, 0, 0]);
    expect(hogs.filter((c) => c.closed)).toEqual([]);
    expect(await sc.metric('scorecar_receiver_connections_refused_total', { transport: 'grpc' })).toBe(5);
    for (let i = 0; i < 3; i++) expect(await exportCall(real)).toBeNull();
    for (const c of hogs) c.destroy();
    await waitFor(async () => (await open()) === 1, 20_000, 'the hogs to be gone');
    const fresh = new grpc.Client(sc.grpcUrl, grpc.credentials.createInsecure());
    expect(await exportCall(fresh)).toBeNull();
    fresh.close();
    real.close();
  }, 30_000);
});
