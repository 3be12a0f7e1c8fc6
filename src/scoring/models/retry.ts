// Retry timing for model calls: exponential backoff with jitter (the OTLP exporters' policy),
// Retry-After parsing, abortable sleeps on an injectable clock, and the small per-endpoint
// semaphore that bounds requests in flight.
import { type Clock, jitteredInterval } from '../../util/index.ts';
import type { RetryPolicy } from './types.ts';


/**
 * The wait before the next attempt, or undefined when the retry budget does not allow one.
 * A server's Retry-After wins over a shorter backoff (never over the elapsed budget).
 */
export function nextDelay(
  policy: RetryPolicy,
  retry: number,
  elapsedMs: number,
  retryAfterMs: number | undefined,
  random: () => number,
): number | undefined {
  if (policy.maxElapsedMs <= 0) return undefined;
  let wait = jitteredInterval(policy, retry, random);
  if (retryAfterMs !== undefined) wait = Math.max(wait, retryAfterMs);
  if (elapsedMs + wait > policy.maxElapsedMs) return undefined;
  return wait;
}

/** Resolves after ms, or rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A counting semaphore with a FIFO wait queue; waiting is abortable. */
export class Semaphore {
  readonly limit: number;
  private active = 0;
  private readonly waiters: Array<{ grant: () => void; reject: (e: unknown) => void; signal?: AbortSignal }> =
    [];

  constructor(limit: number) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  get inFlight(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        reject,
        signal,
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `active` stays the same.
      if (next) next.grant();
      else this.active--;
    };
  }
}
