// The shared registry store: PostgreSQL (storage.postgres.url), for several replicas behind one
// control plane. Same contract and rules as the SQLite store (store.ts; the contract tests run
// against both). Every mutation is one transaction that first locks the single registry_state
// row (FOR UPDATE): mutations from all replicas are serialised as SQLite's BEGIN IMMEDIATE
// serialises them (registry writes are rare, so one lock costs nothing and rules out every
// read-then-write race: the name limit, version numbers). The same transaction bumps the
// revision and NOTIFYs it; PostgreSQL delivers the notification at commit, so every replica
// hears of a change only once it can read it.
import { randomUUID } from 'node:crypto';
import type { PostgresDatabase, Tx } from '../postgres/index.ts';
import { ScorecarError } from '../util/index.ts';
import { type JoinedScorer, LATEST, notFoundExperiment, notFoundScorer, notFoundVersion, SELECT_JOINED, scorerOfRow } from './rows.ts';
import type {
  RegisterInput,
  RegisterResult,
  RegistryDump,
  RegistryStore,
  SamplingInput,
  SamplingResult,
} from './store.ts';
import type { DeleteResult, Experiment, Scorer, ScorerDefinition } from '../definitions/index.ts';

/** Append-only, as the SQLite list: same tables and invariants (see sqlite.ts). */
const MIGRATIONS = [
  {
    version: 1,
    name: 'scorer registry',
    sql: `
      CREATE TABLE experiments (
        experiment_id TEXT PRIMARY KEY,
        created_at    TEXT NOT NULL
      );
      CREATE TABLE scorers (
        experiment_id TEXT NOT NULL REFERENCES experiments(experiment_id),
        name          TEXT NOT NULL,
        sample_rate   DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (sample_rate >= 0 AND sample_rate <= 1),
        filter_string TEXT,
        ever_started  BOOLEAN NOT NULL DEFAULT false,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (experiment_id, name)
      );
      CREATE TABLE scorer_versions (
        experiment_id TEXT NOT NULL,
        name          TEXT NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        definition    JSONB NOT NULL,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (experiment_id, name, version),
        FOREIGN KEY (experiment_id, name) REFERENCES scorers(experiment_id, name) ON DELETE CASCADE
      );
      CREATE TABLE version_counters (
        experiment_id TEXT NOT NULL,
        name          TEXT NOT NULL,
        last_version  INTEGER NOT NULL,
        PRIMARY KEY (experiment_id, name)
      );
      CREATE TABLE registry_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        revision BIGINT NOT NULL
      );
      INSERT INTO registry_state (id, revision) VALUES (1, 0);
    `,
  },
];

interface ScorerRow {
  experiment_id: string;
  name: string;
  sample_rate: number;
  filter_string: string | null;
  ever_started: boolean;
  created_at: string;
  updated_at: string;
}
const WHAT = 'registry store';

export class PostgresRegistryStore implements RegistryStore {
  readonly kind = 'postgres';
  private readonly db: PostgresDatabase;
  private readonly channel: string;
  /** Tells this store's own notifications from other replicas'. */
  private readonly origin = randomUUID();

  private constructor(db: PostgresDatabase) {
    this.db = db;
    this.channel = db.channel('registry');
  }

  /** Applies the registry's migrations (under the database's migration lock) and opens the store. */
  static async open(db: PostgresDatabase): Promise<PostgresRegistryStore> {
    await db.migrate('registry', MIGRATIONS);
    return new PostgresRegistryStore(db);
  }

  /**
   * Calls onChange when any replica commits a registry change (NOTIFY), and once after every
   * (re)connection of the listening connection (what was notified while it was down is lost).
   */
  watch(onChange: (payload: string) => void): Promise<() => void> {
    // Our own changes are left out: the Registry that made them refreshes at once (as 'local').
    return this.db.listen(
      this.channel,
      (payload) => {
        if (payload.split(' ')[2] !== this.origin) onChange(payload);
      },
      () => onChange(''),
    );
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.db.withLock('registry-reconcile', fn, WHAT);
  }

