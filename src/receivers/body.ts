// Reading one OTLP/HTTP request body: chunk by chunk as the socket delivers it, each chunk
// charged to the memory budget as it arrives; a compressed body is inflated as it streams in and
// charged for the inflated bytes as they are produced. The size limit applies to the inflated
// size, so a zip bomb stops at the limit (413) or at the budget (429, retryable), whichever comes
// first, having held no more than that. The chunks are kept as they are (see ingest.ts).
import type http from 'node:http';
import zlib from 'node:zlib';
import { ScorecarError } from '../util/index.ts';
import type { Hold } from './budget.ts';

/** Output chunk of the inflaters: fewer, larger pieces than zlib's 16 KiB default. */
const INFLATE_CHUNK = 64 * 1024;

export const ENCODINGS = ['identity', '', 'gzip', 'x-gzip', 'deflate', 'zstd'];

function inflater(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.ZstdDecompress {
  if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.createGunzip({ chunkSize: INFLATE_CHUNK });
  if (encoding === 'deflate') return zlib.createInflate({ chunkSize: INFLATE_CHUNK });
  return zlib.createZstdDecompress({ chunkSize: INFLATE_CHUNK });
}

export interface BodyOptions {
  /** Content-Encoding, lower case ('identity' or '' for none). */
  encoding: string;
  /** Size limit of the body as it will be used (after decompression). */
  limit: number;
  /** Content-Length, or -1 when the body is chunked. */
  declared: number;
  /** Where the kept bytes are charged. */
  hold: Hold;
}

/**
 * One request's body being read. `read()` resolves with its pieces (inflated when it was
 * compressed) or rejects with the refusal; `abort()` ends it early (the request timeout).
 * `received` counts the bytes that came off the wire, whatever happened to them.
 */
export class BodyReader {
  received = 0;
  /** Whether read() has settled (the body is in, or was refused). */
  settled = false;
  private failWith: ((e: ScorecarError) => void) | undefined;

  abort(e: ScorecarError): void {
    this.failWith?.(e);
  }

  read(req: http.IncomingMessage, opts: BodyOptions): Promise<{ pieces: Buffer[]; size: number }> {
    const { limit, declared, hold } = opts;
    const compressed = opts.encoding !== 'identity' && opts.encoding !== '';
    return new Promise((resolve, reject) => {
      const pieces: Buffer[] = [];
      let size = 0;
      const z = compressed ? inflater(opts.encoding) : undefined;
      const cleanup = (): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('aborted', onAborted);
        req.off('close', onClose);
        this.failWith = undefined;
      };
      const fail = (e: ScorecarError): void => {
        if (this.settled) return;
        this.settled = true;
        cleanup();
        pieces.length = 0;
        hold.release();
        if (z) {
          z.removeAllListeners('data');
          z.destroy();
        }
        reject(e);
      };
      const done = (): void => {
        if (this.settled) return;
        this.settled = true;
        cleanup();
        resolve({ pieces, size });
      };
      this.failWith = fail;
      /** A piece of the body as it will be used: size limit, then the budget. */
      const keep = (c: Buffer): void => {
        size += c.length;
        if (size > limit) {
          fail(
            new ScorecarError(
              'PAYLOAD_TOO_LARGE',
              compressed ? `decompressed body exceeds the limit of ${limit} bytes` : `request body exceeds the limit of ${limit} bytes`,
            ),
          );
          return;
        }
        if (!hold.tryAdd(c.length)) {
          fail(new ScorecarError('MEMORY_BUDGET_FULL', 'memory budget is full; retry later'));
          return;
        }
        if (c.length > 0) pieces.push(c);
      };
      const onData = (c: Buffer): void => {
        this.received += c.length;
        if (this.received > limit) {
          fail(new ScorecarError('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`));
          return;
        }
        if (declared >= 0 && this.received > declared) {
          // The HTTP parser stops at content-length, so this is a defence, not an expected path.
          fail(new ScorecarError('INVALID_ARGUMENT', `request body is longer than its content-length of ${declared}`));
          return;
        }
        if (!z) {
          keep(c);
          return;
        }
        // Only what the inflater has not taken yet is held compressed: at most its buffer.
        if (!z.write(c)) {
          req.pause();
          z.once('drain', () => {
            if (!this.settled) req.resume();
          });
        }
      };
      const onEnd = (): void => {
        if (declared >= 0 && this.received !== declared) {
          fail(new ScorecarError('INVALID_ARGUMENT', `request body of ${this.received} bytes is shorter than its content-length of ${declared}`));
        } else if (z) z.end();
        else done();
      };
      const onError = (e: Error): void => fail(new ScorecarError('INVALID_ARGUMENT', `error reading the request body: ${e.message}`));
      const onAborted = (): void => fail(new ScorecarError('INVALID_ARGUMENT', 'the client aborted the request'));
      // Closed before its end: the connection went away.
      const onClose = (): void => {
        if (!req.complete) onAborted();
      };
      if (z) {
        z.on('data', keep);
        z.on('end', done);
        z.on('error', (e: Error) => fail(new ScorecarError('INVALID_ARGUMENT', `cannot decompress ${opts.encoding} body: ${e.message}`)));
      }
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('aborted', onAborted);
      req.on('close', onClose);
    });
  }
}
