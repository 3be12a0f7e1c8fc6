// What both registry stores (SQLite, PostgreSQL) read the same way: the query joining a scorer to
// its versions, the scorer built from one of its rows, and the not-found errors they answer.
import type { Scorer, ScorerDefinition } from '../definitions/index.ts';
import { ScorecarError } from '../util/index.ts';
import { deriveStatus } from './rules.ts';

/** Scorer rows joined to their versions; both dialects read it as written. */
export const SELECT_JOINED = `
  SELECT s.experiment_id, s.name, s.sample_rate, s.filter_string, s.ever_started, s.updated_at,
         v.version, v.definition, v.created_at AS version_created_at
  FROM scorers s
  JOIN scorer_versions v ON v.experiment_id = s.experiment_id AND v.name = s.name`;

/** SELECT_JOINED's condition for a scorer's latest version. */
export const LATEST = `v.version = (SELECT MAX(version) FROM scorer_versions m
                             WHERE m.experiment_id = s.experiment_id AND m.name = s.name)`;

/** A SELECT_JOINED row once the store's driver types are read (definition parsed, flag boolean). */
export interface JoinedScorer {
  experiment_id: string;
  name: string;
  sample_rate: number;
  filter_string: string | null;
  ever_started: boolean;
  updated_at: string;
  version: number;
  definition: ScorerDefinition;
  version_created_at: string;
}

export function scorerOfRow(r: JoinedScorer): Scorer {
  return {
    experimentId: r.experiment_id,
    name: r.name,
    version: r.version,
    definition: r.definition,
    sampleRate: r.sample_rate,
    filterString: r.filter_string,
    status: deriveStatus(r.sample_rate, r.ever_started),
    createdAt: r.version_created_at,
    updatedAt: r.updated_at,
  };
}

export function notFoundExperiment(experimentId: string): ScorecarError {
  return new ScorecarError(
    'NOT_FOUND',
    `experiment '${experimentId}' not found (an experiment is created by registering its first scorer)`,
    { details: { resource: 'experiment', experimentId } },
  );
}

export function notFoundScorer(experimentId: string, name: string): ScorecarError {
  return new ScorecarError('NOT_FOUND', `scorer '${name}' not found in experiment '${experimentId}'`, {
    details: { resource: 'scorer', experimentId, name },
  });
}

export function notFoundVersion(experimentId: string, name: string, version: number): ScorecarError {
  return new ScorecarError('NOT_FOUND', `scorer '${name}' has no version ${version} in experiment '${experimentId}'`, {
    details: { resource: 'version', experimentId, name, version },
  });
}
