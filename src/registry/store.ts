// The persistence contract of the registry. The SQLite implementation (sqlite.ts) is the
// embedded default; a PostgreSQL implementation for several replicas fills the same interface.
//
// Division of labour: the Registry service validates input (names, rates, definitions,
// filters) before calling a store; the store enforces what needs the data under one
// transaction (uniqueness, the per-experiment name limit, version numbering, existence) so the
// rules hold even with several processes writing. Every mutation is one transaction and bumps
// the store-wide revision in that same transaction; nothing is written when it throws.
import type { DeleteResult, Experiment, Scorer, ScorerDefinition } from '../definitions/index.ts';

export interface RegisterInput {
  experimentId: string;
  name: string;
  /** Already validated and normalised. */
  definition: ScorerDefinition;
  /** Refuse a new name (LIMIT_EXCEEDED) when the experiment already has this many. */
  maxNamesPerExperiment: number;
  /** ISO-8601 timestamp of the change. */
  now: string;
}

export interface RegisterResult {
  scorer: Scorer;
  /** True when the name was new (version 1 of a new name), false when a version was appended. */
  created: boolean;
}

export interface SamplingInput {
  experimentId: string;
  name: string;
  /** Already range-checked by the caller; undefined = keep the current rate. */
  sampleRate?: number;
  /** undefined = keep the current filter; null = no filter. Already compiled by the caller. */
  filterString?: string | null;
  now: string;
}

export interface SamplingResult {
  /** The latest version with the new sampling config. */
  scorer: Scorer;
  /** False when the config already had these values (nothing was written). */
  changed: boolean;
}

/** Everything in the store, for backups, debugging and before/after comparisons in tests. */
export interface RegistryDump {
  revision: number;
  experiments: Array<{ experimentId: string; createdAt: string }>;
  scorers: Array<{
    experimentId: string;
    name: string;
    sampleRate: number;
    filterString: string | null;
    everStarted: boolean;
    createdAt: string;
    updatedAt: string;
    versions: Array<{ version: number; definition: ScorerDefinition; createdAt: string }>;
  }>;
}

export interface RegistryStore {
  /** 'sqlite', 'postgres', … (for logs and /healthz). */
  readonly kind: string;
  /**
   * A number that changes whenever any process commits a mutation. Polled (about every
   * 250 ms) to notice changes made elsewhere, so it must be cheap.
   */
  revision(): Promise<number>;

  listExperiments(): Promise<Experiment[]>;
  /** Latest version of each name, by name; null when the experiment does not exist. */
  listScorers(experimentId: string): Promise<Scorer[] | null>;
  /** Latest version of every scorer with sampleRate > 0, in every experiment. */
  listActive(): Promise<Scorer[]>;
  /** One version (default: the latest). Throws NOT_FOUND naming what is missing. */
  getScorer(experimentId: string, name: string, version?: number): Promise<Scorer>;
  /** Every version, ascending. Throws NOT_FOUND. */
  listVersions(experimentId: string, name: string): Promise<Scorer[]>;

  /** Creates the experiment on first use; appends a version when the name exists. */
  register(input: RegisterInput): Promise<RegisterResult>;
  /** Sets the sampling config of a name (applies to whichever version is latest). NOT_FOUND. */
  setSampling(input: SamplingInput): Promise<SamplingResult>;
  /** One version or all; removing the last version removes the name. NOT_FOUND. */
  deleteScorer(
    experimentId: string,
    name: string,
    version: number | 'all',
    now: string,
  ): Promise<DeleteResult>;
  /**
   * Kill switch: rate 0 for every active scorer of one experiment (or of all when null), in
   * one transaction. Returns the scorers it stopped. NOT_FOUND for an unknown experiment.
   */
  stopAll(experimentId: string | null, now: string): Promise<Scorer[]>;

  dump(): Promise<RegistryDump>;
  close(): Promise<void>;
  /**
   * Optional push notification of committed changes (PostgreSQL LISTEN/NOTIFY): onChange is
   * called with the notification's payload (`<revision> <commit epoch ms>`, or '' after a
   * reconnection, when changes may have been missed). Resolves once changes committed after it
   * are sure to be reported. Stores without it are polled only.
   */
  watch?(onChange: (payload: string) => void): Promise<() => void>;
  /**
   * Optional: runs fn while no other process runs an exclusive section on the same store (a
   * PostgreSQL advisory lock). Config-as-code reconciliation uses it, so replicas starting
   * together with the same `scorers:` file add one version, not one each.
   */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}
