// `scorecar archival …`, `scorecar traces …` and `scorecar backfill …`: the archive, trace search
// and backfills against a running server's admin API (through the SDK's client). Same conventions
// as `scorecar scorers`: human output by default, --json for scripts; exit codes 0 ok, 1 refused
// by the server, 2 usage error, 3 server unreachable or failing.
import { parseArgs } from 'node:util';
import { type BackfillResource, clientTls, ScorecarApiError, ScorecarClient } from '../sdk/index.ts';
import { table } from './format.ts';

export const ARCHIVAL_USAGE = `Usage: scorecar archival <enable|disable|status> [options]

  enable [--table-path DIR]   archive the experiment's traces and assessments to Delta tables
  disable                     stop archiving (the tables stay)
  status                      the experiment's archival (--all-experiments: every one)

Options: --url, --token, --ca, -e/--experiment, --json, -h/--help (as for 'scorecar scorers')
`;

export const TRACES_USAGE = `Usage: scorecar traces <search|get> [options]

  search [--filter F] [--start T] [--end T] [--order-by 'timestamp_ms DESC'] [--max-results N] [--page-token P]
                              an archived experiment's traces (T: epoch ms or ISO-8601)
  get <traceId>               a trace's assessments and, when archived, its spans

Options: --url, --token, --ca, -e/--experiment, --json, -h/--help
`;

export const BACKFILL_USAGE = `Usage: scorecar backfill [start] --scorer NAME[:RATE] [--scorer …] [--start T] [--end T] [--no-wait]
       scorecar backfill status <jobId> | cancel <jobId> | list

  start    run scorers over the experiment's archived traces (default range: the last 7 days);
           shows live progress until the job ends (Ctrl-C leaves it running) unless --no-wait
  status   a job's state and progress
  cancel   stop a job (what it scored stays)
  list     the experiment's backfills

Options: --url, --token, --ca, -e/--experiment, --json, -h/--help
`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal (the progress bar redraws one line). */
  tty?: boolean;
  /** Polling interval of the progress display (default 500 ms). */
  pollMs?: number;
}

class UsageError extends Error {}

const COMMON = {
  url: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  experiment: { type: 'string', short: 'e' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function clientOf(values: { url?: string; token?: string; ca?: string; experiment?: string }, env: NodeJS.ProcessEnv): ScorecarClient {
  return new ScorecarClient({
    url: values.url ?? env.SCORECAR_URL,
    token: values.token ?? (env.SCORECAR_ADMIN_TOKEN || undefined),
    tls: clientTls(undefined, values.ca ? { ...env, SCORECAR_ADMIN_CA: values.ca } : env),
    experimentId: values.experiment ?? (env.SCORECAR_EXPERIMENT || undefined),
  });
}

function parse<O extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function out(io: CliIo, json: boolean, data: unknown, human: () => string): void {
  io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

async function guarded(name: string, usage: string, argv: string[], io: CliIo, run: () => Promise<number>): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help') || argv.length === 0) {
    io.stdout(usage);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`scorecar ${name}: ${e.message}\nRun 'scorecar ${name} --help' for usage.\n`);
      return 2;
    }
    if (e instanceof ScorecarApiError) {
      if (argv.includes('--json')) io.stderr(`${JSON.stringify({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } })}\n`);
      else {
        io.stderr(`scorecar ${name}: ${e.code}: ${e.message}\n`);
        if (typeof e.details?.position === 'number') io.stderr(`  (at position ${e.details.position} of the filter)\n`);
      }
      if (e.status === 0) return e.code === 'INVALID_ARGUMENT' ? 2 : 3;
      return e.status >= 500 ? 3 : 1;
    }
    io.stderr(`scorecar ${name}: ${(e as Error).message ?? String(e)}\n`);
    return 3;
  }
}

function fullIo(io?: Partial<CliIo>): CliIo {
  return {
    stdout: io?.stdout ?? ((s) => process.stdout.write(s)),
    stderr: io?.stderr ?? ((s) => process.stderr.write(s)),
    env: io?.env ?? process.env,
    tty: io?.tty ?? process.stdout.isTTY === true,
    pollMs: io?.pollMs ?? 500,
  };
}

