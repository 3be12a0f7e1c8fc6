// The worker in this process (so its code is measured), against the shared broker: a job it
// cannot read is counted and committed past while the rest of its batch is scored; a worker
// stopped in the middle of a batch commits none of it, and the next worker scores that batch
// with the same assessment ids (what makes a redelivery harmless downstream).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { assessmentId } from '../../src/assessments/index.ts';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { ScorerDefinition } from '../../src/definitions/index.ts';
import {
  createKafkaClient,
  encodeJob,
  type InMessage,
  jobMessage,
  type KafkaClient,
  ScoringWorker,
} from '../../src/kafka/index.ts';
import type { SelectedJob } from '../../src/select/index.ts';
import { createLogger, MetricsRegistry } from '../../src/util/index.ts';
import { sharedBroker, uniqueTopic } from '../support/kafka.ts';
import { kafkaYaml } from '../support/kafka-assert.ts';
import { makeTraces, requestOf } from '../support/kafka-traces.ts';
import { waitFor } from '../support/scorecar.ts';

const log = createLogger({ level: (process.env.SCORECAR_TEST_LOG as 'debug') ?? 'error' });

function jobsFor(n: number, seed: string, name: string, definition: ScorerDefinition): Buffer[] {
  const traces = tracesFromRequest(requestOf('worker-test', makeTraces(n, seed)));
  return traces.map((t) =>
    encodeJob(
      jobMessage(
        {
          view: undefined as never,
          scorer: { experimentId: 'worker-test', name, version: 1, definition },
          sampleRate: 1,
          completion: 'root',
          approxBytes: 0,
          trace: t,
        } satisfies SelectedJob,
        Date.now(),
      ),
    ),
  );
}

describe('scorecar worker (in process)', () => {
  let bootstrap: string;
  let model: ModelServer;
  let client: KafkaClient;

  beforeAll(async () => {
    bootstrap = await sharedBroker();
    model = await startModelServer();
    client = await createKafkaClient({ client: 'platformatic', brokers: [bootstrap], clientId: 'test', log });
  }, 180_000);

  afterAll(async () => {
    await model?.close();
  });

  function setup(): {
    names: { jobs: string; assessments: string; workers: string; emitter: string };
    worker: () => ScoringWorker;
    read: (n: number) => Promise<InMessage[]>;
  } {
    const names = {
      jobs: uniqueTopic('jobs'),
      assessments: uniqueTopic('assessments'),
      workers: uniqueTopic('w'),
      emitter: uniqueTopic('e'),
    };
    const config = loadConfig({ text: kafkaYaml({ bootstrap, ...names, model: model.url }), env: {} });
    const worker = (): ScoringWorker =>
      new ScoringWorker({ config, client, metrics: new MetricsRegistry(), log });
    const read = async (n: number): Promise<InMessage[]> => {
      const got: InMessage[] = [];
      const c = client.consumer({
        groupId: uniqueTopic('reader'),
        topics: [names.assessments],
        maxBatch: 1000,
        sessionTimeoutMs: 10_000,
      });
      const running = c.run(async (b) => void got.push(...b));
      try {
        await waitFor(() => got.length >= n, 60_000, `${n} assessments`);
      } finally {
        await c.close();
        await running;
      }
      return got;
    };
    return { names, worker, read };
  }

  it('counts and skips a job it cannot read, scores the rest of the batch, commits all of it', async () => {
    const { names, worker, read } = setup();
    const admin = client.admin();
    await admin.ensureTopics([
      { topic: names.jobs, partitions: 1 },
      { topic: names.assessments, partitions: 1 },
    ]);
    const good = jobsFor(3, 'readable', 'len', {
      type: 'code',
      source: '(ctx) => String(ctx.outputs).length',
    });
    const p = client.producer();
    await p.send(names.jobs, [
      { key: 'x', value: Buffer.from('not a job') },
      ...good.map((value) => ({ key: null, value })),
      // A job from a newer schema than this worker reads.
      { key: null, value: Buffer.from([0x08, 0x63]) },
    ]);
    await p.close();
    const w = worker();
    const metrics = (w as unknown as { o: { metrics: MetricsRegistry } }).o.metrics;
    await w.start();
    try {
      const got = await read(3);
      expect(got.map((m) => JSON.parse(m.value!.toString()).scorer.name)).toEqual(['len', 'len', 'len']);
      await waitFor(
        async () => (await admin.lag(names.workers, names.jobs)) === 0,
        30_000,
        'the batch committed',
      );
      expect(metrics.render()).toMatch(/scorecar_kafka_invalid_messages_total\{topic="[^"]+"\} 2/);
    } finally {
      await w.shutdown(Date.now() + 5000);
      await admin.close();
    }
  }, 120_000);

  it('a worker stopped mid-batch commits none of it; the next one scores it with the same ids', async () => {
    const { names, worker, read } = setup();
    const admin = client.admin();
    await admin.ensureTopics([
      { topic: names.jobs, partitions: 1 },
      { topic: names.assessments, partitions: 1 },
    ]);
    const jobs = jobsFor(4, 'stopped', 'english', {
      type: 'guidelines',
      guidelines: ['The response must be in English'],
    });
    const p = client.producer();
    await p.send(
      names.jobs,
      jobs.map((value) => ({ key: null, value })),
    );
    await p.close();
    // Judges that take far longer than the stop deadline.
    model.setFault({ kind: 'slow', delayMs: 30_000 });
    const first = worker();
    await first.start();
    await waitFor(() => model.stats().inFlight > 0, 30_000, 'the first worker calling the judge');
    await first.shutdown(Date.now() + 500);
    expect(await admin.lag(names.workers, names.jobs)).toBe(4);
    model.setFault({ kind: 'none' });
    const second = worker();
    await second.start();
    try {
      const got = await read(4);
      const ids = got.map((m) => JSON.parse(m.value!.toString()).assessmentId as string);
      // The ids of (trace, root span, scorer, version, name): whichever worker scores a job.
      expect(new Set(ids)).toEqual(
        new Set(
          makeTraces(4, 'stopped').map((t) => assessmentId(t.traceId, t.rootSpanId, 'english', 1, 'english')),
        ),
      );
      await waitFor(
        async () => (await admin.lag(names.workers, names.jobs)) === 0,
        30_000,
        'the batch committed',
      );
    } finally {
      await second.shutdown(Date.now() + 5000);
      await admin.close();
    }
  }, 180_000);
});
