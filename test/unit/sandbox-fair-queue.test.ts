// The sandbox pool's scheduler on its own: which scorer's call a free worker gets.
import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../src/scoring/sandbox/fair-queue.ts';

/** Starts the next call and returns its item ('' when nothing may start). */
function start(q: FairQueue<string>): string {
  return q.next()?.item ?? '';
}

function fill(q: FairQueue<string>, key: string, n: number): void {
  for (let i = 1; i <= n; i++) q.push(key, `${key}${i}`);
}

describe('FairQueue', () => {
  it('keeps each scorer first in, first out, and lets a scorer alone use every worker', () => {
    const q = new FairQueue<string>(3);
    fill(q, 'R', 5);
    expect([start(q), start(q), start(q)]).toEqual(['R1', 'R2', 'R3']);
    expect(q.size).toBe(2);
    expect(q.load('R')).toEqual({ waiting: 2, running: 3 });
  });

  it('gives a free worker to the scorer that has used the least CPU time, not to the longest queue', () => {
    const q = new FairQueue<string>(1);
    fill(q, 'R', 10);
    expect(start(q)).toBe('R1');
    fill(q, 'F', 3); // arrives behind nine of R's calls
    q.done('R', 50); // R's call ran into its limit
    // F has used less than R ever since it arrived: all of its calls go first.
    expect(start(q)).toBe('F1');
    q.done('F', 1);
    expect(start(q)).toBe('F2');
    q.done('F', 1);
    expect(start(q)).toBe('F3');
    q.done('F', 1);
    expect(start(q)).toBe('R2');
    expect(q.load('R')).toEqual({ waiting: 8, running: 1 });
    expect(q.load('F')).toEqual({ waiting: 0, running: 0 });
  });

  it('shares by CPU time: a scorer using 5x the CPU per call gets a fifth of the calls', () => {
    const q = new FairQueue<string>(1);
    fill(q, 'heavy', 20);
    fill(q, 'light', 100);
    const order: string[] = [];
    for (let i = 0; i < 60; i++) {
      const n = q.next()!;
      order.push(n.key);
      q.done(n.key, n.key === 'heavy' ? 5 : 1);
    }
    const heavy = order.filter((k) => k === 'heavy').length;
    expect(heavy).toBeGreaterThanOrEqual(9);
    expect(heavy).toBeLessThanOrEqual(11);
  });

  it('with W ≥ 2, never lets one scorer take its last free worker while another scorer waits', () => {
    const q = new FairQueue<string>(2);
    // F is the scorer that used more CPU time, so by usage alone R would come first every time.
    fill(q, 'F', 2);
    expect([start(q), start(q)]).toEqual(['F1', 'F2']); // alone: both workers
    fill(q, 'R', 5);
    q.push('F', 'F3');
    q.done('F', 100);
    expect(start(q)).toBe('R1'); // F holds one worker and used more: R
    q.done('F', 100);
    // R used less, but holds one of the two workers while F waits: F gets the other.
    expect(start(q)).toBe('F3');
    q.done('R', 1000);
    expect(start(q)).toBe('R2'); // F now holds one worker while R waits: R, whatever the usage
    expect(q.load('R')).toEqual({ waiting: 3, running: 1 });
    expect(q.load('F')).toEqual({ waiting: 0, running: 1 });
    q.done('F', 1);
    expect(start(q)).toBe('R3'); // nobody else waits: R may use every worker
  });

  it('with W = 1 the cap does not apply: calls go by usage alone', () => {
    const q = new FairQueue<string>(1);
    fill(q, 'A', 2);
    fill(q, 'B', 2);
    expect(start(q)).toBe('A1');
    q.done('A', 2);
    expect(start(q)).toBe('B1');
    q.done('B', 1);
    expect(start(q)).toBe('B2');
    q.done('B', 5);
    expect(start(q)).toBe('A2');
  });

  it('an idle scorer banks no credit: it comes back level with the others', () => {
    const q = new FairQueue<string>(1);
    fill(q, 'A', 1);
    expect(start(q)).toBe('A1');
    q.done('A', 1); // A goes idle having used almost nothing
    fill(q, 'B', 100);
    for (let i = 0; i < 50; i++) {
      expect(start(q)).toBe(`B${i + 1}`);
      q.done('B', 10);
    }
    // B has used 500 ms. Had A kept its 1 ms (or started from zero), it would now run all ten
    // of its calls before B's next one.
    fill(q, 'A', 10);
    const order: string[] = [];
    for (let i = 0; i < 10; i++) {
      const n = q.next()!;
      order.push(n.key);
      q.done(n.key, 10);
    }
    expect(order.filter((k) => k === 'A').length).toBeLessThanOrEqual(6);
    expect(order.filter((k) => k === 'B').length).toBeGreaterThanOrEqual(4);
  });

  it('between equal usage, prefers the scorer with fewer calls running (calls are charged when they end)', () => {
    const q = new FairQueue<string>(3);
    fill(q, 'R', 5);
    expect(start(q)).toBe('R1'); // running, not charged yet: R's usage is still that of a newcomer
    fill(q, 'F', 2);
    expect(start(q)).toBe('F1');
    expect(start(q)).toBe('R2'); // one call each running: the older scorer
  });

  it('removes a waiting call whose caller gave up, and drains on close', () => {
    const q = new FairQueue<string>(2);
    fill(q, 'A', 3);
    fill(q, 'B', 1);
    expect(q.remove('A', 'A2')).toBe(true);
    expect(q.remove('A', 'A2')).toBe(false);
    expect(q.remove('C', 'C1')).toBe(false);
    expect(q.size).toBe(3);
    expect(start(q)).toBe('A1');
    expect(q.drain().sort()).toEqual(['A3', 'B1']);
    expect(q.size).toBe(0);
    expect(q.next()).toBeUndefined();
    expect(q.load('A')).toEqual({ waiting: 0, running: 1 });
  });
});
