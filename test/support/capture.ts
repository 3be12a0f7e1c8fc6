// A downstream OTLP endpoint for tests: records every request it receives (HTTP/protobuf or
// gRPC), and can be told to fail or be stopped and restarted on the same port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { type Signal, scanTraceRequest, SPAN_STRIDE } from '../../src/wire/index.ts';

export interface Captured {
  signal: Signal;
  body: Buffer;
  headers: Record<string, string>;
}

export interface CaptureServer {
  readonly url: string;
  readonly port: number;
  readonly requests: Captured[];
  /** Respond with this HTTP status (and optional Retry-After) instead of 200. */
  failWith(status: number | undefined, retryAfterSeconds?: number): void;
  /** Delay every response by this long (a slow downstream). HTTP only. */
  setDelay(ms: number): void;
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
  /** Span ids (hex) received, in order, with duplicates. */
  spanIds(): string[];
}

export function spanIdsOf(bodies: Buffer[]): string[] {
  const ids: string[] = [];
  for (const b of bodies) {
    for (const rs of scanTraceRequest(b).resources) {
      for (const ss of rs.scopes) {
        for (let i = 0; i < ss.spans.length; i += SPAN_STRIDE) {
          const off = ss.spans[i + 3]!;
          const o = off < 0 ? -off - 1 : off;
          ids.push(b.subarray(o, o + 8).toString('hex'));
        }
      }
    }
  }
  return ids;
}

export async function startHttpCapture(port = 0): Promise<CaptureServer> {
  const requests: Captured[] = [];
  let fail: { status: number; retryAfter: number | undefined } | undefined;
  let delay = 0;
  let server: http.Server;
  const make = (): http.Server =>
    http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (fail) {
          res.writeHead(
            fail.status,
            fail.retryAfter === undefined ? {} : { 'retry-after': String(fail.retryAfter) },
          );
          res.end();
          return;
        }
        const signal = (req.url ?? '').replace(/^.*\/v1\//, '') as Signal;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
        requests.push({ signal, body: Buffer.concat(chunks), headers });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      });
    });
  let actualPort = port;
  const listen = async (): Promise<void> => {
    server = make();
    await new Promise<void>((r) => server.listen(actualPort, '127.0.0.1', () => r()));
    actualPort = (server.address() as AddressInfo).port;
  };
  const stop = (): Promise<void> =>
    new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${actualPort}`;
    },
    get port() {
      return actualPort;
    },
    requests,
    failWith(status, retryAfterSeconds) {
      fail = status === undefined ? undefined : { status, retryAfter: retryAfterSeconds };
    },
    setDelay(ms) {
      delay = ms;
    },
    stop,
    restart: listen,
    close: stop,
    spanIds: () => spanIdsOf(requests.filter((r) => r.signal === 'traces').map((r) => r.body)),
  };
}

const identity = (b: Buffer): Buffer => b;

export async function startGrpcCapture(): Promise<CaptureServer> {
  const requests: Captured[] = [];
  let fail: { status: number; retryAfter: number | undefined } | undefined;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const svc = (name: string, signal: Signal): void => {
    const def = {
      Export: {
        path: `/opentelemetry.proto.collector.${name}/Export`,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    } as grpc.ServiceDefinition;
    server.addService(def, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        if (fail) return cb({ code: grpc.status.UNAVAILABLE, details: 'failing on purpose' });
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
        requests.push({ signal, body: call.request, headers });
        cb(null, Buffer.alloc(0));
      },
    });
  };
  svc('trace.v1.TraceService', 'traces');
  svc('logs.v1.LogsService', 'logs');
  svc('metrics.v1.MetricsService', 'metrics');
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const close = (): Promise<void> => new Promise((r) => server.tryShutdown(() => r()));
  return {
    url: `grpc://127.0.0.1:${port}`,
    port,
    requests,
    failWith(status, retryAfterSeconds) {
      fail = status === undefined ? undefined : { status, retryAfter: retryAfterSeconds };
    },
    setDelay() {
      throw new Error('setDelay is not supported for the gRPC capture server');
    },
    stop: close,
    restart: async () => {
      throw new Error('restart is not supported for the gRPC capture server');
    },
    close,
    spanIds: () => spanIdsOf(requests.filter((r) => r.signal === 'traces').map((r) => r.body)),
  };
}
