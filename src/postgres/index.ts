// PostgreSQL, the shared store of several replicas (storage.postgres.url): one pool per process,
// versioned migrations under an advisory lock, LISTEN with reconnection. The stores themselves
// live with their units (registry, assessments, archive backfills, scoring budgets).
export {
  isConnectionError,
  type Migration,
  type PostgresOptions,
  PostgresDatabase,
  redactUrl,
  sqlState,
  type Tx,
} from './database.ts';
