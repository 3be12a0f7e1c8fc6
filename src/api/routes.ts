// The route model of the admin API (shared by the built-in scorer routes and routes other
// components add: traces, backfills …) and the scorer registry routes of DESIGN.md.
import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';
import type { Registry } from '../registry/index.ts';
import {
  deleteQuery,
  emptyBody,
  type JsonSchema,
  registerBody,
  schemaRef,
  startBody,
  updateBody,
  versionQuery,
} from './schemas.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface AdminRequest<B = unknown, Q = Record<string, string>> {
  method: HttpMethod;
  /** The path as received (percent-encoded). */
  path: string;
  /** Decoded path parameters by template name: `{traceId}` → params.traceId. */
  params: Record<string, string>;
  /** Validated query parameters. */
  query: Q;
  /** Validated JSON body (undefined when the route takes none or it was empty and optional). */
  body: B;
  headers: IncomingHttpHeaders;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface AdminResponse {
  status: number;
  /** Serialised as JSON; undefined = no body. */
  body?: unknown;
  headers?: Record<string, string | number>;
}

export interface ResponseDoc {
  description: string;
  /** JSON Schema of the body, or a `$ref` into components/schemas. */
  schema?: JsonSchema;
}

/**
 * One route under /api/v1. Everything the server checks before the handler runs (query
 * parameters, content type, body size and shape) is declared here, and the OpenAPI document
 * is generated from the same declaration.
 */
export interface AdminRoute {
  method: HttpMethod;
  /** Relative to /api/v1, with `{param}` segments: '/traces/{traceId}'. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Accepted query parameters (a strict zod object of optional strings); default none. */
  query?: z.ZodObject;
  /** JSON body schema; the request must be application/json. Default: no body accepted. */
  body?: z.ZodType;
  /** With `body`: may the body be absent? Default false. */
  bodyOptional?: boolean;
  /** Replaces body properties in the documented request schema (e.g. with a `$ref`). */
  bodyDocOverrides?: Record<string, JsonSchema>;
  /** Documented success responses by status; error responses are added for every route. */
  responses: Record<string, ResponseDoc>;
  /** Extra OpenAPI operation fields merged last. */
  openapi?: Record<string, unknown>;
  handler(req: AdminRequest): Promise<AdminResponse> | AdminResponse;
}

/** Builds an AdminRoute whose handler sees the parsed body and query with their zod types. */
export function defineRoute<B extends z.ZodType = z.ZodNever, Q extends z.ZodObject = z.ZodObject>(
  route: Omit<AdminRoute, 'handler' | 'body' | 'query'> & {
    body?: B;
    query?: Q;
    handler(req: AdminRequest<z.output<B> | undefined, z.output<Q>>): Promise<AdminResponse> | AdminResponse;
  },
): AdminRoute {
  return route as unknown as AdminRoute;
}

const scorerRes = (d: string): Record<string, ResponseDoc> => ({
  '200': { description: d, schema: schemaRef('Scorer') },
});

function parseVersion(v: string | undefined): number | 'all' | undefined {
  if (v === undefined) return undefined;
  return v === 'all' ? 'all' : Number(v);
}

/** Runtime health of a scorer in this process (set by the scoring engine). */
export interface ScorerHealthInfo {
  state: 'ok' | 'error' | 'paused';
  code?: string | undefined;
  message?: string | undefined;
  since: string;
}
export type ScorerHealthSource = (experimentId: string, name: string) => ScorerHealthInfo | undefined;

