// Worker-thread side of the OTLP/JSON conversion pool (json-pool.ts): parses an OTLP/JSON body
// and encodes it as protobuf, off the receivers' event loop. The body comes in and the result
// goes out as transferred buffers, never copied through the message channel.
import { parentPort } from 'node:worker_threads';
import { isScorecarError } from '../util/index.ts';
import { jsonToProtobuf, type Signal } from '../wire/index.ts';

export interface JsonJob {
  id: number;
  signal: Signal;
  body: Uint8Array;
}

export type JsonReply = { id: number; ok: true; out: Uint8Array } | { id: number; ok: false; code: string | undefined; message: string };

const port = parentPort;
port?.on('message', (job: JsonJob) => {
  let reply: JsonReply;
  const transfer: ArrayBuffer[] = [];
  try {
    let out: Uint8Array = jsonToProtobuf(job.signal, job.body);
    // A small result may sit in Node's shared allocation pool, which cannot be transferred.
    if (out.byteOffset !== 0 || out.byteLength !== out.buffer.byteLength) out = new Uint8Array(out);
    transfer.push(out.buffer as ArrayBuffer);
    reply = { id: job.id, ok: true, out };
  } catch (e) {
    reply = { id: job.id, ok: false, code: isScorecarError(e) ? e.code : undefined, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
