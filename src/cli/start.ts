// `scorecar start`: load and validate the config, build the pipeline, run until SIGTERM/SIGINT,
// then stop gracefully (stop accepting, complete buffered traces, drain the exporter) and exit 0.
import { parseArgs } from 'node:util';
import { runUntilSignalled } from '../app.ts';
import { type Config, ConfigError, loadConfig } from '../config/index.ts';

const HELP = `Usage: scorecar start [--config FILE] [--shutdown-timeout MS]

  --config FILE            YAML config (default: $SCORECAR_CONFIG, else the embedded defaults)
  --shutdown-timeout MS    how long SIGTERM may take to drain the exporter (default 10000)
`;

export async function runStart(argv: string[]): Promise<number> {
  let values: { config?: string; 'shutdown-timeout'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'shutdown-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`scorecar start: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const file = values.config ?? process.env.SCORECAR_CONFIG;
  let config: Config;
  try {
    config = loadConfig({ file });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`scorecar: ${e.message}\n`);
      return 78; // EX_CONFIG
    }
    throw e;
  }
  const shutdownMs = Number(values['shutdown-timeout'] ?? 10_000);
  return runUntilSignalled(config, shutdownMs);
}
