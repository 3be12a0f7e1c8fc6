// What `scorecar start` and `scorecar worker` share before they run: their options and the config.
import { parseArgs } from 'node:util';
import { type Config, ConfigError, type LoadOptions, loadConfig } from '../config/index.ts';

export interface RunArgs {
  /** --config FILE, else $SCORECAR_CONFIG (else the embedded defaults). */
  configFile: string | undefined;
  /** --shutdown-timeout MS: how long a SIGTERM may take. */
  shutdownMs: number;
}

/**
 * Parses `[--config FILE] [--shutdown-timeout MS] [--help]`. A number is the exit code to return
 * at once: 0 after --help, 2 (usage) for an unknown option or a timeout that is not a count of ms.
 */
export function parseRunArgs(command: string, argv: string[], help: string): RunArgs | number {
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
    process.stderr.write(`scorecar ${command}: ${(e as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const timeout = values['shutdown-timeout'] ?? '10000';
  if (!/^\d+$/.test(timeout)) {
    process.stderr.write(`scorecar ${command}: --shutdown-timeout expects milliseconds, got '${timeout}'\n\n${help}`);
    return 2;
  }
  return { configFile: values.config ?? process.env.SCORECAR_CONFIG, shutdownMs: Number(timeout) };
}

/**
 * Loads and validates the config (and `check`s what the command itself needs, by throwing a
 * ConfigError). A config error is printed with every key path and gives 78 (EX_CONFIG).
 */
export function loadRunConfig(opts: LoadOptions, check?: (config: Config) => void): Config | number {
  try {
    const config = loadConfig(opts);
    check?.(config);
    return config;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`scorecar: ${e.message}\n`);
      return 78; // EX_CONFIG
    }
    throw e;
  }
}
