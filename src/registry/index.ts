// The scorer registry: experiments, scorers, versions, sampling configs, lifecycle rules, the
// store interface and its embedded SQLite implementation.
import { Registry, type RegistryOptions } from './registry.ts';
import { SqliteRegistryStore, type SqliteStoreOptions } from './sqlite.ts';

export {
  type CompileFilter,
  type ReconcileAction,
  type ReconcileResult,
  type ReconcileSampling,
  Registry,
  type RegistryChange,
  type RegistryOptions,
  type SamplingConfig,
  type ValidateDefinition,
} from './registry.ts';
export { canonicalJson, checkExperimentId, checkSampleRate, checkScorerName, deriveStatus } from './rules.ts';
export { PostgresRegistryStore } from './postgres.ts';
export { SQLITE_FILE_NAME, SqliteRegistryStore, type SqliteStoreOptions } from './sqlite.ts';
export type {
  RegisterInput,
  RegisterResult,
  RegistryDump,
  RegistryStore,
  SamplingInput,
  SamplingResult,
} from './store.ts';

/** The embedded default: a Registry over `<dir>/scorecar.db`. */
export async function openSqliteRegistry(
  opts: SqliteStoreOptions & Omit<RegistryOptions, 'store'>,
): Promise<Registry> {
  const { dir, path, busyTimeoutMs, ...rest } = opts;
  const store = new SqliteRegistryStore({ dir, path, busyTimeoutMs });
  try {
    return await Registry.open({ ...rest, store });
  } catch (e) {
    await store.close();
    throw e;
  }
}
