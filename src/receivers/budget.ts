// The process-wide memory budget receivers check before taking a request: bytes of request
// bodies in flight plus whatever the registered holders (export queue, trace buffer) report.
// Over budget, receivers refuse with a retry hint instead of letting the heap grow.
//
// Receivers charge a request's bytes as they arrive (and, for compressed bodies, as they are
// inflated), never what a request declares: a sender holds only what it has actually sent, so
// slow or stalled senders cannot lock everyone else out by announcing large bodies.
export class MemoryBudget {
  readonly limit: number;
  private inflight = 0;
  private readonly holders: Array<() => number> = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Registers a component whose held bytes count against the budget. */
  addHolder(bytes: () => number): void {
    this.holders.push(bytes);
  }

  used(): number {
    let n = this.inflight;
    for (const h of this.holders) n += h();
    return n;
  }

  get inflightBytes(): number {
    return this.inflight;
  }

  /** Whether this many more bytes would fit now (nothing is reserved). */
  fits(bytes: number): boolean {
    return this.used() + bytes <= this.limit;
  }

  /** Reserves bytes for a request; false (nothing reserved) when that would exceed the budget. */
  tryReserve(bytes: number): boolean {
    if (this.used() + bytes > this.limit) return false;
    this.inflight += bytes;
    return true;
  }

  /** Reserves unconditionally (bytes already in memory, e.g. a converted body). */
  reserve(bytes: number): void {
    this.inflight += bytes;
  }

  release(bytes: number): void {
    this.inflight -= bytes;
    if (this.inflight < 0) this.inflight = 0;
  }

  /** A running reservation for one request, released as a whole. */
  hold(): Hold {
    return new Hold(this);
  }
}

/** What one request holds of the budget: grown chunk by chunk, released once. */
export class Hold {
  private readonly budget: MemoryBudget;
  bytes = 0;

  constructor(budget: MemoryBudget) {
    this.budget = budget;
  }

  /** Adds bytes that are about to be kept; false (nothing added) when the budget is full. */
  tryAdd(n: number): boolean {
    if (!this.budget.tryReserve(n)) return false;
    this.bytes += n;
    return true;
  }

  /** Adds bytes unconditionally (already in memory). */
  add(n: number): void {
    this.budget.reserve(n);
    this.bytes += n;
  }

  release(): void {
    if (this.bytes > 0) this.budget.release(this.bytes);
    this.bytes = 0;
  }
}
