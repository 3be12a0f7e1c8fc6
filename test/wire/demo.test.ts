// `npm run demo` works on a fresh checkout: every recorded trace gets both assessments.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { NODE } from '../support/child.ts';

it('the demo scores the recorded traces of every convention and exits', () => {
  const root = join(import.meta.dirname, '../..');
  const r = spawnSync(NODE, ['--disable-warning=ExperimentalWarning', 'scripts/demo.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const m = /(\d+) assessments for (\d+) traces/.exec(r.stdout);
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBe(2 * Number(m![2]));
  for (const convention of ['mlflow', 'openinference', 'openllmetry', 'vercel-ai', 'langfuse', 'genai-semconv']) {
    expect(r.stdout).toMatch(new RegExp(`${convention}\\s+answers_the_question\\s+"yes"`));
  }
}, 90_000);
