// MLflow 3.18 from the repo-managed venv (scripts/python-venv.sh mlflow), for the tests that drive
// scorecar with MLflow's own Python SDK and use a real `mlflow server` as a destination. Set up
// once per test process. Without Python the tests are skipped locally, but fail under CI=true:
// CI must never pass by skipping them.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

let venv: Promise<string | undefined> | undefined;

/** The venv's python, or undefined when it cannot be set up (and CI is not set). */
export function mlflowPython(): Promise<string | undefined> {
  venv ??= run('bash', [`${ROOT}scripts/python-venv.sh`, 'mlflow'], { maxBuffer: 1 << 20, timeout: 900_000 }).then(
    (r) => r.stdout.trim().split('\n').pop(),
    (e: Error & { stderr?: string }) => {
      const why = `cannot set up the MLflow venv (scripts/python-venv.sh mlflow): ${e.stderr ?? e.message}`;
      if (process.env.CI === 'true') throw new Error(why);
      console.warn(`${why}\nskipping the MLflow tests (they fail under CI=true)`);
      return undefined;
    },
  );
  return venv;
}

/**
 * Runs one of test/support/mlflow/*.py with the MLflow SDK pointed at `trackingUri` (through the
 * environment, as a user would: the scripts themselves name no URI) and returns its JSON report.
 */
export async function runMlflowScript(
  python: string,
  script: string,
  trackingUri: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await run(python, [join(ROOT, 'test/support/mlflow', script), ...args], {
      maxBuffer: 64 << 20,
      timeout: 600_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        MLFLOW_TRACKING_URI: trackingUri,
        // MLflow's client refuses to rebuild an @scorer it reads back from any server but
        // Databricks unless this is set (mlflow/genai/scorers/base.py); MLflow's own server needs it too.
        MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS: 'true',
        // No telemetry or version checks from the client: the tests run offline.
        MLFLOW_DISABLE_TELEMETRY: 'true',
        DO_NOT_TRACK: 'true',
        PYTHONWARNINGS: 'ignore',
        ...env,
      },
    });
    const last = stdout.trim().split('\n').pop() ?? '{}';
    return JSON.parse(last) as Record<string, unknown>;
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    throw new Error(`${script} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface MlflowServer {
  url: string;
  close(): Promise<void>;
}

/** A real `mlflow server` with a SQLite backend in a temporary directory; resolves once it answers. */
export async function startMlflowServer(python: string, atPort?: number): Promise<MlflowServer> {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-mlflow-'));
  const port = atPort ?? (await freePort());
  const child: ChildProcess = spawn(
    join(dirname(python), 'mlflow'),
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--backend-store-uri',
      `sqlite:///${join(dir, 'mlflow.db')}`,
      '--default-artifact-root',
      join(dir, 'artifacts'),
      '--workers',
      '1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' } },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mlflow server exited (${code}): ${stderr}`))));
  const ready = (async () => {
    // Polls /health until the server answers: it takes seconds to start (database migrations).
    for (;;) {
      try {
        const r = await fetch(`${url}/health`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await Promise.race([ready, exited]);
  return {
    url,
    close: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
