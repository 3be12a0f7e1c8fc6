// The forward stage (exporters/otlp.ts) with a fake transport: queueing and refusal, batching,
// retries on fake timers, permanent errors and the split of a refused merged batch, the books
// (accepted = sent + dropped + queued + in flight), shutdown accounting, what the queue keeps
// reachable once a request is sent, and the disk spool (replay, damaged records, bound, write
// errors, lock).
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { OtlpForwarder, type SendOutcome, type Transport } from '../../src/exporters/index.ts';
import { MetricsRegistry, ScorecarError, silentLogger } from '../../src/util/index.ts';
import { jsonToProtobuf, type OtlpBatch, type Signal } from '../../src/wire/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Call {
  signal: Signal;
  bytes: number;
  parts: number;
  answer(o: SendOutcome): void;
}

/** A transport whose sends wait until the test answers them (or answer at once with `auto`). */
class FakeTransport implements Transport {
  readonly kind = 'http' as const;
  readonly calls: Call[] = [];
  auto: SendOutcome | undefined;
  /** Answers every send at once from its size; each send is recorded in `answered`. */
  respond: ((c: { bytes: number; parts: number }) => SendOutcome) | undefined;
  readonly answered: Array<{ bytes: number; parts: number }> = [];
  private waiters: Array<() => void> = [];
  send(signal: Signal, parts: readonly Buffer[]): Promise<SendOutcome> {
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    // Only sizes are kept: the test must not hold the bodies itself.
    return new Promise((resolve) => {
      if (this.auto) return resolve(this.auto);
      if (this.respond) {
        this.answered.push({ bytes, parts: parts.length });
        return resolve(this.respond({ bytes, parts: parts.length }));
      }
      this.calls.push({ signal, bytes, parts: parts.length, answer: resolve });
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** As the real transports do: sends in flight fail (retryable). */
  close(): void {
    for (const c of this.calls.splice(0)) c.answer({ ok: false, retryable: true, retryAfterMs: undefined, message: 'closed' });
  }
  /** Resolves once `n` sends are waiting for an answer. */
  async waiting(n: number): Promise<Call[]> {
    while (this.calls.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.calls.splice(0, n);
  }
}

function forwarder(yaml: string, transport: Transport, storageDir?: string) {
  const cfg = loadConfig({ env: {}, text: `exporters: {otlp: {endpoint: "http://127.0.0.1:1", ${yaml}}}` });
  const metrics = new MetricsRegistry();
  const fwd = new OtlpForwarder(cfg.exporters.otlp, metrics, silentLogger, transport, storageDir === undefined ? {} : { storageDir });
  const count = (name: string, labels: Record<string, string>) =>
    (metrics.get(name) as unknown as { get(l: Record<string, string>): number }).get(labels);
  return { fwd, metrics, count };
}

function batch(signal: Signal, bytes: number, items = 1): OtlpBatch {
  return { signal, transport: 'http', body: Buffer.alloc(bytes, 1), items, experimentHeader: undefined };
}

const OK: SendOutcome = { ok: true, rejected: 0, message: '' };

afterEach(() => {
  vi.useRealTimers();
});

describe('forward stage', () => {
  it('queues what fits and refuses the rest with QUEUE_FULL (whenFull: refuse), before and after reading a body', async () => {
    const t = new FakeTransport();
    const { fwd, count } = forwarder('queue: {maxBytes: 1000, concurrency: 1}', t);
    fwd.start();
    fwd.consume(batch('traces', 600, 3));
    // The first request is taken by the one worker (in flight) and still counts.
    expect(fwd.queuedBytes()).toBe(600);
    expect(() => fwd.precheck('traces', 500)).toThrow(ScorecarError);
    let refused: unknown;
    try {
      fwd.consume(batch('traces', 500, 2));
    } catch (e) {
      refused = e;
    }
    expect((refused as ScorecarError).code).toBe('QUEUE_FULL');
    expect((refused as ScorecarError).retryable).toBe(true);
    // Refused requests stay with the sender: nothing is counted as dropped here.
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'queue_full' })).toBe(0);
    (await t.waiting(1))[0]!.answer(OK);
    await fwd.shutdown(Date.now() + 1000);
    expect(count('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(3);
  });

  it('accepts and counts what does not fit with whenFull: drop', async () => {
    const t = new FakeTransport();
    const { fwd, count } = forwarder('queue: {maxBytes: 1000, whenFull: drop, concurrency: 1}', t);
    fwd.consume(batch('logs', 800, 4));
    fwd.consume(batch('logs', 800, 5));
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'logs', reason: 'queue_full' })).toBe(5);
    expect(() => fwd.precheck('logs', 10_000)).not.toThrow();
    await fwd.shutdown(Date.now());
  });

  it('sends queued requests of one signal as one request, signals never mixed', async () => {
    const t = new FakeTransport();
    const { fwd } = forwarder('queue: {concurrency: 1}', t);
    for (const s of ['traces', 'traces', 'traces', 'logs', 'logs'] as const) fwd.consume(batch(s, 100));
    fwd.start();
    const [first] = await t.waiting(1);
    expect([first!.signal, first!.parts]).toEqual(['traces', 3]);
    first!.answer(OK);
    const [second] = await t.waiting(1);
    expect([second!.signal, second!.parts]).toEqual(['logs', 2]);
    second!.answer(OK);
    await fwd.shutdown(Date.now() + 1000);
  });

  it('retries a retryable failure after the server hint, drops a permanent one, and counts both', async () => {
    vi.useFakeTimers();
    const t = new FakeTransport();
    const { fwd, count } = forwarder(
      'queue: {concurrency: 1}, retry: {initialIntervalMs: 1000, maxIntervalMs: 1000, maxElapsedMs: 60000, randomizationFactor: 0}',
      t,
    );
    fwd.start();
    fwd.consume(batch('traces', 10, 7));
    (await t.waiting(1))[0]!.answer({ ok: false, retryable: true, retryAfterMs: 5000, message: 'HTTP 503' });
    await vi.advanceTimersByTimeAsync(4999);
    expect(t.calls.length).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    (await t.waiting(1))[0]!.answer(OK);
    await vi.advanceTimersByTimeAsync(0);
    expect(count('scorecar_exporter_retries_total', { signal: 'traces' })).toBe(1);
    expect(count('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(7);
    fwd.consume(batch('traces', 10, 2));
    (await t.waiting(1))[0]!.answer({ ok: false, retryable: false, retryAfterMs: undefined, message: 'HTTP 400' });
    await vi.advanceTimersByTimeAsync(0);
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'rejected' })).toBe(2);
    await fwd.shutdown(Date.now());
  });

