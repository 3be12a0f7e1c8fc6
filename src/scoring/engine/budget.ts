// Hard daily judge budgets per experiment (tokens and/or cost per UTC day), checked before a
// judge is called.
//
// One process (SQLite, the default): usage is counted here and survives restarts through the
// assessment store (the day's totals are read back the first time an experiment is checked each
// day); a call is admitted while the day's usage is under the limit.
//
// Several replicas (a BudgetLedger: PostgreSQL, storage.postgres.url): every judge call is
// admitted by a reservation in the database, made under a row lock of the (experiment, day)
// usage row, and settled with what it really used. A call is admitted while the day's usage plus
// what the calls in flight are expected to use (their count times the mean usage per call so
// far) is under the limit, so once the budget is spent no replica calls a judge again, and the
// overshoot is at most what the calls already in flight use beyond that estimate. A replica that
// dies leaves its reservations behind; they expire (reservationTtlMs).
import type { UsageTotals } from '../../assessments/index.ts';

export interface BudgetLimit {
  tokensPerDay?: number | undefined;
  costPerDay?: number | undefined;
}

export interface UsageSource {
  usageSince(experimentId: string, sinceIso: string): Promise<UsageTotals> | UsageTotals;
}

/** Day usage shared by replicas, with reservations (see the file comment). */
export interface BudgetLedger {
  /** Admits one call unless the limit is reached; returns the reservation or the usage that refused it. */
  reserve(
    experimentId: string,
    day: string,
    limit: BudgetLimit,
  ): Promise<{ ok: true; id: string } | { ok: false; tokens: number; cost: number; inFlight: number }>;
  /** Replaces a reservation by what the call used. */
  settle(id: string, experimentId: string, day: string, tokens: number, cost: number): Promise<void>;
}

/** What admit() hands back for settle(). */
export interface BudgetTicket {
  experimentId: string;
  day: string;
  /** The ledger's reservation (shared budgets only). */
  id?: string;
}

export type Admission = { ok: true; ticket: BudgetTicket | undefined } | { ok: false; code: 'BUDGET_EXHAUSTED' | 'STORE_UNAVAILABLE'; reason: string };

interface DayUsage {
  day: string;
  tokens: number;
  cost: number;
}

const FREE: Admission = { ok: true, ticket: undefined };

export class JudgeBudgets {
  private readonly limits: Readonly<Record<string, BudgetLimit>>;
  private readonly source: UsageSource | undefined;
  private readonly now: () => number;
  private readonly ledger: BudgetLedger | undefined;
  private readonly usage = new Map<string, DayUsage>();
  private readonly loading = new Map<string, Promise<void>>();
  /** Settlements that failed (the store was down): logged by the caller through onError. */
  private readonly onError: (e: unknown) => void;

  constructor(
    limits: Readonly<Record<string, BudgetLimit>>,
    source?: UsageSource,
    now: () => number = Date.now,
    opts: { ledger?: BudgetLedger | undefined; onError?: (e: unknown) => void } = {},
  ) {
    this.limits = limits;
    this.source = source;
    this.now = now;
    this.ledger = opts.ledger;
    this.onError = opts.onError ?? (() => {});
  }

  /** Whether usage is shared with other replicas through a ledger. */
  get shared(): boolean {
    return this.ledger !== undefined;
  }

  limitFor(experimentId: string): BudgetLimit | undefined {
    return this.limits[experimentId] ?? this.limits['*'];
  }

  private today(): string {
    return new Date(this.now()).toISOString().slice(0, 10);
  }

  /** The day's local usage; the first read of a day loads what the source stored (see load()). */
  current(experimentId: string): DayUsage {
    const day = this.today();
    let u = this.usage.get(experimentId);
    if (!u || u.day !== day) {
      u = { day, tokens: 0, cost: 0 };
      this.usage.set(experimentId, u);
    }
    return u;
  }

