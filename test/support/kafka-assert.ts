// What the Kafka tests check, and the config they share: the store's rows, the assessments
// received downstream, every assessment id on a topic, and the kafka-mode YAML.
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'vitest';
import type { KafkaClient } from '../../src/kafka/index.ts';
import { protobufToJson } from '../../src/wire/index.ts';
import type { CaptureServer } from './capture.ts';
import { uniqueTopic } from './kafka.ts';
import { waitFor } from './scorecar.ts';

/** Assessment ids and (trace, scorer) pairs of the store's rows. */
export function storeRows(dir: string): { ids: string[]; pairs: string[] } {
  const db = new DatabaseSync(`${dir}/assessments.db`, { readOnly: true });
  try {
    const rows = db
      .prepare('SELECT assessment_id AS id, trace_id AS t, scorer_name AS s FROM assessments')
      .all() as { id: string; t: string; s: string }[];
    return { ids: rows.map((r) => r.id), pairs: rows.map((r) => `${r.t}/${r.s}`) };
  } finally {
    db.close();
  }
}

/** Assessment ids of the gen_ai.evaluation.result log records received downstream (with repeats). */
export function downstreamIds(capture: CaptureServer): string[] {
  const ids: string[] = [];
  for (const r of capture.requests.filter((x) => x.signal === 'logs')) {
    for (const rl of protobufToJson('logs', r.body).resourceLogs as Array<{
      scopeLogs: Array<{
        logRecords: Array<{ attributes: Array<{ key: string; value: { stringValue?: string } }> }>;
      }>;
    }>) {
      for (const sl of rl.scopeLogs) {
        for (const lr of sl.logRecords)
          ids.push(String(lr.attributes.find((a) => a.key === 'scorecar.assessment_id')?.value.stringValue));
      }
    }
  }
  return ids;
}

/** Every assessment id on a topic (with repeats), read by a fresh group from the beginning. */
export async function topicIds(client: KafkaClient, topic: string, atLeast: number): Promise<string[]> {
  const ids: string[] = [];
  const c = client.consumer({
    groupId: uniqueTopic('reader'),
    topics: [topic],
    maxBatch: 1000,
    sessionTimeoutMs: 10_000,
  });
  const running = c.run(async (batch) => {
    for (const m of batch)
      ids.push((JSON.parse(m.value!.toString()) as { assessmentId: string }).assessmentId);
  });
  try {
    await waitFor(() => new Set(ids).size >= atLeast, 60_000, `${atLeast} assessments on ${topic}`);
  } finally {
    await c.close();
    await running;
  }
  return ids;
}

/**
 * Kafka mode's outcome, exactly once in effect: once both groups have committed everything
 * (jobs read by the workers, assessment messages read by the emitter), the store holds each
 * expected (trace, scorer) pair once, and downstream and the assessments topic carry exactly the
 * store's ids (downstream with no repeat). Returns the topic's ids, with the repeats it may carry.
 */
export async function expectExactlyOnce(o: {
  client: KafkaClient;
  names: { jobs: string; assessments: string; workers: string; emitter: string };
  app: { whenIdle(): Promise<void> };
  dir: string;
  capture: CaptureServer;
  expected: ReadonlySet<string>;
  timeoutMs: number;
}): Promise<string[]> {
  await o.app.whenIdle();
  const admin = o.client.admin();
  try {
    await waitFor(async () => (await admin.lag(o.names.workers, o.names.jobs)) === 0, o.timeoutMs, 'every job committed');
    await waitFor(
      async () => (await admin.lag(o.names.emitter, o.names.assessments)) === 0,
      o.timeoutMs,
      'every assessment message committed',
    );
  } finally {
    await admin.close();
  }
  await o.app.whenIdle();
  const rows = storeRows(o.dir);
  expect(new Set(rows.pairs)).toEqual(o.expected);
  expect(rows.ids).toHaveLength(o.expected.size);
  await waitFor(() => downstreamIds(o.capture).length >= o.expected.size, o.timeoutMs, 'assessments downstream');
  const down = downstreamIds(o.capture);
  expect(down).toHaveLength(o.expected.size);
  expect(new Set(down)).toEqual(new Set(rows.ids));
  const onTopic = await topicIds(o.client, o.names.assessments, o.expected.size);
  expect(new Set(onTopic)).toEqual(new Set(rows.ids));
  return onTopic;
}

export function kafkaYaml(o: {
  bootstrap: string;
  jobs: string;
  assessments: string;
  workers: string;
  emitter: string;
  model: string;
  client?: string;
}): string {
  return `kafka:
  brokers: ["${o.bootstrap}"]
  client: ${o.client ?? 'platformatic'}
  topics: {jobs: {name: "${o.jobs}", partitions: 6}, assessments: {name: "${o.assessments}", partitions: 6}}
  worker: {groupId: "${o.workers}", batchSize: 100, sessionTimeoutMs: 6000}
  emitter: {groupId: "${o.emitter}", sessionTimeoutMs: 6000}
scoring:
  providers: {openai: {baseUrl: "${o.model}/v1", apiKey: "test-key"}}
  defaultModel: "openai:/scorecar-judge"
`;
}

export const SCORERS = `scorers:
  - experiment: kafka-e2e
    name: answer_length
    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length"}
    sampleRate: 1.0
  - experiment: kafka-e2e
    name: is_english
    definition: {type: guidelines, guidelines: ["The response must be in English"]}
    sampleRate: 0.3
`;
