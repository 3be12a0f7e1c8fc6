// Code scorers keep a compiled context between calls (their globals may persist, like a Python
// scorer's module globals), are isolated from each other, and start clean after a failure.
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../src/scoring/index.ts';

const pool = new SandboxPool({ workers: 1, timeoutMs: 300, memoryBytes: 16 * 1024 * 1024 });
afterAll(() => pool.close());

const call = async (source: string, outputs: unknown = 'x') => {
  const r = await pool.run({ source, ctxJson: JSON.stringify({ inputs: null, outputs, expectations: {} }), traceJson: null });
  return r.ok ? JSON.parse(r.json).v : `error ${r.code}`;
};

describe('sandbox contexts', () => {
  it('keeps a scorer compiled between calls, isolates scorers, resets after failures', async () => {
    const counter = '(ctx) => { globalThis.n = (globalThis.n || 0) + 1; return globalThis.n; }';
    const peek = '(ctx) => typeof globalThis.n';
    expect([await call(counter), await call(counter), await call(counter)]).toEqual([1, 2, 3]);
    expect(await call(peek)).toBe('undefined');
    const fragile = "(ctx) => { globalThis.k = (globalThis.k || 0) + 1; if (ctx.outputs === 'boom') throw new Error('boom'); return globalThis.k; }";
    expect(await call(fragile)).toBe(1);
    expect(await call(fragile)).toBe(2);
    expect(await call(fragile, 'boom')).toBe('error CODE_SCORER_ERROR');
    expect(await call(fragile)).toBe(1);
    // A timeout resets the whole runtime: every scorer starts clean, and keeps working.
    expect(await call('(ctx) => { for (;;) {} }')).toBe('error TIMEOUT');
    expect(await call(counter)).toBe(1);
    expect(await call(peek)).toBe('undefined');
  });
});