/** The scorer registry routes (DESIGN.md, Contracts: REST). */
export function scorerRoutes(registry: Registry, healthOf?: ScorerHealthSource): AdminRoute[] {
  const tags = ['scorers'];
  // Scorer resources of the latest version carry the runtime health when the engine has any.
  const withHealth = <T extends { experimentId: string; name: string }>(s: T): T => {
    const h = healthOf?.(s.experimentId, s.name);
    return h ? { ...s, health: h } : s;
  };
  return [
    defineRoute({
      method: 'GET',
      path: '/experiments',
      operationId: 'listExperiments',
      summary: 'List experiments (created by their first scorer registration)',
      tags: ['experiments'],
      responses: {
        '200': { description: 'Experiments with scorer counts', schema: schemaRef('ExperimentList') },
      },
      handler: async () => ({ status: 200, body: { experiments: await registry.listExperiments() } }),
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/scorers',
      operationId: 'registerScorer',
      summary: 'Register a scorer (a new name gets version 1; an existing name gets a new version)',
      description:
        'Creates the experiment on first use. The sampling config of an existing name is kept. A new name beyond ' +
        'the limit of 20 per experiment is refused with 409 LIMIT_EXCEEDED; an invalid definition with 400 ' +
        'INVALID_DEFINITION (details.errors lists each problem with its path).',
      tags,
      body: registerBody,
      bodyDocOverrides: { definition: schemaRef('ScorerDefinition') },
      responses: { '201': { description: 'The registered version', schema: schemaRef('Scorer') } },
      handler: async (req) => {
        const body = req.body!;
        const s = await registry.register(req.params.exp!, body.name, body.definition);
        return {
          status: 201,
          body: s,
          headers: {
            location: `/api/v1/experiments/${encodeURIComponent(s.experimentId)}/scorers/${s.name}?version=${s.version}`,
          },
        };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/scorers',
      operationId: 'listScorers',
      summary: 'List the latest version of each scorer of an experiment',
      tags,
      responses: { '200': { description: 'Scorers by name', schema: schemaRef('ScorerList') } },
      handler: async (req) => ({ status: 200, body: { scorers: (await registry.list(req.params.exp!)).map(withHealth) } }),
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/scorers:stop-all',
      operationId: 'stopExperimentScorers',
      summary: 'Kill switch: stop every active scorer of one experiment',
      description: 'Sets sampleRate to 0 for every active scorer of the experiment in one transaction.',
      tags: ['kill switch'],
      body: emptyBody,
      bodyOptional: true,
      responses: {
        '200': { description: 'The scorers that were stopped', schema: schemaRef('StoppedList') },
      },
      handler: async (req) => ({ status: 200, body: { stopped: await registry.stopAll(req.params.exp!) } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/scorers/{name}',
      operationId: 'getScorer',
      summary: 'Get a scorer (latest version, or ?version=N)',
      tags,
      query: versionQuery,
      responses: scorerRes('The scorer version'),
      handler: async (req) => {
        const v = parseVersion(req.query.version) as number | undefined;
        return { status: 200, body: withHealth(await registry.get(req.params.exp!, req.params.name!, v)) };
      },
    }),
    defineRoute({
      method: 'PATCH',
      path: '/experiments/{exp}/scorers/{name}',
      operationId: 'updateScorer',
      summary: 'Update the sampling config (sampleRate in [0, 1], 0 stops; filterString, null clears)',
      description: 'At least one field. An omitted field keeps its value.',
      tags,
      body: updateBody,
      responses: scorerRes('The latest version with the new sampling config'),
      handler: async (req) => {
        const b = req.body!;
        return { status: 200, body: await registry.update(req.params.exp!, req.params.name!, b) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/experiments/{exp}/scorers/{name}',
      operationId: 'deleteScorer',
      summary: 'Delete one version (?version=N) or all versions (?version=all, the default)',
      description: 'Deleting the last remaining version removes the name and its sampling config.',
      tags,
      query: deleteQuery,
      responses: { '200': { description: 'What was deleted', schema: schemaRef('DeleteResult') } },
      handler: async (req) => {
        const v = parseVersion(req.query.version) ?? 'all';
        return { status: 200, body: await registry.delete(req.params.exp!, req.params.name!, v) };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/scorers/{name}/versions',
      operationId: 'listScorerVersions',
      summary: 'List every version of a scorer, oldest first',
      tags,
      responses: { '200': { description: 'Versions', schema: schemaRef('VersionList') } },
      handler: async (req) => ({
        status: 200,
        body: { versions: await registry.versions(req.params.exp!, req.params.name!) },
      }),
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/scorers/{name}/start',
      operationId: 'startScorer',
      summary: 'Start sampling: sampleRate in (0, 1], optional filterString (omitted keeps the current one)',
      tags,
      body: startBody,
      responses: scorerRes('The latest version, now active'),
      handler: async (req) => ({
        status: 200,
        body: await registry.start(req.params.exp!, req.params.name!, req.body!),
      }),
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/scorers/{name}/stop',
      operationId: 'stopScorer',
      summary: 'Stop sampling (sampleRate 0); the scorer stays registered',
      tags,
      body: emptyBody,
      bodyOptional: true,
      responses: scorerRes('The latest version, now stopped'),
      handler: async (req) => ({ status: 200, body: await registry.stop(req.params.exp!, req.params.name!) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/scorers:stop-all',
      operationId: 'stopAllScorers',
      summary: 'Kill switch: stop every active scorer of every experiment',
      tags: ['kill switch'],
      body: emptyBody,
      bodyOptional: true,
      responses: {
        '200': { description: 'The scorers that were stopped', schema: schemaRef('StoppedList') },
      },
      handler: async () => ({ status: 200, body: { stopped: await registry.stopAll() } }),
    }),
  ];
}
