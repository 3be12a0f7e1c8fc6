// Retry timing shared by everything scorecar retries (the downstream OTLP exporter, judge model
// calls): exponential backoff with jitter, and servers' Retry-After hints.

export interface BackoffPolicy {
  initialIntervalMs: number;
  maxIntervalMs: number;
  multiplier: number;
  /** Each wait is drawn uniformly from [1 - r, 1 + r] times the nominal interval. */
  randomizationFactor: number;
}

/** Nominal wait before retry number `retry` (0 = the first retry), before jitter. */
export function backoffInterval(policy: BackoffPolicy, retry: number): number {
  return Math.min(policy.initialIntervalMs * policy.multiplier ** retry, policy.maxIntervalMs);
}

/** The jittered wait: uniform in [1 - r, 1 + r] times the nominal interval. */
export function jitteredInterval(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const r = policy.randomizationFactor;
  return Math.max(0, Math.round(backoffInterval(policy, retry) * (1 - r + 2 * r * random())));
}

/**
 * Retry-After in milliseconds: delta-seconds (fractions tolerated) or an HTTP-date (RFC 9110
 * section 10.2.3). Undefined when absent or unreadable; a date in the past means now (0).
 */
export function parseRetryAfter(value: string | string[] | null | undefined, nowMs: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === null || raw === undefined) return undefined;
  const v = raw.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