  /** Reads the day's stored usage once per experiment and day (restarts keep their spending). */
  private load(experimentId: string): Promise<void> | undefined {
    const day = this.today();
    const u = this.usage.get(experimentId);
    if (u && u.day === day) return undefined;
    if (!this.source) {
      this.current(experimentId);
      return undefined;
    }
    const key = `${experimentId}\u0000${day}`;
    let p = this.loading.get(key);
    if (!p) {
      p = (async () => {
        try {
          const stored = await this.source!.usageSince(experimentId, `${day}T00:00:00.000Z`);
          const cur = this.usage.get(experimentId);
          // Calls counted while the read was in flight are added to what was stored before them.
          const extra = cur && cur.day === day ? cur : { tokens: 0, cost: 0 };
          this.usage.set(experimentId, { day, tokens: stored.inputTokens + stored.outputTokens + extra.tokens, cost: stored.cost + extra.cost });
        } finally {
          this.loading.delete(key);
        }
      })();
      this.loading.set(key, p);
    }
    return p;
  }

  add(experimentId: string, tokens: number, cost: number): void {
    if (!this.limitFor(experimentId)) return;
    const u = this.current(experimentId);
    u.tokens += tokens;
    u.cost += cost;
  }

  /** Why the experiment's judges must not be called now (local usage), or undefined when they may. */
  exhausted(experimentId: string): string | undefined {
    const limit = this.limitFor(experimentId);
    if (!limit) return undefined;
    return this.reasonFor(limit, this.current(experimentId));
  }

  private reasonFor(limit: BudgetLimit, u: { day: string; tokens: number; cost: number }, inFlight = 0): string | undefined {
    const flying = inFlight > 0 ? ` and ${inFlight} calls in flight` : '';
    if (limit.tokensPerDay !== undefined && u.tokens >= limit.tokensPerDay) {
      return `daily token budget of ${limit.tokensPerDay} spent (${u.tokens} used on ${u.day} UTC${flying})`;
    }
    if (limit.costPerDay !== undefined && u.cost >= limit.costPerDay) {
      return `daily cost budget of ${limit.costPerDay} spent (${u.cost.toFixed(4)} used on ${u.day} UTC${flying})`;
    }
    return undefined;
  }

  /**
   * Before a judge call: admitted (with a ticket for settle()) or refused with the reason.
   * Synchronous when no store round trip is needed (no limit for the experiment, or local usage
   * already loaded), so the scoring hot path pays no extra turn of the event loop; a promise when
   * the shared ledger (or the day's first read of local usage) is asked.
   */
  admit(experimentId: string): Admission | Promise<Admission> {
    const limit = this.limitFor(experimentId);
    if (!limit) return FREE;
    const day = this.today();
    if (this.ledger) return this.reserve(this.ledger, experimentId, day, limit);
    const loading = this.load(experimentId);
    if (loading) return loading.catch((e: unknown) => this.onError(e)).then(() => this.localAdmission(experimentId, day));
    return this.localAdmission(experimentId, day);
  }

  private localAdmission(experimentId: string, day: string): Admission {
    const reason = this.exhausted(experimentId);
    return reason ? { ok: false, code: 'BUDGET_EXHAUSTED', reason } : { ok: true, ticket: { experimentId, day } };
  }

  private async reserve(ledger: BudgetLedger, experimentId: string, day: string, limit: BudgetLimit): Promise<Admission> {
    try {
      const r = await ledger.reserve(experimentId, day, limit);
      if (r.ok) return { ok: true, ticket: { experimentId, day, id: r.id } };
      const reason = this.reasonFor(limit, { day, tokens: r.tokens, cost: r.cost }, r.inFlight) ?? `daily budget spent on ${day} UTC (${r.inFlight} calls in flight)`;
      return { ok: false, code: 'BUDGET_EXHAUSTED', reason: `${reason}, across replicas` };
    } catch (e) {
      // Fail closed: without the shared count, no replica knows what is left.
      return { ok: false, code: 'STORE_UNAVAILABLE', reason: `judge budget cannot be reserved: ${(e as Error).message}` };
    }
  }

  /** After an admitted call: what it used. */
  settle(ticket: BudgetTicket | undefined, tokens: number, cost: number): void {
    if (!ticket) return;
    if (ticket.id !== undefined && this.ledger) {
      this.ledger.settle(ticket.id, ticket.experimentId, ticket.day, tokens, cost).catch((e: unknown) => this.onError(e));
      return;
    }
    this.add(ticket.experimentId, tokens, cost);
  }
}
