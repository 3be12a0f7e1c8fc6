// What MLflow's API needs that scorecar's registry does not keep: the numeric id of each
// experiment and the serialized form of each scorer version registered through MLflow's SDK.
// One SQLite file, <storage.dir>/mlflow.db, beside the registry's.
//
// Experiment ids. MLflow's Scorer message carries `experiment_id` as an int32 (the SDK parses
// "chat-app" as an error), while scorecar names experiments freely ("chat-app", a service.name).
// So an MLflow experiment *name* is a scorecar experiment id, and its numeric id is an alias
// allocated here on first use (1, 2, 3 … as MLflow's SQL store numbers them; 0 is the configured
// default experiment, as MLflow's experiment 0 is its default). Numbers that are themselves the
// id of a scorecar experiment are skipped, so a numeric experiment that apps already send (an
// x-mlflow-experiment-id of a real MLflow) keeps meaning itself.
//
// Serialized scorers. get_scorer / list_scorers hand the SDK back `serialized_scorer`, which it
// rebuilds the Python object from: the text registered is kept verbatim, keyed by experiment,
// name, version AND the canonical JSON of the definition it was mapped to, so a version deleted
// and registered again through scorecar's own API never shows a stale text.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ScorecarError } from '../util/index.ts';

export const MLFLOW_DB_FILE = 'mlflow.db';
/** MLflow ids are int32 on the wire. */
const MAX_ID = 2 ** 31 - 1;

export interface MlflowExperiment {
  id: string;
  /** The scorecar experiment id. */
  name: string;
  createdMs: number;
  updatedMs: number;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class MlflowStore {
  private readonly db: DatabaseSync;
  private readonly defaultExperiment: string;
  private closed = false;

  constructor(opts: { dir: string; defaultExperiment: string; busyTimeoutMs?: number }) {
    mkdirSync(opts.dir, { recursive: true });
    this.db = new DatabaseSync(join(opts.dir, MLFLOW_DB_FILE));
    this.defaultExperiment = opts.defaultExperiment;
    // Several scorecar processes may share the storage dir (a CLI next to a running server).
    this.db.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS experiments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS serialized_scorers (
        experiment TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        definition_sha256 TEXT NOT NULL,
        serialized TEXT NOT NULL,
        PRIMARY KEY (experiment, name, version)
      );`);
  }

  /** The experiment with this numeric id; undefined when none. */
  byId(id: string): MlflowExperiment | undefined {
    if (!/^\d{1,10}$/.test(id) || Number(id) > MAX_ID) return undefined;
    if (Number(id) === 0) return { id: '0', name: this.defaultExperiment, createdMs: 0, updatedMs: 0 };
    const row = this.db.prepare('SELECT id, name, created_ms, updated_ms FROM experiments WHERE id = ?').get(Number(id)) as
      | { id: number; name: string; created_ms: number; updated_ms: number }
      | undefined;
    return row && { id: String(row.id), name: row.name, createdMs: row.created_ms, updatedMs: row.updated_ms };
  }

  /** The experiment named so, if it has an id already. */
  byName(name: string): MlflowExperiment | undefined {
    if (name === this.defaultExperiment) return { id: '0', name, createdMs: 0, updatedMs: 0 };
    const row = this.db.prepare('SELECT id, name, created_ms, updated_ms FROM experiments WHERE name = ?').get(name) as
      | { id: number; name: string; created_ms: number; updated_ms: number }
      | undefined;
    return row && { id: String(row.id), name: row.name, createdMs: row.created_ms, updatedMs: row.updated_ms };
  }

  /**
   * The experiment named so, given an id now if it has none. `taken` tells which numbers are
   * the ids of scorecar experiments (skipped). In one transaction, so two processes allocating
   * at once never hand out the same number.
   */
  ensure(name: string, nowMs: number, taken: (id: string) => boolean = () => false): { experiment: MlflowExperiment; created: boolean } {
    const existing = this.byName(name);
    if (existing) return { experiment: existing, created: false };
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const again = this.byName(name);
      if (again) {
        this.db.exec('COMMIT');
        return { experiment: again, created: false };
      }
      const max = (this.db.prepare('SELECT MAX(id) AS m FROM experiments').get() as { m: number | null }).m ?? 0;
      let id = max + 1;
      while (taken(String(id))) id++;
      if (id > MAX_ID) throw new ScorecarError('LIMIT_EXCEEDED', 'no MLflow experiment id left (int32)');
      this.db.prepare('INSERT INTO experiments (id, name, created_ms, updated_ms) VALUES (?, ?, ?, ?)').run(id, name, nowMs, nowMs);
      this.db.exec('COMMIT');
      return { experiment: { id: String(id), name, createdMs: nowMs, updatedMs: nowMs }, created: true };
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Every experiment with an id (the default experiment first). */
  list(): MlflowExperiment[] {
    const rows = this.db.prepare('SELECT id, name, created_ms, updated_ms FROM experiments ORDER BY id').all() as {
      id: number;
      name: string;
      created_ms: number;
      updated_ms: number;
    }[];
    return [
      { id: '0', name: this.defaultExperiment, createdMs: 0, updatedMs: 0 },
      ...rows.filter((r) => r.name !== this.defaultExperiment).map((r) => ({ id: String(r.id), name: r.name, createdMs: r.created_ms, updatedMs: r.updated_ms })),
    ];
  }

  /** Keeps the text MLflow's SDK registered for this version (and the definition it became). */
  putSerialized(experiment: string, name: string, version: number, canonicalDefinition: string, serialized: string): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO serialized_scorers (experiment, name, version, definition_sha256, serialized) VALUES (?, ?, ?, ?, ?)',
      )
      .run(experiment, name, version, digest(canonicalDefinition), serialized);
  }

  /** The registered text of this version, when it is still the one the definition came from. */
  getSerialized(experiment: string, name: string, version: number, canonicalDefinition: string): string | undefined {
    const row = this.db
      .prepare('SELECT definition_sha256, serialized FROM serialized_scorers WHERE experiment = ? AND name = ? AND version = ?')
      .get(experiment, name, version) as { definition_sha256: string; serialized: string } | undefined;
    return row && row.definition_sha256 === digest(canonicalDefinition) ? row.serialized : undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
