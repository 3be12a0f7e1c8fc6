// Vitest global set-up for the Kafka tests: one broker shared by every test file of a run,
// started lazily by the first file that needs one (test/support/kafka.ts) so that a focused run
// of other tests starts none. This only makes the run's directory (where that broker lives) and
// stops the broker at the end. With KAFKA_BOOTSTRAP set (.ci/run starts one), that broker is
// used and nothing is started here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaRunDir: string;
  }
}

const SCRIPT = fileURLToPath(new URL('../../scripts/kafka-broker.sh', import.meta.url));

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-kafka-run-'));
  project.provide('kafkaRunDir', dir);
  return () => {
    const broker = join(dir, 'broker');
    if (existsSync(join(broker, 'pid'))) {
      try {
        execFileSync('bash', [SCRIPT, 'stop', broker], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
