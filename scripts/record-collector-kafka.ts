// Records what the real OpenTelemetry Collector `kafka` exporter writes, into
// test/fixtures/collector-kafka.json, for the Kafka receiver and exporter tests.
//
//   npm run fixtures:collector-kafka
//
// Builds scripts/collector-kafka (Go: the contrib kafkaexporter at the version its go.mod pins,
// from the Go module proxy; module and build caches under .cache/go), starts a broker of its own
// (scripts/kafka-broker.sh), and for each codec (none, gzip, snappy, lz4, zstd) has the exporter
// write its GenAI traces (ids seeded by the codec, so every codec's traces are distinct) to a
// 3-partition topic. Recorded per codec: the exporter's two inputs (OTLP TracesData), the record
// batches exactly as the exporter's client wrote them (read from the broker's log segments, still
// compressed), and the messages they hold (partition, key, value).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPRESSIONS, createKafkaClient, type InMessage } from '../src/kafka/index.ts';
import { createLogger } from '../src/util/index.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const GO_DIR = join(ROOT, 'scripts/collector-kafka');
const CACHE = join(ROOT, '.cache/go');
const BIN = join(CACHE, 'collector-kafka');
const OUT = join(ROOT, 'test/fixtures/collector-kafka.json');
export const PARTITIONS = 3;

function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOMODCACHE: join(CACHE, 'mod'),
    GOCACHE: join(CACHE, 'build'),
    GOFLAGS: '-mod=mod',
    GOTOOLCHAIN: 'local',
  };
}

/** The record batches of a partition's first log segment: [baseOffset int64][length int32][...length]. */
function segmentBatches(dir: string): Buffer[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.log'));
  if (!file) return [];
  const buf = readFileSync(join(dir, file));
  const out: Buffer[] = [];
  for (let at = 0; at + 12 <= buf.length; ) {
    const len = buf.readInt32BE(at + 8);
    if (len <= 0 || at + 12 + len > buf.length) break;
    out.push(buf.subarray(at, at + 12 + len));
    at += 12 + len;
  }
  return out;
}

async function main(): Promise<void> {
  console.log('building the Collector kafka exporter helper (Go)…');
  mkdirSync(CACHE, { recursive: true });
  execFileSync('go', ['build', '-o', BIN, '.'], { cwd: GO_DIR, env: goEnv(), stdio: 'inherit' });
  const version = /kafkaexporter (v\S+)/.exec(readFileSync(join(GO_DIR, 'go.mod'), 'utf8'))?.[1] ?? 'unknown';
  const brokerDir = mkdtempSync(join(tmpdir(), 'scorecar-record-kafka-'));
  const line = execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'start', brokerDir], {
    encoding: 'utf8',
  });
  const bootstrap = /bootstrap=(\S+)/.exec(line)![1]!;
  const log = createLogger({ level: 'warn' });
  const client = await createKafkaClient({
    client: 'platformatic',
    brokers: [bootstrap],
    clientId: 'recorder',
    log,
  });
  const admin = client.admin();
  const codecs: Record<string, unknown> = {};
  try {
    for (const codec of COMPRESSIONS) {
      const topic = `otlp_spans_${codec}`;
      await admin.ensureTopics([{ topic, partitions: PARTITIONS }]);
      const dump = mkdtempSync(join(tmpdir(), 'scorecar-record-input-'));
      execFileSync(
        BIN,
        [
          '-brokers',
          bootstrap,
          '-topic',
          topic,
          '-compression',
          codec,
          '-seed',
          `collector-${codec}`,
          '-dump',
          dump,
        ],
        { stdio: 'inherit' },
      );
      const inputs = [1, 2].map((i) => readFileSync(join(dump, `input-${i}.pb`)).toString('base64'));
      const batches: { partition: number; batch: string }[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        for (const b of segmentBatches(join(brokerDir, 'data', `${topic}-${p}`)))
          batches.push({ partition: p, batch: b.toString('base64') });
      }
      const got: InMessage[] = [];
      const c = client.consumer({
        groupId: `recorder-${codec}`,
        topics: [topic],
        maxBatch: 1000,
        sessionTimeoutMs: 10_000,
      });
      const running = c.run(async (b) => void got.push(...b));
      const want = async (): Promise<number> => (await admin.lag(`recorder-${codec}`, topic)) + got.length;
      const total = await want();
      while (got.length < total || total === 0) await new Promise((r) => setTimeout(r, 100));
      await c.close();
      await running;
      got.sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset));
      codecs[codec] = {
        inputs,
        batches,
        messages: got.map((m) => ({
          partition: m.partition,
          key: m.key?.toString('utf8') ?? null,
          value: m.value!.toString('base64'),
          headers: m.headers,
        })),
      };
      console.log(`${codec}: ${batches.length} record batches, ${got.length} messages`);
    }
  } finally {
    await admin.close();
    execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'clean', brokerDir], { stdio: 'inherit' });
  }
  writeFileSync(
    OUT,
    `${JSON.stringify({ collector: `contrib kafkaexporter ${version} (franz-go)`, encoding: 'otlp_proto', partitionTracesById: true, partitions: PARTITIONS, codecs }, null, 1)}\n`,
  );
  console.log(`wrote ${OUT}`);
}

await main();
