// Vitest global set-up for the PostgreSQL tests: one server shared by every test file of a run,
// started lazily by the first file that needs one (test/support/postgres.ts) so that a focused
// run of other tests starts none. This only makes the run's directory (where that server lives)
// and stops the server at the end. With SCORECAR_TEST_POSTGRES_URL set (.ci/run starts one),
// that server is used and nothing is started here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresRunDir: string;
  }
}

const SCRIPT = fileURLToPath(new URL('../../scripts/postgres.sh', import.meta.url));

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-pg-run-'));
  project.provide('postgresRunDir', dir);
  return () => {
    const server = join(dir, 'server');
    if (existsSync(join(server, 'pid'))) {
      try {
        execFileSync('bash', [SCRIPT, 'stop', server], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
