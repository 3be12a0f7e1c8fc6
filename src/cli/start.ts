// `scorecar start`: load and validate the config, build the pipeline, run until SIGTERM/SIGINT.
export async function runStart(_argv: string[]): Promise<number> {
  process.stderr.write('scorecar start: not available yet\n');
  return 2;
}
