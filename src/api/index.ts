// The admin HTTP server: REST API (scorer registry, kill switches, OpenAPI), metrics, health.
export { ARCHIVAL_SCHEMA, type ArchivalService, archiveRoutes } from './archive.ts';
export { BACKFILL_SCHEMA, type BackfillService, backfillRoutes } from './backfills.ts';
export { errorBody } from './http.ts';
export {
  type CheckError,
  checkScorer,
  type DryRunArchive,
  type Estimate,
  type EstimateKind,
  estimate,
  MAX_BUCKETS,
  type QualityDeps,
  type QualityStore,
  qualityRoutes,
} from './quality.ts';
export { API_PREFIX, buildOpenApi, type OpenApiDocument, type OpenApiOptions } from './openapi.ts';
export {
  type AdminRequest,
  type AdminResponse,
  type AdminRoute,
  defineRoute,
  type HttpMethod,
  type ResponseDoc,
  type ScorerHealthInfo,
  type ScorerHealthSource,
  scorerRoutes,
} from './routes.ts';
export { ASSESSMENT_SCHEMA, TRACE_INFO_SCHEMA, type TraceArchiveService, traceRoutes } from './traces.ts';
export { COMPONENT_SCHEMAS, type JsonSchema, schemaRef } from './schemas.ts';
export {
  type AdminMount,
  type AdminServer,
  type AdminServerOptions,
  CSRF_HEADER,
  createAdminServer,
  DEFAULT_MAX_BODY_BYTES,
  type HealthReport,
  hostNameOf,
  parseEndpoint,
  type StaticAsset,
  type StaticSite,
} from './server.ts';
