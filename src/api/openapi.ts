// The OpenAPI 3.1 document of the admin server, generated from the route table (the same
// declarations the server validates with), so every served route is documented and every
// documented route is served.
import type { AdminRoute, ResponseDoc } from './routes.ts';
import { COMPONENT_SCHEMAS, type JsonSchema, PATH_PARAMS, schemaRef, toSchema } from './schemas.ts';

export const API_PREFIX = '/api/v1';

export type OpenApiDocument = {
  openapi: string;
  info: Record<string, unknown>;
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: Record<string, unknown>;
  [k: string]: unknown;
};

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(schemaRef('Error')) });

function pathParams(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
}

function responseObject(r: ResponseDoc): Record<string, unknown> {
  return r.schema ? { description: r.description, content: json(r.schema) } : { description: r.description };
}

/** Methods whose calls need content-type: application/json or the x-scorecar-request header. */
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const HOST_403 =
  'HOST_NOT_ALLOWED: the Host header names neither a loopback address nor one of admin.allowedHosts (DNS-rebinding guard)';

function operation(route: AdminRoute, secured: boolean, hostChecked: boolean): Record<string, unknown> {
  const parameters: Record<string, unknown>[] = pathParams(route.path).map((p) => ({
    name: p,
    in: 'path',
    required: true,
    description: PATH_PARAMS[p]?.description,
    schema: PATH_PARAMS[p]?.schema ?? { type: 'string' },
  }));
  if (route.query) {
    const q = toSchema(route.query);
    const props = (q.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((q.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema });
    }
  }
  const mutating = MUTATING.has(route.method);
  if (mutating) {
    parameters.push({
      name: 'x-scorecar-request',
      in: 'header',
      required: false,
      description:
        'Any value. Required when the request is not content-type: application/json (CSRF protection: a ' +
        'cross-origin page cannot send it without a CORS preflight)',
      schema: { type: 'string' },
    });
  }
  const op: Record<string, unknown> = {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.tags ? { tags: route.tags } : {}),
    ...(parameters.length ? { parameters } : {}),
  };
  if (route.body) {
    const schema = toSchema(route.body);
    if (route.bodyDocOverrides) {
      const props = {
        ...((schema.properties ?? {}) as Record<string, JsonSchema>),
        ...route.bodyDocOverrides,
      };
      schema.properties = props;
    }
    op.requestBody = { required: !route.bodyOptional, content: json(schema) };
  }
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(route.responses)) responses[status] = responseObject(r);
  responses['400'] = errorResponse(
    'INVALID_ARGUMENT (wrong type, unknown field or query parameter; details.errors gives each path), INVALID_JSON, ' +
      'INVALID_DEFINITION or INVALID_FILTER (details.position)',
  );
  if (secured) responses['401'] = errorResponse('UNAUTHENTICATED: missing or wrong bearer token');
  responses['403'] = errorResponse(
    [
      ...(hostChecked ? [HOST_403] : []),
      'CROSS_SITE_REFUSED: a browser request from an origin not in admin.cors.allowedOrigins' +
        (mutating ? ', or neither content-type: application/json nor x-scorecar-request (CSRF protection)' : ''),
    ].join('; '),
  );
  responses['404'] = errorResponse('NOT_FOUND: unknown experiment, scorer or version (details.resource)');
  if (route.operationId === 'registerScorer') {
    responses['409'] = errorResponse(
      'LIMIT_EXCEEDED: the experiment already has the maximum number of scorer names',
    );
  }
  if (route.body) {
    responses['413'] = errorResponse('PAYLOAD_TOO_LARGE: body over the size limit');
    responses['415'] = errorResponse('UNSUPPORTED_MEDIA_TYPE: the body must be application/json');
  }
  responses['503'] = errorResponse('OVERLOADED: the registry store is busy; retry after Retry-After seconds');
  op.responses = responses;
  if (!secured) op.security = [];
  return { ...op, ...(route.openapi ?? {}) };
}

export interface OpenApiOptions {
  version: string;
  /** /metrics needs the bearer token (a token is set and admin.metricsAuth is token). */
  metricsSecured?: boolean;
  /** The Host header is checked (no token, or admin.allowedHosts set): 403 HOST_NOT_ALLOWED. */
  hostChecked?: boolean;
}

export function buildOpenApi(routes: readonly AdminRoute[], opts: OpenApiOptions): OpenApiDocument {
  const hostChecked = opts.hostChecked ?? false;
  const paths: OpenApiDocument['paths'] = {};
  for (const r of routes) {
    const p = `${API_PREFIX}${r.path}`;
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = operation(r, true, hostChecked);
  }
  const plain = (summary: string, description: string, content: Record<string, unknown>) => ({
    get: { summary, security: [], responses: { '200': { description, content } } },
  });
  paths['/healthz'] = plain(
    'Liveness and component checks',
    'Healthy (503 with the same body when not)',
    json({
      type: 'object',
      required: ['status', 'checks'],
      properties: { status: { enum: ['ok', 'unhealthy'] }, checks: { type: 'object' } },
    }),
  );
  (paths['/healthz'].get!.responses as Record<string, unknown>)['503'] = { description: 'Unhealthy' };
  paths['/readyz'] = plain(
    'Readiness (receivers up, registry loaded)',
    'Ready',
    json({
      type: 'object',
      required: ['ready'],
      properties: { ready: { type: 'boolean' } },
    }),
  );
  (paths['/readyz'].get!.responses as Record<string, unknown>)['503'] = { description: 'Not ready' };
  paths['/metrics'] = plain('Prometheus metrics (text exposition format 0.0.4)', 'Metrics', {
    'text/plain': { schema: { type: 'string' } },
  });
  const metricsOp = paths['/metrics'].get!;
  const metricsResponses = metricsOp.responses as Record<string, unknown>;
  if (opts.metricsSecured) {
    // The document's default security (bearerAuth) applies, as on /api.
    delete metricsOp.security;
    metricsResponses['401'] = errorResponse('UNAUTHENTICATED: missing or wrong bearer token (admin.metricsAuth: token)');
  }
  if (hostChecked) metricsResponses['403'] = errorResponse(HOST_403);
  return {
    openapi: '3.1.0',
    info: {
      title: 'scorecar admin API',
      version: opts.version,
      description:
        'Scorer registry and lifecycle (register → start → update → stop → delete), kill switches, health and ' +
        'metrics. When the server has an admin token (SCORECAR_ADMIN_TOKEN), every /api call (and /metrics, ' +
        'unless admin.metricsAuth is none) needs `Authorization: Bearer <token>`; without one the server listens on ' +
        '127.0.0.1 only and serves only loopback Host names (plus admin.allowedHosts). Calls that change something ' +
        '(POST, PATCH, DELETE) need `content-type: application/json` or an `x-scorecar-request` header, and browser ' +
        'requests from other origins are refused unless admin.cors.allowedOrigins lists them.',
    },
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: COMPONENT_SCHEMAS,
    },
  };
}
