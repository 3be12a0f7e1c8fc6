// `scorecar scorers …`: the scorer lifecycle against a running server's admin API (through
// the SDK's client; nothing here touches the store). Human tables by default, --json for
// scripts. Exit codes: 0 ok, 1 refused by the server (4xx), 2 usage error, 3 server
// unreachable or failing (network, timeout, 5xx).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Scorer } from '../definitions/index.ts';
import { clientTls, ScorecarApiError, ScorecarClient } from '../sdk/index.ts';
import { experimentTable, scorerDetails, scorerTable, versionTable } from './format.ts';

export const SCORERS_USAGE = `Usage: scorecar scorers <command> [options]

Commands:
  list                                  latest version of each scorer of the experiment
  get <name> [--version N]              one scorer with its definition
  versions <name>                       every version of a scorer
  register <name> <definition>          register a scorer (an existing name gets a new version)
      --definition '<json>' | @file.json    the definition (DESIGN.md "Scorer definitions"), or:
      --builtin <judge> [--guidelines T]    safety, relevance_to_query, correctness, guidelines, ...
      --guidelines <text> (repeatable)      a guidelines judge
      --code '<js>' | @file.js [--aggregations mean,min,max]   a code scorer "(ctx) => value"
      --model <uri>                         judge model, e.g. openai:/gpt-4.1-mini
  start <name> --sample-rate R [--filter F]     start sampling, 0 < R <= 1
  update <name> [--sample-rate R] [--filter F | --no-filter]
  stop <name>                           sample rate 0; the scorer stays registered
  delete <name> [--version N|all]       delete one version or all (default all)
  stop-all [--all-experiments]          kill switch: stop every scorer of the experiment (or of all)
  experiments                           list experiments

Options:
  --url <url>              admin server (env SCORECAR_URL, default http://127.0.0.1:4320)
  --token <token>          admin token (env SCORECAR_ADMIN_TOKEN; prefer the env var)
  --ca <file>              PEM CA of an https admin port (env SCORECAR_ADMIN_CA; client
                           certificate for mTLS: env SCORECAR_ADMIN_CLIENT_CERT / _KEY)
  -e, --experiment <id>    experiment (env SCORECAR_EXPERIMENT, default "default")
  --json                   print the API's JSON instead of tables
  -h, --help               this text

Exit codes: 0 ok, 1 refused by the server, 2 usage error, 3 server unreachable or failing.
`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  experiment: { type: 'string', short: 'e' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'string' },
  definition: { type: 'string' },
  builtin: { type: 'string' },
  guidelines: { type: 'string', multiple: true },
  code: { type: 'string' },
  aggregations: { type: 'string' },
  model: { type: 'string' },
  'sample-rate': { type: 'string' },
  filter: { type: 'string' },
  'no-filter': { type: 'boolean' },
  'all-experiments': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Which options each command accepts besides the common ones. */
const ACCEPTS: Record<string, readonly string[]> = {
  list: [],
  experiments: [],
  get: ['version'],
  versions: [],
  register: ['definition', 'builtin', 'guidelines', 'code', 'aggregations', 'model'],
  start: ['sample-rate', 'filter'],
  update: ['sample-rate', 'filter', 'no-filter'],
  stop: [],
  delete: ['version'],
  'stop-all': ['all-experiments'],
};
const COMMON = new Set(['url', 'token', 'ca', 'experiment', 'json', 'help']);
const NEEDS_NAME = new Set(['get', 'versions', 'register', 'start', 'update', 'stop', 'delete']);

function readArg(v: string, what: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8');
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${v.slice(1)}: ${(e as Error).message}`);
  }
}

function parseRate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--sample-rate: expected a number, got '${v}'`);
  return n;
}

