// The clocks of a sandbox thread (the QuickJS and the Pyodide workers, the compile check): CPU
// time for the limits, and the tests' hook that makes the wall clock race.

/**
 * CPU time the calling thread has used, in ms: the clock of every per-call limit. One reading
 * costs about 0.2 µs; QuickJS's interrupt handler reads it about every 0.2 ms of scorer
 * execution (~0.1% of the call), so it is read on every call, never sampled.
 */
export function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Tests: makes this thread's wall clocks (Date.now, performance.now) jump by `stepMs` on every
 * reading, as on a thread descheduled for that long between readings, to prove that the limits
 * measure CPU time and never wall time (WorkerInit.wallClockStepMs).
 */
export function raceWallClock(stepMs: number): void {
  const wallNow = Date.now.bind(Date);
  const perfNow = performance.now.bind(performance);
  let skew = 0;
  const later = (): number => {
    skew += stepMs;
    return skew;
  };
  Date.now = () => wallNow() + later();
  performance.now = () => perfNow() + later();
}
