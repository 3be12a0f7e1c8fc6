// The sandbox pool's scheduler: which waiting call gets a worker that just became free. One FIFO
// queue per scorer (its key: experiment + name), so a scorer flooding the pool does not push
// other scorers' calls behind its backlog.
//
// Fair queueing over worker CPU time: a free worker goes to the waiting scorer that has used
// the least CPU time so far. A scorer that becomes active (it had nothing queued or running)
// joins level with the least-served active scorer: an idle period banks no credit with which it
// could then crowd the others out, and a newcomer never waits behind an old scorer's history —
// in particular, its first call goes before any further call of a scorer already running.
// Usage is charged when a call ends (the worker reports the CPU time it used), so calls started
// together are not charged yet; the cap below bounds what that can cost.
//
// The cap: with W ≥ 2 workers, a scorer never starts a call on its last free worker — one that
// would leave it holding all W — while another scorer has a call waiting. With W = 1 there is
// nothing to reserve, and the order above alone applies.
//
// Pure bookkeeping, no timers and no workers, so every rule is unit-tested
// (test/unit/sandbox-fair-queue.test.ts).

interface Flow<T> {
  key: string;
  queue: T[];
  head: number;
  /** Calls started and not yet done. */
  running: number;
  /** CPU time (ms) charged to this scorer, on the pool's virtual clock. */
  usedMs: number;
}

export class FairQueue<T> {
  private readonly workers: number;
  /** Active scorers: something queued or running. Insertion order breaks exact ties. */
  private readonly flows = new Map<string, Flow<T>>();
  private waiting = 0;

  /** `workers`: the pool's worker count W (the cap leaves one of them to the others). */
  constructor(workers: number) {
    this.workers = Math.max(1, Math.floor(workers));
  }

  /** Calls waiting, all scorers together. */
  get size(): number {
    return this.waiting;
  }

  push(key: string, item: T): void {
    let f = this.flows.get(key);
    if (!f) {
      let least = Number.POSITIVE_INFINITY;
      for (const g of this.flows.values()) if (g.usedMs < least) least = g.usedMs;
      f = { key, queue: [], head: 0, running: 0, usedMs: Number.isFinite(least) ? least : 0 };
      this.flows.set(key, f);
    }
    f.queue.push(item);
    this.waiting++;
  }

  /** Takes a waiting item out (its caller gave up). False when it was not waiting. */
  remove(key: string, item: T): boolean {
    const f = this.flows.get(key);
    if (!f) return false;
    const i = f.queue.indexOf(item, f.head);
    if (i < 0) return false;
    f.queue.splice(i, 1);
    this.waiting--;
    this.forgetIfIdle(f);
    return true;
  }

  /**
   * The next item to start on a free worker, counted as running until done(key) is called;
   * undefined when nothing waits.
   */
  next(): { key: string; item: T } | undefined {
    let best: Flow<T> | undefined;
    let blocked: Flow<T> | undefined;
    let waitingFlows = 0;
    for (const f of this.flows.values()) {
      if (f.head >= f.queue.length) continue;
      waitingFlows++;
      // With a worker free, fewer than W calls run, so at most one scorer can hit the cap.
      if (this.workers >= 2 && f.running + 1 >= this.workers) {
        blocked = f;
        continue;
      }
      // Least usage first; between equals, the one with fewer calls running.
      if (!best || f.usedMs < best.usedMs || (f.usedMs === best.usedMs && f.running < best.running)) best = f;
    }
    // The cap only holds while someone else waits: alone, a scorer may use every worker.
    const f = best ?? (waitingFlows === 1 ? blocked : undefined);
    if (!f) return undefined;
    const item = f.queue[f.head]!;
    f.queue[f.head] = undefined as unknown as T;
    f.head++;
    if (f.head === f.queue.length) {
      f.queue = [];
      f.head = 0;
    } else if (f.head > 1024 && f.head * 2 > f.queue.length) {
      f.queue = f.queue.slice(f.head);
      f.head = 0;
    }
    this.waiting--;
    f.running++;
    return { key: f.key, item };
  }

  /** A started item ended, having used `cpuMs` of worker CPU time. */
  done(key: string, cpuMs: number): void {
    const f = this.flows.get(key);
    if (!f) return;
    f.running = Math.max(0, f.running - 1);
    if (Number.isFinite(cpuMs) && cpuMs > 0) f.usedMs += cpuMs;
    this.forgetIfIdle(f);
  }

  /** Empties the queues (the pool closes); running items stay counted until done(). */
  drain(): T[] {
    const out: T[] = [];
    for (const f of this.flows.values()) {
      for (let i = f.head; i < f.queue.length; i++) out.push(f.queue[i]!);
      f.queue = [];
      f.head = 0;
      this.forgetIfIdle(f);
    }
    this.waiting = 0;
    return out;
  }

  /** Calls waiting and running for one scorer (tests and stats). */
  load(key: string): { waiting: number; running: number } {
    const f = this.flows.get(key);
    return f ? { waiting: f.queue.length - f.head, running: f.running } : { waiting: 0, running: 0 };
  }

  private forgetIfIdle(f: Flow<T>): void {
    if (f.running === 0 && f.head >= f.queue.length) this.flows.delete(f.key);
  }
}
