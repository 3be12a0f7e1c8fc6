// A small pool of worker threads converting OTLP/JSON bodies to protobuf, so that one large JSON
// request (parse + encode is O(body) but slow: seconds for ~20 MiB) never holds up the receivers'
// event loop and every other sender with it. Small bodies are converted inline: a round trip to a
// worker would cost more than the work. Workers start on first use, one job at a time each, in
// arrival order; a worker that dies fails its job and is replaced on the next one.
import { Worker } from 'node:worker_threads';
import { isErrorCode, ScorecarError } from '../util/index.ts';
import { jsonToProtobuf, type Signal } from '../wire/index.ts';
import type { JsonJob, JsonReply } from './json-worker.ts';

/** Bodies up to this size are converted on the event loop (about a millisecond's work). */
export const INLINE_JSON_BYTES = 64 * 1024;

const MiB = 1024 * 1024;

function workerUrl(): URL {
  // Sources run as .ts under type stripping; a compiled build has .js next to this file.
  return new URL(import.meta.url.endsWith('.ts') ? './json-worker.ts' : './json-worker.js', import.meta.url);
}

interface Job {
  id: number;
  signal: Signal;
  body: Buffer;
  resolve: (out: Buffer) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker | undefined;
  job: Job | undefined;
}

export class JsonPool {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly heapMb: number;
  private nextId = 1;
  private closed = false;

  /** `maxBodyBytes` sizes the workers' heaps: a parsed body takes several times its size. */
  constructor(workers: number, maxBodyBytes: number) {
    this.slots = Array.from({ length: workers }, () => ({ worker: undefined, job: undefined }));
    this.heapMb = Math.max(256, Math.ceil((16 * maxBodyBytes) / MiB));
  }

  /**
   * The protobuf encoding of an OTLP/JSON body. Large bodies are moved to a worker (the buffer is
   * transferred: the caller must not use it afterwards); refusals are the same ScorecarErrors
   * jsonToProtobuf throws.
   */
  convert(signal: Signal, body: Buffer): Promise<Buffer> {
    if (body.length <= INLINE_JSON_BYTES || this.closed) {
      try {
        return Promise.resolve(jsonToProtobuf(signal, body));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, signal, body, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates the workers; jobs still waiting are converted inline. */
  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.queue.splice(0);
    for (const j of waiting) {
      try {
        j.resolve(jsonToProtobuf(j.signal, j.body));
      } catch (e) {
        j.reject(e);
      }
    }
    await Promise.all(
      this.slots.map(async (s) => {
        const w = s.worker;
        s.worker = undefined;
        s.job?.reject(new ScorecarError('SHUTTING_DOWN', 'scorecar is shutting down'));
        s.job = undefined;
        await w?.terminate();
      }),
    );
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.job !== undefined) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      const w = slot.worker ?? this.spawn(slot);
      // The body is this request's own copy: moved to the worker, not copied again.
      const own = job.body.byteOffset === 0 && job.body.byteLength === job.body.buffer.byteLength;
      const msg: JsonJob = { id: job.id, signal: job.signal, body: job.body };
      w.postMessage(msg, own ? [job.body.buffer as ArrayBuffer] : []);
    }
  }

  private spawn(slot: Slot): Worker {
    const w = new Worker(workerUrl(), {
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
      stdout: false,
      stderr: false,
    });
    w.unref();
    slot.worker = w;
    let lastError: (Error & { code?: string }) | undefined;
    w.on('message', (reply: JsonReply) => {
      const job = slot.job;
      if (slot.worker !== w || job === undefined || reply.id !== job.id) return;
      slot.job = undefined;
      if (reply.ok) job.resolve(Buffer.from(reply.out.buffer, reply.out.byteOffset, reply.out.byteLength));
      else job.reject(isErrorCode(reply.code) ? new ScorecarError(reply.code, reply.message) : new Error(reply.message));
      this.dispatch();
    });
    w.on('error', (e) => {
      lastError = e;
    });
    w.on('exit', () => {
      if (slot.worker !== w) return;
      slot.worker = undefined;
      const job = slot.job;
      slot.job = undefined;
      if (job) {
        // Out of heap: the body takes more memory to convert than a worker may use, which no
        // retry changes. Anything else is ours: answered retryable.
        job.reject(
          lastError?.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new ScorecarError('PAYLOAD_TOO_LARGE', `converting the OTLP/JSON body needs more than the ${this.heapMb} MiB a conversion worker may use`)
            : new Error(`the OTLP/JSON conversion worker exited: ${lastError?.message ?? 'no error'}`),
        );
      }
      if (!this.closed) this.dispatch();
    });
    return w;
  }
}
