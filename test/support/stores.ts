// The store contract tests run against both implementations: the embedded SQLite default and
// the shared PostgreSQL store (a schema of its own per test on the run's shared server).
import { type RegistryStore, PostgresRegistryStore, SqliteRegistryStore } from '../../src/registry/index.ts';
import type { PostgresDatabase } from '../../src/postgres/index.ts';
import { freshDatabase } from './postgres.ts';

export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** A database in a fresh schema, or undefined for SQLite; close() drops it. */
export async function databaseFor(
  kind: StoreKind,
): Promise<{ db: PostgresDatabase | undefined; close(): Promise<void> }> {
  if (kind === 'sqlite') return { db: undefined, close: async () => {} };
  const d = await freshDatabase();
  return { db: d.db, close: () => d.drop() };
}

/** An empty registry store of this kind; close() closes it and drops its schema. */
export async function openRegistryStore(
  kind: StoreKind,
): Promise<{ store: RegistryStore; close(): Promise<void> }> {
  if (kind === 'sqlite') {
    const store = new SqliteRegistryStore({ path: ':memory:' });
    return { store, close: () => store.close() };
  }
  const d = await freshDatabase();
  const store = await PostgresRegistryStore.open(d.db);
  return { store, close: () => d.drop() };
}
