// Judge budgets shared by every replica (storage.postgres.url): the day's usage per experiment
// and the reservations of calls in flight, in PostgreSQL (see budget.ts for the rule).
//
// A reservation is one transaction: lock the (experiment, day) usage row (FOR UPDATE, so replicas
// admit calls one at a time per experiment), drop expired reservations, count the live ones,
// refuse when usage + live x mean-per-call reaches the limit, else insert one. A settlement is
// one statement: delete the reservation and add what the call used. Reservations expire after
// ttlMs (a replica killed mid-call never settles; its calls stop counting once they expire).
import { randomUUID } from 'node:crypto';
import type { PostgresDatabase } from '../../postgres/index.ts';
import type { BudgetLedger, BudgetLimit } from './budget.ts';

const MIGRATIONS = [
  {
    version: 1,
    name: 'judge budgets',
    sql: `
      CREATE TABLE budget_usage (
        experiment_id TEXT NOT NULL,
        day           TEXT NOT NULL,
        tokens        DOUBLE PRECISION NOT NULL DEFAULT 0,
        cost          DOUBLE PRECISION NOT NULL DEFAULT 0,
        calls         BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (experiment_id, day)
      );
      CREATE TABLE budget_reservations (
        id            UUID PRIMARY KEY,
        experiment_id TEXT NOT NULL,
        day           TEXT NOT NULL,
        expires_at    TIMESTAMPTZ NOT NULL
      );
      CREATE INDEX budget_reservations_day ON budget_reservations (experiment_id, day);
    `,
  },
];

const WHAT = 'budget store';

export class PostgresBudgetLedger implements BudgetLedger {
  private readonly db: PostgresDatabase;
  private readonly ttlMs: number;

  private constructor(db: PostgresDatabase, ttlMs: number) {
    this.db = db;
    this.ttlMs = ttlMs;
  }

  /** ttlMs: how long an unsettled reservation counts (longer than any judge call with its retries). */
  static async open(db: PostgresDatabase, ttlMs = 600_000): Promise<PostgresBudgetLedger> {
    await db.migrate('budgets', MIGRATIONS);
    return new PostgresBudgetLedger(db, ttlMs);
  }

  reserve(experimentId: string, day: string, limit: BudgetLimit): ReturnType<BudgetLedger['reserve']> {
    return this.db.tx(async (q) => {
      await q.query('INSERT INTO budget_usage (experiment_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING', [experimentId, day]);
      const u = (
        await q.query<{ tokens: number; cost: number; calls: string }>(
          'SELECT tokens, cost, calls FROM budget_usage WHERE experiment_id = $1 AND day = $2 FOR UPDATE',
          [experimentId, day],
        )
      ).rows[0]!;
      await q.query('DELETE FROM budget_reservations WHERE experiment_id = $1 AND expires_at < now()', [experimentId]);
      const inFlight = (
        await q.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM budget_reservations WHERE experiment_id = $1 AND day = $2', [experimentId, day])
      ).rows[0]!.n;
      const calls = Number(u.calls);
      // Calls in flight are expected to use what calls used on average so far today.
      const expectTokens = calls > 0 ? (u.tokens / calls) * inFlight : 0;
      const expectCost = calls > 0 ? (u.cost / calls) * inFlight : 0;
      const over =
        (limit.tokensPerDay !== undefined && u.tokens + expectTokens >= limit.tokensPerDay) ||
        (limit.costPerDay !== undefined && u.cost + expectCost >= limit.costPerDay);
      if (over) return { ok: false as const, tokens: u.tokens, cost: u.cost, inFlight };
      const id = randomUUID();
      await q.query(
        `INSERT INTO budget_reservations (id, experiment_id, day, expires_at) VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')`,
        [id, experimentId, day, this.ttlMs],
      );
      return { ok: true as const, id };
    }, WHAT);
  }

  async settle(id: string, experimentId: string, day: string, tokens: number, cost: number): Promise<void> {
    // Usage counts even when the reservation expired meanwhile: the call was made.
    await this.db.query(
      `WITH gone AS (DELETE FROM budget_reservations WHERE id = $1)
       INSERT INTO budget_usage AS b (experiment_id, day, tokens, cost, calls) VALUES ($2, $3, $4, $5, $6)
       ON CONFLICT (experiment_id, day) DO UPDATE SET tokens = b.tokens + $4, cost = b.cost + $5, calls = b.calls + $6`,
      // A call that used nothing (it failed before the model answered) does not lower the mean per call.
      [id, experimentId, day, tokens, cost, tokens > 0 || cost > 0 ? 1 : 0],
      WHAT,
    );
  }

  /** The day's usage and live reservations (tests, /healthz). */
  async usage(experimentId: string, day: string): Promise<{ tokens: number; cost: number; calls: number; inFlight: number }> {
    const { rows } = await this.db.query<{ tokens: number | null; cost: number | null; calls: string | null; n: number }>(
      `SELECT u.tokens, u.cost, u.calls,
              (SELECT COUNT(*)::int FROM budget_reservations r WHERE r.experiment_id = $1 AND r.day = $2 AND r.expires_at >= now()) AS n
       FROM (SELECT 1) x LEFT JOIN budget_usage u ON u.experiment_id = $1 AND u.day = $2`,
      [experimentId, day],
      WHAT,
    );
    const r = rows[0]!;
    return { tokens: r.tokens ?? 0, cost: r.cost ?? 0, calls: Number(r.calls ?? 0), inFlight: r.n };
  }
}
