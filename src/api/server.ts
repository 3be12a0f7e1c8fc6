// The admin HTTP server (default :4320): the REST API under /api/v1 (scorer registry, kill
// switches, OpenAPI document, routes other components add), /metrics, /healthz, /readyz, and
// the web UI's static files at / and /ui/ (src/ui, handed in by the app).
// Owns: bearer-token auth (constant-time compare; without a token it binds loopback only),
// routing, request checks (size, content type, JSON, schema) and the JSON error envelope.
//
// Browsers are the threat a loopback bind does not stop. The checks, in order, before routing:
//  1. Host (DNS rebinding: a page whose name re-resolves to 127.0.0.1 is same-origin with us and
//     its requests carry its own name as Host): without a token, only loopback names and
//     admin.allowedHosts are served; with a token, only when allowedHosts is set (the token
//     already stops the page). /healthz and /readyz are exempt, so probes that address the pod
//     by IP keep working; they show no registry data.
//  2. Origin / Sec-Fetch-Site on /api: a browser request from another origin is refused unless
//     admin.cors.allowedOrigins lists it (then, and only then, CORS headers are sent).
//  3. The bearer token on /api, and on /metrics unless admin.metricsAuth is none.
//  4. CSRF: a mutating call (POST, PUT, PATCH, DELETE) needs content-type: application/json or
//     an x-scorecar-request header, even without a body. A cross-origin page can send neither
//     without a CORS preflight, which we refuse, so no "simple request" (a form post, a
//     no-cors fetch) can stop or register scorers. The SDK and the CLI send the header.
//
// With admin.tls the port is https (HTTP/1.1): the same checks run over it, mTLS refuses a
// client without a trusted certificate in the handshake (probes then need one too), and a
// reloaded certificate is used by new connections only (util/tls.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from '../registry/index.ts';
import {
  errorMessage,
  type Logger,
  type MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  ScorecarError,
  ServerTls,
  type ServerTlsSettings,
  silentLogger,
} from '../util/index.ts';
import {
  fieldErrors,
  hasBody,
  invalidArgument,
  isJsonContentType,
  readBody,
  sendError,
  sendJson,
} from './http.ts';
import { API_PREFIX, buildOpenApi, type OpenApiDocument } from './openapi.ts';
import {
  type AdminRequest,
  type AdminRoute,
  defineRoute,
  type HttpMethod,
  type ScorerHealthSource,
  scorerRoutes,
} from './routes.ts';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface HealthReport {
  ok: boolean;
  checks: Record<string, unknown>;
}

/**
 * Paths served outside /api/v1 by another component (MLflow's REST API under /api/2.0/mlflow and
 * /api/3.0/mlflow): the server applies the same Host, Origin, token and CSRF checks as on /api,
 * then hands the raw request over; the mount parses it and answers in its own format, errors of
 * the checks included (a client of that API reads only its own error shape).
 */
export interface AdminMount {
  /** Whether this mount serves the path. */
  matches(path: string): boolean;
  /** The metrics label of a request to this path (a route template, never the raw path). */
  routeLabel(path: string): string;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void>;
  /** Answers an error (a refused check, or anything the handler threw). */
  sendError(res: ServerResponse, e: ScorecarError): void;
}

