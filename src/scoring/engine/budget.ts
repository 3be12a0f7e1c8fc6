// Hard daily judge budgets per experiment (tokens and/or cost per UTC day), checked before a
// judge is called. Usage survives restarts: the day's totals are read back from the assessment
// store the first time an experiment is checked each day.
import type { UsageTotals } from '../../assessments/index.ts';

export interface BudgetLimit {
  tokensPerDay?: number | undefined;
  costPerDay?: number | undefined;
}

export interface UsageSource {
  usageSince(experimentId: string, sinceIso: string): UsageTotals;
}

interface DayUsage {
  day: string;
  tokens: number;
  cost: number;
}

export class JudgeBudgets {
  private readonly limits: Readonly<Record<string, BudgetLimit>>;
  private readonly source: UsageSource | undefined;
  private readonly now: () => number;
  private readonly usage = new Map<string, DayUsage>();

  constructor(
    limits: Readonly<Record<string, BudgetLimit>>,
    source?: UsageSource,
    now: () => number = Date.now,
  ) {
    this.limits = limits;
    this.source = source;
    this.now = now;
  }

  limitFor(experimentId: string): BudgetLimit | undefined {
    return this.limits[experimentId] ?? this.limits['*'];
  }

  private today(): string {
    return new Date(this.now()).toISOString().slice(0, 10);
  }

  current(experimentId: string): DayUsage {
    const day = this.today();
    let u = this.usage.get(experimentId);
    if (!u || u.day !== day) {
      const stored = this.source?.usageSince(experimentId, `${day}T00:00:00.000Z`);
      u = { day, tokens: stored ? stored.inputTokens + stored.outputTokens : 0, cost: stored?.cost ?? 0 };
      this.usage.set(experimentId, u);
    }
    return u;
  }

  add(experimentId: string, tokens: number, cost: number): void {
    if (!this.limitFor(experimentId)) return;
    const u = this.current(experimentId);
    u.tokens += tokens;
    u.cost += cost;
  }

  /** Why the experiment's judges must not be called now, or undefined when they may. */
  exhausted(experimentId: string): string | undefined {
    const limit = this.limitFor(experimentId);
    if (!limit) return undefined;
    const u = this.current(experimentId);
    if (limit.tokensPerDay !== undefined && u.tokens >= limit.tokensPerDay) {
      return `daily token budget of ${limit.tokensPerDay} spent (${u.tokens} used on ${u.day} UTC)`;
    }
    if (limit.costPerDay !== undefined && u.cost >= limit.costPerDay) {
      return `daily cost budget of ${limit.costPerDay} spent (${u.cost.toFixed(4)} used on ${u.day} UTC)`;
    }
    return undefined;
  }
}
