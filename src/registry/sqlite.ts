// The embedded registry store: one SQLite file (`<storage.dir>/scorecar.db`) through
// node:sqlite. WAL journal (readers never block the writer; another process or the CLI may
// open the same file), synchronous=FULL (registry writes are rare; each commit is durable),
// schema migrations applied at open, every mutation one BEGIN IMMEDIATE transaction that also
// bumps `registry_state.revision`, which other processes poll to notice changes.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { ScorecarError } from '../util/index.ts';
import { LATEST, notFoundExperiment, notFoundScorer, notFoundVersion, SELECT_JOINED, scorerOfRow } from './rows.ts';
import type {
  RegisterInput,
  RegisterResult,
  RegistryDump,
  RegistryStore,
  SamplingInput,
  SamplingResult,
} from './store.ts';
import type { DeleteResult, Experiment, Scorer, ScorerDefinition } from '../definitions/index.ts';

export const SQLITE_FILE_NAME = 'scorecar.db';

export interface SqliteStoreOptions {
  /** The storage directory; the file is `<dir>/scorecar.db`. Created when missing. */
  dir?: string;
  /** An explicit file path instead of `dir` (':memory:' for unit tests). */
  path?: string;
  /** How long a write waits for another process's write lock before failing (OVERLOADED). */
  busyTimeoutMs?: number;
}

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Append-only: a released migration is never edited; a schema change is a new entry.
 * Invariants the schema and the transactions keep: every `scorers` row has at least one
 * version; version numbers per (experiment, name) only grow, even across deletes
 * (`version_counters` survives the name), so an archived assessment's (name, version) never
 * points at a different definition.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'scorer registry',
    sql: `
      CREATE TABLE experiments (
        experiment_id TEXT PRIMARY KEY,
        created_at    TEXT NOT NULL
      ) STRICT;
      CREATE TABLE scorers (
        experiment_id TEXT NOT NULL REFERENCES experiments(experiment_id),
        name          TEXT NOT NULL,
        sample_rate   REAL NOT NULL DEFAULT 0 CHECK (sample_rate >= 0 AND sample_rate <= 1),
        filter_string TEXT,
        ever_started  INTEGER NOT NULL DEFAULT 0 CHECK (ever_started IN (0, 1)),
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (experiment_id, name)
      ) STRICT;
      CREATE TABLE scorer_versions (
        experiment_id TEXT NOT NULL,
        name          TEXT NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        definition    TEXT NOT NULL CHECK (json_valid(definition)),
        created_at    TEXT NOT NULL,
        PRIMARY KEY (experiment_id, name, version),
        FOREIGN KEY (experiment_id, name) REFERENCES scorers(experiment_id, name) ON DELETE CASCADE
      ) STRICT;
      CREATE TABLE version_counters (
        experiment_id TEXT NOT NULL,
        name          TEXT NOT NULL,
        last_version  INTEGER NOT NULL,
        PRIMARY KEY (experiment_id, name)
      ) STRICT;
      CREATE TABLE registry_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL
      ) STRICT;
      INSERT INTO registry_state (id, revision) VALUES (1, 0);
    `,
  },
];

interface ScorerRow {
  experiment_id: string;
  name: string;
  sample_rate: number;
  filter_string: string | null;
  ever_started: number;
  created_at: string;
  updated_at: string;
}
interface JoinedRow {
  experiment_id: string;
  name: string;
  sample_rate: number;
  filter_string: string | null;
  ever_started: number;
  updated_at: string;
  version: number;
  definition: string;
  version_created_at: string;
}

/** The store's row as the shared reader takes it (SQLite keeps the definition as text, the flag as 0/1). */
function toScorer(r: JoinedRow): Scorer {
  return scorerOfRow({ ...r, definition: JSON.parse(r.definition) as ScorerDefinition, ever_started: r.ever_started === 1 });
}

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

