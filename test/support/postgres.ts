// A real PostgreSQL server for tests (scripts/postgres.sh): the run's shared one, or a test's
// own when it must restart or kill the server. A test that needs PostgreSQL and cannot get it
// fails, never skips. Tests share the server through a schema each (storage.postgres.schema),
// so files and tests never see each other's rows.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { inject } from 'vitest';
import { PostgresDatabase } from '../../src/postgres/index.ts';
import { runService } from './run-service.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/postgres.sh', import.meta.url));
/** initdb + start take 1-2 s here; a busy 2-core machine may take much longer. */
export const SERVER_START_MS = 90_000;

async function startIn(dir: string): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, 'start', dir], { timeout: SERVER_START_MS });
    const m = /url=(\S+)/.exec(stdout);
    if (!m) throw new Error(`no url line in: ${stdout}`);
    return m[1]!;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`cannot start PostgreSQL (scripts/postgres.sh): ${err.message}\n${err.stderr ?? ''}`);
  }
}

let shared: Promise<string> | undefined;

/**
 * The server shared by this run: SCORECAR_TEST_POSTGRES_URL when set, else the one the first
 * test file started (a lock directory decides which file starts it; the others wait for its URL).
 */
export function sharedPostgres(): Promise<string> {
  shared ??= (async () => {
    const env = process.env.SCORECAR_TEST_POSTGRES_URL;
    if (env) return env;
    return runService({ runDir: inject('postgresRunDir'), what: 'PostgreSQL server', startMs: SERVER_START_MS, dirName: 'server', start: startIn });
  })();
  return shared;
}

let seq = 0;
/** A schema name no other test uses. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++seq}`.toLowerCase();
}

/** A database handle on the shared server in a schema of its own (dropped by drop()). */
export async function freshDatabase(): Promise<{
  db: PostgresDatabase;
  url: string;
  schema: string;
  drop(): Promise<void>;
}> {
  const url = await sharedPostgres();
  const schema = uniqueSchema();
  const db = await PostgresDatabase.open({ url, schema, poolSize: 4 });
  return {
    db,
    url,
    schema,
    drop: async () => {
      await db.close();
      await dropSchema(url, schema);
    },
  };
}

/** Removes a test's schema (and everything in it). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

/** A server of the test's own: start, stop (or kill) and start again on the same port and data. */
export class OwnPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'scorecar-pg-own-'));
  url = '';

  async start(): Promise<string> {
    this.url = await startIn(join(this.dir, 'server'));
    return this.url;
  }

  /** Fast shutdown: sessions ended, committed data on disk. */
  async stop(): Promise<void> {
    await run('bash', [SCRIPT, 'stop', join(this.dir, 'server')], { timeout: 60_000 });
  }

  /** SIGKILL of the server and its backends: a crash. */
  async kill(): Promise<void> {
    await run('bash', [SCRIPT, 'kill', join(this.dir, 'server')], { timeout: 60_000 });
  }

  async clean(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
