// One PostgreSQL database shared by every store of a scorecar process (registry, assessments,
// backfill jobs, judge budgets) when storage.postgres.url is set: one pool (pure-JS `pg`, no
// native addon), versioned migrations applied under an advisory lock, LISTEN with reconnection,
// and a connectivity state for /readyz.
//
// Errors: a connection that cannot be made or was lost becomes STORE_UNAVAILABLE (retryable: the
// callers retry, buffer or refuse with 503); anything else PostgreSQL reports is INTERNAL with
// the server's message, except what a store maps itself (a unique violation, a lock timeout).
import pg from 'pg';
import { errorFields, type Logger, type MetricsRegistry, ScorecarError, silentLogger } from '../util/index.ts';

export interface PostgresOptions {
  /** postgres://user:password@host:port/database?sslmode=... (libpq URL form). */
  url: string;
  /**
   * Schema the tables live in (created when missing). Several scorecar deployments can share one
   * database with a schema each; tests use one per test.
   */
  schema?: string;
  /** Connections in the pool. */
  poolSize?: number;
  /** How long a connection attempt may take. */
  connectTimeoutMs?: number;
  /** Statements running longer are cancelled by the server. */
  statementTimeoutMs?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  logger?: Logger;
  metrics?: MetricsRegistry;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** What a transaction body gets: queries on the transaction's one connection. */
export interface Tx {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // PostgreSQL: connection exceptions, the server shutting down or starting, too many clients.
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** Whether an error means the database could not be reached (rather than a refused statement). */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof ScorecarError) return e.code === 'STORE_UNAVAILABLE';
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const msg = (e as Error | null)?.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|Client was closed/i.test(
    msg,
  );
}

/** PostgreSQL's SQLSTATE of an error, when it has one. */
export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Redacts the password of a URL for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/** FNV-1a of a string as a signed 32-bit integer: advisory lock keys per schema. */
function key32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

export class PostgresDatabase {
  readonly schema: string;
  readonly url: string;
  readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly opts: PostgresOptions;
  private closed = false;
  private lastError: { at: number; message: string } | undefined;
  private lastOk = 0;
  private readonly listeners: Listener[] = [];
  private probe: NodeJS.Timeout | undefined;

