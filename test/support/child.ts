// Runs `scorecar start` as a separate process (real CLI, real signals) for tests that need its
// own memory figures or its exit behaviour.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './scorecar.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const NODE = join(ROOT, 'node_modules/.bin/node');

export interface ChildScorecar {
  proc: ChildProcess;
  /** Its storage.dir (the SQLite files). */
  dir: string;
  httpUrl: string;
  grpcUrl: string;
  adminUrl: string;
  output(): string;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): number;
  rss(): number;
  /** SIGTERM and wait for the exit code. */
  terminate(): Promise<number | null>;
  kill(): void;
}

export async function startChild(yaml: string, env: Record<string, string> = {}): Promise<ChildScorecar> {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-child-'));
  const file = join(dir, 'scorecar.yaml');
  // Port 0 everywhere: the child binds whatever is free and says which ports it got in its
  // start-up line (picking free ports here and passing them on races with other tests).
  writeFileSync(
    file,
    `receivers:\n  otlp:\n    grpc: {endpoint: "127.0.0.1:0"}\n    http: {endpoint: "127.0.0.1:0"}\nadmin: {endpoint: "127.0.0.1:0"}\nstorage: {dir: "${dir}"}\n${yaml}\n`,
  );
  const proc = spawn(NODE, [join(ROOT, 'bin/scorecar.js'), 'start', '--config', file], {
    cwd: dir,
    // The start-up line is logged at info: keep it whatever level the config asks for.
    env: { ...process.env, SCORECAR_LOGGING__LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let ports: RegExpExecArray | null = null;
  await waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`scorecar exited early (${proc.exitCode}):\n${out}`);
      ports = /scorecar started grpc=:(\d+) http=:(\d+) admin=[^\s:]+:(\d+)/.exec(out);
      return ports !== null;
    },
    30_000,
    'scorecar child to be ready',
  );
  const [, grpcPort, httpPort, adminPort] = ports as unknown as RegExpExecArray;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  if ((await fetch(`${adminUrl}/readyz`)).status !== 200)
    throw new Error(`scorecar child not ready:\n${out}`);
  const status = (key: string): number => {
    try {
      const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  };
  return {
    proc,
    dir,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    grpcUrl: `127.0.0.1:${grpcPort}`,
    adminUrl,
    output: () => out,
    peakRss: () => status('VmHWM'),
    rss: () => status('VmRSS'),
    terminate: () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

export { scrape } from './metrics.ts';