  private read<T>(fn: (q: Tx) => Promise<T>): Promise<T> {
    // Reads of several statements see one snapshot (REPEATABLE READ), as SQLite's read transaction.
    return this.db.tx(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return fn(tx);
    }, WHAT);
  }

  private write<T>(fn: (q: Tx) => Promise<T>): Promise<T> {
    return this.db.tx(async (tx) => {
      await tx.query('SELECT revision FROM registry_state WHERE id = 1 FOR UPDATE');
      return fn(tx);
    }, WHAT);
  }

  private async bump(q: Tx): Promise<void> {
    const { rows } = await q.query<{ revision: string }>(
      'UPDATE registry_state SET revision = revision + 1 WHERE id = 1 RETURNING revision',
    );
    // The sender's clock rides along: receivers record how long the change took to reach them.
    await q.query('SELECT pg_notify($1, $2)', [this.channel, `${rows[0]!.revision} ${Date.now()} ${this.origin}`]);
  }

  private async experimentExists(q: Tx, experimentId: string): Promise<boolean> {
    return (await q.query('SELECT 1 FROM experiments WHERE experiment_id = $1', [experimentId])).rowCount! > 0;
  }

  private async scorerRow(q: Tx, experimentId: string, name: string): Promise<ScorerRow> {
    const { rows } = await q.query<ScorerRow>('SELECT * FROM scorers WHERE experiment_id = $1 AND name = $2', [experimentId, name]);
    if (rows.length === 0) {
      throw (await this.experimentExists(q, experimentId)) ? notFoundScorer(experimentId, name) : notFoundExperiment(experimentId);
    }
    return rows[0]!;
  }

  private async latest(q: Tx, experimentId: string, name: string): Promise<Scorer> {
    const { rows } = await q.query<JoinedScorer>(`${SELECT_JOINED} WHERE s.experiment_id = $1 AND s.name = $2 AND ${LATEST}`, [
      experimentId,
      name,
    ]);
    if (rows.length === 0) throw notFoundScorer(experimentId, name);
    return scorerOfRow(rows[0]!);
  }

  async revision(): Promise<number> {
    const { rows } = await this.db.query<{ revision: string }>('SELECT revision FROM registry_state WHERE id = 1', [], WHAT);
    return Number(rows[0]?.revision ?? 0);
  }

  listExperiments(): Promise<Experiment[]> {
    return this.read(async (q) => {
      const { rows } = await q.query<{ experiment_id: string; created_at: string; scorer_count: number; active_count: number }>(
        `SELECT e.experiment_id, e.created_at, COUNT(s.name)::int AS scorer_count,
                COUNT(s.name) FILTER (WHERE s.sample_rate > 0)::int AS active_count
         FROM experiments e LEFT JOIN scorers s ON s.experiment_id = e.experiment_id
         GROUP BY e.experiment_id ORDER BY e.experiment_id COLLATE "C"`,
      );
      return rows.map((r) => ({
        experimentId: r.experiment_id,
        scorerCount: r.scorer_count,
        activeCount: r.active_count,
        createdAt: r.created_at,
      }));
    });
  }

  listScorers(experimentId: string): Promise<Scorer[] | null> {
    return this.read(async (q) => {
      if (!(await this.experimentExists(q, experimentId))) return null;
      const { rows } = await q.query<JoinedScorer>(`${SELECT_JOINED} WHERE s.experiment_id = $1 AND ${LATEST} ORDER BY s.name COLLATE "C"`, [
        experimentId,
      ]);
      return rows.map(scorerOfRow);
    });
  }

  async listActive(): Promise<Scorer[]> {
    const { rows } = await this.db.query<JoinedScorer>(
      `${SELECT_JOINED} WHERE s.sample_rate > 0 AND ${LATEST} ORDER BY s.experiment_id COLLATE "C", s.name COLLATE "C"`,
      [],
      WHAT,
    );
    return rows.map(scorerOfRow);
  }

  getScorer(experimentId: string, name: string, version?: number): Promise<Scorer> {
    return this.read(async (q) => {
      await this.scorerRow(q, experimentId, name);
      if (version === undefined) return this.latest(q, experimentId, name);
      const { rows } = await q.query<JoinedScorer>(`${SELECT_JOINED} WHERE s.experiment_id = $1 AND s.name = $2 AND v.version = $3`, [
        experimentId,
        name,
        version,
      ]);
      if (rows.length === 0) throw notFoundVersion(experimentId, name, version);
      return scorerOfRow(rows[0]!);
    });
  }

  listVersions(experimentId: string, name: string): Promise<Scorer[]> {
    return this.read(async (q) => {
      await this.scorerRow(q, experimentId, name);
      const { rows } = await q.query<JoinedScorer>(`${SELECT_JOINED} WHERE s.experiment_id = $1 AND s.name = $2 ORDER BY v.version`, [
        experimentId,
        name,
      ]);
      return rows.map(scorerOfRow);
    });
  }

  register(input: RegisterInput): Promise<RegisterResult> {
    const { experimentId, name, now } = input;
    return this.write(async (q) => {
      await q.query('INSERT INTO experiments (experiment_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [experimentId, now]);
      const existing = await q.query('SELECT 1 FROM scorers WHERE experiment_id = $1 AND name = $2', [experimentId, name]);
      const created = existing.rowCount === 0;
      if (created) {
        const { rows } = await q.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM scorers WHERE experiment_id = $1', [experimentId]);
        const n = rows[0]!.n;
        if (n >= input.maxNamesPerExperiment) {
          throw new ScorecarError(
            'LIMIT_EXCEEDED',
            `experiment '${experimentId}' already has ${n} scorers, the limit is ${input.maxNamesPerExperiment} per ` +
              `experiment; delete one before registering '${name}' (registering an existing name adds a version)`,
            { details: { limit: input.maxNamesPerExperiment, experimentId } },
          );
        }
        await q.query(
          `INSERT INTO scorers (experiment_id, name, sample_rate, filter_string, ever_started, created_at, updated_at)
           VALUES ($1, $2, 0, NULL, false, $3, $3)`,
          [experimentId, name, now],
        );
      } else {
        await q.query('UPDATE scorers SET updated_at = $3 WHERE experiment_id = $1 AND name = $2', [experimentId, name, now]);
      }
      const { rows } = await q.query<{ last_version: number }>(
        `INSERT INTO version_counters AS c (experiment_id, name, last_version) VALUES ($1, $2, 1)
         ON CONFLICT (experiment_id, name) DO UPDATE SET last_version = c.last_version + 1
         RETURNING last_version`,
        [experimentId, name],
      );
      await q.query('INSERT INTO scorer_versions (experiment_id, name, version, definition, created_at) VALUES ($1, $2, $3, $4, $5)', [
        experimentId,
        name,
        rows[0]!.last_version,
        JSON.stringify(input.definition),
        now,
      ]);
      await this.bump(q);
      return { scorer: await this.latest(q, experimentId, name), created };
    });
  }

  setSampling(input: SamplingInput): Promise<SamplingResult> {
    const { experimentId, name, now } = input;
    return this.write(async (q) => {
      const row = await this.scorerRow(q, experimentId, name);
      const sampleRate = input.sampleRate ?? row.sample_rate;
      const filter = input.filterString === undefined ? row.filter_string : input.filterString;
      const everStarted = row.ever_started || sampleRate > 0;
      const changed = row.sample_rate !== sampleRate || row.filter_string !== filter || row.ever_started !== everStarted;
      if (changed) {
        await q.query(
          `UPDATE scorers SET sample_rate = $3, filter_string = $4, ever_started = $5, updated_at = $6
           WHERE experiment_id = $1 AND name = $2`,
          [experimentId, name, sampleRate, filter, everStarted, now],
        );
        await this.bump(q);
      }
      return { scorer: await this.latest(q, experimentId, name), changed };
    });
  }

  deleteScorer(experimentId: string, name: string, version: number | 'all', now: string): Promise<DeleteResult> {
    return this.write(async (q) => {
      await this.scorerRow(q, experimentId, name);
      const versions = (
        await q.query<{ version: number }>('SELECT version FROM scorer_versions WHERE experiment_id = $1 AND name = $2 ORDER BY version', [
          experimentId,
          name,
        ])
      ).rows.map((r) => r.version);
      let deleted: number[];
      if (version === 'all') deleted = versions;
      else {
        if (!versions.includes(version)) throw notFoundVersion(experimentId, name, version);
        deleted = [version];
      }
      const nameRemoved = deleted.length === versions.length;
      if (nameRemoved) {
        await q.query('DELETE FROM scorer_versions WHERE experiment_id = $1 AND name = $2', [experimentId, name]);
        await q.query('DELETE FROM scorers WHERE experiment_id = $1 AND name = $2', [experimentId, name]);
      } else {
        await q.query('DELETE FROM scorer_versions WHERE experiment_id = $1 AND name = $2 AND version = $3', [experimentId, name, version]);
        await q.query('UPDATE scorers SET updated_at = $3 WHERE experiment_id = $1 AND name = $2', [experimentId, name, now]);
      }
      await this.bump(q);
      return { experimentId, name, deletedVersions: deleted, nameRemoved };
    });
  }

  stopAll(experimentId: string | null, now: string): Promise<Scorer[]> {
    return this.write(async (q) => {
      if (experimentId !== null && !(await this.experimentExists(q, experimentId))) throw notFoundExperiment(experimentId);
      const { rows: targets } = await q.query<{ experiment_id: string; name: string }>(
        experimentId === null
          ? 'SELECT experiment_id, name FROM scorers WHERE sample_rate > 0 ORDER BY experiment_id COLLATE "C", name COLLATE "C"'
          : 'SELECT experiment_id, name FROM scorers WHERE sample_rate > 0 AND experiment_id = $1 ORDER BY name COLLATE "C"',
        experimentId === null ? [] : [experimentId],
      );
      if (targets.length === 0) return [];
      if (experimentId === null) await q.query('UPDATE scorers SET sample_rate = 0, updated_at = $1 WHERE sample_rate > 0', [now]);
      else await q.query('UPDATE scorers SET sample_rate = 0, updated_at = $1 WHERE sample_rate > 0 AND experiment_id = $2', [now, experimentId]);
      await this.bump(q);
      const out: Scorer[] = [];
      for (const t of targets) out.push(await this.latest(q, t.experiment_id, t.name));
      return out;
    });
  }

  dump(): Promise<RegistryDump> {
    return this.read(async (q) => {
      const revision = Number((await q.query<{ revision: string }>('SELECT revision FROM registry_state WHERE id = 1')).rows[0]!.revision);
      const experiments = (
        await q.query<{ experiment_id: string; created_at: string }>('SELECT experiment_id, created_at FROM experiments ORDER BY experiment_id COLLATE "C"')
      ).rows.map((r) => ({ experimentId: r.experiment_id, createdAt: r.created_at }));
      const versions = (
        await q.query<{ experiment_id: string; name: string; version: number; definition: ScorerDefinition; created_at: string }>(
          'SELECT * FROM scorer_versions ORDER BY experiment_id COLLATE "C", name COLLATE "C", version',
        )
      ).rows;
      const scorers = (await q.query<ScorerRow>('SELECT * FROM scorers ORDER BY experiment_id COLLATE "C", name COLLATE "C"')).rows.map((r) => ({
        experimentId: r.experiment_id,
        name: r.name,
        sampleRate: r.sample_rate,
        filterString: r.filter_string,
        everStarted: r.ever_started,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        versions: versions
          .filter((v) => v.experiment_id === r.experiment_id && v.name === r.name)
          .map((v) => ({ version: v.version, definition: v.definition, createdAt: v.created_at })),
      }));
      return { revision, experiments, scorers };
    });
  }

  /** The registry invariants (as SqliteRegistryStore.check, minus SQLite's own checks). Empty = consistent. */
  async check(maxNamesPerExperiment: number): Promise<string[]> {
    return this.read(async (q) => {
      const problems: string[] = [];
      for (const r of (
        await q.query<{ experiment_id: string; name: string }>(
          `SELECT s.experiment_id, s.name FROM scorers s WHERE NOT EXISTS
             (SELECT 1 FROM scorer_versions v WHERE v.experiment_id = s.experiment_id AND v.name = s.name)`,
        )
      ).rows)
        problems.push(`scorer ${r.experiment_id}/${r.name} has no version`);
      for (const r of (
        await q.query<{ experiment_id: string; name: string; version: number }>(
          `SELECT v.experiment_id, v.name, v.version FROM scorer_versions v LEFT JOIN version_counters c
             ON c.experiment_id = v.experiment_id AND c.name = v.name
           WHERE c.last_version IS NULL OR v.version > c.last_version`,
        )
      ).rows)
        problems.push(`version ${r.experiment_id}/${r.name}@${r.version} is above its counter`);
      for (const r of (
        await q.query<{ experiment_id: string; n: number }>(
          'SELECT experiment_id, COUNT(*)::int AS n FROM scorers GROUP BY experiment_id HAVING COUNT(*) > $1',
          [maxNamesPerExperiment],
        )
      ).rows)
        problems.push(`experiment ${r.experiment_id} has ${r.n} scorers (limit ${maxNamesPerExperiment})`);
      const n = (await q.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM registry_state')).rows[0]!.n;
      if (n !== 1) problems.push(`registry_state has ${n} rows`);
      return problems;
    });
  }

  /** The database is the process's, shared with the other stores: closing is the pipeline's job. */
  async close(): Promise<void> {}
}