  it('splits a merged batch the downstream refuses for its content, and drops only the request refused on its own', async () => {
    const t = new FakeTransport();
    const { fwd, count } = forwarder('queue: {concurrency: 1}', t);
    // Good requests are 100 bytes, the bad one 7: a send holds the bad one when bytes % 100 != 0.
    const sizes = [100, 100, 100, 7, 100, 100, 100];
    for (const b of sizes) fwd.consume(batch('traces', b, b === 7 ? 3 : 10));
    t.respond = (c) =>
      c.bytes % 100 === 0 ? OK : { ok: false, retryable: false, retryAfterMs: undefined, message: 'HTTP 400', split: true };
    fwd.start();
    await fwd.shutdown(Date.now() + 10_000);
    // 7 refused -> 3 sent, 4 refused -> 2 refused -> 1 (the bad one) dropped, 1 sent; then 2 sent.
    expect(t.answered.map((c) => c.parts)).toEqual([7, 3, 4, 2, 1, 1, 2]);
    expect(count('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(60);
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'rejected' })).toBe(3);
    expect(count('scorecar_exporter_batch_splits_total', { signal: 'traces' })).toBe(3);
  });

  it('drops a merged batch whole when the refusal is not about its content (e.g. 401)', async () => {
    const t = new FakeTransport();
    const { fwd, count } = forwarder('queue: {concurrency: 1}', t);
    for (let i = 0; i < 4; i++) fwd.consume(batch('logs', 10, 2));
    fwd.start();
    const [call] = await t.waiting(1);
    expect(call!.parts).toBe(4);
    call!.answer({ ok: false, retryable: false, retryAfterMs: undefined, message: 'HTTP 401', split: false });
    await fwd.shutdown(Date.now() + 1000);
    expect(t.calls.length).toBe(0);
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'logs', reason: 'rejected' })).toBe(8);
  });

  it('keeps the books: internal items accepted, queued and in flight apart, partial_success rejections dropped', async () => {
    const t = new FakeTransport();
    const { fwd, metrics, count } = forwarder('queue: {maxBytes: 1000, concurrency: 1}', t);
    const gauge = (name: string, signal: Signal) => (metrics.get(name) as unknown as { get(l: Record<string, string>): number }).get({ signal });
    const books = (signal: Signal) => ({
      accepted: count('scorecar_receiver_accepted_items_total', { signal, transport: 'internal' }),
      out:
        count('scorecar_exporter_sent_items_total', { signal }) +
        ['queue_full', 'shutdown', 'rejected', 'retries_exhausted', 'partial_success'].reduce(
          (n, reason) => n + count('scorecar_exporter_dropped_items_total', { signal, reason }),
          0,
        ) +
        gauge('scorecar_exporter_queue_items', signal) +
        gauge('scorecar_exporter_inflight_items', signal),
    });
    fwd.start();
    expect(fwd.enqueue('logs', Buffer.alloc(300), 5)).toBe('queued');
    const [call] = await t.waiting(1);
    expect(fwd.enqueue('logs', Buffer.alloc(300), 4)).toBe('queued');
    expect(gauge('scorecar_exporter_inflight_items', 'logs')).toBe(5);
    expect(gauge('scorecar_exporter_queue_items', 'logs')).toBe(4);
    // Refused (whenFull: refuse): the caller keeps it, so it is not accepted here.
    expect(fwd.enqueue('logs', Buffer.alloc(500), 7)).toBe('full');
    expect(books('logs')).toEqual({ accepted: 9, out: 9 });
    call!.answer({ ok: true, rejected: 2, message: 'two bad records' });
    const [next] = await t.waiting(1);
    expect(count('scorecar_exporter_sent_items_total', { signal: 'logs' })).toBe(3);
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'logs', reason: 'partial_success' })).toBe(2);
    expect(count('scorecar_exporter_downstream_rejected_items_total', { signal: 'logs' })).toBe(2);
    expect(gauge('scorecar_exporter_inflight_items', 'logs')).toBe(4);
    expect(gauge('scorecar_exporter_queue_items', 'logs')).toBe(0);
    expect(books('logs')).toEqual({ accepted: 9, out: 9 });
    next!.answer(OK);
    await fwd.shutdown(Date.now() + 1000);
    // After shutdown an internal item is taken and dropped (shutdown): accepted too.
    expect(fwd.enqueue('logs', Buffer.alloc(10), 1)).toBe('full');
    expect(books('logs')).toEqual({ accepted: 10, out: 10 });
    expect(gauge('scorecar_exporter_inflight_items', 'logs')).toBe(0);
  });

  it('counts internal items dropped for a full queue as accepted (whenFull: drop)', async () => {
    const { fwd, count } = forwarder('queue: {maxBytes: 100, whenFull: drop}', new FakeTransport());
    expect(fwd.enqueue('traces', Buffer.alloc(80), 2)).toBe('queued');
    expect(fwd.enqueue('traces', Buffer.alloc(80), 3)).toBe('full');
    expect(count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'internal' })).toBe(5);
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'queue_full' })).toBe(3);
    expect(fwd.enqueue('metrics', Buffer.alloc(1), 1)).toBe('queued');
    await fwd.shutdown(Date.now());
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'shutdown' })).toBe(2);
  });

  it('at shutdown sends until the deadline, then counts what is left as dropped (shutdown); shutdown twice is one', async () => {
    vi.useFakeTimers();
    const t = new FakeTransport();
    const { fwd, count } = forwarder('queue: {concurrency: 1}, retry: {initialIntervalMs: 100, randomizationFactor: 0}', t);
    fwd.start();
    fwd.consume(batch('traces', 3 * 1024 * 1024, 1)); // over the batch size: its own request
    fwd.consume(batch('traces', 10, 4));
    const [inFlight] = await t.waiting(1);
    const stopping = fwd.shutdown(Date.now() + 2000);
    expect(fwd.shutdown(Date.now())).toBe(stopping);
    inFlight!.answer({ ok: false, retryable: true, retryAfterMs: undefined, message: 'down' });
    await vi.advanceTimersByTimeAsync(2000);
    await stopping;
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'shutdown' })).toBe(5);
    // After shutdown nothing is taken any more.
    fwd.consume(batch('traces', 10, 1));
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'shutdown' })).toBe(6);
  });

  it('shutdown without start returns and counts the queued items', async () => {
    const { fwd, count } = forwarder('', new FakeTransport());
    fwd.consume(batch('metrics', 10, 3));
    await fwd.shutdown(Date.now());
    expect(count('scorecar_exporter_dropped_items_total', { signal: 'metrics', reason: 'shutdown' })).toBe(3);
  });

  it('keeps no sent request body reachable (64 x 1 MiB sent: none still held)', async () => {
    const t = new FakeTransport();
    t.auto = OK;
    const { fwd, count } = forwarder('queue: {maxBytes: 134217728, concurrency: 1}', t);
    fwd.start();
    const refs: WeakRef<Buffer>[] = [];
    (() => {
      for (let i = 0; i < 64; i++) {
        const b = batch('traces', 1024 * 1024);
        refs.push(new WeakRef(b.body as Buffer));
        fwd.consume(b);
      }
    })();
    while (count('scorecar_exporter_sent_items_total', { signal: 'traces' }) < 64) await new Promise((r) => setImmediate(r));
    expect(fwd.queuedBytes()).toBe(0);
    // Let the worker's last iteration finish before collecting.
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
    await fwd.shutdown(Date.now());
  });
});