/** Lock contention becomes a retryable OVERLOADED; anything else from SQLite is INTERNAL. */
function mapSqliteError(e: unknown): unknown {
  if (e instanceof ScorecarError) return e;
  const errcode = (e as { errcode?: unknown }).errcode;
  if (errcode === SQLITE_BUSY || errcode === SQLITE_LOCKED) {
    return new ScorecarError(
      'OVERLOADED',
      'the registry store is busy (another process holds its write lock)',
      {
        retryable: true,
        cause: e,
      },
    );
  }
  return new ScorecarError('INTERNAL', `registry store error: ${(e as Error).message ?? String(e)}`, {
    cause: e,
  });
}

export class SqliteRegistryStore implements RegistryStore {
  readonly kind = 'sqlite';
  /** The database file ('' for in-memory). */
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly stmts: Map<string, StatementSync> = new Map();
  private closed = false;

  constructor(opts: SqliteStoreOptions) {
    const path = opts.path ?? (opts.dir !== undefined ? join(opts.dir, SQLITE_FILE_NAME) : undefined);
    if (path === undefined)
      throw new ScorecarError('INVALID_ARGUMENT', 'SqliteRegistryStore needs dir or path');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.path = path === ':memory:' ? '' : path;
    try {
      this.db = new DatabaseSync(path);
      this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      if (path !== ':memory:') this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec('PRAGMA foreign_keys = ON');
      this.migrate();
    } catch (e) {
      throw mapSqliteError(e);
    }
  }