/** `scorecar archival …` */
export function runArchival(argv: string[], ioIn?: Partial<CliIo>): Promise<number> {
  const io = fullIo(ioIn);
  return guarded('archival', ARCHIVAL_USAGE, argv, io, async () => {
    const { values, positionals } = parse(argv, { 'table-path': { type: 'string' }, 'all-experiments': { type: 'boolean' } });
    const [cmd, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    const client = clientOf(values, io.env);
    const json = values.json === true;
    switch (cmd) {
      case 'enable': {
        const a = await client.enableArchival({ ...(values['table-path'] ? { tablePath: values['table-path'] } : {}) });
        out(io, json, a, () => `archiving ${a.experimentId} to ${a.tracesTable} and ${a.assessmentsTable}\n`);
        return 0;
      }
      case 'disable': {
        const r = await client.disableArchival();
        out(io, json, r, () => `stopped archiving ${r.experimentId} (the tables stay)\n`);
        return 0;
      }
      case 'status': {
        const list = values['all-experiments'] ? await client.listArchivals() : [await client.getArchival()];
        out(io, json, { archivals: list }, () =>
          table(
            ['EXPERIMENT', 'TABLES', 'TRACES v', 'ASSESSMENTS v', 'PENDING', 'SOURCE'],
            list.map((a) => [
              a.experimentId,
              a.tablePath,
              String(a.traces?.version ?? '-'),
              String(a.assessments?.version ?? '-'),
              String((a.traces?.pendingRows ?? 0) + (a.assessments?.pendingRows ?? 0)),
              a.source,
            ]),
          ),
        );
        return 0;
      }
      default:
        throw new UsageError(cmd === undefined ? 'a command is required' : `unknown command '${cmd}'`);
    }
  });
}

function clip(s: string | null, n: number): string {
  const t = (s ?? '').replace(/\s+/g, ' ');
  return t.length <= n ? t : `${t.slice(0, n - 1)}…`;
}

/** `scorecar traces …` */
export function runTraces(argv: string[], ioIn?: Partial<CliIo>): Promise<number> {
  const io = fullIo(ioIn);
  return guarded('traces', TRACES_USAGE, argv, io, async () => {
    const { values, positionals } = parse(argv, {
      filter: { type: 'string' },
      start: { type: 'string' },
      end: { type: 'string' },
      'order-by': { type: 'string' },
      'max-results': { type: 'string' },
      'page-token': { type: 'string' },
    });
    const [cmd, ...rest] = positionals;
    const client = clientOf(values, io.env);
    const json = values.json === true;
    if (cmd === 'get') {
      if (rest.length !== 1) throw new UsageError('get: expected one trace id');
      const t = await client.getTrace(rest[0]!);
      out(io, json, t, () => {
        const lines = [`trace ${t.traceId}`];
        if (t.info) lines.push(`  ${t.info.requestTime}  ${t.info.state}  ${t.info.executionTimeMs} ms  experiment ${t.info.experimentId}`);
        for (const s of t.spans ?? []) lines.push(`  span ${String(s.spanId)} ${String(s.name)} (${String(s.kind)})`);
        for (const a of t.assessments) lines.push(`  assessment ${String(a.name)} = ${JSON.stringify(a.value)}`);
        return `${lines.join('\n')}\n`;
      });
      return 0;
    }
    if (cmd !== 'search') throw new UsageError(cmd === undefined ? 'a command is required' : `unknown command '${cmd}'`);
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    let maxResults: number | undefined;
    if (values['max-results'] !== undefined) {
      maxResults = Number(values['max-results']);
      if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 1000) throw new UsageError('--max-results: expected an integer from 1 to 1000');
    }
    const page = await client.searchTraces({
      ...(values.filter ? { filterString: values.filter } : {}),
      ...(values.start ? { startTime: values.start } : {}),
      ...(values.end ? { endTime: values.end } : {}),
      ...(values['order-by'] ? { orderBy: values['order-by'] } : {}),
      ...(maxResults !== undefined ? { maxResults } : {}),
      ...(values['page-token'] ? { pageToken: values['page-token'] } : {}),
    });
    out(io, json, page, () => {
      const t = page.traces.length === 0
        ? 'no traces\n'
        : table(
            ['TRACE', 'TIME', 'STATE', 'MS', 'ASSESSMENTS', 'REQUEST'],
            page.traces.map((x) => [x.traceId, x.requestTime, x.state, String(x.executionTimeMs), String(x.assessments.length), clip(x.requestPreview, 48)]),
          );
      return page.nextPageToken ? `${t}next page: --page-token ${page.nextPageToken}\n` : t;
    });
    return 0;
  });
}

