// One service per test run (a Kafka broker, a PostgreSQL server), started by the first test file
// that asks: a lock directory in the run's directory decides which file starts it, the others
// wait for the address it writes (or the failure it records).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './scorecar.ts';

export interface RunServiceOptions {
  /** The run's directory for this service (from the global setup). */
  runDir: string;
  /** Its name in messages: 'Kafka broker', 'PostgreSQL server'. */
  what: string;
  /** How long a start may take (the waiting files wait as long). */
  startMs: number;
  /** Its directory under runDir (the global setup's teardown stops what runs there). */
  dirName: string;
  /** Starts it in that directory; resolves to its address. */
  start: (dir: string) => Promise<string>;
}

export async function runService(o: RunServiceOptions): Promise<string> {
  const addr = join(o.runDir, 'address');
  const failed = join(o.runDir, 'failed');
  try {
    mkdirSync(join(o.runDir, 'lock'));
  } catch {
    // Another file is starting it: wait for its address (or its failure).
    await waitFor(
      () => {
        try {
          readFileSync(failed, 'utf8');
          throw new Error(`the shared ${o.what} failed to start (see the first test file that uses it)`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
        try {
          return readFileSync(addr, 'utf8').length > 0;
        } catch {
          return false;
        }
      },
      o.startMs,
      `the shared ${o.what}`,
    );
    return readFileSync(addr, 'utf8');
  }
  try {
    const a = await o.start(join(o.runDir, o.dirName));
    writeFileSync(addr, a);
    return a;
  } catch (e) {
    writeFileSync(failed, String(e));
    throw e;
  }
}
