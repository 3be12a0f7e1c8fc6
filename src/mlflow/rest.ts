// MLflow 3.18's REST API for experiments and scorers, on scorecar's admin port, so that MLflow's
// own Python SDK (mlflow.set_tracking_uri("http://<admin>")) drives scorecar's registry: the
// same registry the /api/v1 routes, the TypeScript SDK, the CLI and the UI use. Routes, payloads
// and quirks as MLflow's SDK sends and reads them (see README "MLflow"):
//  - every path exists under /api/2.0/mlflow and /api/3.0/mlflow; GET parameters come in the
//    query string, every other method sends a JSON body (DELETE included);
//  - errors are {error_code, message} with the HTTP status MLflow pairs with the code
//    (util/errors.ts mlflowErrorOf), which the SDK raises as RestException;
//  - experiment ids are numeric strings (store.ts maps them to scorecar experiment names);
//  - `update` replaces the whole online config (an omitted filter_string clears the filter), one
//    config per scorer, applying to its latest version; status is derived by the SDK from the
//    config's sample_rate, so a never-started scorer has no config at all.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminMount } from '../api/index.ts';
import type { Scorer, ScorerDefinition } from '../definitions/index.ts';
import { canonicalJson, checkExperimentId, type Registry } from '../registry/index.ts';
import { errorMessage, type Logger, mlflowErrorOf, ScorecarError, silentLogger } from '../util/index.ts';
import { definitionFromMlflow, definitionToMlflow, MLFLOW_COMPAT_VERSION, type MappingOptions } from './serialized.ts';
import type { MlflowExperiment, MlflowStore } from './store.ts';

const PREFIX = /^\/api\/[23]\.0\/mlflow(\/.*)$/;
const MAX_BODY_BYTES = 1024 * 1024;

