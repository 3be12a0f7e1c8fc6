// The one test consumer every stage's tests hand their stage as its next stage: it keeps what
// it is given (or passes it to a callback), can be told to refuse with a stable code as a full
// next stage would, and lets a test wait for a number of items without sleeping.
import type { Consumer } from '../../src/component/index.ts';
import { type ErrorCode, ScorecarError } from '../../src/util/index.ts';

export class Sink<T> implements Consumer<T> {
  readonly items: T[] = [];
  /** While set, consume() refuses with this code (and keeps nothing). */
  refuseWith: ErrorCode | undefined;
  /** How many items were refused. */
  refused = 0;
  private readonly keep: boolean;
  private readonly onItem: ((item: T) => void) | undefined;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  /** `onItem` sees every item; with `keep: false` items are not kept (ownership tests). */
  constructor(opts: { onItem?: (item: T) => void; keep?: boolean } = {}) {
    this.onItem = opts.onItem;
    this.keep = opts.keep ?? true;
  }

  consume(item: T): void {
    if (this.refuseWith !== undefined) {
      this.refused++;
      throw new ScorecarError(this.refuseWith, `refused by the test sink (${this.refuseWith})`);
    }
    this.count++;
    if (this.keep) this.items.push(item);
    this.onItem?.(item);
    this.waiters = this.waiters.filter((w) => {
      if (this.count < w.n) return true;
      w.resolve();
      return false;
    });
  }

  /** Items taken so far (kept or not). */
  count = 0;

  /** Resolves once `n` items have been taken in all. */
  whenCount(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

/** A consumer that only calls `fn` (nothing kept, so nothing retained by the test). */
export function consumer<T>(fn: (item: T) => void): Consumer<T> {
  return { consume: fn };
}
