// An admin server over a fresh SQLite registry in a temp directory, for API, SDK and CLI tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AdminServer, type AdminServerOptions, createAdminServer } from '../../src/api/index.ts';
import { openSqliteRegistry, type Registry } from '../../src/registry/index.ts';
import { validateScorerDefinition } from '../../src/scoring/index.ts';
import { MetricsRegistry } from '../../src/util/index.ts';

export interface TestAdmin {
  dir: string;
  registry: Registry;
  server: AdminServer;
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

export async function startAdmin(
  opts: Omit<AdminServerOptions, 'registry' | 'metrics' | 'endpoint'> & { endpoint?: string } = {},
): Promise<TestAdmin> {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-admin-'));
  // The registration check scorecar start uses: the schema plus compiling code scorers.
  const registry = await openSqliteRegistry({
    dir,
    pollIntervalMs: 0,
    validateDefinition: validateScorerDefinition,
  });
  const server = createAdminServer({
    endpoint: '127.0.0.1:0',
    registry,
    metrics: new MetricsRegistry(),
    ...opts,
  });
  const url = `http://127.0.0.1:${(await server.listen()).port}`;
  return {
    dir,
    registry,
    server,
    url,
    async close() {
      await server.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
