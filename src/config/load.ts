// Reads the YAML config, expands ${env:VAR} references, applies SCORECAR_* environment
// overrides, validates everything at once and freezes the result.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { readTlsFilesSync, ScorecarError } from '../util/index.ts';
import { type Config, configSchema } from './schema.ts';

export interface ConfigIssue {
  path: string;
  message: string;
}

export class ConfigError extends ScorecarError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], source: string) {
    super(
      'CONFIG_INVALID',
      `invalid configuration (${source}):\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
    );
    this.issues = issues;
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** `${env:NAME}`, `${NAME}` and `${NAME:-default}` in string values, as the Collector does. */
function expandEnv(value: Json, env: NodeJS.ProcessEnv, path: string, issues: ConfigIssue[]): Json {
  if (typeof value === 'string') {
    return value.replace(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, def?: string) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (def !== undefined) return def;
      issues.push({ path, message: `environment variable ${name} is not set` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, `${path}.${i}`, issues));
  if (value && typeof value === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, path ? `${path}.${k}` : k, issues);
    return out;
  }
  return value;
}

function parseEnvValue(raw: string): Json {
  // Numbers, booleans, null and JSON objects/arrays are typed; anything else stays a string.
  try {
    const v = parseYaml(raw) as Json;
    if (v === null || typeof v !== 'object' || raw.trim().startsWith('{') || raw.trim().startsWith('[')) {
      return typeof v === 'string' ? raw : v;
    }
  } catch {
    /* a plain string */
  }
  return raw;
}

/**
 * SCORECAR_<SECTION>__<KEY>__<KEY>=value overrides one key; names match keys case-insensitively
 * (SCORECAR_EXPORTERS__OTLP__ENDPOINT -> exporters.otlp.endpoint). SCORECAR_ADMIN_TOKEN is the
 * documented alias of admin.token.
 */
function applyEnvOverrides(doc: { [k: string]: Json }, env: NodeJS.ProcessEnv): void {
  const keyMap = shapeKeys();
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !name.startsWith('SCORECAR_')) continue;
    let parts: string[];
    if (name === 'SCORECAR_ADMIN_TOKEN') parts = ['admin', 'token'];
    else if (name.includes('__')) parts = name.slice('SCORECAR_'.length).split('__');
    else continue; // SCORECAR_CONFIG and friends are not config keys
    let node: { [k: string]: Json } = doc;
    for (let i = 0; i < parts.length; i++) {
      const want = parts[i]!.toLowerCase().replace(/_/g, '');
      const existing = Object.keys(node).find((k) => k.toLowerCase().replace(/_/g, '') === want);
      const known = keyMap.get(want);
      const key = existing ?? known ?? parts[i]!.toLowerCase();
      if (i === parts.length - 1) node[key] = parseEnvValue(raw);
      else {
        const next = node[key];
        if (!next || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
        node = node[key] as { [k: string]: Json };
      }
    }
  }
}

let cachedKeys: Map<string, string> | undefined;
/** Every key name that appears anywhere in the schema, by its case- and underscore-free form. */
function shapeKeys(): Map<string, string> {
  if (cachedKeys) return cachedKeys;
  const keys = new Map<string, string>();
  const visit = (s: unknown, depth: number): void => {
    if (!s || typeof s !== 'object' || depth > 12) return;
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    if (def.type === 'object' && def.shape && typeof def.shape === 'object') {
      for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
        keys.set(k.toLowerCase(), k);
        visit(v, depth + 1);
      }
    }
    for (const inner of ['innerType', 'in', 'out', 'element', 'valueType']) visit(def[inner], depth + 1);
    if (Array.isArray(def.options)) for (const o of def.options) visit(o, depth + 1);
  };
  visit(configSchema, 0);
  cachedKeys = keys;
  return keys;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export interface LoadOptions {
  /** Path of a YAML file; undefined = embedded defaults only. */
  file?: string | undefined;
  /** YAML text instead of a file (tests). */
  text?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last, after env (tests, CLI flags). */
  overrides?: (doc: { [k: string]: Json }) => void;
  /**
   * Read and check the files of the receivers' and admin port's tls blocks (default true). A
   * process that serves none of those ports (`scorecar worker`) skips them, so a config shared
   * with the sidecars does not need their certificates mounted.
   */
  checkTlsFiles?: boolean;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const source = opts.file ?? (opts.text !== undefined ? '<inline>' : '<defaults>');
  let text = opts.text ?? '';
  if (opts.file !== undefined) {
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError([{ path: '', message: `cannot read ${opts.file}: ${(e as Error).message}` }], source);
    }
  }
  let doc: Json;
  try {
    doc = text.trim() === '' ? {} : (parseYaml(text) as Json);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new ConfigError([{ path: '', message: `YAML syntax error${where}: ${(e as Error).message.split('\n')[0]}` }], source);
  }
  if (doc === null) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError([{ path: '', message: 'the config file must hold a mapping at the top level' }], source);
  }
  const issues: ConfigIssue[] = [];
  doc = expandEnv(doc, env, '', issues) as { [k: string]: Json };
  applyEnvOverrides(doc, env);
  opts.overrides?.(doc);
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) {
    for (const i of parsed.error.issues) issues.push({ path: i.path.map(String).join('.'), message: i.message });
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues, source);
  if (opts.checkTlsFiles !== false) issues.push(...tlsIssues(parsed.data));
  if (issues.length > 0) throw new ConfigError(issues, source);
  return deepFreeze(parsed.data);
}

/**
 * The files of every tls block, read and checked now, so a missing file or a key that does not
 * match its certificate stops the start with the key path of the file instead of failing the
 * first handshake. Each message names the code TLS_INVALID (docs/errors.md).
 */
function tlsIssues(c: Config): ConfigIssue[] {
  const blocks: [string, Config['admin']['tls']][] = [
    ['receivers.otlp.grpc.tls', c.receivers.otlp.grpc.tls],
    ['receivers.otlp.http.tls', c.receivers.otlp.http.tls],
    ['admin.tls', c.admin.tls],
  ];
  const out: ConfigIssue[] = [];
  for (const [path, tls] of blocks) {
    if (!tls) continue;
    for (const i of readTlsFilesSync(path, tls).issues) out.push({ path: i.path, message: `TLS_INVALID: ${i.message}` });
  }
  return out;
}
