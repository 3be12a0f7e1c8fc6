// The one contract between pipeline stages, and the one lifecycle of every component, as the
// OpenTelemetry Collector has them (consumer.Traces, component.Component): a stage is handed
// the next stage's Consumer when it is built, and hands each item on with consume().
//
// consume(item) is synchronous: the item is the next stage's the moment consume returns. A
// refusal is a thrown ScorecarError with a stable code (QUEUE_FULL, OVERLOADED, SHUTTING_DOWN
// ...); the producer decides what a refusal means for its own input (a receiver answers the
// sender with the code's status, the selection stage counts the job as dropped), and every
// refused item is counted by whoever refused it.
import { ScorecarError } from '../util/index.ts';

export interface Consumer<T> {
  consume(item: T): void;
}

/**
 * Every component: start() before the first item, shutdown(deadline) after the last. Both are
 * safe to call twice, and shutdown() is safe without start(). `deadlineMs` is an absolute
 * epoch-ms time by which shutdown must have given up waiting (what is left is counted as lost).
 */
export interface Component {
  start(): void | Promise<void>;
  shutdown(deadlineMs: number): Promise<void>;
}

/** A consumer that hands each item to several consumers in order; the first refusal stops it. */
export function fanout<T>(...consumers: Consumer<T>[]): Consumer<T> {
  if (consumers.length === 1) return consumers[0]!;
  return {
    consume(item: T): void {
      for (const c of consumers) c.consume(item);
    },
  };
}

/** A consumer that takes nothing: what a stage is handed when nothing follows it. */
export const discard: Consumer<unknown> = { consume(): void {} };

/**
 * Starts components in the order given and shuts every one of them down in the reverse order
 * (started or not: each component's shutdown is safe without start, and this way nothing a
 * constructor acquired is left behind). Safe to call twice.
 */
export class Lifecycle implements Component {
  private readonly components: readonly Component[];
  private started: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(components: readonly Component[]) {
    this.components = components;
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      for (const c of this.components) {
        if (this.stopped) throw new ScorecarError('SHUTTING_DOWN', 'shut down while starting');
        await c.start();
      }
    })();
    return this.started;
  }

  shutdown(deadlineMs: number): Promise<void> {
    this.stopped ??= (async () => {
      await this.started?.catch(() => {});
      let first: unknown;
      for (let i = this.components.length - 1; i >= 0; i--) {
        try {
          await this.components[i]!.shutdown(deadlineMs);
        } catch (e) {
          first ??= e;
        }
      }
      if (first !== undefined) throw first;
    })();
    return this.stopped;
  }
}
