// The HTTP client of the admin REST API (resource level: plain JSON objects in and out), with
// the process-wide default configuration behind `configure()` and the SCORECAR_* environment.
import type { ScorerDefinition } from '../definitions/index.ts';
import type { DeleteResult, Experiment, Scorer as ScorerResource } from '../definitions/index.ts';
import type fsModule from 'node:fs';
import { ERRORS, type ErrorCode, isErrorCode, ScorecarError } from '../util/index.ts';
import { type ClientTls, tlsFetch } from './tls-fetch.ts';

/** Where the admin API is and how to talk to it. Every field is optional. */
export interface ClientConfig {
  /** Base URL of the admin server. Default: env SCORECAR_URL, else http://127.0.0.1:4320. */
  url?: string;
  /** Admin bearer token. Default: env SCORECAR_ADMIN_TOKEN (none when unset). */
  token?: string;
  /** Experiment used when a call names none. Default: env SCORECAR_EXPERIMENT, else 'default'. */
  experimentId?: string;
  /** Per-request timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof globalThis.fetch;
  /**
   * TLS of an https admin port (admin.tls) signed by a private CA, or requiring a client
   * certificate: PEM contents. Each part defaults to the file named by env SCORECAR_ADMIN_CA,
   * SCORECAR_ADMIN_CLIENT_CERT, SCORECAR_ADMIN_CLIENT_KEY. Without any, the global fetch is used
   * (the system store, plus NODE_EXTRA_CA_CERTS if it was set when the process started).
   */
  tls?: ClientTls;
}

/**
 * The TLS parts a client uses: given ones, else the files the environment names
 * (SCORECAR_ADMIN_CA, SCORECAR_ADMIN_CLIENT_CERT, SCORECAR_ADMIN_CLIENT_KEY); undefined when none.
 */
export function clientTls(given: ClientTls | undefined, env: Record<string, string | undefined>): ClientTls | undefined {
  const part = (v: string | Buffer | undefined, name: string): string | Buffer | undefined => {
    if (v !== undefined) return v;
    const file = env[name];
    if (!file) return undefined;
    try {
      // Loaded only when the environment names a file (the SDK imports no Node-only module).
      return (process.getBuiltinModule('node:fs') as typeof fsModule).readFileSync(file);
    } catch (e) {
      throw new ScorecarApiError('INVALID_ARGUMENT', `${name}: cannot read ${file}: ${(e as Error).message}`, 0);
    }
  };
  const tls: ClientTls = {
    ca: part(given?.ca, 'SCORECAR_ADMIN_CA'),
    cert: part(given?.cert, 'SCORECAR_ADMIN_CLIENT_CERT'),
    key: part(given?.key, 'SCORECAR_ADMIN_CLIENT_KEY'),
  };
  return tls.ca === undefined && tls.cert === undefined && tls.key === undefined ? undefined : tls;
}

export const DEFAULT_URL = 'http://127.0.0.1:4320';
export const DEFAULT_EXPERIMENT = 'default';

/**
 * A refusal or failure reported by the admin API (or the network). `code` is the server's
 * stable error code (NOT_FOUND, LIMIT_EXCEEDED, INVALID_FILTER, …); `status` is the HTTP status
 * (0 when the server could not be reached).
 */
export class ScorecarApiError extends ScorecarError {
  readonly status: number;
  constructor(
    code: ErrorCode,
    message: string,
    status: number,
    opts: { details?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, opts);
    this.name = 'ScorecarApiError';
    this.status = status;
  }
}

let defaults: ClientConfig = {};

/**
 * Sets the process-wide defaults used by the SDK functions and scorer objects that are not
 * given a client explicitly (like `mlflow.set_tracking_uri` + `mlflow.set_experiment`).
 * Fields left out keep their previous value; pass `{}` after `resetConfiguration()` to go back
 * to the environment.
 */
export function configure(config: ClientConfig): void {
  defaults = {
    ...defaults,
    ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)),
  };
}

/** Forgets everything `configure()` set (the environment applies again). */
export function resetConfiguration(): void {
  defaults = {};
}

/** A client built from `configure()` values, then the environment, then the defaults. */
export function defaultClient(): ScorecarClient {
  return new ScorecarClient(defaults);
}

