// Starts the scorecar under test as its own process (`<checkout>/bin/scorecar.js start`) for the
// over-the-wire, latency and scoring benches, and reads its /metrics.
//
// The checkout is this one unless `npm run bench -- --scorecar <dir>` names another: then the
// child runs that checkout's code while the load generator, the sink, the model server and the
// Node binary stay this checkout's, so "before" and "after" can be run interleaved on one machine
// and differ only in the process being measured. (test/support/child.ts does the same for tests,
// always on this checkout; the bench keeps its own launcher so it can point elsewhere.)
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** This checkout's Node: the same runtime whichever checkout is measured. */
export const NODE = join(ROOT, 'node_modules/.bin/node');

/** The checkout whose bin/scorecar.js the benches start (set once by run.ts from --scorecar). */
export const target = { root: ROOT };

export function setTarget(dir: string): void {
  const root = resolve(dir);
  if (!existsSync(join(root, 'bin/scorecar.js'))) throw new Error(`${root}/bin/scorecar.js not found`);
  if (!existsSync(join(root, 'node_modules')))
    throw new Error(`${root} has no node_modules (run npm ci there)`);
  target.root = root;
}

export interface ChildScorecar {
  proc: ChildProcess;
  httpUrl: string;
  adminUrl: string;
  output(): string;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): number;
  /** SIGTERM and wait for the exit code. */
  terminate(): Promise<number | null>;
  kill(): void;
}

/** `yaml` is appended to a config of loopback port-0 receivers and a temporary storage dir. */
export async function startChild(yaml: string, env: Record<string, string> = {}): Promise<ChildScorecar> {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-bench-'));
  const file = join(dir, 'scorecar.yaml');
  // Port 0 everywhere: the child binds whatever is free and prints the ports in its start-up line.
  writeFileSync(
    file,
    `receivers:\n  otlp:\n    grpc: {endpoint: "127.0.0.1:0"}\n    http: {endpoint: "127.0.0.1:0"}\nadmin: {endpoint: "127.0.0.1:0"}\nstorage: {dir: "${dir}"}\n${yaml}\n`,
  );
  const proc = spawn(NODE, [join(target.root, 'bin/scorecar.js'), 'start', '--config', file], {
    cwd: dir,
    // The start-up line is logged at info: keep it whatever level the config asks for.
    env: { ...process.env, SCORECAR_LOGGING__LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let ports: RegExpExecArray | null = null;
  for (const t0 = Date.now(); ports === null; ) {
    if (proc.exitCode !== null) throw new Error(`scorecar exited early (${proc.exitCode}):\n${out}`);
    if (Date.now() - t0 > 30_000) throw new Error(`scorecar did not start in 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
    ports = /scorecar started grpc=:(\d+) http=:(\d+) admin=[^\s:]+:(\d+)/.exec(out);
  }
  const adminUrl = `http://127.0.0.1:${ports[3]}`;
  if ((await fetch(`${adminUrl}/readyz`)).status !== 200) throw new Error(`scorecar not ready:\n${out}`);
  return {
    proc,
    httpUrl: `http://127.0.0.1:${ports[2]}`,
    adminUrl,
    output: () => out,
    peakRss: () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    terminate: () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

/** One read of a Prometheus text page; `sum` adds the samples of a family matching `labels`. */
export interface MetricsPage {
  sum(name: string, labels?: Record<string, string>): number;
}

export async function readMetrics(adminUrl: string): Promise<MetricsPage> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([^{ #]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]),
    );
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    sum: (name, labels = {}) => {
      let n = 0;
      for (const s of samples)
        if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) n += s.value;
      return n;
    },
  };
}

export async function scrape(
  adminUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  return (await readMetrics(adminUrl)).sum(name, labels);
}
