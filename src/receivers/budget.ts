// The process-wide memory budget receivers check before taking a request: bytes of request
// bodies in flight plus whatever the registered holders (export queue, trace buffer) report.
// Over budget, receivers refuse with a retry hint instead of letting the heap grow.
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

  /** Reserves bytes for a request; false (nothing reserved) when that would exceed the budget. */
  tryReserve(bytes: number): boolean {
    if (this.used() + bytes > this.limit) return false;
    this.inflight += bytes;
    return true;
  }

  /** Reserves unconditionally (bytes already in memory, e.g. a decompressed body). */
  reserve(bytes: number): void {
    this.inflight += bytes;
  }

  release(bytes: number): void {
    this.inflight -= bytes;
    if (this.inflight < 0) this.inflight = 0;
  }
}