/** A request as the handlers see it: query parameters (repeated ones as lists) and the JSON body. */
interface MlflowRequest {
  method: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

type Handler = (req: MlflowRequest) => Promise<unknown> | unknown;

/** More routes on the same mount (the trace routes of an MLflow-traced app, the OTLP ingest). */
export interface MlflowExtraRoute {
  method: string;
  /** Exact path, or a RegExp over the whole path. */
  path: string | RegExp;
  /** Label for metrics. */
  label: string;
  /** Gets the raw request and answers it itself (bodies other than JSON, such as OTLP protobuf). */
  raw?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;
  handler?: (req: MlflowRequest & { match: RegExpExecArray | null }) => Promise<unknown> | unknown;
}

export interface MlflowRestOptions {
  registry: Registry;
  store: MlflowStore;
  mapping: MappingOptions;
  /** scoring.defaultModel: the model MLflow sees on judges that name none. */
  defaultModel: string;
  logger?: Logger;
  now?: () => number;
  extraRoutes?: readonly MlflowExtraRoute[];
}

/** Builds an MLflow error body and status from anything thrown. */
export function mlflowError(e: unknown): { status: number; body: { error_code: string; message: string } } {
  const err = e instanceof ScorecarError ? e : new ScorecarError('INTERNAL', errorMessage(e));
  const { errorCode, http } = mlflowErrorOf(err.code);
  return { status: http, body: { error_code: errorCode, message: err.message } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of req) {
    total += (c as Buffer).length;
    if (total > MAX_BODY_BYTES) throw new ScorecarError('PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  if (total === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ScorecarError('INVALID_JSON', `request body is not valid JSON: ${errorMessage(e)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ScorecarError('INVALID_JSON', 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** A parameter from the body (POST/PUT/DELETE) or the query (GET), as MLflow's client sends it. */
function param(req: MlflowRequest, key: string): unknown {
  return req.method === 'GET' ? (req.query.get(key) ?? undefined) : req.body[key];
}

function requiredString(req: MlflowRequest, key: string): string {
  const v = param(req, key);
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v === '') {
    throw new ScorecarError('INVALID_ARGUMENT', `Missing value for required parameter '${key}'.`, { details: { field: key } });
  }
  return v;
}

function optionalVersion(req: MlflowRequest): number | undefined {
  const v = param(req, 'version');
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new ScorecarError('INVALID_ARGUMENT', `version: expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** A reversible, opaque scorer id: MLflow's SDK only hands it back to online-configs. */
export function scorerIdOf(experiment: string, name: string): string {
  return Buffer.from(JSON.stringify([experiment, name])).toString('base64url');
}

function parseScorerId(id: string): { experiment: string; name: string } | undefined {
  try {
    const v = JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return { experiment: v[0], name: v[1] };
  } catch {
    /* not one of ours */
  }
  return undefined;
}

function experimentJson(e: MlflowExperiment): Record<string, unknown> {
  return {
    experiment_id: e.id,
    name: e.name,
    artifact_location: `scorecar:/experiments/${encodeURIComponent(e.name)}`,
    lifecycle_stage: 'active',
    creation_time: e.createdMs,
    last_update_time: e.updatedMs,
    tags: [],
  };
}

export class MlflowRest implements AdminMount {
  private readonly o: MlflowRestOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly routes: Map<string, Handler>;

  constructor(opts: MlflowRestOptions) {
    this.o = opts;
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    const r = new Map<string, Handler>();
    const on = (method: string, path: string, h: Handler): void => {
      r.set(`${method} ${path}`, h);
    };
    on('GET', '/experiments/get-by-name', (q) => this.getByName(q));
    on('POST', '/experiments/create', (q) => this.createExperiment(q));
    on('GET', '/experiments/get', (q) => ({ experiment: experimentJson(this.experiment(q)) }));
    on('GET', '/experiments/search', () => this.searchExperiments());
    on('POST', '/experiments/search', () => this.searchExperiments());
    on('POST', '/scorers/register', (q) => this.register(q));
    on('PUT', '/scorers/online-config', (q) => this.upsertConfig(q));
    on('GET', '/scorers/online-configs', (q) => this.onlineConfigs(q));
    on('GET', '/scorers/get', (q) => this.getScorer(q));
    on('GET', '/scorers/list', (q) => this.listScorers(q));
    on('GET', '/scorers/versions', (q) => this.listVersions(q));
    on('DELETE', '/scorers/delete', (q) => this.deleteScorer(q));
    this.routes = r;
  }

  // ------------------------------------------------------------------ AdminMount

  matches(path: string): boolean {
    return PREFIX.test(path) || (this.o.extraRoutes ?? []).some((x) => (typeof x.path === 'string' ? x.path === path : x.path.test(path)));
  }

  routeLabel(path: string): string {
    const extra = this.extra(path);
    if (extra) return extra.label;
    const m = PREFIX.exec(path);
    return m && [...this.routes.keys()].some((k) => k.endsWith(` ${m[1]}`)) ? `/api/3.0/mlflow${m[1]}` : '/api/3.0/mlflow/*';
  }

  sendError(res: ServerResponse, e: ScorecarError): void {
    const { status, body } = mlflowError(e);
    if (e.code === 'INTERNAL') this.log.error('MLflow API request failed', { err: e.cause ?? e });
    sendJson(res, status, body);
  }

  private extra(path: string, method?: string): (MlflowExtraRoute & { match: RegExpExecArray | null }) | undefined {
    for (const x of this.o.extraRoutes ?? []) {
      if (method !== undefined && x.method !== method) continue;
      if (typeof x.path === 'string') {
        if (x.path === path) return { ...x, match: null };
      } else {
        const m = x.path.exec(path);
        if (m) return { ...x, match: m };
      }
    }
    return undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const path = url.pathname;
    const extra = this.extra(path, method);
    if (extra?.raw) {
      await extra.raw(req, res, url);
      return;
    }
    const m = PREFIX.exec(path);
    const handler = extra?.handler ? undefined : m ? this.routes.get(`${method} ${m[1]}`) : undefined;
    if (!handler && !extra?.handler) {
      // MLflow answers unknown endpoints with 404 ENDPOINT_NOT_FOUND (some SDK calls fall back on it).
      sendJson(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `No API endpoint ${method} ${path} in scorecar's MLflow-compatible API` });
      return;
    }
    const body = method === 'GET' ? {} : await readJson(req);
    const request: MlflowRequest = { method, query: url.searchParams, body, headers: req.headers };
    const out = extra?.handler ? await extra.handler({ ...request, match: extra.match }) : await handler!(request);
    sendJson(res, 200, out ?? {});
  }

  // ------------------------------------------------------------------ experiments

  /** The experiment named by experiment_id; RESOURCE_DOES_NOT_EXIST when it has no id here. */
  private experiment(req: MlflowRequest): MlflowExperiment {
    const id = requiredString(req, 'experiment_id');
    const e = this.o.store.byId(id);
    if (!e) throw new ScorecarError('NOT_FOUND', `Could not find experiment with ID ${id}`, { details: { resource: 'experiment' } });
    return e;
  }

  private async getByName(req: MlflowRequest): Promise<unknown> {
    const name = requiredString(req, 'experiment_name');
    let e = this.o.store.byName(name);
    // An experiment scorecar knows already (its scorers were registered through scorecar's own
    // API or config) gets its numeric id on first sight.
    if (!e && (await this.o.registry.listExperiments()).some((x) => x.experimentId === name)) e = await this.ensure(name);
    if (!e) throw new ScorecarError('NOT_FOUND', `Could not find experiment with name '${name}'`, { details: { resource: 'experiment' } });
    return { experiment: experimentJson(e) };
  }

  private async ensure(name: string): Promise<MlflowExperiment> {
    const known = new Set((await this.o.registry.listExperiments()).map((x) => x.experimentId));
    return this.o.store.ensure(name, this.now(), (id) => known.has(id)).experiment;
  }

  private async createExperiment(req: MlflowRequest): Promise<unknown> {
    const name = requiredString(req, 'name');
    checkExperimentId(name, 'name');
    if (this.o.store.byName(name)) {
      throw new ScorecarError('ALREADY_EXISTS', `Experiment '${name}' already exists.`, { details: { resource: 'experiment' } });
    }
    const e = await this.ensure(name);
    this.log.info('MLflow experiment created', { experiment: name, mlflowId: e.id });
    return { experiment_id: e.id };
  }

  private searchExperiments(): unknown {
    return { experiments: this.o.store.list().map(experimentJson) };
  }

  // ------------------------------------------------------------------ scorers

  private serializedOf(s: Scorer): string {
    return (
      this.o.store.getSerialized(s.experimentId, s.name, s.version, canonicalJson(s.definition)) ??
      definitionToMlflow(s.name, s.definition, this.o.defaultModel)
    );
  }

  /** MLflow's Scorer message (experiment_id is an int32 there). */
  private scorerJson(e: MlflowExperiment, s: Scorer): Record<string, unknown> {
    return {
      experiment_id: Number(e.id),
      scorer_name: s.name,
      scorer_version: s.version,
      serialized_scorer: this.serializedOf(s),
      creation_time: Date.parse(s.createdAt),
      scorer_id: scorerIdOf(s.experimentId, s.name),
    };
  }

  private async register(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    const name = requiredString(req, 'name');
    const serialized = requiredString(req, 'serialized_scorer');
    const { definition } = definitionFromMlflow(serialized, this.o.mapping);
    const s = await this.o.registry.register(e.name, name, definition);
    this.o.store.putSerialized(s.experimentId, s.name, s.version, canonicalJson(s.definition), serialized);
    return {
      version: s.version,
      scorer_id: scorerIdOf(s.experimentId, s.name),
      experiment_id: e.id,
      name: s.name,
      serialized_scorer: serialized,
      creation_time: Date.parse(s.createdAt),
    };
  }

  /** The online config MLflow shows for a scorer: none until it was first started. */
  private configJson(e: MlflowExperiment, s: Scorer): Record<string, unknown> | undefined {
    if (s.status === 'registered') return undefined;
    const id = scorerIdOf(s.experimentId, s.name);
    const out: Record<string, unknown> = {
      online_scoring_config_id: Buffer.from(`${id}\u0000${s.updatedAt}`).toString('base64url').slice(-32),
      scorer_id: id,
      sample_rate: s.sampleRate,
      experiment_id: e.id,
    };
    if (s.filterString !== null) out.filter_string = s.filterString;
    return out;
  }

  private async upsertConfig(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    const name = requiredString(req, 'name');
    const rate = req.body.sample_rate;
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new ScorecarError('INVALID_ARGUMENT', `sample_rate must be a number between 0 and 1, got ${JSON.stringify(rate)}`, {
        details: { field: 'sample_rate' },
      });
    }
    const filter = req.body.filter_string;
    if (filter !== undefined && filter !== null && typeof filter !== 'string') {
      throw new ScorecarError('INVALID_ARGUMENT', 'filter_string must be a string', { details: { field: 'filter_string' } });
    }
    // MLflow replaces the whole config: a filter not sent is a filter removed.
    const s = await this.o.registry.update(e.name, name, { sampleRate: rate, filterString: filter ?? null });
    return { config: this.configJson(e, s) ?? { scorer_id: scorerIdOf(s.experimentId, s.name), sample_rate: 0, experiment_id: e.id } };
  }

  private async onlineConfigs(req: MlflowRequest): Promise<unknown> {
    const configs: Record<string, unknown>[] = [];
    for (const id of new Set(req.query.getAll('scorer_ids'))) {
      const ref = parseScorerId(id);
      const e = ref && this.o.store.byName(ref.experiment);
      if (!ref || !e) continue;
      let s: Scorer;
      try {
        s = await this.o.registry.get(ref.experiment, ref.name);
      } catch (err) {
        if (err instanceof ScorecarError && err.code === 'NOT_FOUND') continue;
        throw err;
      }
      const c = this.configJson(e, s);
      if (c) configs.push(c);
    }
    // Read as response.json()["configs"] by the SDK: never omitted, even when empty.
    return { configs };
  }

  private async getScorer(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    const name = requiredString(req, 'name');
    const s = await this.o.registry.get(e.name, name, optionalVersion(req));
    return { scorer: this.scorerJson(e, s) };
  }

  private async listScorers(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    let list: Scorer[];
    try {
      list = await this.o.registry.list(e.name);
    } catch (err) {
      // An MLflow experiment without scorers is not one the registry knows yet.
      if (err instanceof ScorecarError && err.code === 'NOT_FOUND') list = [];
      else throw err;
    }
    return { scorers: list.map((s) => this.scorerJson(e, s)) };
  }

  private async listVersions(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    const name = requiredString(req, 'name');
    const list = await this.o.registry.versions(e.name, name);
    return { scorers: list.map((s) => this.scorerJson(e, s)) };
  }

  private async deleteScorer(req: MlflowRequest): Promise<unknown> {
    const e = this.experiment(req);
    const name = requiredString(req, 'name');
    await this.o.registry.delete(e.name, name, optionalVersion(req) ?? 'all');
    return {};
  }
}

/** The version MLflow's tracing SDK asks for (GET /version): it needs a server of at least 3.4. */
export const MLFLOW_SERVER_VERSION = MLFLOW_COMPAT_VERSION;

/** A definition's MLflow serialized form, exported for the CLI and tests. */
export function serializedScorerOf(name: string, def: ScorerDefinition, defaultModel: string): string {
  return definitionToMlflow(name, def, defaultModel);
}