export interface AdminServerOptions {
  /** 'host:port' (config admin.endpoint); port 0 picks a free port. */
  endpoint: string;
  /** Bearer token for /api ('' or undefined = none: the server then binds 127.0.0.1 only). */
  token?: string;
  registry: Registry;
  /** Rendered at GET /metrics. */
  metrics: MetricsRegistry;
  /** GET /healthz: 200 when ok, else 503; default always ok. */
  health?: () => HealthReport;
  /** GET /readyz: 200 when true, else 503; default always ready. */
  ready?: () => boolean;
  logger?: Logger;
  /** More routes under /api/v1 (traces, backfills …); documented in the OpenAPI document too. */
  routes?: readonly AdminRoute[];
  /** Request body limit (default 1 MiB): larger bodies get 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes?: number;
  /** Runtime health of scorers, shown on scorer resources. */
  scorerHealth?: ScorerHealthSource;
  /**
   * Host names (no port; IPv6 in brackets) served besides the loopback ones (config
   * admin.allowedHosts). Without a token the Host header is always checked; with one, only
   * when this list is not empty.
   */
  allowedHosts?: readonly string[];
  /** 'token' (default): with a token, /metrics needs it too; 'none': /metrics stays open. */
  metricsAuth?: 'token' | 'none';
  /** Browser origins ('https://host[:port]') allowed to call /api cross-origin (CORS); default none. */
  corsAllowedOrigins?: readonly string[];
  /** Paths served by other components with their own request and error formats (MLflow's REST API). */
  mounts?: readonly AdminMount[];
  /** The web UI's files (GET / and /ui/…); none = no UI. */
  ui?: StaticSite;
  /** Serve over https (config admin.tls); undefined = plaintext. */
  tls?: ServerTlsSettings | undefined;
}

/** A static file as the UI serves it (src/ui UiAsset). */
export interface StaticAsset {
  body: Buffer;
  gzip: Buffer | undefined;
  contentType: string;
  etag: string;
}

/** Static files by request path (src/ui UiSite). */
export interface StaticSite {
  asset(path: string): StaticAsset | undefined;
}

/**
 * Headers of every UI file. The page holds no data (it fetches /api with the token), so the files
 * need no token; they are never framed (clickjacking the kill switch), run only our own scripts,
 * and are revalidated on every load (ETag), so an upgraded scorecar is never served stale.
 */
const UI_HEADERS: Record<string, string> = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // uPlot sizes its elements through inline style attributes: style-src needs 'unsafe-inline'.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

export interface AdminServer {
  listen(): Promise<{ port: number; host: string }>;
  close(): Promise<void>;
  /** The OpenAPI document served at /api/v1/openapi.json. */
  readonly openapi: OpenApiDocument;
  /** The certificate and its reloads, when served over https. */
  readonly tls: ServerTls | undefined;
}

