// What an app traced with MLflow's SDK calls when its tracking URI is scorecar's admin port, and
// what MLflow's client reads verdicts with:
//  - GET /version: MLflow's SDK logs spans over OTLP only to a server of at least 3.4;
//  - POST /v1/traces (OTLP, protobuf or JSON, with x-mlflow-experiment-id): handed to scorecar's
//    own OTLP/HTTP receiver in-process (no loopback hop, so a receiver behind TLS or mTLS works
//    the same), so the same limits, memory budget, refusals and forwarding apply;
//    the header's numeric MLflow id becomes the scorecar experiment it aliases (store.ts);
//  - POST /api/3.0/mlflow/traces (StartTraceV3): answered with the trace info it sent, tagged
//    mlflow.trace.spansLocation = TRACKING_STORE, so the SDK uploads no span artifact;
//  - GET /api/3.0/mlflow/traces/tr-<id> and /traces/get: a trace's info with its assessments as
//    MLflow Feedback (mlflow.get_trace(id).info.assessments); spans are not kept here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Assessment } from '../assessments/index.ts';
import { ScorecarError } from '../util/index.ts';
import { feedbackJson } from './exporter.ts';
import type { MlflowExtraRoute } from './rest.ts';
import { MLFLOW_COMPAT_VERSION } from './serialized.ts';
import type { MlflowStore } from './store.ts';

export interface MlflowTracingOptions {
  store: MlflowStore;
  /** A trace's assessments (the assessment store). */
  assessmentsOf: (traceId: string) => Promise<Assessment[]>;
  /** scorecar's OTLP/HTTP receiver (its in-process entry, resolving once answered); undefined when it is off. */
  otlpHttp: () => ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
}

const TRACE_ID = /^tr-([0-9a-f]{32})$/;

function hexOf(id: string | null | undefined): string {
  const m = TRACE_ID.exec(id ?? '');
  if (!m) throw new ScorecarError('INVALID_ARGUMENT', `trace_id must be tr-<32 hex digits>, got ${JSON.stringify(id)}`);
  return m[1]!;
}

/** An assessment as MLflow's Assessment message (JSON). */
export function assessmentJson(a: Assessment): Record<string, unknown> {
  const body = feedbackJson(a).assessment as Record<string, unknown>;
  return { assessment_id: `a-${a.assessmentId}`, ...body };
}

export function mlflowTracingRoutes(o: MlflowTracingOptions): MlflowExtraRoute[] {
  const traceInfo = async (hex: string): Promise<Record<string, unknown>> => {
    const list = await o.assessmentsOf(hex);
    if (list.length === 0) {
      throw new ScorecarError('NOT_FOUND', `Trace with ID tr-${hex} not found (scorecar keeps traces that have assessments)`, {
        details: { resource: 'trace' },
      });
    }
    const exp = o.store.byName(list[0]!.experimentId)?.id ?? list[0]!.experimentId;
    const first = list.map((a) => a.createdAt).sort()[0]!;
    return {
      trace_id: `tr-${hex}`,
      trace_location: { type: 'MLFLOW_EXPERIMENT', mlflow_experiment: { experiment_id: exp } },
      request_time: first,
      state: 'OK',
      trace_metadata: {},
      tags: { 'mlflow.trace.spansLocation': 'TRACKING_STORE' },
      assessments: list.map(assessmentJson),
    };
  };

  const forwardOtlp = (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const serve = o.otlpHttp();
    if (!serve) throw new ScorecarError('NOT_FOUND', 'the OTLP/HTTP receiver is off (receivers.otlp.http.endpoint)');
    // MLflow's SDK names the experiment by its numeric MLflow id: the receiver reads the name.
    const exp = req.headers['x-mlflow-experiment-id'];
    const id = Array.isArray(exp) ? exp[0] : exp;
    if (id !== undefined && id !== '') req.headers['x-mlflow-experiment-id'] = o.store.byId(id)?.name ?? id;
    return serve(req, res);
  };

  return [
    {
      method: 'GET',
      path: '/version',
      label: '/version',
      raw: async (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(MLFLOW_COMPAT_VERSION);
      },
    },
    { method: 'POST', path: '/v1/traces', label: '/v1/traces', raw: (req, res) => forwardOtlp(req, res) },
    {
      method: 'POST',
      path: /^\/api\/[23]\.0\/mlflow\/traces$/,
      label: '/api/3.0/mlflow/traces',
      handler: (req) => {
        const trace = (req.body.trace ?? {}) as { trace_info?: Record<string, unknown> };
        const info = { ...(trace.trace_info ?? {}) };
        info.tags = { ...((info.tags as Record<string, string> | undefined) ?? {}), 'mlflow.trace.spansLocation': 'TRACKING_STORE' };
        return { trace: { trace_info: info } };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/[23]\.0\/mlflow\/traces\/get$/,
      label: '/api/3.0/mlflow/traces/get',
      handler: async (req) => ({ trace: { trace_info: await traceInfo(hexOf(req.query.get('trace_id'))), spans: [] } }),
    },
    {
      method: 'GET',
      path: /^\/api\/[23]\.0\/mlflow\/traces\/(tr-[0-9a-f]{32})$/,
      label: '/api/3.0/mlflow/traces/{trace_id}',
      handler: async (req) => ({ trace: { trace_info: await traceInfo(hexOf(req.match?.[1])) } }),
    },
  ];
}