/** One progress line: a bar, counts and the ETA. */
export function progressLine(j: BackfillResource, width = 30): string {
  const total = Math.max(1, j.tracesTotal);
  const done = Math.min(1, j.tracesScanned / total);
  const filled = Math.round(done * width);
  const eta = j.etaSeconds === null ? '' : ` eta ${j.etaSeconds}s`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(done * 100)}% ${j.tracesScanned}/${j.tracesTotal} traces, ${j.scored} scored, ${j.skipped} skipped, ${j.errors} errors ${j.state}${eta}`;
}

function parseScorer(spec: string): string | { name: string; sampleRate: number } {
  const m = /^([^:]+)(?::([0-9.]+))?$/.exec(spec);
  if (!m) throw new UsageError(`--scorer: expected NAME or NAME:RATE, got '${spec}'`);
  if (m[2] === undefined) return m[1]!;
  const rate = Number(m[2]);
  if (!(rate > 0 && rate <= 1)) throw new UsageError(`--scorer ${spec}: the rate must be in (0, 1]`);
  return { name: m[1]!, sampleRate: rate };
}

/** `scorecar backfill …` */
export function runBackfill(argv: string[], ioIn?: Partial<CliIo>): Promise<number> {
  const io = fullIo(ioIn);
  return guarded('backfill', BACKFILL_USAGE, argv, io, async () => {
    const { values, positionals } = parse(argv, {
      scorer: { type: 'string', multiple: true },
      start: { type: 'string' },
      end: { type: 'string' },
      'no-wait': { type: 'boolean' },
    });
    const [first, ...rest] = positionals;
    const cmd = first ?? 'start';
    const client = clientOf(values, io.env);
    const json = values.json === true;
    switch (cmd) {
      case 'status':
      case 'cancel': {
        if (rest.length !== 1) throw new UsageError(`${cmd}: expected one job id`);
        const j = cmd === 'status' ? await client.getBackfill(rest[0]!) : await client.cancelBackfill(rest[0]!);
        out(io, json, j, () => `${j.jobId} ${progressLine(j)}\n`);
        return 0;
      }
      case 'list': {
        const list = await client.listBackfills();
        out(io, json, { backfills: list }, () =>
          list.length === 0
            ? 'no backfills\n'
            : table(
                ['JOB', 'STATE', 'SCORERS', 'SCANNED', 'SCORED', 'SKIPPED', 'CREATED'],
                list.map((j) => [j.jobId, j.state, j.scorers.map((s) => `${s.name}@${s.version}:${s.sampleRate}`).join(','), String(j.tracesScanned), String(j.scored), String(j.skipped), j.createdAt]),
              ),
        );
        return 0;
      }
      case 'start':
        break;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    const scorers = (values.scorer ?? []).map(parseScorer);
    if (scorers.length === 0) throw new UsageError('start: give at least one --scorer NAME[:RATE]');
    let job = await client.createBackfill({
      scorers,
      ...(values.start ? { startTime: values.start } : {}),
      ...(values.end ? { endTime: values.end } : {}),
    });
    if (values['no-wait']) {
      out(io, json, job, () => `started backfill ${job.jobId}\n`);
      return 0;
    }
    if (!json) io.stdout(`backfill ${job.jobId}\n`);
    let last = '';
    while (job.state === 'pending' || job.state === 'running') {
      if (!json) {
        const line = progressLine(job);
        // A terminal gets one line redrawn in place; a pipe gets a line per change.
        if (io.tty) io.stdout(`\r${line}\u001b[K`);
        else if (line !== last) io.stdout(`${line}\n`);
        last = line;
      }
      await new Promise((r) => setTimeout(r, io.pollMs));
      job = await client.getBackfill(job.jobId);
    }
    out(io, json, job, () => `${io.tty ? '\r' : ''}${progressLine(job)}${io.tty ? '\u001b[K' : ''}\n`);
    return job.state === 'succeeded' ? 0 : 1;
  });
}