/**
 * The code of a refusal whose body names none (a proxy's or load balancer's page, an empty body).
 * The server itself always sends its code; this only picks the row of the table whose meaning and
 * retryability fit the status, so `retryable` still follows the OTLP status rules (429, 502, 503
 * and 504 are worth retrying, the rest is not). A 502 is a gateway in front of scorecar that could
 * not reach it: the same as the SDK not reaching it.
 */
const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'FAILED_PRECONDITION',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'OVERLOADED',
  502: 'DOWNSTREAM_UNAVAILABLE',
  503: 'OVERLOADED',
  504: 'TIMEOUT',
};

function statusCode(status: number): ErrorCode {
  return STATUS_CODES[status] ?? (status >= 400 && status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL');
}

const enc = encodeURIComponent;

/** Resource-level access to /api/v1: every method returns the server's JSON as plain objects. */
export class ScorecarClient {
  readonly url: string;
  readonly experimentId: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(config: ClientConfig = {}) {
    const env = typeof process !== 'undefined' ? process.env : {};
    this.url = (config.url ?? env.SCORECAR_URL ?? DEFAULT_URL).replace(/\/+$/, '');
    this.token = config.token ?? (env.SCORECAR_ADMIN_TOKEN || undefined);
    this.experimentId = config.experimentId ?? (env.SCORECAR_EXPERIMENT || DEFAULT_EXPERIMENT);
    this.timeoutMs = config.timeoutMs ?? 30_000;
    const tls = config.fetch ? undefined : clientTls(config.tls, env);
    this.fetchImpl = config.fetch ?? (tls ? tlsFetch(tls) : globalThis.fetch);
    if (!/^https?:\/\/[^/\s]+/.test(this.url)) {
      throw new ScorecarApiError(
        'INVALID_ARGUMENT',
        `scorecar url must be http(s)://host:port, got '${this.url}'`,
        0,
      );
    }
  }

  /** Sends one request to /api/v1{path}; throws ScorecarApiError for anything but 2xx. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The admin server refuses a mutating call without a JSON body or this header (its CSRF guard:
    // stop, stop-all and delete have no body).
    if (method !== 'GET') headers['x-scorecar-request'] = '1';
    const target = `${this.url}/api/v1${path}`;
    let res: Response;
    try {
      res = await this.fetchImpl(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === 'TimeoutError') {
        throw new ScorecarApiError(
          'TIMEOUT',
          `no answer from scorecar at ${this.url} within ${this.timeoutMs} ms`,
          0,
          {
            cause: e,
            retryable: true,
          },
        );
      }
      const why = err.cause?.code ?? err.cause?.message ?? err.message;
      throw new ScorecarApiError(
        'DOWNSTREAM_UNAVAILABLE',
        `cannot reach scorecar at ${this.url}: ${why}`,
        0,
        {
          cause: e,
          retryable: true,
        },
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const envelope = (
        parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined
      )?.error;
      // The server's own code when it is one of the table's; a code this SDK does not know (a
      // newer server) or no code at all falls back to what the status says.
      const code = isErrorCode(envelope?.code) ? envelope.code : statusCode(res.status);
      const message =
        typeof envelope?.message === 'string'
          ? envelope.message
          : `HTTP ${res.status} from ${method} ${target}`;
      const details =
        envelope?.details && typeof envelope.details === 'object'
          ? (envelope.details as Record<string, unknown>)
          : undefined;
      throw new ScorecarApiError(code, message, res.status, { details, retryable: ERRORS[code].retryable });
    }
    return parsed as T;
  }

  private exp(experimentId: string | undefined): string {
    return enc(experimentId ?? this.experimentId);
  }

  listExperiments(): Promise<Experiment[]> {
    return this.request<{ experiments: Experiment[] }>('GET', '/experiments').then((r) => r.experiments);
  }

  /** Latest version of each scorer name of the experiment. */
  listScorers(opts: { experimentId?: string } = {}): Promise<ScorerResource[]> {
    return this.request<{ scorers: ScorerResource[] }>(
      'GET',
      `/experiments/${this.exp(opts.experimentId)}/scorers`,
    ).then((r) => r.scorers);
  }

  getScorer(opts: { name: string; experimentId?: string; version?: number }): Promise<ScorerResource> {
    const q = opts.version === undefined ? '' : `?version=${opts.version}`;
    return this.request('GET', `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}${q}`);
  }

  listVersions(opts: { name: string; experimentId?: string }): Promise<ScorerResource[]> {
    return this.request<{ versions: ScorerResource[] }>(
      'GET',
      `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}/versions`,
    ).then((r) => r.versions);
  }

  registerScorer(opts: {
    name: string;
    definition: ScorerDefinition | Record<string, unknown>;
    experimentId?: string;
  }): Promise<ScorerResource> {
    return this.request('POST', `/experiments/${this.exp(opts.experimentId)}/scorers`, {
      name: opts.name,
      definition: opts.definition,
    });
  }

  startScorer(opts: {
    name: string;
    sampleRate: number;
    filterString?: string | null;
    experimentId?: string;
  }): Promise<ScorerResource> {
    const body: Record<string, unknown> = { sampleRate: opts.sampleRate };
    if (opts.filterString !== undefined) body.filterString = opts.filterString;
    return this.request(
      'POST',
      `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}/start`,
      body,
    );
  }

  updateScorer(opts: {
    name: string;
    sampleRate?: number;
    filterString?: string | null;
    experimentId?: string;
  }): Promise<ScorerResource> {
    const body: Record<string, unknown> = {};
    if (opts.sampleRate !== undefined) body.sampleRate = opts.sampleRate;
    if (opts.filterString !== undefined) body.filterString = opts.filterString;
    return this.request(
      'PATCH',
      `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}`,
      body,
    );
  }

  stopScorer(opts: { name: string; experimentId?: string }): Promise<ScorerResource> {
    return this.request('POST', `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}/stop`);
  }

  /** version: a number, or 'all' (the default, as MLflow's delete_scorer on Databricks). */
  deleteScorer(opts: {
    name: string;
    experimentId?: string;
    version?: number | 'all';
  }): Promise<DeleteResult> {
    const q = `?version=${opts.version ?? 'all'}`;
    return this.request(
      'DELETE',
      `/experiments/${this.exp(opts.experimentId)}/scorers/${enc(opts.name)}${q}`,
    );
  }

  /** Kill switch: one experiment (default the client's), or every experiment with allExperiments. */
  stopAll(opts: { experimentId?: string; allExperiments?: boolean } = {}): Promise<ScorerResource[]> {
    const path = opts.allExperiments
      ? '/scorers:stop-all'
      : `/experiments/${this.exp(opts.experimentId)}/scorers:stop-all`;
    return this.request<{ stopped: ScorerResource[] }>('POST', path).then((r) => r.stopped);
  }

  // ------------------------------------------------------------------ archive, search, backfills

  /** Archive the experiment's traces and assessments to Delta tables (default tablePath: server side). */
  enableArchival(opts: { experimentId?: string; tablePath?: string } = {}): Promise<ArchivalResource> {
    return this.request('POST', `/experiments/${this.exp(opts.experimentId)}/archival`, opts.tablePath === undefined ? {} : { tablePath: opts.tablePath });
  }

  disableArchival(opts: { experimentId?: string } = {}): Promise<{ experimentId: string; archived: false }> {
    return this.request('DELETE', `/experiments/${this.exp(opts.experimentId)}/archival`);
  }

  getArchival(opts: { experimentId?: string } = {}): Promise<ArchivalResource> {
    return this.request('GET', `/experiments/${this.exp(opts.experimentId)}/archival`);
  }

  listArchivals(): Promise<ArchivalResource[]> {
    return this.request<{ archivals: ArchivalResource[] }>('GET', '/archival').then((r) => r.archivals);
  }

  /** One page of an archived experiment's traces (see searchTraces in the SDK for the options). */
  searchTraces(opts: SearchTracesOptions = {}): Promise<TracePage> {
    const q = new URLSearchParams();
    if (opts.filterString) q.set('filter', opts.filterString);
    if (opts.startTime !== undefined) q.set('startTime', timeParam(opts.startTime));
    if (opts.endTime !== undefined) q.set('endTime', timeParam(opts.endTime));
    if (opts.orderBy) q.set('orderBy', opts.orderBy);
    if (opts.maxResults !== undefined) q.set('maxResults', String(opts.maxResults));
    if (opts.pageToken) q.set('pageToken', opts.pageToken);
    const qs = q.toString();
    return this.request('GET', `/experiments/${this.exp(opts.experimentId)}/traces${qs ? `?${qs}` : ''}`);
  }

  /** A trace's assessments and, when archived, its spans. */
  getTrace(traceId: string): Promise<TraceResource> {
    return this.request('GET', `/traces/${enc(traceId)}`);
  }

  createBackfill(opts: {
    experimentId?: string;
    scorers: Array<string | { name: string; sampleRate?: number }>;
    startTime?: number | string | Date;
    endTime?: number | string | Date;
  }): Promise<BackfillResource> {
    const body: Record<string, unknown> = { scorers: opts.scorers };
    if (opts.startTime !== undefined) body.startTime = timeParam(opts.startTime);
    if (opts.endTime !== undefined) body.endTime = timeParam(opts.endTime);
    return this.request('POST', `/experiments/${this.exp(opts.experimentId)}/backfills`, body);
  }

  getBackfill(jobId: string): Promise<BackfillResource> {
    return this.request('GET', `/backfills/${enc(jobId)}`);
  }

  cancelBackfill(jobId: string): Promise<BackfillResource> {
    return this.request('POST', `/backfills/${enc(jobId)}/cancel`);
  }

  listBackfills(opts: { experimentId?: string } = {}): Promise<BackfillResource[]> {
    return this.request<{ backfills: BackfillResource[] }>('GET', `/experiments/${this.exp(opts.experimentId)}/backfills`).then((r) => r.backfills);
  }
}

/** A time for the API: epoch milliseconds or ISO-8601 (a Date becomes ISO-8601). */
function timeParam(t: number | string | Date): string {
  return t instanceof Date ? t.toISOString() : String(t);
}

/** An archived experiment (GET /experiments/{exp}/archival). */
export interface ArchivalResource {
  experimentId: string;
  tablePath: string;
  tracesTable: string;
  assessmentsTable: string;
  source: 'config' | 'api';
  enabledAt: string;
  traces?: { version: number; files: number; pendingRows: number; committedRows: number };
  assessments?: { version: number; files: number; pendingRows: number; committedRows: number };
}

export interface SearchTracesOptions {
  experimentId?: string;
  /** MLflow filter string, e.g. "trace.status = 'OK' AND tag.env = 'prod'". */
  filterString?: string;
  /** Request time bounds: epoch ms, ISO-8601 or a Date (start inclusive, end exclusive). */
  startTime?: number | string | Date;
  endTime?: number | string | Date;
  /** 'timestamp_ms DESC' (default), 'timestamp_ms ASC', 'execution_time_ms DESC|ASC'. */
  orderBy?: string;
  /** 1 to 1000 (default 100). */
  maxResults?: number;
  pageToken?: string;
}

/** One archived trace in a search result. */
export interface TraceInfoResource {
  traceId: string;
  experimentId: string;
  requestTime: string;
  timestampMs: number;
  executionTimeMs: number;
  state: string;
  requestPreview: string | null;
  responsePreview: string | null;
  tags: Record<string, string>;
  metadata: Record<string, string>;
  assessments: Array<Record<string, unknown>>;
}

export interface TracePage {
  traces: TraceInfoResource[];
  nextPageToken?: string;
}

export interface TraceResource {
  traceId: string;
  assessments: Array<Record<string, unknown>>;
  info?: Omit<TraceInfoResource, 'assessments'>;
  request?: unknown;
  response?: unknown;
  spans?: Array<Record<string, unknown>>;
}

export interface BackfillResource {
  jobId: string;
  experimentId: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  scorers: Array<{ name: string; version: number; sampleRate: number; filterString: string | null }>;
  startTime: string;
  endTime: string;
  createdAt: string;
  updatedAt: string;
  tracesScanned: number;
  tracesTotal: number;
  selected: number;
  skipped: number;
  scored: number;
  errors: number;
  etaSeconds: number | null;
  error: string | null;
}