  /** Applies pending migrations, each in its own write transaction (safe with concurrent openers). */
  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`);
    const known = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    const current = () =>
      (this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number })
        .v;
    if (current() > known) {
      throw new ScorecarError(
        'FAILED_PRECONDITION',
        `registry database ${this.path} has schema version ${current()}, newer than this scorecar knows (${known}); ` +
          'upgrade scorecar',
      );
    }
    for (const m of MIGRATIONS) {
      this.tx(() => {
        const done = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
        if (done) return;
        this.db.exec(m.sql);
        this.db
          .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, new Date().toISOString());
      });
    }
  }

  /** Applied schema migrations, oldest first. */
  migrations(): Array<{ version: number; name: string; appliedAt: string }> {
    return (
      this.db
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all() as Array<{
        version: number;
        name: string;
        applied_at: string;
      }>
    ).map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }
  private get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.stmt(sql).get(...params) as T | undefined;
  }
  private all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.stmt(sql).all(...params) as T[];
  }
  private run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.stmt(sql).run(...params).changes);
  }

  /** BEGIN IMMEDIATE takes the write lock up front, so a read-then-write never deadlocks. */
  private tx<T>(fn: () => T, mode: 'IMMEDIATE' | 'DEFERRED' = 'IMMEDIATE'): T {
    this.checkOpen();
    this.db.exec(`BEGIN ${mode}`);
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (e) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }
  private async op<T>(fn: () => T, mode: 'IMMEDIATE' | 'DEFERRED' = 'IMMEDIATE'): Promise<T> {
    try {
      return this.tx(fn, mode);
    } catch (e) {
      throw mapSqliteError(e);
    }
  }
  private read<T>(fn: () => T): Promise<T> {
    return this.op(fn, 'DEFERRED');
  }
  private checkOpen(): void {
    if (this.closed) throw new ScorecarError('SHUTTING_DOWN', 'the registry store is closed');
  }
  private bump(): void {
    this.run('UPDATE registry_state SET revision = revision + 1 WHERE id = 1');
  }
  private experimentExists(experimentId: string): boolean {
    return this.get('SELECT 1 AS x FROM experiments WHERE experiment_id = ?', experimentId) !== undefined;
  }
  private scorerRow(experimentId: string, name: string): ScorerRow {
    const row = this.get<ScorerRow>(
      'SELECT * FROM scorers WHERE experiment_id = ? AND name = ?',
      experimentId,
      name,
    );
    if (!row) {
      throw this.experimentExists(experimentId)
        ? notFoundScorer(experimentId, name)
        : notFoundExperiment(experimentId);
    }
    return row;
  }
  private latest(experimentId: string, name: string): Scorer {
    const row = this.get<JoinedRow>(
      `${SELECT_JOINED} WHERE s.experiment_id = ? AND s.name = ? AND ${LATEST}`,
      experimentId,
      name,
    );
    if (!row) throw notFoundScorer(experimentId, name);
    return toScorer(row);
  }

  async revision(): Promise<number> {
    this.checkOpen();
    try {
      return (
        this.get<{ revision: number }>('SELECT revision FROM registry_state WHERE id = 1') ?? { revision: 0 }
      ).revision;
    } catch (e) {
      throw mapSqliteError(e);
    }
  }

  listExperiments(): Promise<Experiment[]> {
    return this.read(() =>
      this.all<{ experiment_id: string; created_at: string; scorer_count: number; active_count: number }>(
        `SELECT e.experiment_id, e.created_at, COUNT(s.name) AS scorer_count,
                COALESCE(SUM(s.sample_rate > 0), 0) AS active_count
         FROM experiments e LEFT JOIN scorers s ON s.experiment_id = e.experiment_id
         GROUP BY e.experiment_id ORDER BY e.experiment_id`,
      ).map((r) => ({
        experimentId: r.experiment_id,
        scorerCount: r.scorer_count,
        activeCount: r.active_count,
        createdAt: r.created_at,
      })),
    );
  }

  listScorers(experimentId: string): Promise<Scorer[] | null> {
    return this.read(() => {
      if (!this.experimentExists(experimentId)) return null;
      return this.all<JoinedRow>(
        `${SELECT_JOINED} WHERE s.experiment_id = ? AND ${LATEST} ORDER BY s.name`,
        experimentId,
      ).map(toScorer);
    });
  }

  listActive(): Promise<Scorer[]> {
    return this.read(() =>
      this.all<JoinedRow>(
        `${SELECT_JOINED} WHERE s.sample_rate > 0 AND ${LATEST} ORDER BY s.experiment_id, s.name`,
      ).map(toScorer),
    );
  }

  getScorer(experimentId: string, name: string, version?: number): Promise<Scorer> {
    return this.read(() => {
      this.scorerRow(experimentId, name);
      if (version === undefined) return this.latest(experimentId, name);
      const row = this.get<JoinedRow>(
        `${SELECT_JOINED} WHERE s.experiment_id = ? AND s.name = ? AND v.version = ?`,
        experimentId,
        name,
        version,
      );
      if (!row) throw notFoundVersion(experimentId, name, version);
      return toScorer(row);
    });
  }

  listVersions(experimentId: string, name: string): Promise<Scorer[]> {
    return this.read(() => {
      this.scorerRow(experimentId, name);
      return this.all<JoinedRow>(
        `${SELECT_JOINED} WHERE s.experiment_id = ? AND s.name = ? ORDER BY v.version`,
        experimentId,
        name,
      ).map(toScorer);
    });
  }

  register(input: RegisterInput): Promise<RegisterResult> {
    const { experimentId, name, now } = input;
    return this.op(() => {
      if (!this.experimentExists(experimentId)) {
        this.run('INSERT INTO experiments (experiment_id, created_at) VALUES (?, ?)', experimentId, now);
      }
      const existing = this.get<ScorerRow>(
        'SELECT * FROM scorers WHERE experiment_id = ? AND name = ?',
        experimentId,
        name,
      );
      if (!existing) {
        const { n } = this.get<{ n: number }>(
          'SELECT COUNT(*) AS n FROM scorers WHERE experiment_id = ?',
          experimentId,
        )!;
        if (n >= input.maxNamesPerExperiment) {
          throw new ScorecarError(
            'LIMIT_EXCEEDED',
            `experiment '${experimentId}' already has ${n} scorers, the limit is ${input.maxNamesPerExperiment} per ` +
              `experiment; delete one before registering '${name}' (registering an existing name adds a version)`,
            { details: { limit: input.maxNamesPerExperiment, experimentId } },
          );
        }
        this.run(
          `INSERT INTO scorers (experiment_id, name, sample_rate, filter_string, ever_started, created_at, updated_at)
           VALUES (?, ?, 0, NULL, 0, ?, ?)`,
          experimentId,
          name,
          now,
          now,
        );
      } else {
        this.run(
          'UPDATE scorers SET updated_at = ? WHERE experiment_id = ? AND name = ?',
          now,
          experimentId,
          name,
        );
      }
      const { last_version: version } = this.get<{ last_version: number }>(
        `INSERT INTO version_counters (experiment_id, name, last_version) VALUES (?, ?, 1)
         ON CONFLICT (experiment_id, name) DO UPDATE SET last_version = last_version + 1
         RETURNING last_version`,
        experimentId,
        name,
      )!;
      this.run(
        'INSERT INTO scorer_versions (experiment_id, name, version, definition, created_at) VALUES (?, ?, ?, ?, ?)',
        experimentId,
        name,
        version,
        JSON.stringify(input.definition),
        now,
      );
      this.bump();
      return { scorer: this.latest(experimentId, name), created: !existing };
    });
  }

  setSampling(input: SamplingInput): Promise<SamplingResult> {
    const { experimentId, name, now } = input;
    return this.op(() => {
      const row = this.scorerRow(experimentId, name);
      const sampleRate = input.sampleRate ?? row.sample_rate;
      const filter = input.filterString === undefined ? row.filter_string : input.filterString;
      const everStarted = row.ever_started === 1 || sampleRate > 0 ? 1 : 0;
      const changed =
        row.sample_rate !== sampleRate || row.filter_string !== filter || row.ever_started !== everStarted;
      if (changed) {
        this.run(
          `UPDATE scorers SET sample_rate = ?, filter_string = ?, ever_started = ?, updated_at = ?
           WHERE experiment_id = ? AND name = ?`,
          sampleRate,
          filter,
          everStarted,
          now,
          experimentId,
          name,
        );
        this.bump();
      }
      return { scorer: this.latest(experimentId, name), changed };
    });
  }

  deleteScorer(
    experimentId: string,
    name: string,
    version: number | 'all',
    now: string,
  ): Promise<DeleteResult> {
    return this.op(() => {
      this.scorerRow(experimentId, name);
      const versions = this.all<{ version: number }>(
        'SELECT version FROM scorer_versions WHERE experiment_id = ? AND name = ? ORDER BY version',
        experimentId,
        name,
      ).map((r) => r.version);
      let deleted: number[];
      if (version === 'all') {
        deleted = versions;
      } else {
        if (!versions.includes(version)) throw notFoundVersion(experimentId, name, version);
        deleted = [version];
      }
      const nameRemoved = deleted.length === versions.length;
      if (nameRemoved) {
        this.run('DELETE FROM scorer_versions WHERE experiment_id = ? AND name = ?', experimentId, name);
        this.run('DELETE FROM scorers WHERE experiment_id = ? AND name = ?', experimentId, name);
      } else {
        this.run(
          'DELETE FROM scorer_versions WHERE experiment_id = ? AND name = ? AND version = ?',
          experimentId,
          name,
          version as number,
        );
        this.run(
          'UPDATE scorers SET updated_at = ? WHERE experiment_id = ? AND name = ?',
          now,
          experimentId,
          name,
        );
      }
      this.bump();
      return { experimentId, name, deletedVersions: deleted, nameRemoved };
    });
  }

  stopAll(experimentId: string | null, now: string): Promise<Scorer[]> {
    return this.op(() => {
      if (experimentId !== null && !this.experimentExists(experimentId))
        throw notFoundExperiment(experimentId);
      const targets =
        experimentId === null
          ? this.all<{ experiment_id: string; name: string }>(
              'SELECT experiment_id, name FROM scorers WHERE sample_rate > 0 ORDER BY experiment_id, name',
            )
          : this.all<{ experiment_id: string; name: string }>(
              'SELECT experiment_id, name FROM scorers WHERE sample_rate > 0 AND experiment_id = ? ORDER BY name',
              experimentId,
            );
      if (targets.length === 0) return [];
      if (experimentId === null) {
        this.run('UPDATE scorers SET sample_rate = 0, updated_at = ? WHERE sample_rate > 0', now);
      } else {
        this.run(
          'UPDATE scorers SET sample_rate = 0, updated_at = ? WHERE sample_rate > 0 AND experiment_id = ?',
          now,
          experimentId,
        );
      }
      this.bump();
      return targets.map((t) => this.latest(t.experiment_id, t.name));
    });
  }

  dump(): Promise<RegistryDump> {
    return this.read(() => {
      const revision = this.get<{ revision: number }>(
        'SELECT revision FROM registry_state WHERE id = 1',
      )!.revision;
      const experiments = this.all<{ experiment_id: string; created_at: string }>(
        'SELECT experiment_id, created_at FROM experiments ORDER BY experiment_id',
      ).map((r) => ({ experimentId: r.experiment_id, createdAt: r.created_at }));
      const versions = this.all<{
        experiment_id: string;
        name: string;
        version: number;
        definition: string;
        created_at: string;
      }>('SELECT * FROM scorer_versions ORDER BY experiment_id, name, version');
      const scorers = this.all<ScorerRow>('SELECT * FROM scorers ORDER BY experiment_id, name').map((r) => ({
        experimentId: r.experiment_id,
        name: r.name,
        sampleRate: r.sample_rate,
        filterString: r.filter_string,
        everStarted: r.ever_started === 1,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        versions: versions
          .filter((v) => v.experiment_id === r.experiment_id && v.name === r.name)
          .map((v) => ({
            version: v.version,
            definition: JSON.parse(v.definition) as ScorerDefinition,
            createdAt: v.created_at,
          })),
      }));
      return { revision, experiments, scorers };
    });
  }

  /**
   * Consistency checks beyond SQLite's own: PRAGMA integrity_check and foreign_key_check, then
   * the registry invariants. Returns the problems found (empty = consistent).
   */
  check(maxNamesPerExperiment: number): string[] {
    this.checkOpen();
    const problems: string[] = [];
    const integrity = this.db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>;
    if (integrity.length !== 1 || integrity[0]!.integrity_check !== 'ok') {
      problems.push(`integrity_check: ${integrity.map((r) => r.integrity_check).join('; ')}`);
    }
    const fk = this.db.prepare('PRAGMA foreign_key_check').all();
    if (fk.length > 0) problems.push(`foreign_key_check: ${fk.length} violations`);
    for (const r of this.db
      .prepare(
        `SELECT s.experiment_id, s.name FROM scorers s WHERE NOT EXISTS
           (SELECT 1 FROM scorer_versions v WHERE v.experiment_id = s.experiment_id AND v.name = s.name)`,
      )
      .all() as Array<{ experiment_id: string; name: string }>) {
      problems.push(`scorer ${r.experiment_id}/${r.name} has no version`);
    }
    for (const r of this.db
      .prepare(
        `SELECT v.experiment_id, v.name, v.version FROM scorer_versions v LEFT JOIN version_counters c
           ON c.experiment_id = v.experiment_id AND c.name = v.name
         WHERE c.last_version IS NULL OR v.version > c.last_version`,
      )
      .all() as Array<{ experiment_id: string; name: string; version: number }>) {
      problems.push(`version ${r.experiment_id}/${r.name}@${r.version} is above its counter`);
    }
    for (const r of this.db
      .prepare('SELECT experiment_id, COUNT(*) AS n FROM scorers GROUP BY experiment_id HAVING n > ?')
      .all(maxNamesPerExperiment) as Array<{ experiment_id: string; n: number }>) {
      problems.push(`experiment ${r.experiment_id} has ${r.n} scorers (limit ${maxNamesPerExperiment})`);
    }
    const state = this.db.prepare('SELECT COUNT(*) AS n FROM registry_state').get() as { n: number };
    if (state.n !== 1) problems.push(`registry_state has ${state.n} rows`);
    return problems;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stmts.clear();
    this.db.close();
  }
}
