// OTLP/gRPC receiver: the Export method of the trace, logs and metrics services, with identity
// (de)serialisers so request bytes reach the scanner and the forwarder untouched. Size limits
// are grpc-js's max_receive_message_length (RESOURCE_EXHAUSTED); other refusals answer the code
// of the error table (util/errors.ts), overload and shutdown UNAVAILABLE with a google.rpc.RetryInfo
// in grpc-status-details-bin, and a bug of ours UNAVAILABLE too, so senders retry.
import * as grpc from '@grpc/grpc-js';
import type { Component } from '../component/index.ts';
import { GRPC, type Logger, type MetricsRegistry, receiverStatus } from '../util/index.ts';
import { encodeRpcStatus, otlpType, type Signal, TYPE } from '../wire/index.ts';
import type { MemoryBudget } from './budget.ts';
import type { OtlpIngest } from './ingest.ts';

export interface GrpcReceiverOptions {
  endpoint: string;
  maxRecvMsgSizeBytes: number;
  retryAfterSeconds: number;
}

const identity = (b: Buffer): Buffer => b;

const SERVICES: Array<{ signal: Signal; path: string; response: string; rejectedField: string }> = [
  {
    signal: 'traces',
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    response: TYPE.traceResponse,
    rejectedField: 'rejectedSpans',
  },
  {
    signal: 'logs',
    path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    response: TYPE.logsResponse,
    rejectedField: 'rejectedLogRecords',
  },
  {
    signal: 'metrics',
    path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    response: TYPE.metricsResponse,
    rejectedField: 'rejectedDataPoints',
  },
];

function serviceDefinition(path: string): grpc.ServiceDefinition {
  return {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'export',
    },
  } as grpc.ServiceDefinition;
}

export class OtlpGrpcReceiver implements Component {
  private readonly opts: GrpcReceiverOptions;
  private readonly server: grpc.Server;
  private readonly ingest: OtlpIngest;
  private readonly budget: MemoryBudget;
  private readonly log: Logger;
  private draining = false;
  private readonly requests;
  private bound: { port: number; host: string } | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    opts: GrpcReceiverOptions,
    ingest: OtlpIngest,
    budget: MemoryBudget,
    metrics: MetricsRegistry,
    log: Logger,
  ) {
    this.opts = opts;
    this.ingest = ingest;
    this.budget = budget;
    this.log = log;
    this.requests = metrics.counter('scorecar_receiver_requests_total', 'OTLP requests by outcome', [
      'signal',
      'transport',
      'outcome',
    ]);
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': opts.maxRecvMsgSizeBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
    });
    for (const svc of SERVICES) {
      this.server.addService(serviceDefinition(svc.path), {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          this.export(svc, call, cb),
      });
    }
  }

  /** Where it listens (after start). */
  address(): { port: number; host: string } | undefined {
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.bound || this.closing) return;
    await this.listen();
  }

  /** Stops accepting (new calls get UNAVAILABLE at once), then waits for calls in progress. */
  shutdown(_deadlineMs?: number): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  async listen(): Promise<{ port: number; host: string }> {
    const i = this.opts.endpoint.lastIndexOf(':');
    const host = this.opts.endpoint.slice(0, i) || '0.0.0.0';
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(
        this.opts.endpoint.startsWith(':') ? `0.0.0.0${this.opts.endpoint}` : this.opts.endpoint,
        grpc.ServerCredentials.createInsecure(),
        (err, p) => (err ? reject(err) : resolve(p)),
      );
    });
    this.bound = { port, host };
    return this.bound;
  }

  beginDrain(): void {
    this.draining = true;
  }

  /** Waits for calls in progress, then stops. */
  close(): Promise<void> {
    this.draining = true;
    if (!this.bound) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 10_000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private fail(
    cb: grpc.sendUnaryData<Buffer>,
    signal: Signal,
    code: number,
    message: string,
    retryAfterSeconds?: number,
  ): void {
    this.requests.inc({ signal, transport: 'grpc', outcome: grpc.status[code] ?? String(code) });
    const metadata = new grpc.Metadata();
    if (retryAfterSeconds !== undefined) {
      metadata.set('grpc-status-details-bin', encodeRpcStatus(code, message, retryAfterSeconds * 1000));
    }
    cb({ code, details: message, metadata });
  }

  private export(
    svc: (typeof SERVICES)[number],
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
    cb: grpc.sendUnaryData<Buffer>,
  ): void {
    const { signal } = svc;
    if (this.draining) {
      this.fail(cb, signal, GRPC.UNAVAILABLE, 'scorecar is shutting down', this.opts.retryAfterSeconds);
      return;
    }
    const body = call.request;
    if (!this.budget.tryReserve(body.length)) {
      this.fail(cb, signal, GRPC.UNAVAILABLE, 'memory budget is full; retry later', this.opts.retryAfterSeconds);
      return;
    }
    try {
      const header = call.metadata.get('x-mlflow-experiment-id')[0];
      const outcome = this.ingest.handle(signal, body, {
        transport: 'grpc',
        experimentHeader: typeof header === 'string' && header !== '' ? header : undefined,
      });
      let res: Buffer = Buffer.alloc(0);
      if (outcome.rejected > 0) {
        const t = otlpType(svc.response);
        res = Buffer.from(
          t
            .encode(
              t.create({
                partialSuccess: { [svc.rejectedField]: outcome.rejected, errorMessage: outcome.errorMessage },
              }),
            )
            .finish(),
        );
      }
      this.requests.inc({ signal, transport: 'grpc', outcome: outcome.rejected > 0 ? 'partial' : 'ok' });
      cb(null, res);
    } catch (e) {
      const st = receiverStatus(e);
      // A bug of ours: logged with its stack, answered retryable so the sender keeps its data.
      if (st.code === 'UNEXPECTED') this.log.error('OTLP/gRPC request failed unexpectedly', { err: e });
      this.fail(cb, signal, st.grpc, st.message, st.retryHint ? this.opts.retryAfterSeconds : undefined);
    } finally {
      this.budget.release(body.length);
    }
  }
}
