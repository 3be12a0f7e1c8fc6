// A real Kafka broker for tests (scripts/kafka-broker.sh): the run's shared one, or a test's own
// when it must restart the broker. A test that needs Kafka and cannot get it fails, never skips.
// Topics are named per test (uniqueTopic), so files sharing the broker do not see each other.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { runService } from './run-service.ts';
import { waitFor } from './scorecar.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/kafka-broker.sh', import.meta.url));
/** A busy 2-core machine has taken 20 s to start a broker; the script itself waits up to 90 s. */
export const BROKER_START_MS = 150_000;

export interface Broker {
  bootstrap: string;
  dir: string;
}

async function startIn(dir: string, env: Record<string, string> = {}): Promise<Broker> {
  try {
    const { stdout } = await run('bash', [SCRIPT, 'start', dir], {
      env: { ...process.env, ...env },
      timeout: BROKER_START_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    const m = /bootstrap=(\S+)/.exec(stdout);
    if (!m) throw new Error(`no bootstrap line in: ${stdout}`);
    return { bootstrap: m[1]!, dir };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `cannot start a Kafka broker (scripts/kafka-broker.sh): ${err.message}\n${err.stderr ?? ''}`,
    );
  }
}

let shared: Promise<string> | undefined;

/**
 * The broker shared by this run: KAFKA_BOOTSTRAP when set, else the one the first test file
 * started (a lock directory decides which file starts it; the others wait for its address).
 */
export function sharedBroker(): Promise<string> {
  shared ??= (async () => {
    const env = process.env.KAFKA_BOOTSTRAP;
    if (env) return env;
    return runService({ runDir: inject('kafkaRunDir'), what: 'Kafka broker', startMs: BROKER_START_MS, dirName: 'broker', start: async (dir) => (await startIn(dir)).bootstrap });
  })();
  return shared;
}

/** A broker of the test's own (for restarts): start, stop and start again on the same ports and data. */
export class OwnBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'scorecar-kafka-own-'));
  bootstrap = '';
  private readonly env: Record<string, string>;

  constructor(env: Record<string, string> = {}) {
    this.env = env;
  }

  async start(): Promise<string> {
    this.bootstrap = (await startIn(this.dir, this.env)).bootstrap;
    return this.bootstrap;
  }

  async stop(): Promise<void> {
    await run('bash', [SCRIPT, 'stop', this.dir], { timeout: 60_000 });
  }

  async clean(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let seq = 0;
/** A topic name no other test uses. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

export interface WorkerChild {
  proc: import('node:child_process').ChildProcess;
  metricsUrl: string;
  output(): string;
  /** SIGTERM and wait for the exit code. */
  terminate(): Promise<number | null>;
  /** SIGKILL (no goodbye to the group, nothing committed beyond what was). */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Runs `scorecar worker` as its own process on a config file (the real CLI, real signals). */
export async function startWorker(yaml: string, env: Record<string, string> = {}): Promise<WorkerChild> {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-worker-'));
  const file = join(dir, 'scorecar.yaml');
  writeFileSync(file, `storage: {dir: "${dir}"}\n${yaml}\n`);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const proc = spawn(
    join(root, 'node_modules/.bin/node'),
    [join(root, 'bin/scorecar.js'), 'worker', '--config', file],
    {
      cwd: dir,
      env: {
        ...process.env,
        SCORECAR_LOGGING__LEVEL: 'info',
        SCORECAR_KAFKA__WORKER__METRICS_ENDPOINT: '127.0.0.1:0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let port = '';
  await waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`scorecar worker exited early (${proc.exitCode}):\n${out}`);
      const m = /scorecar worker started .*metrics=:(\d+)/.exec(out);
      if (m) port = m[1]!;
      return m !== null;
    },
    60_000,
    'the scorecar worker to start',
  );
  return {
    proc,
    metricsUrl: `http://127.0.0.1:${port}`,
    output: () => out,
    terminate: () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}