  private constructor(opts: PostgresOptions) {
    this.opts = opts;
    this.url = opts.url;
    this.schema = opts.schema ?? 'public';
    if (!IDENT.test(this.schema)) {
      throw new ScorecarError('CONFIG_INVALID', `storage.postgres.schema: '${this.schema}' is not a plain lower-case identifier`);
    }
    this.log = opts.logger ?? silentLogger;
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      application_name: opts.applicationName ?? 'scorecar',
      // Every connection resolves unqualified table names in our schema.
      options: `-c search_path=${this.schema}`,
      ...(opts.statementTimeoutMs ? { statement_timeout: opts.statementTimeoutMs } : {}),
      keepAlive: true,
    });
    // An idle client whose connection drops (a database restart) emits here; without a listener
    // the process would die. The pool discards it and connects a new one on the next query.
    this.pool.on('error', (e) => this.noteError(e));
    const m = opts.metrics;
    m?.gauge('scorecar_postgres_pool_connections', 'PostgreSQL pool connections by state', ['state'], () => [
      [{ state: 'total' }, this.pool.totalCount],
      [{ state: 'idle' }, this.pool.idleCount],
      [{ state: 'waiting' }, this.pool.waitingCount],
    ]);
    m?.gauge('scorecar_postgres_up', 'Whether the last PostgreSQL round trip succeeded (1) or failed (0)', [], () =>
      this.connected() ? 1 : 0,
    );
  }

  /** Connects (failing fast when the database cannot be reached) and creates the schema. */
  static async open(opts: PostgresOptions): Promise<PostgresDatabase> {
    const db = new PostgresDatabase(opts);
    try {
      await db.query(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`);
    } catch (e) {
      await db.pool.end().catch(() => undefined);
      throw e;
    }
    return db;
  }

  private noteError(e: unknown): void {
    if (!isConnectionError(e)) return;
    if (!this.lastError || this.lastOk > this.lastError.at) {
      this.log.warn('PostgreSQL connection lost', { err: errorFields(e) });
    }
    this.lastError = { at: Date.now(), message: (e as Error).message ?? String(e) };
  }
  private noteOk(): void {
    if (this.lastError && this.lastOk <= this.lastError.at) this.log.info('PostgreSQL reachable again');
    this.lastOk = Date.now();
  }

  /** Whether the most recent round trip (of any store) succeeded. */
  connected(): boolean {
    return this.lastError === undefined || this.lastOk > this.lastError.at;
  }

  /** Maps a driver error to the error table (see the file comment). */
  mapError(e: unknown, what: string): unknown {
    if (e instanceof ScorecarError) return e;
    if (this.closed) return new ScorecarError('SHUTTING_DOWN', `the ${what} is closed`);
    if (isConnectionError(e)) {
      this.noteError(e);
      return new ScorecarError('STORE_UNAVAILABLE', `the ${what} (PostgreSQL ${redactUrl(this.url)}) cannot be reached: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const state = sqlState(e);
    // serialization_failure, deadlock_detected, lock_not_available: another writer won a race.
    if (state === '40001' || state === '40P01' || state === '55P03') {
      return new ScorecarError('OVERLOADED', `the ${what} is busy (${(e as Error).message})`, { cause: e });
    }
    return new ScorecarError('INTERNAL', `${what} error: ${(e as Error).message ?? String(e)}`, { cause: e });
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], what = 'store'): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new ScorecarError('SHUTTING_DOWN', `the ${what} is closed`);
    try {
      const r = await this.pool.query<R>(sql, params);
      this.noteOk();
      return r;
    } catch (e) {
      throw this.mapError(e, what);
    }
  }

  /**
   * Runs fn in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it
   * throws (what it threw is rethrown, mapped). A connection lost mid-way rolls back on the server.
   */
  async tx<T>(fn: (tx: Tx) => Promise<T>, what = 'store'): Promise<T> {
    if (this.closed) throw new ScorecarError('SHUTTING_DOWN', `the ${what} is closed`);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e, what);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn({ query: (sql, params) => client.query(sql, params) });
      await client.query('COMMIT');
      this.noteOk();
      return result;
    } catch (e) {
      if (isConnectionError(e)) broken = e;
      else await client.query('ROLLBACK').catch((r: unknown) => (broken = r));
      throw this.mapError(e, what);
    } finally {
      // A connection in an unknown state is not handed to the next caller.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /** A lock key unique to this schema and purpose (pg_advisory_lock takes a 64-bit pair). */
  lockKey(purpose: string): [number, number] {
    return [key32(`scorecar:${this.schema}`), key32(purpose)];
  }

  /**
   * Applies the pending migrations of one component, in order, each in its own transaction,
   * while holding a session advisory lock: replicas starting together apply each migration once
   * (the second waits, then finds it applied). Refuses a database whose schema is newer than
   * this build knows (a rollback to an older scorecar must not write into a newer schema).
   */
  async migrate(component: string, migrations: readonly Migration[]): Promise<void> {
    const what = `${component} store`;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e, what);
    }
    const [k1, k2] = this.lockKey('migrations');
    let broken: Error | undefined;
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [k1, k2]);
      try {
        await client.query(`CREATE TABLE IF NOT EXISTS scorecar_migrations (
          component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
          applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (component, version))`);
        const { rows } = await client.query<{ v: number }>(
          'SELECT COALESCE(MAX(version), 0)::int AS v FROM scorecar_migrations WHERE component = $1',
          [component],
        );
        const current = rows[0]!.v;
        const known = migrations[migrations.length - 1]?.version ?? 0;
        if (current > known) {
          throw new ScorecarError(
            'FAILED_PRECONDITION',
            `the ${component} schema in PostgreSQL (${this.schema}) is at version ${current}, newer than this scorecar knows (${known}); upgrade scorecar`,
          );
        }
        for (const m of migrations) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query('INSERT INTO scorecar_migrations (component, version, name) VALUES ($1, $2, $3)', [component, m.version, m.name]);
            await client.query('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
          this.log.info('schema migration applied', { component, version: m.version, name: m.name, schema: this.schema });
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [k1, k2]).catch((e: unknown) => {
          broken = e as Error;
        });
      }
      this.noteOk();
    } catch (e) {
      if (isConnectionError(e)) broken = e as Error;
      throw this.mapError(e, what);
    } finally {
      client.release(broken);
    }
  }

  /**
   * Runs fn holding a session advisory lock (on a connection of its own, kept for the duration):
   * one holder per schema and purpose across every replica.
   */
  async withLock<T>(purpose: string, fn: () => Promise<T>, what = 'store'): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e, what);
    }
    const [k1, k2] = this.lockKey(purpose);
    let broken: Error | undefined;
    try {
      try {
        await client.query('SELECT pg_advisory_lock($1, $2)', [k1, k2]);
      } catch (e) {
        broken = e as Error;
        throw this.mapError(e, what);
      }
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [k1, k2]).catch((e: unknown) => {
          broken = e as Error;
        });
      }
    } finally {
      client.release(broken);
    }
  }

  /** Applied migrations of a component, oldest first. */
  async migrations(component: string): Promise<Array<{ version: number; name: string }>> {
    const { rows } = await this.query<{ version: number; name: string }>(
      'SELECT version, name FROM scorecar_migrations WHERE component = $1 ORDER BY version',
      [component],
    );
    return rows;
  }

  /** The channel name of a purpose in this schema (NOTIFY channels are database-wide). */
  channel(purpose: string): string {
    return `scorecar_${purpose}_${this.schema}`;
  }

  /**
   * LISTENs on a channel over a dedicated connection, reconnecting with backoff when it drops.
   * onNotify gets every notification; onResync is called after each reconnection, because
   * notifications sent while the connection was down are lost: the caller re-reads (polls) once.
   */
  async listen(channel: string, onNotify: (payload: string) => void, onResync: () => void): Promise<() => void> {
    const l = new Listener(this, channel, onNotify, onResync, this.log);
    this.listeners.push(l);
    // Resolves once listening (read after this, and nothing is missed) or after the first
    // attempt failed (the listener keeps trying, and resyncs when it gets through).
    await l.start();
    return () => {
      l.stop();
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** A dedicated client (not from the pool), for LISTEN. */
  newClient(): pg.Client {
    return new pg.Client({
      connectionString: this.opts.url,
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 5_000,
      application_name: `${this.opts.applicationName ?? 'scorecar'}-listen`,
      options: `-c search_path=${this.schema}`,
      keepAlive: true,
    });
  }

  /** One round trip, for /readyz: resolves true or false within timeoutMs. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.query('SELECT 1', [], 'database').then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => {
            // No answer at all (a hung network) counts as unreachable too.
            this.noteError(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
            r(false);
          }, timeoutMs);
        }),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Pings every intervalMs while nothing else talks to the database, so connected() (and
   * /readyz) follows the database even when idle.
   */
  startProbe(intervalMs = 2_000): void {
    if (this.probe || this.closed) return;
    this.probe = setInterval(() => {
      if (Date.now() - Math.max(this.lastOk, this.lastError?.at ?? 0) < intervalMs) return;
      void this.ping(intervalMs);
    }, intervalMs);
    this.probe.unref();
  }

  /** What /healthz shows. */
  status(): { kind: 'postgres'; url: string; schema: string; connected: boolean; lastError?: string } {
    return {
      kind: 'postgres',
      url: redactUrl(this.url),
      schema: this.schema,
      connected: this.connected(),
      ...(this.connected() || !this.lastError ? {} : { lastError: this.lastError.message }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.probe);
    for (const l of this.listeners.splice(0)) l.stop();
    await this.pool.end().catch(() => undefined);
  }
}

/** One LISTEN connection that comes back after it drops. */
class Listener {
  private client: pg.Client | undefined;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  private readonly db: PostgresDatabase;
  private readonly channel: string;
  private readonly onNotify: (payload: string) => void;
  private readonly onResync: () => void;
  private readonly log: Logger;

  constructor(db: PostgresDatabase, channel: string, onNotify: (payload: string) => void, onResync: () => void, log: Logger) {
    this.db = db;
    this.channel = channel;
    this.onNotify = onNotify;
    this.onResync = onResync;
    this.log = log;
  }

  private connectedOnce = false;

  start(): Promise<void> {
    return this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const c = this.db.newClient();
    this.client = c;
    let failed = false;
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      if (this.client === c) this.client = undefined;
      c.end().catch(() => undefined);
      if (this.stopped) return;
      if (this.attempt === 0) this.log.warn('PostgreSQL LISTEN connection lost; reconnecting', { channel: this.channel, err: errorFields(e) });
      this.attempt++;
      // 100 ms doubling to 2 s: changes propagate again within about 2 s of the database's return.
      const delay = Math.min(2_000, 100 * 2 ** Math.min(5, this.attempt - 1));
      this.timer = setTimeout(() => void this.connect(), delay);
      this.timer.unref();
    };
    c.on('error', fail);
    c.on('end', () => fail(new Error('Connection terminated')));
    c.on('notification', (n) => {
      if (n.channel === this.channel) this.onNotify(n.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
    } catch (e) {
      fail(e);
      return;
    }
    if (this.stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    if (this.attempt > 0) this.log.info('PostgreSQL LISTEN connection back', { channel: this.channel });
    // Whatever was notified while we were not listening is lost: the owner re-reads once. The
    // first connection needs none when the owner reads after start() (Registry.open does).
    const failedBefore = this.attempt > 0;
    this.attempt = 0;
    if (this.connectedOnce || failedBefore) this.onResync();
    this.connectedOnce = true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    c?.end().catch(() => undefined);
  }
}
