// Raw TCP clients for receiver tests: HTTP/1.1 written and read by hand (slow, stalled or
// oversized senders that no HTTP client library would produce), and HTTP/2 connection
// prefaces for the gRPC port. Everything is driven by socket events.
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The complete responses at the start of `buf` (interim 1xx ones included), in order. */
export function parseResponses(buf: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = status >= 200 ? Number(headers['content-length'] ?? 0) : 0;
    if (buf.length < end + 4 + length) return out;
    out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

/** A raw connection that records everything it reads, and how it ended. */
export class RawConnection {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  error: NodeJS.ErrnoException | undefined;
  closed = false;
  readonly connected: Promise<void>;
  readonly closedP: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(port: number, host = '127.0.0.1') {
    this.socket = net.connect(port, host);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
    });
    this.closedP = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  responses(): RawResponse[] {
    return parseResponses(this.received);
  }

  /** Resolves once `cond` holds (checked on every read and on close); rejects if it closed first. */
  until(cond: (c: RawConnection) => boolean, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond(this)) resolve();
        else if (this.closed)
          reject(
            new Error(
              `connection closed before ${what}; read ${JSON.stringify(this.received.toString('latin1').slice(0, 200))}`,
            ),
          );
        else this.waiters.push(check);
      };
      check();
    });
  }

  /** Resolves once `n` final (non-1xx) responses have been read. */
  finalResponses(n: number): Promise<RawResponse[]> {
    const finals = (): RawResponse[] => this.responses().filter((r) => r.status >= 200);
    return this.until(() => finals().length >= n, `${n} response(s)`).then(finals);
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  /** Writes `total` bytes of body in pieces, honouring backpressure; resolves when all is handed to the socket. */
  async writeBody(total: number, piece = 1024 * 1024, chunked = false): Promise<void> {
    const chunk = Buffer.alloc(piece, 0x61);
    let sent = 0;
    while (sent < total && !this.closed && !this.error) {
      const n = Math.min(piece, total - sent);
      sent += n;
      const data = chunked
        ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), chunk.subarray(0, n), Buffer.from('\r\n')])
        : chunk.subarray(0, n);
      if (!this.socket.write(data)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.socket.off('drain', done);
            this.socket.off('close', done);
            resolve();
          };
          this.socket.on('drain', done);
          this.socket.on('close', done);
        });
      }
    }
    if (chunked && !this.closed && !this.error) this.socket.write('0\r\n\r\n');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Request head of a POST to an OTLP path. */
export function postHead(path: string, headers: Record<string, string | number>): string {
  let head = `POST ${path} HTTP/1.1\r\nHost: scorecar\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return `${head}\r\n`;
}

/** The 24-byte HTTP/2 client connection preface. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty HTTP/2 SETTINGS frame (what a client sends right after the preface). */
export const H2_EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
