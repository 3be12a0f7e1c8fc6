// Retry timing of the downstream OTLP exporter (the shared policy lives in util/retry.ts).
import type { RetryConfig } from '../config/index.ts';
import { jitteredInterval } from '../util/index.ts';

/** Jittered exponential backoff before attempt n+1 (n >= 0). */
export function backoffMs(cfg: RetryConfig, attempt: number, random: () => number = Math.random): number {
  return jitteredInterval(cfg, attempt, random);
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
