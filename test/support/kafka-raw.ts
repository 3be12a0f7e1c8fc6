// Writes record batches to a broker exactly as they were recorded (test/fixtures/collector-kafka:
// still compressed by the Collector exporter's own client), with a bare Produce v7 request over a
// socket: no client library touches them, so a consumer test reads what a Collector wrote.
import { connect } from 'node:net';

function str16(s: string): Buffer {
  const b = Buffer.from(s);
  const len = Buffer.alloc(2);
  len.writeInt16BE(b.length);
  return Buffer.concat([len, b]);
}

const i16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** Kafka error codes worth another try: a topic just created may not have its leader yet. */
const NOT_YET = new Set([3, 5, 6]);

/** Appends one recorded record batch to topic/partition; rejects with the broker's error code. */
export async function produceRawBatch(
  bootstrap: string,
  topic: string,
  partition: number,
  recorded: Buffer,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const code = await produceOnce(bootstrap, topic, partition, recorded);
    if (code === 0) return;
    if (!NOT_YET.has(code) || attempt >= 50)
      throw new Error(`Produce v7 to ${topic}/${partition} failed: Kafka error code ${code}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function produceOnce(
  bootstrap: string,
  topic: string,
  partition: number,
  recorded: Buffer,
): Promise<number> {
  const batch = Buffer.from(recorded);
  // As a producer sends it: no offset yet, no leader epoch (both outside the batch's CRC).
  batch.writeBigInt64BE(0n, 0);
  batch.writeInt32BE(-1, 12);
  const body = Buffer.concat([
    i16(-1), // transactional id: null
    i16(-1), // acks: all
    i32(10_000),
    i32(1),
    str16(topic),
    i32(1),
    i32(partition),
    i32(batch.length),
    batch,
  ]);
  const header = Buffer.concat([i16(0), i16(7), i32(1), str16('scorecar-test-raw')]);
  const req = Buffer.concat([i32(header.length + body.length), header, body]);
  const [host, port] = bootstrap.split(':') as [string, string];
  const res = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect(Number(port), host);
    const chunks: Buffer[] = [];
    sock.on('connect', () => sock.write(req));
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= 4 + all.readInt32BE(0)) {
        sock.end();
        resolve(all.subarray(4, 4 + all.readInt32BE(0)));
      }
    });
    sock.on('error', reject);
  });
  // correlation id, [topics: name, [partitions: index, error_code, ...]]
  let at = 4 + 4;
  at += 2 + res.readInt16BE(at);
  at += 4;
  return res.readInt16BE(at + 4);
}
