// deploy/Dockerfile, checked as far as a machine without a Docker engine allows: the build
// context that .dockerignore leaves holds every file the image COPYs; the entry point is the
// `scorecar` command; and the final stage's contents, assembled the way the COPY lines say, with
// the dependencies installed by the deps stage's own RUN line (production only), start from the
// image's working directory and command, answer /readyz and the HEALTHCHECK, write nothing
// outside the data directory (a read-only root filesystem), and exit 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE } from '../support/child.ts';
import { ROOT, run, startedPorts } from '../support/deploy.ts';
import { waitFor } from '../support/scorecar.ts';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions of a Dockerfile: continuation lines joined, comments and the parser directive dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = pending + line;
    pending = '';
    const m = /^(\w+)\s+(.*)$/s.exec(full);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2]!.trim(), stage });
  }
  return out;
}

/** .dockerignore as Docker reads it: patterns in order, the last one matching a path decides. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).replace(/\/$/, '');
      const re = pat
        .split('/')
        .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    // A rule matches a path when it matches the path or a directory above it; the last rule
    // that matches decides (Docker's "matches or parent matches").
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .map((f) => join(path, f))
    .filter((f) => !statSync(f).isDirectory());
}

function execForm(args: string): string[] {
  return JSON.parse(args) as string[];
}

/** Every file under `dir` with its size and modification time, to see what a run wrote. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = lstatSync(join(dir, f));
    out.set(f, `${st.size}:${st.mtimeMs}`);
  }
  return out;
}

const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
const instructions = parseDockerfile(dockerfile);
const finalStage = Math.max(...instructions.map((i) => i.stage));
const final = instructions.filter((i) => i.stage === finalStage);
const ignored = dockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));

describe('deploy/Dockerfile', () => {
  const temps: string[] = [];
  afterAll(() => {
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  it('is multi-stage on Node 24 slim, non-root, with the ports, the stop signal and a /healthz check', () => {
    const froms = instructions.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const arg = instructions.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).toBe('NODE_IMAGE=node:24-slim');
    for (const f of froms) expect(f.args.split(/\s+/)[0]).toBe(`\${NODE_IMAGE}`);
    const user = final.filter((i) => i.op === 'USER').pop();
    expect(user?.args).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/); // a number, so runAsNonRoot can check it
    expect(final.find((i) => i.op === 'EXPOSE')?.args.split(/\s+/).sort()).toEqual(['4317', '4318', '4320']);
    expect(final.find((i) => i.op === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    expect(final.find((i) => i.op === 'HEALTHCHECK')?.args).toContain('http://127.0.0.1:4320/healthz');
    // Production dependencies only: the only install is `npm ci --omit=dev`.
    const installs = instructions.filter((i) => i.op === 'RUN' && i.args.includes('npm '));
    expect(installs).toHaveLength(1);
    expect(installs[0]!.args).toMatch(/npm ci --omit=dev/);
    expect(installs[0]!.stage).not.toBe(finalStage);
  });

  it('copies only files the build context has, and runs the `scorecar` command', () => {
    const copies = final.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    const copied: string[] = [];
    for (const c of copies) {
      const parts = c.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), `COPY ${src}`).toBe(true);
        const files = filesUnder(join(ROOT, src)).map((f) => relative(ROOT, f));
        const kept = files.filter((f) => !ignored(f));
        expect(kept.length, `.dockerignore leaves nothing of ${src}`).toBeGreaterThan(0);
        copied.push(...kept);
      }
    }
    // What the image needs at run time is in it: the CLI, its sources, the protos, the UI, the
    // Python harness, package.json (read for the version).
    for (const need of ['bin/scorecar.js', 'src/cli/main.ts', 'proto/scorecar/v1/scoring_job.proto', 'src/ui/client/main.ts', 'src/scoring/sandbox/python-harness.py', 'package.json']) {
      if (!existsSync(join(ROOT, need))) continue; // only names files that exist in this version
      expect(copied, need).toContain(need);
    }
    expect(ignored('node_modules/yaml/package.json')).toBe(true);
    expect(ignored('.cache/go/x')).toBe(true);
    expect(ignored('test/wire/api.test.ts')).toBe(true);
    // ENTRYPOINT + CMD = `node <the package's bin> start`, as `npm start` runs it.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: { scorecar: string }; scripts: { start: string } };
    const entry = execForm(final.find((i) => i.op === 'ENTRYPOINT')!.args);
    const cmd = execForm(final.find((i) => i.op === 'CMD')!.args);
    const appDir = final.filter((i) => i.op === 'WORKDIR')[0]!.args;
    expect(entry).toEqual(['node', `${appDir}/${pkg.bin.scorecar}`]);
    expect(cmd).toEqual(['start']);
    expect(pkg.scripts.start).toMatch(/ start$/);
  });

  it('installs production dependencies, starts from its working directory, passes its HEALTHCHECK, writes only data and exits 0 on SIGTERM', async () => {
    const image = mkdtempSync(join(tmpdir(), 'scorecar-image-'));
    temps.push(image);
    // The final stage's filesystem: COPY lines into their WORKDIR, the deps stage's install.
    const appDir = final.filter((i) => i.op === 'WORKDIR')[0]!.args;
    const app = join(image, appDir);
    mkdirSync(app, { recursive: true });
    for (const c of final.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const parts = c.args.split(/\s+/);
      const dest = parts.at(-1)!;
      for (const src of parts.slice(0, -1)) {
        // COPY semantics: a directory's contents go into the destination; a file goes into it
        // when it is a directory (ends with / or takes several sources), else becomes it.
        const base = join(ROOT, src);
        const isDir = statSync(base).isDirectory();
        for (const f of filesUnder(base)) {
          const rel = relative(ROOT, f);
          if (ignored(rel)) continue;
          const into = dest.endsWith('/') || parts.length > 2;
          const to = isDir ? join(app, dest, relative(base, f)) : into ? join(app, dest, src.split('/').pop()!) : join(app, dest);
          mkdirSync(dirname(to), { recursive: true });
          cpSync(f, to);
        }
      }
    }
    const deps = instructions.find((i) => i.op === 'RUN' && i.args.includes('npm ci'))!;
    const install = deps.args.split('&&')[0]!.trim().split(/\s+/);
    expect(install.slice(0, 2)).toEqual(['npm', 'ci']);
    // The machine's npm cache has every package already (the repo's own `npm ci`).
    await run('npm', [...install.slice(1), '--prefer-offline'], { cwd: app, maxBuffer: 16 << 20, timeout: 300_000 });
    expect(existsSync(join(app, 'node_modules/yaml'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false); // no dev dependency
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);

    const workdir = join(image, final.filter((i) => i.op === 'WORKDIR').pop()!.args);
    mkdirSync(workdir, { recursive: true });
    const before = snapshot(image);
    const entry = execForm(final.find((i) => i.op === 'ENTRYPOINT')!.args);
    const cmd = execForm(final.find((i) => i.op === 'CMD')!.args);
    // node -> this repo's pinned Node 24 (the image's base has its own); /app/... -> the copy.
    const argv = [...entry, ...cmd].map((a) => (a === 'node' ? NODE : a.startsWith(`${appDir}/`) ? join(app, a.slice(appDir.length + 1)) : a));
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: workdir,
      // Only the ports differ from the image: port 0, since other tests run alongside.
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        SCORECAR_RECEIVERS__OTLP__GRPC__ENDPOINT: '127.0.0.1:0',
        SCORECAR_RECEIVERS__OTLP__HTTP__ENDPOINT: '127.0.0.1:0',
        SCORECAR_ADMIN__ENDPOINT: '127.0.0.1:0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => {
        if (proc.exitCode !== null) throw new Error(`scorecar exited (${proc.exitCode}):\n${out}`);
        return startedPorts(out) !== undefined;
      }, 60_000, 'scorecar from the image layout');
      const ports = startedPorts(out)!;
      expect((await fetch(`http://127.0.0.1:${ports.admin}/readyz`)).status).toBe(200);
      // The HEALTHCHECK command itself, aimed at this instance's admin port.
      const hc = final.find((i) => i.op === 'HEALTHCHECK')!.args;
      const check = execForm(hc.slice(hc.indexOf('CMD') + 3).trim()).map((a) => a.replace(':4320/', `:${ports.admin}/`));
      const ok = await run(check[0] === 'node' ? NODE : check[0]!, check.slice(1)).then(() => 0, (e: { code: number }) => e.code);
      expect(ok).toBe(0);
      expect(await exitCode(proc.kill('SIGTERM') && exited)).toBe(0);
      const after = await run(check[0] === 'node' ? NODE : check[0]!, check.slice(1)).then(() => 0, (e: { code: number }) => e.code);
      expect(after).toBe(1); // and it notices when scorecar is gone
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    // Read-only root filesystem: everything written is under the working directory (the volume).
    const written = [...snapshot(image)].filter(([f, v]) => before.get(f) !== v).map(([f]) => f);
    expect(written.length).toBeGreaterThan(0); // the stores were created
    const volume = relative(image, workdir);
    expect(written.filter((f) => f !== volume && !f.startsWith(`${volume}/`))).toEqual([]);
    expect(out).not.toMatch(/ERROR/);
  }, 300_000);
});

function exitCode(p: Promise<number | null> | false): Promise<number | null> {
  return p === false ? Promise.resolve(-1) : p;
}
