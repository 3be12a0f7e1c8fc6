// Time source and timers, injectable so tests can drive retries and deadlines with fake timers.
export interface Clock {
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  // Globals are looked up at call time, so vi.useFakeTimers() also drives the default clock.
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
