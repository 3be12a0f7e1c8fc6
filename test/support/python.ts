// The repo-managed Python venv with independent Delta readers (scripts/python-venv.sh), for
// tests that read scorecar's archive tables with delta-rs and DuckDB. Set up once per test
// process. Without Python the tests that need it are skipped locally, but fail under CI=true:
// CI must never pass by skipping them.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

let venv: Promise<string | undefined> | undefined;

/** Parsed JSON from a reader or the API: its shape is what the assertions check. */
// biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked field by field by the tests
export type Json = any;

/** The venv's python, or undefined when it cannot be set up (and CI is not set). */
export function deltaPython(): Promise<string | undefined> {
  venv ??= run('bash', [`${ROOT}scripts/python-venv.sh`], { maxBuffer: 1 << 20, timeout: 600_000 }).then(
    (r) => r.stdout.trim().split('\n').pop(),
    (e: Error & { stderr?: string }) => {
      const why = `cannot set up the Python venv with the Delta readers (scripts/python-venv.sh): ${e.stderr ?? e.message}`;
      if (process.env.CI === 'true') throw new Error(why);
      console.warn(`${why}\nskipping the tests that read archive tables with Python (they fail under CI=true)`);
      return undefined;
    },
  );
  return venv;
}

/** Runs test/support/delta_read.py with a spec and returns its JSON. */
export async function readDelta(python: string, spec: Record<string, unknown>): Promise<Record<string, Json>> {
  const { stdout } = await run(python, [`${ROOT}test/support/delta_read.py`, JSON.stringify(spec)], {
    maxBuffer: 512 << 20,
    timeout: 300_000,
  });
  return JSON.parse(stdout) as Record<string, Json>;
}
