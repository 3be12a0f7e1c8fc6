// `scorecar scorers …` as a user runs it (node bin/scorecar.js in a child process) against a
// real admin server on loopback: the lifecycle, tables and --json, errors and exit codes.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../../src/registry/index.ts';
import { startAdmin, type TestAdmin } from '../support/admin.ts';
import type { Scorer } from '../../src/definitions/index.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const BIN = join(ROOT, 'bin/scorecar.js');
const TOKEN = 'cli-token';

let admin: TestAdmin;
let dir: string;
let registry: Registry;
let url: string;

beforeAll(async () => {
  admin = await startAdmin({ token: TOKEN });
  ({ dir, registry, url } = admin);
});
afterAll(async () => {
  await admin.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Async (the server runs in this process and must keep answering). */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const base: Record<string, string | undefined> = {
    ...process.env,
    SCORECAR_URL: url,
    SCORECAR_ADMIN_TOKEN: TOKEN,
    SCORECAR_EXPERIMENT: 'cli-exp',
    ...env,
  };
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
  return new Promise((done) => {
    execFile(
      NODE,
      [BIN, 'scorers', ...args],
      { env: base as NodeJS.ProcessEnv, cwd: ROOT },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

function json<T>(r: Run): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('scorecar scorers: lifecycle', () => {
  it('register → start(0.7) → update(0.8) → stop → start again → versions → delete', async () => {
    const reg = await cli(['register', 'safety_check', '--builtin', 'safety']);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stdout).toBe('registered cli-exp/safety_check version 1: status registered, sample rate 0\n');

    const started = json<Scorer>(
      await cli([
        'start',
        'safety_check',
        '--sample-rate',
        '0.7',
        '--filter',
        "trace.status = 'OK'",
        '--json',
      ]),
    );
    expect(started).toMatchObject({ sampleRate: 0.7, status: 'active', filterString: "trace.status = 'OK'" });
    expect(registry.activeFor('cli-exp').map((s) => [s.name, s.sampleRate])).toEqual([['safety_check', 0.7]]);

    const updated = await cli(['update', 'safety_check', '--sample-rate', '0.8']);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toMatch(
      /^updated cli-exp\/safety_check version 1: status active, sample rate 0\.8, filter trace\.status = 'OK'$/m,
    );

    const stopped = json<Scorer>(await cli(['stop', 'safety_check', '--json']));
    expect(stopped).toMatchObject({ sampleRate: 0, status: 'stopped' });

    const table = await cli(['list']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+VERSION\s+STATUS\s+RATE\s+TYPE\s+FILTER\s+UPDATED$/);
    expect(lines[1]).toMatch(
      /^safety_check\s+1\s+stopped\s+0\s+builtin:safety\s+trace\.status = 'OK'\s+\d{4}-/,
    );

    expect(json<Scorer>(await cli(['start', 'safety_check', '--sample-rate', '0.5', '--json'])).status).toBe(
      'active',
    );

    const def = join(dir, 'def.json');
    writeFileSync(def, JSON.stringify({ type: 'builtin', judge: 'safety', model: 'openai:/gpt-4.1-mini' }));
    expect(
      json<Scorer>(await cli(['register', 'safety_check', '--definition', `@${def}`, '--json'])).version,
    ).toBe(2);
    const versions = json<{ versions: Scorer[] }>(await cli(['versions', 'safety_check', '--json']));
    expect(versions.versions.map((v) => v.version)).toEqual([1, 2]);
    const v1 = await cli(['get', 'safety_check', '--version', '1']);
    expect(v1.stdout).toMatch(/^version:\s+1$/m);
    expect(v1.stdout).toMatch(/"judge": "safety"/);

    const del = await cli(['delete', 'safety_check', '--version', '1']);
    expect(del.stdout).toBe('deleted cli-exp/safety_check version 1\n');
    const delAll = json<{ nameRemoved: boolean }>(await cli(['delete', 'safety_check', '--json']));
    expect(delAll.nameRemoved).toBe(true);
    const empty = await cli(['list']);
    expect(empty.stdout).toBe('no scorers\n');
  });

  it('registers guidelines and code scorers from flags, in the experiment given by -e', async () => {
    const g = json<Scorer>(
      await cli([
        'register',
        'is_english',
        '-e',
        'other',
        '--guidelines',
        'The response must be in English',
        '--json',
      ]),
    );
    expect(g).toMatchObject({
      experimentId: 'other',
      definition: { type: 'guidelines', guidelines: ['The response must be in English'] },
    });
    const src = join(dir, 'len.js');
    writeFileSync(src, "({ outputs }) => String(outputs?.response ?? '').length");
    const c = json<Scorer>(
      await cli([
        'register',
        'response_length',
        '--experiment',
        'other',
        '--code',
        `@${src}`,
        '--aggregations',
        'mean,min,max',
        '--json',
      ]),
    );
    expect(c.definition).toEqual({
      type: 'code',
      source: "({ outputs }) => String(outputs?.response ?? '').length",
      aggregations: ['mean', 'min', 'max'],
    });
    const kill = json<{ stopped: Scorer[] }>(await cli(['stop-all', '-e', 'other', '--json']));
    expect(kill.stopped).toEqual([]);
    const ex = await cli(['experiments']);
    expect(ex.stdout).toMatch(/^other\s+2\s+0\s+\d{4}-/m);
  });
});

describe('scorecar scorers: errors and exit codes', () => {
  it('exit 1 with the server code when refused; the store is unchanged', async () => {
    await cli(['register', 'victim', '--builtin', 'safety']);
    const before = await registry.store.dump();
    const bad = await cli(['start', 'victim', '--sample-rate', '0.5', '--filter', 'trace.status =']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^scorecar scorers: INVALID_FILTER: /);
    expect(bad.stderr).toMatch(/at position \d+/);
    const zero = await cli(['start', 'victim', '--sample-rate', '0']);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toMatch(/INVALID_ARGUMENT/);
    const missing = await cli(['get', 'nobody', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr).error.code).toBe('NOT_FOUND');
    const def = await cli([
      'register',
      'p',
      '--definition',
      '{"type":"prompt","promptTemplate":"no choices"}',
    ]);
    expect(def.code).toBe(1);
    expect(def.stderr).toMatch(/INVALID_DEFINITION: .*definition/);
    const auth = await cli(['list', '--token', 'wrong']);
    expect(auth.code).toBe(1);
    expect(auth.stderr).toMatch(/UNAUTHENTICATED/);
    expect(await registry.store.dump()).toEqual(before);
  });

  it('exit 2 for usage errors, 3 when the server cannot be reached', async () => {
    const cases: string[][] = [
      ['frobnicate'],
      ['list', '--bogus'],
      ['start', 'victim'],
      ['start', 'victim', '--sample-rate', 'lots'],
      ['register', 'x'],
      ['register', 'x', '--definition', '{not json'],
      ['get'],
      ['list', 'extra'],
      ['stop', 'victim', '--sample-rate', '1'],
      ['update', 'victim', '--filter', 'a', '--no-filter'],
    ];
    for (const args of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^scorecar scorers: /);
    }
    const down = await cli(['list'], { SCORECAR_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/DOWNSTREAM_UNAVAILABLE: cannot reach scorecar at http:\/\/127\.0\.0\.1:1/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: scorecar scorers <command>/);
  });
});