function definitionFrom(values: Values): Record<string, unknown> {
  const sources = ['definition', 'builtin', 'code'].filter((k) => values[k as keyof Values] !== undefined);
  const guidelines = values.guidelines;
  if (sources.length > 1) throw new UsageError(`register: give only one of --definition, --builtin, --code`);
  if (values.definition !== undefined) {
    if (values.model !== undefined || guidelines || values.aggregations !== undefined) {
      throw new UsageError(
        'register: --model, --guidelines and --aggregations go with --builtin/--code, not --definition',
      );
    }
    const text = readArg(values.definition, '--definition');
    let def: unknown;
    try {
      def = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--definition: not valid JSON: ${(e as Error).message}`);
    }
    if (!def || typeof def !== 'object' || Array.isArray(def))
      throw new UsageError('--definition: expected a JSON object');
    return def as Record<string, unknown>;
  }
  const model = values.model !== undefined ? { model: values.model } : {};
  if (values.builtin !== undefined) {
    return { type: 'builtin', judge: values.builtin, ...model, ...(guidelines ? { guidelines } : {}) };
  }
  if (values.code !== undefined) {
    if (values.model !== undefined) throw new UsageError('register: --model does not apply to --code');
    const aggregations = values.aggregations
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    return {
      type: 'code',
      source: readArg(values.code, '--code'),
      ...(aggregations ? { aggregations } : {}),
    };
  }
  if (guidelines) return { type: 'guidelines', guidelines, ...model };
  throw new UsageError('register: give the definition with --definition, --builtin, --guidelines or --code');
}

function describe(verb: string, s: Scorer): string {
  const filter = s.filterString === null ? '' : `, filter ${s.filterString}`;
  return `${verb} ${s.experimentId}/${s.name} version ${s.version}: status ${s.status}, sample rate ${s.sampleRate}${filter}\n`;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [cmd, ...rest] = positionals;
  if (values.help || cmd === undefined || cmd === 'help') {
    io.stdout(SCORERS_USAGE);
    return cmd === undefined && !values.help ? 2 : 0;
  }
  const accepts = ACCEPTS[cmd];
  if (!accepts) throw new UsageError(`unknown command '${cmd}'`);
  for (const k of Object.keys(values)) {
    if (!COMMON.has(k) && !accepts.includes(k)) throw new UsageError(`${cmd}: option --${k} does not apply`);
  }
  const wantPositionals = NEEDS_NAME.has(cmd) ? 1 : 0;
  if (rest.length !== wantPositionals) {
    throw new UsageError(
      wantPositionals ? `${cmd}: expected one scorer name` : `${cmd}: unexpected argument '${rest[0]}'`,
    );
  }
  const name = rest[0]!;
  const client = new ScorecarClient({
    url: values.url ?? io.env.SCORECAR_URL,
    token: values.token ?? (io.env.SCORECAR_ADMIN_TOKEN || undefined),
    tls: clientTls(undefined, values.ca ? { ...io.env, SCORECAR_ADMIN_CA: values.ca } : io.env),
    experimentId: values.experiment ?? (io.env.SCORECAR_EXPERIMENT || undefined),
  });
  const json = values.json === true;
  const out = (data: unknown, human: () => string) =>
    io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : human());

  switch (cmd) {
    case 'list': {
      const scorers = await client.listScorers();
      out({ scorers }, () => scorerTable(scorers));
      return 0;
    }
    case 'experiments': {
      const experiments = await client.listExperiments();
      out({ experiments }, () => experimentTable(experiments));
      return 0;
    }
    case 'get': {
      let version: number | undefined;
      if (values.version !== undefined) {
        version = Number(values.version);
        if (!Number.isSafeInteger(version) || version < 1)
          throw new UsageError(`--version: expected a positive integer`);
      }
      const s = await client.getScorer({ name, version });
      out(s, () => scorerDetails(s));
      return 0;
    }
    case 'versions': {
      const versions = await client.listVersions({ name });
      out({ versions }, () => versionTable(versions));
      return 0;
    }
    case 'register': {
      const s = await client.registerScorer({ name, definition: definitionFrom(values) });
      out(s, () => describe('registered', s));
      return 0;
    }
    case 'start': {
      const sampleRate = parseRate(values['sample-rate']);
      if (sampleRate === undefined) throw new UsageError('start: --sample-rate is required');
      const s = await client.startScorer({ name, sampleRate, filterString: values.filter });
      out(s, () => describe('started', s));
      return 0;
    }
    case 'update': {
      if (values.filter !== undefined && values['no-filter'])
        throw new UsageError('update: --filter and --no-filter conflict');
      const sampleRate = parseRate(values['sample-rate']);
      const filterString = values['no-filter'] ? null : values.filter;
      if (sampleRate === undefined && filterString === undefined) {
        throw new UsageError('update: give --sample-rate and/or --filter (or --no-filter)');
      }
      const s = await client.updateScorer({ name, sampleRate, filterString });
      out(s, () => describe('updated', s));
      return 0;
    }
    case 'stop': {
      const s = await client.stopScorer({ name });
      out(s, () => describe('stopped', s));
      return 0;
    }
    case 'delete': {
      const v = values.version ?? 'all';
      if (v !== 'all' && !/^[1-9][0-9]*$/.test(v))
        throw new UsageError(`--version: expected a positive integer or 'all'`);
      const r = await client.deleteScorer({ name, version: v === 'all' ? 'all' : Number(v) });
      out(r, () =>
        r.nameRemoved
          ? `deleted ${r.experimentId}/${r.name} (versions ${r.deletedVersions.join(', ')}); the name is gone\n`
          : `deleted ${r.experimentId}/${r.name} version ${r.deletedVersions.join(', ')}\n`,
      );
      return 0;
    }
    case 'stop-all': {
      const stopped = await client.stopAll({ allExperiments: values['all-experiments'] === true });
      out({ stopped }, () =>
        stopped.length === 0
          ? 'no active scorers\n'
          : `stopped ${stopped.length} scorer(s): ${stopped.map((s) => `${s.experimentId}/${s.name}`).join(', ')}\n`,
      );
      return 0;
    }
  }
  throw new UsageError(`unknown command '${cmd}'`);
}

/** Entry point used by src/cli/main.ts: `scorecar scorers <argv…>`; resolves to the exit code. */
export async function runScorers(argv: string[], io?: Partial<CliIo>): Promise<number> {
  const full: CliIo = {
    stdout: io?.stdout ?? ((s) => process.stdout.write(s)),
    stderr: io?.stderr ?? ((s) => process.stderr.write(s)),
    env: io?.env ?? process.env,
  };
  const json = argv.includes('--json');
  try {
    return await run(argv, full);
  } catch (e) {
    if (e instanceof UsageError) {
      full.stderr(`scorecar scorers: ${e.message}\nRun 'scorecar scorers --help' for usage.\n`);
      return 2;
    }
    if (e instanceof ScorecarApiError) {
      const detailErrors = e.details?.errors as Array<{ path: string; message: string }> | undefined;
      if (json) {
        full.stderr(
          `${JSON.stringify({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } })}\n`,
        );
      } else {
        full.stderr(`scorecar scorers: ${e.code}: ${e.message}\n`);
        if (detailErrors && detailErrors.length > 1)
          for (const d of detailErrors) full.stderr(`  - ${d.path}: ${d.message}\n`);
        if (typeof e.details?.position === 'number')
          full.stderr(`  (at position ${e.details.position} of the filter)\n`);
      }
      if (e.status === 0) return e.code === 'INVALID_ARGUMENT' ? 2 : 3;
      return e.status >= 500 ? 3 : 1;
    }
    full.stderr(`scorecar scorers: ${(e as Error).message ?? String(e)}\n`);
    return 3;
  }
}
