// The OTLP/gRPC receiver speaks gRPC over HTTP/2 itself: calls written frame by frame with
// node:http2 (what no gRPC client library would send) get the status of the error table, in a
// Trailers-Only response with a percent-encoded grpc-message, and a cancelled call is counted.
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function body(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex'), name: 'é 100%' }] }] }] }));
}

function framed(msg: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

interface Answer {
  status: number;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  data: Buffer;
}

describe('gRPC over HTTP/2, frame by frame', () => {
  let sc: TestScorecar;
  let session: http2.ClientHttp2Session;

  beforeAll(async () => {
    sc = await startScorecar('');
    session = http2.connect(`http://${sc.grpcUrl}`);
  });
  afterAll(async () => {
    session.destroy();
    await sc.stop();
  });

  function call(headers: http2.OutgoingHttpHeaders, write: (s: http2.ClientHttp2Stream) => void): Promise<Answer> {
    const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) {
        grpcStatus = String(h['grpc-status']);
        grpcMessage = h['grpc-message'] === undefined ? undefined : decodeURIComponent(String(h['grpc-message']));
      }
    };
    stream.on('response', (h) => {
      status = Number(h[':status']);
      take(h);
    });
    stream.on('trailers', take);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    write(stream);
    return new Promise((resolve) => stream.on('close', () => resolve({ status, grpcStatus, grpcMessage, data: Buffer.concat(chunks) })));
  }

  it('a call in several DATA frames, the prefix itself split: OK with an empty response message', async () => {
    const f = framed(body());
    const a = await call({}, (s) => {
      s.write(f.subarray(0, 2));
      s.write(f.subarray(2, 9));
      s.end(f.subarray(9));
    });
    expect([a.status, a.grpcStatus]).toEqual([200, '0']);
    expect(a.data).toEqual(Buffer.alloc(5));
  });

  it('an empty message is an empty request: OK', async () => {
    const a = await call({}, (s) => s.end(framed(Buffer.alloc(0))));
    expect(a.grpcStatus).toBe('0');
  });

  it('a gzip message with grpc-encoding gzip: OK', async () => {
    const a = await call({ 'grpc-encoding': 'gzip' }, (s) => s.end(framed(gzipSync(body()), true)));
    expect(a.grpcStatus).toBe('0');
  });

  const refused: Array<[string, http2.OutgoingHttpHeaders, (s: http2.ClientHttp2Stream) => void, string, RegExp]> = [
    ['an unknown method', { ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Nope' }, (s) => s.end(framed(body())), '12', /unknown method/],
    ['an unsupported grpc-encoding', { 'grpc-encoding': 'snappy' }, (s) => s.end(framed(body())), '3', /unsupported grpc-encoding 'snappy'/],
    ['no message at all', {}, (s) => s.end(), '3', /no request message/],
    ['a truncated message', {}, (s) => s.end(framed(body()).subarray(0, 12)), '3', /truncated/],
    ['a truncated prefix', {}, (s) => s.end(Buffer.from([0, 0])), '3', /truncated/],
    ['two messages', {}, (s) => s.end(Buffer.concat([framed(body()), framed(body())])), '3', /one request message/],
    ['a compressed message without grpc-encoding', {}, (s) => s.end(framed(gzipSync(body()), true)), '3', /marked compressed/],
    ['an invalid message flag', {}, (s) => s.end(Buffer.from([7, 0, 0, 0, 0])), '3', /invalid message flag 7/],
    ['gzip that is not gzip', { 'grpc-encoding': 'gzip' }, (s) => s.end(framed(Buffer.from('plain'), true)), '3', /cannot decompress gzip message/],
    ['bytes that are not protobuf', {}, (s) => s.end(framed(Buffer.from([0xff, 0xff, 0xff]))), '3', /./],
  ];

  it.each(refused)('%s: the status of the error table, Trailers-Only', async (_name, headers, write, grpcStatus, msg) => {
    const a = await call(headers, write);
    expect(a.status).toBe(200);
    expect(a.grpcStatus).toBe(grpcStatus);
    expect(a.grpcMessage).toMatch(msg);
    expect(a.data.length).toBe(0);
  });

  it('not gRPC: 405 for another method, 415 for another content type', async () => {
    const get = await call({ ':method': 'GET' }, (s) => s.end());
    expect([get.status, get.grpcStatus]).toEqual([405, undefined]);
    const json = await call({ 'content-type': 'application/json' }, (s) => s.end('{}'));
    expect([json.status, json.grpcStatus]).toEqual([415, undefined]);
  });

  it('a call the client cancels is counted as cancelled', async () => {
    const before = await sc.metric('scorecar_receiver_requests_total', { transport: 'grpc', outcome: 'cancelled' });
    const stream = session.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => {});
    stream.write(framed(body()).subarray(0, 10));
    // Once a later call on the same connection is answered, the server has seen this one start.
    expect((await call({}, (s) => s.end(framed(body())))).grpcStatus).toBe('0');
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(async () => (await sc.metric('scorecar_receiver_requests_total', { transport: 'grpc', outcome: 'cancelled' })) === before + 1, 10_000, 'the cancelled call to be counted');
    expect(await sc.metric('scorecar_memory_budget_used_bytes')).toBe(0);
  });
});