interface CompiledRoute {
  route: AdminRoute;
  /** Template segments; null marks a parameter. */
  segments: Array<{ literal: string } | { param: string }>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Host names every admin server answers to, whatever the configuration. */
const LOOPBACK_HOST_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Methods that change something: they need the CSRF header or a JSON content type. */
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The header a non-browser client sends on mutating calls (any value; the SDK sends '1'). */
export const CSRF_HEADER = 'x-scorecar-request';

/**
 * Content types a browser may send cross-origin without a CORS preflight (the Fetch standard's
 * CORS-safelisted ones). A mounted API's mutating call must carry another one (MLflow's clients
 * send application/json, or application/x-protobuf for OTLP) or the CSRF header.
 */
const SIMPLE_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/** Paths served whatever the Host (probes address the pod by IP). */
const PROBES = new Set(['/healthz', '/readyz']);

/** The name part of a Host header ('Name:80' → 'name', '[::1]:4320' → '[::1]'); undefined if malformed. */
export function hostNameOf(host: string): string | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s/@]+)(?::\d{0,5})?$/.exec(host.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

/** A configured host name as hostNameOf() returns it (IPv6 bracketed, lower case). */
function normaliseHostName(h: string): string {
  const t = h.trim().toLowerCase();
  return t.includes(':') && !t.startsWith('[') ? `[${t}]` : t;
}

/** A configured origin as browsers send it: scheme://host[:port], lower case, no trailing slash. */
function normaliseOrigin(o: string): string {
  return o.trim().toLowerCase().replace(/\/+$/, '');
}

/** 'host:port', '[::1]:port', ':port' (all interfaces). */
export function parseEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(endpoint);
  if (!m) throw new ScorecarError('CONFIG_INVALID', `admin.endpoint: expected host:port, got '${endpoint}'`);
  const port = Number(m[2]);
  if (port > 65535) throw new ScorecarError('CONFIG_INVALID', `admin.endpoint: port ${port} out of range`);
  let host = m[1]!;
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function compile(route: AdminRoute): CompiledRoute {
  if (!route.path.startsWith('/')) throw new Error(`route path must start with '/': ${route.path}`);
  const segments = route.path
    .slice(1)
    .split('/')
    .map((s) => {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
      return m ? { param: m[1]! } : { literal: s };
    });
  return { route, segments };
}

function match(c: CompiledRoute, segs: readonly string[]): Record<string, string> | null {
  if (c.segments.length !== segs.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const t = c.segments[i]!;
    if ('literal' in t) {
      if (t.literal !== segs[i]) return null;
    } else {
      params[t.param] = segs[i]!;
    }
  }
  return params;
}

/** Sends a UI file: 304 when the browser has it, gzip when it accepts it. */
function serveStatic(req: IncomingMessage, res: ServerResponse, a: StaticAsset): void {
  const headers: Record<string, string | number> = { ...UI_HEADERS, etag: a.etag, vary: 'accept-encoding' };
  const inm = req.headers['if-none-match'];
  if (inm?.split(',').some((t) => t.trim().replace(/^W\//, '') === a.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = a.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? a.gzip! : a.body;
  headers['content-type'] = a.contentType;
  headers['content-length'] = body.length;
  if (gzip) headers['content-encoding'] = 'gzip';
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function createAdminServer(opts: AdminServerOptions): AdminServer {
  const log = opts.logger ?? silentLogger;
  const token = opts.token ?? '';
  const tokenDigest = token ? digest(token) : null;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const health = opts.health ?? (() => ({ ok: true, checks: {} }));
  const ready = opts.ready ?? (() => true);
  const allowedHosts = new Set([...LOOPBACK_HOST_NAMES, ...(opts.allowedHosts ?? []).map(normaliseHostName)]);
  const hostChecked = !token || (opts.allowedHosts ?? []).length > 0;
  // Read and checked now: unusable files fail the start (TLS_INVALID), not the first handshake.
  const tls = opts.tls
    ? new ServerTls({ name: 'admin', path: 'admin.tls', settings: opts.tls, metrics: opts.metrics, log })
    : undefined;
  const metricsSecured = token !== '' && (opts.metricsAuth ?? 'token') === 'token';
  const corsOrigins = new Set((opts.corsAllowedOrigins ?? []).map(normaliseOrigin));
  const requests = opts.metrics.counter(
    'scorecar_admin_requests_total',
    'Admin API requests by route and status',
    ['method', 'route', 'status'],
  );
  const duration = opts.metrics.histogram(
    'scorecar_admin_request_duration_seconds',
    'Admin API request latency',
    [0.001, 0.005, 0.025, 0.1, 0.5, 2.5],
    ['route'],
  );

  let openapi: OpenApiDocument;
  const routes: AdminRoute[] = [
    ...scorerRoutes(opts.registry, opts.scorerHealth),
    ...(opts.routes ?? []),
    defineRoute({
      method: 'GET',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This OpenAPI 3.1 document',
      tags: ['meta'],
      responses: { '200': { description: 'OpenAPI document', schema: { type: 'object' } } },
      handler: () => ({ status: 200, body: openapi }),
    }),
  ];
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) throw new Error(`duplicate admin route ${key}`);
    seen.add(key);
  }
  openapi = buildOpenApi(routes, { version: packageVersion(), metricsSecured, hostChecked });
  const compiled = routes.map(compile);

  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenDigest) return true;
    const h = req.headers.authorization;
    if (typeof h !== 'string') return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return false;
    // Equal-length digests: the comparison time reveals neither the token nor its length.
    return timingSafeEqual(digest(m[1]!), tokenDigest);
  };

  /** 1. The DNS-rebinding guard. */
  const checkHost = (req: IncomingMessage): void => {
    if (!hostChecked) return;
    const raw = req.headers.host;
    const name = raw === undefined ? undefined : hostNameOf(raw);
    if (name !== undefined && allowedHosts.has(name)) return;
    throw new ScorecarError(
      'HOST_NOT_ALLOWED',
      raw === undefined
        ? 'a Host header is required'
        : `Host '${raw.slice(0, 256)}' is not served: use a loopback address (localhost, 127.0.0.1, [::1]) or add the name to admin.allowedHosts`,
    );
  };

  /**
   * 2. Cross-origin browser requests. Returns the origin to send CORS headers for (one of
   * admin.cors.allowedOrigins), undefined for a request that is not cross-origin.
   */
  const checkOrigin = (req: IncomingMessage): string | undefined => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const o = normaliseOrigin(origin);
      if (corsOrigins.has(o)) return o;
      let sameOrigin = false;
      try {
        sameOrigin = o !== 'null' && new URL(o).host === (req.headers.host ?? '').toLowerCase();
      } catch {
        sameOrigin = false;
      }
      if (sameOrigin) return undefined;
      throw new ScorecarError(
        'CROSS_SITE_REFUSED',
        `cross-origin request from ${origin.slice(0, 256)} refused (allow it with admin.cors.allowedOrigins)`,
      );
    }
    // A browser that sends no Origin (a GET navigation) still says where the request comes from.
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') {
      throw new ScorecarError('CROSS_SITE_REFUSED', `${site} browser request refused (Sec-Fetch-Site)`);
    }
    return undefined;
  };

  const unauthenticated = (req: IncomingMessage): ScorecarError =>
    new ScorecarError(
      'UNAUTHENTICATED',
      req.headers.authorization ? 'invalid bearer token' : 'missing Authorization: Bearer <token> header',
    );

  const handleApi = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    signal: AbortSignal,
    label: (route: string) => void,
  ): Promise<void> => {
    if (!authorized(req)) throw unauthenticated(req);
    const rawSegs = url.pathname.slice(API_PREFIX.length + 1).split('/');
    let segs: string[];
    try {
      segs = rawSegs.map((s) => decodeURIComponent(s));
    } catch {
      throw new ScorecarError('INVALID_ARGUMENT', `malformed percent-encoding in path ${url.pathname}`);
    }
    const method = (req.method === 'HEAD' ? 'GET' : req.method) as HttpMethod;
    const candidates = compiled.map((c) => ({ c, params: match(c, segs) })).filter((x) => x.params !== null);
    if (candidates.length === 0)
      throw new ScorecarError('NOT_FOUND', `no such endpoint: ${req.method} ${url.pathname}`);
    const hit = candidates.find((x) => x.c.route.method === method);
    if (!hit) {
      const allowed = [...new Set(candidates.map((x) => x.c.route.method))];
      label(candidates[0]!.c.route.path);
      throw new ScorecarError(
        'METHOD_NOT_ALLOWED',
        `${req.method} is not allowed on ${url.pathname}; use ${allowed.join(', ')}`,
        {
          details: { allowed },
        },
      );
    }
    const route = hit.c.route;
    label(route.path);
    // 4. CSRF: see the header of this file.
    if (MUTATING.has(method) && !isJsonContentType(req.headers['content-type']) && req.headers[CSRF_HEADER] === undefined) {
      throw new ScorecarError(
        'CROSS_SITE_REFUSED',
        `${method} needs content-type: application/json or an ${CSRF_HEADER} header (CSRF protection), even without a body`,
      );
    }

    // Query parameters: only declared ones, each at most once.
    const rawQuery: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (k in rawQuery)
        throw invalidArgument('invalid query', [{ path: `query.${k}`, message: 'given more than once' }]);
      rawQuery[k] = v;
    }
    let query: Record<string, string> = {};
    if (route.query) {
      const q = route.query.safeParse(rawQuery);
      if (!q.success) throw invalidArgument('invalid query', fieldErrors(q.error.issues, 'query'));
      query = q.data as Record<string, string>;
    } else if (Object.keys(rawQuery).length > 0) {
      throw invalidArgument(
        'invalid query',
        Object.keys(rawQuery).map((k) => ({ path: `query.${k}`, message: 'unknown query parameter' })),
      );
    }

    let body: unknown;
    const announced = hasBody(req);
    if (route.body) {
      if (announced && !isJsonContentType(req.headers['content-type'])) {
        throw new ScorecarError(
          'UNSUPPORTED_MEDIA_TYPE',
          `request body must be application/json, got ${req.headers['content-type'] ?? 'no content type'}`,
        );
      }
      const raw = announced ? await readBody(req, maxBody) : Buffer.alloc(0);
      if (raw.length === 0) {
        if (!route.bodyOptional)
          throw new ScorecarError('INVALID_ARGUMENT', 'request body required (application/json)');
      } else {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch (e) {
          throw new ScorecarError('INVALID_JSON', `request body is not valid JSON: ${errorMessage(e)}`);
        }
        const r = route.body.safeParse(parsed);
        if (!r.success) throw invalidArgument('invalid request body', fieldErrors(r.error.issues, 'body'));
        body = r.data;
      }
    } else if (announced) {
      const raw = await readBody(req, maxBody);
      if (raw.length > 0)
        throw new ScorecarError('INVALID_ARGUMENT', `${route.method} ${route.path} takes no request body`);
    }

    const request: AdminRequest = {
      method,
      path: url.pathname,
      params: hit.params!,
      query,
      body,
      headers: req.headers,
      signal,
    };
    const out = await route.handler(request);
    if (res.headersSent || res.destroyed) return;
    if (out.body === undefined) {
      res.writeHead(out.status, out.headers ?? {});
      res.end();
    } else {
      sendJson(res, out.status, out.body, out.headers);
    }
  };

  const mounts = opts.mounts ?? [];

  /** The checks of /api (Origin, token, CSRF) for a mounted path, then its handler. */
  const handleMount = async (mount: AdminMount, req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> => {
    if (corsOrigins.size > 0) res.setHeader('vary', 'Origin');
    const corsOrigin = checkOrigin(req);
    if (corsOrigin !== undefined) res.setHeader('access-control-allow-origin', corsOrigin);
    if (!authorized(req)) throw unauthenticated(req);
    if (MUTATING.has(req.method ?? '') && req.headers[CSRF_HEADER] === undefined) {
      const ct = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct === '' || SIMPLE_CONTENT_TYPES.has(ct)) {
        throw new ScorecarError(
          'CROSS_SITE_REFUSED',
          `${req.method} needs a content type such as application/json, or an ${CSRF_HEADER} header (CSRF protection)`,
        );
      }
    }
    await mount.handle(req, res, url, signal);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    let routeLabel = 'unmatched';
    let mount: AdminMount | undefined;
    const ac = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    res.once('finish', () => {
      requests.inc({ method: req.method ?? '', route: routeLabel, status: String(res.statusCode) });
      duration.observe(Number(process.hrtime.bigint() - started) / 1e9, { route: routeLabel });
    });
    try {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const path = url.pathname;
      mount = mounts.find((m) => m.matches(path));
      if (!PROBES.has(path)) checkHost(req);
      if (mount) {
        routeLabel = mount.routeLabel(path);
        await handleMount(mount, req, res, url, ac.signal);
        return;
      }
      if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
        if (corsOrigins.size > 0) res.setHeader('vary', 'Origin');
        const corsOrigin = checkOrigin(req);
        if (corsOrigin !== undefined) {
          res.setHeader('access-control-allow-origin', corsOrigin);
          res.setHeader('access-control-expose-headers', 'location, retry-after, www-authenticate');
          if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
            // A preflight from an allowed origin: no token (browsers never send one on it).
            routeLabel = 'preflight';
            res.writeHead(204, {
              'access-control-allow-methods': 'GET, POST, PATCH, DELETE',
              'access-control-allow-headers': `authorization, content-type, ${CSRF_HEADER}`,
              'access-control-max-age': '600',
            });
            res.end();
            return;
          }
        }
        await handleApi(req, res, url, ac.signal, (r) => {
          routeLabel = `${API_PREFIX}${r}`;
        });
        return;
      }
      const isGet = req.method === 'GET' || req.method === 'HEAD';
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
        routeLabel = path;
        if (!isGet) {
          throw new ScorecarError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use GET`, {
            details: { allowed: ['GET'] },
          });
        }
        if (path === '/metrics') {
          // It names experiments, scorers, models and spend: as private as the API with a token.
          if (metricsSecured && !authorized(req)) throw unauthenticated(req);
          const text = opts.metrics.render();
          res.writeHead(200, {
            'content-type': PROMETHEUS_CONTENT_TYPE,
            'content-length': Buffer.byteLength(text),
          });
          res.end(text);
        } else if (path === '/healthz') {
          const h = health();
          sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unhealthy', checks: h.checks });
        } else {
          const r = ready();
          sendJson(res, r ? 200 : 503, { ready: r });
        }
        return;
      }
      const asset = opts.ui && isGet ? opts.ui.asset(path) : undefined;
      if (asset) {
        routeLabel = path === '/' ? '/' : '/ui';
        serveStatic(req, res, asset);
        return;
      }
      throw new ScorecarError('NOT_FOUND', `no such endpoint: ${req.method} ${path}`);
    } catch (e) {
      const err =
        e instanceof ScorecarError ? e : new ScorecarError('INTERNAL', 'internal error', { cause: e });
      if (err.code === 'INTERNAL')
        log.error('admin request failed', { method: req.method, url: req.url, err: e });
      else
        log.debug('admin request refused', {
          method: req.method,
          url: req.url,
          code: err.code,
          msg: err.message,
        });
      if (res.headersSent || res.destroyed) return;
      if (mount) {
        mount.sendError(res, err);
        return;
      }
      const headers: Record<string, string> = {};
      const allowed = err.details?.allowed;
      if (err.code === 'METHOD_NOT_ALLOWED' && Array.isArray(allowed)) headers.allow = allowed.join(', ');
      if (err.code === 'PAYLOAD_TOO_LARGE') headers.connection = 'close';
      sendError(res, err, headers);
    }
  };

  let server: Server | undefined;
  const sockets = new Set<Socket>();

  return {
    openapi,
    tls,
    async listen() {
      if (server) throw new Error('admin server already listening');
      const ep = parseEndpoint(opts.endpoint);
      let host = ep.host;
      if (!token && !LOOPBACK.has(host)) {
        log.warn(
          'no admin token configured: the admin API listens on 127.0.0.1 only (set SCORECAR_ADMIN_TOKEN to expose it)',
          {
            configured: opts.endpoint,
          },
        );
        host = '127.0.0.1';
      }
      const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
        void handle(req, res);
      };
      const httpOptions = { requestTimeout: 30_000, headersTimeout: 10_000 };
      let srv: Server;
      if (tls) {
        const secure = createHttpsServer(
          { ...httpOptions, ...tls.serverOptions(), ALPNProtocols: ['http/1.1'], handshakeTimeout: 10_000 },
          onRequest,
        );
        tls.attach(secure);
        srv = secure;
      } else {
        srv = createServer(httpOptions, onRequest);
      }
      // Long enough that a client reusing an idle connection (fetch keeps them for the server's
      // hint minus 1 s) does not race the server closing it: with 5 s, a busy machine's late
      // client timer let the SDK send on a socket the server had just closed (other side closed).
      srv.keepAliveTimeout = 65_000;
      srv.on('connection', (s: Socket) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(ep.port, host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      server = srv;
      const addr = srv.address() as AddressInfo;
      log.info('admin server listening', {
        host: addr.address,
        port: addr.port,
        auth: token ? 'bearer' : 'none',
        tls: tls ? (tls.mutual ? 'mtls' : 'tls') : 'off',
        metrics: metricsSecured ? 'bearer' : 'open',
        hosts: hostChecked ? [...allowedHosts].join(',') : 'any',
      });
      return { port: addr.port, host: addr.address };
    },
    async close() {
      tls?.stop();
      const srv = server;
      if (!srv) return;
      server = undefined;
      await new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeIdleConnections();
        // In-flight requests get a moment to finish, then their sockets are cut.
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1_000).unref();
      });
    },
  };
}
