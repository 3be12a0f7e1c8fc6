// The one consumer contract and the one lifecycle (src/component): fan-out order and refusal,
// start order, reverse shutdown, idempotence, shutdown without start.
import { describe, expect, it } from 'vitest';
import { type Component, fanout, Lifecycle } from '../../src/component/index.ts';
import { ScorecarError } from '../../src/util/index.ts';
import { Sink } from '../support/sink.ts';

function recorder(name: string, log: string[], fail?: 'start' | 'shutdown'): Component {
  return {
    start: () => {
      log.push(`start ${name}`);
      if (fail === 'start') throw new Error(`${name} cannot start`);
    },
    shutdown: async () => {
      log.push(`stop ${name}`);
      if (fail === 'shutdown') throw new Error(`${name} cannot stop`);
    },
  };
}

describe('fanout', () => {
  it('hands each item to every consumer in order', () => {
    const a = new Sink<number>();
    const b = new Sink<number>();
    const f = fanout(a, b);
    f.consume(1);
    f.consume(2);
    expect(a.items).toEqual([1, 2]);
    expect(b.items).toEqual([1, 2]);
  });

  it('stops at the first refusal, which reaches the producer with its code', () => {
    const a = new Sink<number>();
    const b = new Sink<number>();
    a.refuseWith = 'QUEUE_FULL';
    let caught: unknown;
    try {
      fanout(a, b).consume(1);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ScorecarError);
    expect((caught as ScorecarError).code).toBe('QUEUE_FULL');
    expect(b.items).toEqual([]);
  });
});

describe('Lifecycle', () => {
  it('starts in order and shuts down in reverse, each once however often it is called', async () => {
    const log: string[] = [];
    const l = new Lifecycle([recorder('exporter', log), recorder('assembler', log), recorder('receivers', log)]);
    await Promise.all([l.start(), l.start()]);
    await Promise.all([l.shutdown(Date.now() + 1000), l.shutdown(Date.now() + 1000)]);
    expect(log).toEqual(['start exporter', 'start assembler', 'start receivers', 'stop receivers', 'stop assembler', 'stop exporter']);
  });

  it('shuts every component down even when it was never started', async () => {
    const log: string[] = [];
    const l = new Lifecycle([recorder('a', log), recorder('b', log)]);
    await l.shutdown(Date.now() + 1000);
    expect(log).toEqual(['stop b', 'stop a']);
  });

  it('a failing start rejects, and shutdown still reaches every component; the first shutdown error is reported', async () => {
    const log: string[] = [];
    const l = new Lifecycle([recorder('a', log), recorder('b', log, 'start'), recorder('c', log, 'shutdown')]);
    await expect(l.start()).rejects.toThrow('b cannot start');
    await expect(l.shutdown(Date.now() + 1000)).rejects.toThrow('c cannot stop');
    expect(log).toEqual(['start a', 'start b', 'stop c', 'stop b', 'stop a']);
  });
});
