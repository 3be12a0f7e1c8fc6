// The UI's only way to its data: the public REST API under /api/v1 (and /metrics), with the
// admin token when one is set. The token lives in sessionStorage: it goes away with the tab,
// never in a cookie (so no other page can make the browser send it).
const TOKEN_KEY = 'scorecar.token';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(t: string): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthenticated: () => void = () => {};
/** Called when a call answers 401: the page shows the login form. */
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

function headers(json: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const t = token();
  if (t) out.authorization = `Bearer ${t}`;
  // Every mutating call sends JSON (the server's CSRF rule accepts it); a call without a body
  // sends the header the rule names instead.
  if (json) out['content-type'] = 'application/json';
  else out['x-scorecar-request'] = 'ui';
  return out;
}

export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const method = init.method ?? 'GET';
  const hasBody = init.body !== undefined;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: method === 'GET' && !hasBody ? headers(false) : headers(hasBody),
    body: hasBody ? JSON.stringify(init.body) : null,
    signal: init.signal ?? null,
    cache: 'no-store',
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (
      json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined
    )?.error;
    if (res.status === 401) onUnauthenticated();
    throw new ApiError(
      res.status,
      e?.code ?? `HTTP_${res.status}`,
      e?.message ?? (text.slice(0, 200) || res.statusText),
      e?.details ?? {},
    );
  }
  return json as T;
}

/** The Prometheus text of /metrics (behind the token too, unless admin.metricsAuth is none). */
export async function metricsText(): Promise<string> {
  const res = await fetch('/metrics', { headers: headers(false), cache: 'no-store' });
  if (res.status === 401) {
    onUnauthenticated();
    throw new ApiError(401, 'UNAUTHENTICATED', 'the admin token is needed');
  }
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, res.statusText);
  return res.text();
}

export const enc = encodeURIComponent;

/** Query string from the defined entries. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

// The REST resources the pages read (the subset of the OpenAPI document they use).
export interface Health {
  state: 'ok' | 'error' | 'paused';
  code?: string;
  message?: string;
  since: string;
}
export interface Scorer {
  experimentId: string;
  name: string;
  version: number;
  definition: { type: string; [k: string]: unknown };
  sampleRate: number;
  filterString: string | null;
  status: 'registered' | 'active' | 'stopped';
  createdAt: string;
  updatedAt: string;
  health?: Health;
}
export interface Assessment {
  assessmentId: string;
  name: string;
  traceId: string;
  spanId: string;
  experimentId: string;
  scorer: { name: string; version: number };
  source: { type: 'LLM_JUDGE' | 'CODE'; id: string };
  value: string | number | boolean | null;
  rationale?: string;
  error?: { code: string; message: string };
  metadata: Record<string, string>;
  sampleRate: number;
  createdAt: string;
}
export interface QualityPoint {
  time: string;
  count: number;
  errors: number;
  valued: number;
  estimate: number | null;
  lower: number | null;
  upper: number | null;
  effectiveSize: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  latencyMs: number | null;
}
export interface QualitySeries {
  scorer: { name: string; version: number };
  name: string;
  kind: 'pass_rate' | 'mean' | 'label';
  points: QualityPoint[];
}
export interface Quality {
  experimentId: string;
  startTime: string;
  endTime: string;
  stepSeconds: number;
  series: QualitySeries[];
}
export interface CheckError {
  path: string;
  message: string;
  position?: number;
  line?: number;
}
export interface TraceInfo {
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
  assessments: Assessment[];
}
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: string;
  startTimeUnixMicros: number;
  endTimeUnixMicros: number;
  status: { code: string; message: string };
  attributes: Record<string, unknown>;
  events: Array<{ name: string; timeUnixMicros: number; attributes: Record<string, unknown> }>;
}
export interface TraceDetail {
  traceId: string;
  assessments: Assessment[];
  info?: Omit<TraceInfo, 'assessments'>;
  request?: unknown;
  response?: unknown;
  spans?: Span[];
}
export interface Backfill {
  jobId: string;
  experimentId: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  scorers: Array<{ name: string; version?: number; sampleRate?: number }>;
  startTime: string;
  endTime: string;
  createdAt?: string;
  tracesScanned: number;
  tracesTotal: number;
  selected: number;
  skipped: number;
  scored: number;
  errors: number;
  etaSeconds?: number | null;
  error?: string | null;
}
