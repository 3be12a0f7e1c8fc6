// Code scorers keep one QuickJS context per scorer — (experiment, scorer name, version) — never
// one per source text: two experiments that register the same source (the same name even) each
// get their own globals, and a new version starts clean. Real runner, real sandbox worker.
import { afterAll, describe, expect, it } from 'vitest';
import type { ScorerVersion } from '../../src/definitions/index.ts';
import { createScorerRunner } from '../../src/scoring/index.ts';
import { makeTraceView, runAssessments } from '../support/testkit.ts';

// The scorer of the issue: it remembers every output it was shown, in a module global.
const SEEN = '(ctx) => { globalThis.seen = (globalThis.seen ?? []).concat(ctx.outputs); return globalThis.seen.length }';
// The same memory, reported as what it holds.
const SEEN_LIST = "(ctx) => { globalThis.seen = (globalThis.seen ?? []).concat(ctx.outputs); return globalThis.seen.join(',') }";

// One worker: every call of a scorer lands in the same thread, so its kept context is the one
// its previous calls used (with two workers a scorer has one context per worker).
const runner = createScorerRunner({ sandbox: { workers: 1, timeoutMs: 2000, memoryBytes: 16 * 1024 * 1024 } });
afterAll(() => runner.close());

function scorer(experimentId: string, name: string, source: string, version = 1): ScorerVersion {
  return { experimentId, name, version, definition: { type: 'code', source } };
}

async function score(s: ScorerVersion, outputs: string): Promise<unknown> {
  const view = makeTraceView({ traceId: `${s.experimentId}/${outputs}`, experimentId: s.experimentId, outputs });
  const [a] = await runAssessments(runner, { view, scorer: s, sampleRate: 1 });
  expect(a?.error).toBeUndefined();
  return a?.value;
}

describe('sandbox: one kept context per scorer, not per source text', () => {
  it('two experiments with the same scorer source (and name) never see each other’s globals', async () => {
    const a = scorer('exp-a', 'seen', SEEN);
    const b = scorer('exp-b', 'seen', SEEN);
    const counts: Array<[string, unknown]> = [];
    for (let i = 1; i <= 3; i++) {
      counts.push(['a', await score(a, `a${i}`)]);
      counts.push(['b', await score(b, `b${i}`)]);
    }
    // Globals persist between one scorer's calls (by design), counting its own outputs only.
    expect(counts).toEqual([
      ['a', 1],
      ['b', 1],
      ['a', 2],
      ['b', 2],
      ['a', 3],
      ['b', 3],
    ]);
  });

  it('what each scorer remembers is its own experiment’s outputs only', async () => {
    const a = scorer('tenant-1', 'memory', SEEN_LIST);
    const b = scorer('tenant-2', 'memory', SEEN_LIST);
    const other = scorer('tenant-1', 'memory_copy', SEEN_LIST);
    expect(await score(a, 'secret-1a')).toBe('secret-1a');
    expect(await score(b, 'secret-2a')).toBe('secret-2a');
    expect(await score(a, 'secret-1b')).toBe('secret-1a,secret-1b');
    expect(await score(b, 'secret-2b')).toBe('secret-2a,secret-2b');
    // Another scorer of the same experiment with the same source: its own context too.
    expect(await score(other, 'x')).toBe('x');
    // A new version of a scorer starts with a clean context.
    expect(await score(scorer('tenant-1', 'memory', SEEN_LIST, 2), 'v2')).toBe('v2');
    expect(await score(a, 'secret-1c')).toBe('secret-1a,secret-1b,secret-1c');
  });
});
