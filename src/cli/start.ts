// `scorecar start`: load and validate the config, build the pipeline, run until SIGTERM/SIGINT,
// then stop gracefully (stop accepting, complete buffered traces, drain the exporter) and exit 0.
import { runUntilSignalled } from '../app.ts';
import { loadRunConfig, parseRunArgs } from './run-args.ts';

const HELP = `Usage: scorecar start [--config FILE] [--shutdown-timeout MS]

  --config FILE            YAML config (default: $SCORECAR_CONFIG, else the embedded defaults)
  --shutdown-timeout MS    how long SIGTERM may take to drain the exporter (default 10000)
`;

export async function runStart(argv: string[]): Promise<number> {
  const args = parseRunArgs('start', argv, HELP);
  if (typeof args === 'number') return args;
  const config = loadRunConfig({ file: args.configFile });
  if (typeof config === 'number') return config;
  return runUntilSignalled(config, args.shutdownMs);
}
