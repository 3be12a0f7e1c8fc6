// Retry timing shared by the downstream exporter: exponential backoff with jitter, and parsing
// of server hints (HTTP Retry-After, gRPC RetryInfo).
import type { RetryConfig } from '../config/schema.ts';

/** Nominal wait before attempt n+1 (n >= 0), with jitter drawn from [1-r, 1+r]. */
export function backoffMs(cfg: RetryConfig, attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(cfg.maxIntervalMs, cfg.initialIntervalMs * cfg.multiplier ** attempt);
  const r = cfg.randomizationFactor;
  return Math.max(0, Math.round(nominal * (1 - r + 2 * r * random())));
}

/** Retry-After: delta-seconds or an HTTP-date. Returns milliseconds, or undefined if absent/invalid. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
