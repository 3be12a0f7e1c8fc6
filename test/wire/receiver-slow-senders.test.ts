// Slow senders over OTLP/HTTP: a sender that announces a large body and trickles it holds only
// the bytes it has sent, so it cannot lock everyone else out of the memory budget; and a body
// that does not arrive within requestTimeoutMs gets 408 from the error table, not a hang.
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, otlpType, TYPE } from '../../src/wire/index.ts';
import { postHead, RawConnection } from '../support/raw.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const MiB = 1024 * 1024;

function goodBody(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex'), name: 'real' }] }] }] }));
}

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** A gRPC call whose message prefix announces `declared` bytes, of which it sends 10 and stalls. */
function slowCall(session: http2.ClientHttp2Session, declared: number): { stream: http2.ClientHttp2Stream; answer: Promise<Record<string, string>> } {
  const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(declared, 1);
  stream.write(Buffer.concat([prefix, Buffer.alloc(10, 0x0a)]));
  const answer = new Promise<Record<string, string>>((resolve) => {
    // Trailers-Only: the status comes with the response headers.
    stream.on('response', (h) => resolve(h as Record<string, string>));
  });
  stream.on('error', () => {});
  stream.resume();
  return { stream, answer };
}

/** A complete call on a given connection; resolves with its grpc-status. */
function rawCall(session: http2.ClientHttp2Session, body: Buffer): Promise<string | undefined> {
  const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  stream.end(Buffer.concat([prefix, body]));
  stream.resume();
  return new Promise((resolve) => {
    let status: string | undefined;
    stream.on('response', (h) => {
      status ??= h['grpc-status'] as string | undefined;
    });
    stream.on('trailers', (h) => {
      status ??= h['grpc-status'] as string | undefined;
    });
    stream.on('close', () => resolve(status));
  });
}

function grpcCall(target: string): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  return new Promise((resolve) =>
    client.makeUnaryRequest(EXPORT, identity, identity, goodBody(), new grpc.Metadata(), {}, (e) => {
      client.close();
      resolve(e);
    }),
  );
}

/** A sender that declares `declared` bytes, asks to continue, and once told to, sends 10 bytes and stalls. */
async function slowSender(port: number, declared: number, expectContinue: boolean): Promise<RawConnection> {
  const c = new RawConnection(port);
  await c.connected;
  c.write(
    postHead('/v1/traces', {
      'content-type': 'application/x-protobuf',
      'content-length': declared,
      ...(expectContinue ? { expect: '100-continue' } : {}),
    }),
  );
  // The 100 Continue says the receiver has admitted the request and waits for its body.
  if (expectContinue) await c.until((x) => x.responses().length > 0, '100 Continue or an answer');
  c.write(Buffer.alloc(10, 0x0a));
  return c;
}

describe('slow senders and the memory budget', () => {
  let sc: TestScorecar;
  let port: number;

  beforeAll(async () => {
    sc = await startScorecar(`limits: {memoryBytes: ${8 * MiB}}`);
    port = Number(new URL(sc.httpUrl).port);
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('40 connections declaring 1 MiB each (5x the budget) and trickling: a real sender still gets 200', async () => {
    const slow: RawConnection[] = [];
    for (let i = 0; i < 40; i++) slow.push(await slowSender(port, MiB, true));
    // Every slow sender was admitted and asked for its body; none was refused.
    expect(slow.map((c) => c.responses().map((r) => r.status))).toEqual(slow.map(() => [100]));

    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body: goodBody(), headers: { 'content-type': 'application/x-protobuf' } });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    // The slow senders are all still waiting, and hold only what they sent.
    expect(slow.filter((c) => c.closed || c.responses().some((r) => r.status >= 200)).length).toBe(0);
    expect(await sc.metric('scorecar_memory_budget_used_bytes')).toBeLessThan(64 * 1024);
    for (const c of slow) c.destroy();
    await Promise.all(slow.map((c) => c.closedP));
  });

  it('the same over gRPC: 40 calls announcing 1 MiB messages and stalling; a real call succeeds', async () => {
    const sessions = Array.from({ length: 4 }, () => http2.connect(`http://${sc.grpcUrl}`));
    const calls = Array.from({ length: 40 }, (_, i) => slowCall(sessions[i % 4]!, MiB));
    // A call on the same connection after them is answered only once theirs have been read.
    for (const s of sessions) expect(await rawCall(s, goodBody())).toBe('0');
    for (let i = 0; i < 3; i++) expect(await grpcCall(sc.grpcUrl)).toBeNull();
    expect(await sc.metric('scorecar_memory_budget_used_bytes')).toBeLessThan(64 * 1024);
    for (const c of calls) c.stream.close();
    for (const s of sessions) s.destroy();
  });
});

describe('a body that does not arrive in time', () => {
  let sc: TestScorecar;
  let port: number;

  beforeAll(async () => {
    sc = await startScorecar(`receivers: {otlp: {http: {requestTimeoutMs: 300}, grpc: {requestTimeoutMs: 300}}}`);
    port = Number(new URL(sc.httpUrl).port);
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('gets 408 with the reason, and the connection is closed', async () => {
    const slow = await Promise.all(Array.from({ length: 6 }, (_, i) => slowSender(port, MiB, i % 2 === 0)));
    await Promise.all(slow.map((c) => c.closedP));
    for (const c of slow) {
      const final = c.responses().filter((r) => r.status >= 200);
      expect(final.map((r) => r.status)).toEqual([408]);
      expect(final[0]!.headers.connection).toBe('close');
      const status = otlpType(TYPE.rpcStatus).decode(final[0]!.body) as unknown as { message: string };
      expect(status.message).toMatch(/request body not received in full within 300 ms \((0|10) bytes received\)/);
    }
    expect(await sc.metric('scorecar_receiver_requests_total', { transport: 'http', outcome: '408' })).toBe(6);
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'http', reason: 'request_timeout' })).toBe(6);
    // Not a capacity refusal: the sender is told, it is not asked to retry.
    expect(await sc.metric('scorecar_receiver_refused_requests_total')).toBe(0);
    const res = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', body: goodBody(), headers: { 'content-type': 'application/x-protobuf' } });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  }, 30_000);

  it('a refused body whose rest stalls: answered at once, then cut off after requestTimeoutMs', async () => {
    const before = await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'http', reason: 'request_timeout' });
    const c = new RawConnection(port);
    await c.connected;
    c.write(postHead('/v1/traces', { 'content-type': 'application/x-protobuf', 'content-length': 50_000_000 }));
    c.write(Buffer.alloc(10));
    await c.closedP;
    expect(c.responses().map((r) => r.status)).toEqual([413]);
    expect(await sc.metric('scorecar_receiver_connections_closed_total', { transport: 'http', reason: 'request_timeout' })).toBe(before + 1);
  }, 30_000);

  it('over gRPC: a stalled message gets UNKNOWN (the 408 of the error table) with the reason', async () => {
    const session = http2.connect(`http://${sc.grpcUrl}`);
    const calls = Array.from({ length: 6 }, () => slowCall(session, MiB));
    const answers = await Promise.all(calls.map((c) => c.answer));
    for (const h of answers) {
      expect(h['grpc-status']).toBe('2');
      expect(decodeURIComponent(h['grpc-message']!)).toMatch(/request message not received in full within 300 ms/);
    }
    session.destroy();
    expect(await sc.metric('scorecar_receiver_requests_total', { transport: 'grpc', outcome: 'UNKNOWN' })).toBe(6);
    expect(await grpcCall(sc.grpcUrl)).toBeNull();
  }, 30_000);
});