/** A valid OTLP request of n spans or log records (the spool checks bodies at replay). */
function otlp(signal: 'traces' | 'logs', n: number, pad = 0): OtlpBatch {
  const traceId = randomBytes(16).toString('hex');
  const x = 'x'.repeat(pad);
  const json =
    signal === 'traces'
      ? { resourceSpans: [{ scopeSpans: [{ spans: Array.from({ length: n }, (_, i) => ({ traceId, spanId: randomBytes(8).toString('hex'), name: `s${i}${x}` })) }] }] }
      : { resourceLogs: [{ scopeLogs: [{ logRecords: Array.from({ length: n }, (_, i) => ({ body: { stringValue: `r${i}${x}` } })) }] }] };
  return { signal, transport: 'http', body: jsonToProtobuf(signal, JSON.stringify(json)), items: n, experimentHeader: undefined };
}

const size = (b: OtlpBatch): number => (b.body as Buffer).length;

describe('forward stage with the disk spool (queue.storage: disk)', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'scorecar-spool-unit-'));
    dirs.push(d);
    return d;
  };
  const segs = (dir: string): string[] => readdirSync(join(dir, 'export-queue')).filter((f) => f.endsWith('.seg')).sort();
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('replays what was not sent, once, in order, and deletes segments once all their requests are sent', async () => {
    const dir = tempDir();
    const a = new FakeTransport();
    const A = forwarder('queue: {storage: disk, fsync: always, concurrency: 1}', a, dir);
    A.fwd.start();
    A.fwd.consume(otlp('traces', 10));
    (await a.waiting(1))[0]!.answer(OK);
    const r2 = otlp('traces', 20);
    const r3 = otlp('logs', 30);
    A.fwd.consume(r2);
    A.fwd.consume(r3);
    const [inFlight] = await a.waiting(1);
    expect(inFlight!.bytes).toBe(size(r2));
    // Stopped while the downstream is down: nothing is dropped, all of it stays on disk.
    const stopping = A.fwd.shutdown(Date.now());
    inFlight!.answer({ ok: false, retryable: true, retryAfterMs: undefined, message: 'down' });
    await stopping;
    expect(A.count('scorecar_exporter_dropped_items_total', { signal: 'traces', reason: 'shutdown' })).toBe(0);
    expect(A.count('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(10);
    expect(segs(dir).length).toBeGreaterThan(0);

    const b = new FakeTransport();
    b.respond = () => OK;
    const B = forwarder('queue: {storage: disk, concurrency: 1}', b, dir);
    expect(B.fwd.queuedBytes()).toBe(size(r2) + size(r3));
    expect(B.count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'spool' })).toBe(20);
    expect(B.count('scorecar_receiver_accepted_items_total', { signal: 'logs', transport: 'spool' })).toBe(30);
    B.fwd.start();
    await B.fwd.shutdown(Date.now() + 5000);
    expect(b.answered.map((c) => c.bytes)).toEqual([size(r2), size(r3)]);
    expect(B.count('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(20);
    expect(B.count('scorecar_exporter_sent_items_total', { signal: 'logs' })).toBe(30);
    expect(segs(dir)).toEqual([]);

    const C = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(C.fwd.queuedBytes()).toBe(0);
    await C.fwd.shutdown(Date.now());
  });

  it('skips a torn tail and stops at a damaged record', async () => {
    const dir = tempDir();
    const A = forwarder('queue: {storage: disk, fsync: never}', new FakeTransport(), dir);
    const reqs = [otlp('traces', 1), otlp('traces', 2), otlp('traces', 3)];
    for (const r of reqs) A.fwd.consume(r);
    await A.fwd.shutdown(Date.now());
    const [seg] = segs(dir);
    const file = join(dir, 'export-queue', seg!);
    // A write cut short by the crash: a header that promises more than the file holds.
    const torn = Buffer.alloc(30);
    torn.writeUInt32LE(0x31514353, 0);
    torn.writeUInt32LE(1000, 8);
    appendFileSync(file, torn);
    const B = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(B.count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'spool' })).toBe(6);
    await B.fwd.shutdown(Date.now());
    // Pages a power loss never wrote read back as zeros: the third body no longer scans.
    const bytes = readFileSync(file);
    const third = 3 * 20 + size(reqs[0]!) + size(reqs[1]!);
    bytes.fill(0, third, third + 8);
    writeFileSync(file, bytes);
    const C = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(C.count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'spool' })).toBe(3);
    await C.fwd.shutdown(Date.now());
    // A damaged header (its checksum fails) ends the segment too.
    const again = readFileSync(file);
    again[20 + size(reqs[0]!) + 12]! ^= 0xff; // the second record's item count
    writeFileSync(file, again);
    const D = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(D.count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'spool' })).toBe(1);
    await D.fwd.shutdown(Date.now());
  });

  it('bounds the spool on disk by maxBytes, and frees the space of sent requests', async () => {
    const dir = tempDir();
    const t = new FakeTransport();
    const big = otlp('logs', 1, 550);
    const record = size(big) + 20;
    const { fwd, metrics } = forwarder(
      `queue: {storage: disk, fsync: interval, fsyncIntervalMs: 5, maxBytes: ${Math.floor(record * 1.6)}, concurrency: 1}`,
      t,
      dir,
    );
    const spoolBytes = () => (metrics.get('scorecar_exporter_spool_bytes') as unknown as { get(): number }).get();
    fwd.start();
    fwd.consume(big);
    expect(spoolBytes()).toBe(record);
    expect(() => fwd.consume(otlp('logs', 1, 550))).toThrow(/full/);
    (await t.waiting(1))[0]!.answer(OK);
    await new Promise((r) => setImmediate(r));
    // Sent: its segment is sealed and deleted when the next request needs the room.
    fwd.consume(otlp('logs', 1, 550));
    expect(spoolBytes()).toBe(record);
    (await t.waiting(1))[0]!.answer(OK);
    await fwd.shutdown(Date.now() + 1000);
    expect(segs(dir)).toEqual([]);
  });

  it('refuses (or drops, reason spool_error) what it cannot write, and writes again once it can', async () => {
    const dir = tempDir();
    const R = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    // The next segment's name is taken by a directory: creating it fails.
    mkdirSync(join(dir, 'export-queue', '000000000001.seg'));
    expect(() => R.fwd.consume(otlp('traces', 4))).toThrow(/cannot be written to disk/);
    expect(R.count('scorecar_exporter_spool_write_errors_total', {})).toBe(1);
    const ok = otlp('traces', 4);
    R.fwd.consume(ok); // the next segment number is free
    expect(R.fwd.queuedBytes()).toBe(size(ok));
    await R.fwd.shutdown(Date.now());
    // At the next start the directory in the way is reported and left alone; the request is replayed.
    const R2 = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(R2.count('scorecar_receiver_accepted_items_total', { signal: 'traces', transport: 'spool' })).toBe(4);
    await R2.fwd.shutdown(Date.now());

    const dir2 = tempDir();
    const D = forwarder('queue: {storage: disk, whenFull: drop}', new FakeTransport(), dir2);
    mkdirSync(join(dir2, 'export-queue', '000000000001.seg'));
    D.fwd.consume(otlp('logs', 4));
    expect(D.count('scorecar_exporter_dropped_items_total', { signal: 'logs', reason: 'spool_error' })).toBe(4);
    await D.fwd.shutdown(Date.now());
  });

  it("will not share its directory with a running process, and takes over a dead one's", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'export-queue'));
    writeFileSync(join(dir, 'export-queue', 'lock'), String(process.ppid));
    expect(() => forwarder('queue: {storage: disk}', new FakeTransport(), dir)).toThrow(/in use by process/);
    writeFileSync(join(dir, 'export-queue', 'lock'), '2147483646');
    const { fwd } = forwarder('queue: {storage: disk}', new FakeTransport(), dir);
    expect(readFileSync(join(dir, 'export-queue', 'lock'), 'utf8')).toBe(String(process.pid));
    await fwd.shutdown(Date.now());
    expect(() => forwarder('queue: {storage: disk}', new FakeTransport())).toThrow(/storage.dir/);
  });
});
