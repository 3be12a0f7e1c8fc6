// Judge budgets shared by replicas through PostgreSQL (PostgresBudgetLedger): three JudgeBudgets
// on one database stand for three replicas. Admission is a reservation under a row lock, so
// replicas racing for the last of a budget never overshoot by more than the calls in flight.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JudgeBudgets, PostgresBudgetLedger } from '../../src/scoring/index.ts';
import { databaseFor } from '../support/stores.ts';
import type { PostgresDatabase } from '../../src/postgres/index.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const DAY = '2026-03-01';

describe('shared judge budgets (PostgreSQL)', () => {
  let db: PostgresDatabase;
  let done: () => Promise<void>;
  beforeEach(async () => {
    const d = await databaseFor('postgres');
    db = d.db!;
    done = d.close;
  });
  afterEach(async () => {
    await done();
  });

  it('three replicas admitting concurrently stop once the budget is spent, overshooting by at most the calls in flight', async () => {
    const ledger = await PostgresBudgetLedger.open(db);
    const replicas = [0, 1, 2].map(
      () => new JudgeBudgets({ exp: { tokensPerDay: 1000 } }, undefined, () => NOW, { ledger }),
    );
    const PER_CALL = 90;
    let admitted = 0;
    let maxInFlight = 0;
    let inFlight = 0;
    // Each replica runs 2 calls at a time until it is refused (as a lane of concurrency 2).
    const lane = async (b: JudgeBudgets): Promise<void> => {
      for (;;) {
        const a = await b.admit('exp');
        if (!a.ok) {
          expect(a.code).toBe('BUDGET_EXHAUSTED');
          expect(a.reason).toContain('across replicas');
          return;
        }
        admitted++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((r) => setImmediate(r));
        inFlight--;
        await ledger.settle(a.ticket!.id!, 'exp', DAY, PER_CALL, 0);
      }
    };
    await Promise.all(replicas.flatMap((b) => [lane(b), lane(b)]));
    const u = await ledger.usage('exp', DAY);
    expect(u.inFlight).toBe(0);
    expect(u.calls).toBe(admitted);
    expect(u.tokens).toBe(admitted * PER_CALL);
    // Spent: at least the limit; beyond it by no more than the calls that were in flight.
    expect(u.tokens).toBeGreaterThanOrEqual(1000);
    expect(u.tokens - 1000).toBeLessThan(maxInFlight * PER_CALL + PER_CALL);
    // Every replica is refused now, and another experiment is not affected.
    for (const b of replicas)
      expect(await b.admit('exp')).toMatchObject({ ok: false, code: 'BUDGET_EXHAUSTED' });
    expect(await replicas[0]!.admit('other')).toMatchObject({ ok: true, ticket: undefined });
  });

  it('calls in flight count against what is left: the estimate refuses before usage alone would', async () => {
    const ledger = await PostgresBudgetLedger.open(db);
    const b = new JudgeBudgets({ exp: { tokensPerDay: 300 } }, undefined, () => NOW, { ledger });
    const first = await b.admit('exp');
    expect(first.ok).toBe(true);
    await ledger.settle((first as { ticket: { id: string } }).ticket.id, 'exp', DAY, 100, 0);
    // 100 used, mean 100 per call: two more may start (100 + 2 x 100 = 300 reaches the limit).
    const a2 = await b.admit('exp');
    const a3 = await b.admit('exp');
    expect([a2.ok, a3.ok]).toEqual([true, true]);
    expect(await b.admit('exp')).toMatchObject({
      ok: false,
      code: 'BUDGET_EXHAUSTED',
      reason: expect.stringContaining('2 calls in flight'),
    });
    expect((await ledger.usage('exp', DAY)).inFlight).toBe(2);
  });

  it('a reservation of a replica that died expires and stops counting', async () => {
    const ledger = await PostgresBudgetLedger.open(db, 60_000);
    const b = new JudgeBudgets({ exp: { tokensPerDay: 100 } }, undefined, () => NOW, { ledger });
    const a = await b.admit('exp');
    expect(a.ok).toBe(true);
    await ledger.settle((a as { ticket: { id: string } }).ticket.id, 'exp', DAY, 60, 0);
    const dying = await b.admit('exp'); // never settled
    expect(dying.ok).toBe(true);
    // 60 used + 1 in flight x 60 per call: refused while the reservation lives.
    expect(await b.admit('exp')).toMatchObject({ ok: false, code: 'BUDGET_EXHAUSTED' });
    // Its TTL passes (moved on in the database rather than waited for).
    await db.query("UPDATE budget_reservations SET expires_at = now() - interval '1 second'");
    expect(await b.admit('exp')).toMatchObject({ ok: true });
    expect((await ledger.usage('exp', DAY)).inFlight).toBe(1);
  });

  it('fails closed when the database cannot be reached', async () => {
    const ledger = await PostgresBudgetLedger.open(db);
    const b = new JudgeBudgets({ exp: { tokensPerDay: 100 } }, undefined, () => NOW, { ledger });
    await db.close();
    expect(await b.admit('exp')).toMatchObject({ ok: false, code: 'STORE_UNAVAILABLE' });
  });
});
