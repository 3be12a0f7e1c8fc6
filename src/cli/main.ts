// The `scorecar` command: dispatches to sub-commands. Each sub-command lives in its own module
// and is loaded on demand so `scorecar scorers list` does not load the data plane.
import { readFileSync } from 'node:fs';

const USAGE = `scorecar — continuous scoring of production GenAI traces

Usage:
  scorecar start [--config FILE]        run the sidecar (OTLP :4317/:4318, admin :4320)
  scorecar worker [--config FILE]       score jobs from Kafka (scoring.mode kafka; metrics :4321)
  scorecar scorers <command> [...]      manage scorers on a running server
                                        (list|get|versions|register|start|update|stop|delete|stop-all|experiments)
  scorecar archival <enable|disable|status>   archive an experiment's traces to Delta tables
  scorecar traces <search|get> [...]    search archived traces, get one with its spans
  scorecar backfill [start|status|cancel|list] [...]   run scorers over archived traces
  scorecar version                      print the version
  scorecar help                         this text

Environment: SCORECAR_CONFIG (config file), SCORECAR_<SECTION>__<KEY>=value overrides any config key,
SCORECAR_ADMIN_TOKEN (admin API bearer token), SCORECAR_URL and SCORECAR_EXPERIMENT (for the scorers commands).
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  let code = 0;
  switch (cmd) {
    case 'start': {
      const { runStart } = await import('./start.ts');
      code = await runStart(rest);
      break;
    }
    case 'worker': {
      const { runWorker } = await import('./worker.ts');
      code = await runWorker(rest);
      break;
    }
    case 'scorers': {
      const { runScorers } = await import('./scorers.ts');
      code = await runScorers(rest);
      break;
    }
    case 'archival': {
      const { runArchival } = await import('./archive.ts');
      code = await runArchival(rest);
      break;
    }
    case 'traces': {
      const { runTraces } = await import('./archive.ts');
      code = await runTraces(rest);
      break;
    }
    case 'backfill': {
      const { runBackfill } = await import('./archive.ts');
      code = await runBackfill(rest);
      break;
    }
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`scorecar ${version()}\n`);
      break;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      break;
    default:
      process.stderr.write(`scorecar: unknown command '${cmd}'\n\n${USAGE}`);
      code = 2;
  }
  if (code !== 0) process.exitCode = code;
}

if (import.meta.main) {
  await main(process.argv.slice(2));
}
