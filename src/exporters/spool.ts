// The export queue's disk spool (exporters.otlp.queue.storage: disk): a write-ahead log of the
// requests the forwarder takes on, so a crash of the process (kill -9, OOM kill) loses none of
// them. Like the Collector's persistent queue (exporterhelper + file_storage), it is at least
// once: a request written here is sent after a restart unless it was settled (sent, or dropped
// for good) before the crash; a request in flight at the crash may reach the downstream twice.
//
// Layout of `dir`: append-only segments `<seq>.seg` holding records
//   magic u32 | crc32 u32 | body length u32 | items u32 | signal u8 + 3 zero bytes | body
// (little-endian), each with an `<seq>.ack` file listing, as u32 offsets, the records settled
// since. At replay a record must have its magic, a header whose crc32 matches, its whole body in
// the file, and a body that scans as the OTLP request of its signal; the first that does not
// ends its segment's replay (a write cut by the crash, or pages a power loss never wrote, which
// read back as zeros: an invalid protobuf). The body itself carries no checksum: over the whole
// body, crc32 cost 11% of the disk mode's throughput, for damage the scan already finds.
// One segment is written at a time; it is sealed when the next record would take it past the
// segment size, and a sealed segment whose records are all settled is deleted with its acks.
// `lock` holds the pid of the process using the directory.
//
// Everything here is synchronous: a record is in the file (the OS's page cache, which survives
// the process) before consume() returns, i.e. before the sender gets its answer. What survives a
// crash of the machine depends on `fsync`: `always` flushes to the device before the answer (the
// cost is one device flush per request on the event loop), `interval` flushes every
// fsyncIntervalMs off the event loop (a power loss loses at most about that much), `never` leaves
// it to the OS (typically up to 30 s).
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../util/index.ts';
import { METRIC_PATH, type Signal, scanEnvelope, scanLogsRequest, scanTraceRequest } from '../wire/index.ts';

export type FsyncPolicy = 'never' | 'interval' | 'always';

export interface SpoolOptions {
  dir: string;
  /** Bound on the bytes of the segment files (records, headers and settled records not yet deleted). */
  maxBytes: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  log: Logger;
  /** Size at which a segment is sealed (default: maxBytes / 16, at most 32 MiB). */
  segmentBytes?: number;
}

/** Where a request is in the spool. */
export interface SpoolRecord {
  readonly segment: Segment;
  readonly offset: number;
}

export interface ReplayedRequest {
  signal: Signal;
  body: Buffer;
  items: number;
  record: SpoolRecord;
}

const MAGIC = 0x31514353; // "SCQ1"
export const RECORD_HEADER_BYTES = 20;
const SIGNAL_CODE: Record<Signal, number> = { traces: 0, logs: 1, metrics: 2 };
const CODE_SIGNAL: readonly Signal[] = ['traces', 'logs', 'metrics'];
const SEGMENT = /^(\d{12})\.seg$/;

class Segment {
  readonly seq: number;
  readonly path: string;
  readonly ackPath: string;
  /** Write descriptor while records are appended or an interval flush is due; else undefined. */
  fd: number | undefined;
  ackFd: number | undefined;
  size = 0;
  /** Records written and not yet settled. */
  live = 0;
  sealed = false;
  /** Written since the last flush to the device. */
  dirty = false;
  syncing = false;
  deleted = false;

  constructor(dir: string, seq: number) {
    this.seq = seq;
    const name = String(seq).padStart(12, '0');
    this.path = join(dir, `${name}.seg`);
    this.ackPath = join(dir, `${name}.ack`);
  }

  /** Closes the write descriptor unless an asynchronous flush still uses it (it closes it then). */
  closeWrite(): void {
    if (this.fd !== undefined && !this.syncing) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  closeAll(): void {
    this.closeWrite();
    if (this.ackFd !== undefined) closeSync(this.ackFd);
    this.ackFd = undefined;
  }
}

/** Whether a body scans as an OTLP export request of its signal. */
function wellFormed(signal: Signal, body: Buffer): boolean {
  try {
    if (signal === 'traces') scanTraceRequest(body);
    else if (signal === 'logs') scanLogsRequest(body);
    else scanEnvelope(body, METRIC_PATH);
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class DiskSpool {
  readonly dir: string;
  private readonly opts: SpoolOptions;
  private readonly log: Logger;
  private readonly segmentBytes: number;
  private readonly segments = new Set<Segment>();
  private active: Segment | undefined;
  private nextSeq = 1;
  private diskBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private dirDirty = false;
  private closed = false;
  private readonly header = Buffer.alloc(RECORD_HEADER_BYTES);

  /** Opens (creating) the directory, takes its lock and returns the unsettled requests in order. */
  static open(opts: SpoolOptions): { spool: DiskSpool; replay: ReplayedRequest[] } {
    const spool = new DiskSpool(opts);
    const replay = spool.load();
    return { spool, replay };
  }

  private constructor(opts: SpoolOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.log = opts.log;
    // Settled records stay on disk until their segment is sealed and settled whole, so segments
    // are a small part of maxBytes: at most about one segment of the bound is dead weight.
    this.segmentBytes = opts.segmentBytes ?? Math.min(32 * 1024 * 1024, Math.max(1, Math.floor(opts.maxBytes / 16)));
    mkdirSync(this.dir, { recursive: true });
    this.lock();
    if (opts.fsync === 'interval') {
      this.timer = setInterval(() => this.flushAsync(), opts.fsyncIntervalMs);
      this.timer.unref();
    }
  }

  /** Bytes of the segment files. */
  get bytes(): number {
    return this.diskBytes;
  }

  /** Whether a request of this many body bytes fits within maxBytes now. */
  hasRoom(bytes: number): boolean {
    return this.usedBytes() + RECORD_HEADER_BYTES + bytes <= this.opts.maxBytes;
  }

  /** Bytes on disk, less a segment being written whose records are all settled (freed on demand). */
  private usedBytes(): number {
    const a = this.active;
    return a !== undefined && a.live === 0 ? this.diskBytes - a.size : this.diskBytes;
  }

  private lock(): void {
    const path = join(this.dir, 'lock');
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    // A lock left by a crashed process is stale; so is one with our own pid (a container's
    // process is often pid 1 in every life).
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
      throw new Error(`the export spool ${this.dir} is in use by process ${holder} (exporters.otlp.queue.storage: disk needs a storage.dir of its own)`);
    }
    writeFileSync(path, String(process.pid));
  }

  private load(): ReplayedRequest[] {
    const seqs: number[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = SEGMENT.exec(name);
      if (m) seqs.push(Number(m[1]));
    }
    seqs.sort((a, b) => a - b);
    const out: ReplayedRequest[] = [];
    let torn = 0;
    for (const seq of seqs) {
      const seg = new Segment(this.dir, seq);
      this.nextSeq = seq + 1;
      let buf: Buffer;
      try {
        buf = readFileSync(seg.path);
      } catch (e) {
        this.log.error('export spool: cannot read a segment; it is left in place', { segment: seg.path, err: (e as Error).message });
        continue;
      }
      const acked = new Set<number>();
      try {
        const acks = readFileSync(seg.ackPath);
        for (let i = 0; i + 4 <= acks.length; i += 4) acked.add(acks.readUInt32LE(i));
      } catch {
        // no acks yet
      }
      const found: ReplayedRequest[] = [];
      let off = 0;
      while (off + RECORD_HEADER_BYTES <= buf.length) {
        const len = buf.readUInt32LE(off + 8);
        const end = off + RECORD_HEADER_BYTES + len;
        const signal = CODE_SIGNAL[buf[off + 16]!];
        if (buf.readUInt32LE(off) !== MAGIC || signal === undefined || end > buf.length) break;
        if (crc32(buf.subarray(off + 8, off + RECORD_HEADER_BYTES)) !== buf.readUInt32LE(off + 4)) break;
        if (!wellFormed(signal, buf.subarray(off + RECORD_HEADER_BYTES, end))) break;
        if (!acked.has(off)) {
          found.push({ signal, body: buf.subarray(off + RECORD_HEADER_BYTES, end), items: buf.readUInt32LE(off + 12), record: { segment: seg, offset: off } });
        }
        off = end;
      }
      if (off < buf.length) {
        torn += buf.length - off;
        this.log.warn('export spool: a segment ends in a torn or damaged record; the rest of it is skipped', { segment: seg.path, offset: off, bytes: buf.length - off });
      }
      seg.size = buf.length;
      seg.sealed = true;
      seg.live = found.length;
      if (seg.live === 0) {
        this.remove(seg);
        continue;
      }
      this.segments.add(seg);
      this.diskBytes += seg.size;
      // Settled records are not kept in memory: a mostly sent segment is not pinned whole.
      const copy = acked.size > 0;
      for (const r of found) out.push(copy ? { ...r, body: Buffer.from(r.body) } : r);
    }
    if (out.length > 0 || torn > 0) {
      this.log.info('export spool: replaying requests not sent before the last stop', {
        requests: out.length,
        items: out.reduce((n, r) => n + r.items, 0),
        bytes: this.diskBytes,
        skippedBytes: torn,
      });
    }
    return out;
  }

  /**
   * Appends a request; it is in the file when this returns (and on the device with fsync
   * always). Throws when the file cannot be written (the partial record is cut off again).
   */
  append(signal: Signal, parts: readonly Buffer[], bytes: number, items: number): SpoolRecord {
    if (this.closed) throw new Error('the export spool is closed');
    let seg = this.active;
    const total = RECORD_HEADER_BYTES + bytes;
    // Sealed when full, or when settled whole and its room is needed now.
    if (seg !== undefined && seg.size > 0 && (seg.size + total > this.segmentBytes || (seg.live === 0 && this.diskBytes + total > this.opts.maxBytes))) {
      this.seal(seg);
      seg = undefined;
    }
    if (seg === undefined) seg = this.openSegment();
    const h = this.header;
    h.writeUInt32LE(MAGIC, 0);
    h.writeUInt32LE(bytes, 8);
    h.writeUInt32LE(items, 12);
    h.writeUInt32LE(SIGNAL_CODE[signal], 16);
    h.writeUInt32LE(crc32(h.subarray(8)), 4);
    const offset = seg.size;
    try {
      // At explicit positions: after a failed write is cut off, the next one starts where it did.
      let written = writevSync(seg.fd!, [h, ...parts], offset);
      // A regular file takes the whole write but for a full disk or a signal: finish or fail.
      while (written < total) {
        let skip = written;
        const rest: Buffer[] = [];
        for (const b of [h, ...parts]) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        const n = writevSync(seg.fd!, rest, offset + written);
        if (n === 0) throw new Error('no progress writing the export spool');
        written += n;
      }
      if (this.opts.fsync === 'always') fdatasyncSync(seg.fd!);
    } catch (e) {
      try {
        ftruncateSync(seg.fd!, offset);
      } catch {
        // the record stays torn: found and skipped at the next start
      }
      throw e;
    }
    seg.size += total;
    seg.live++;
    seg.dirty = true;
    this.diskBytes += total;
    return { segment: seg, offset };
  }

  private openSegment(): Segment {
    const seg = new Segment(this.dir, this.nextSeq++);
    seg.fd = openSync(seg.path, 'wx');
    this.segments.add(seg);
    this.active = seg;
    if (this.opts.fsync === 'always') this.syncDir();
    else this.dirDirty = true;
    return seg;
  }

  private seal(seg: Segment): void {
    seg.sealed = true;
    if (this.active === seg) this.active = undefined;
    if (seg.live === 0) {
      this.remove(seg);
      return;
    }
    // Under fsync interval, its last records are flushed by the next tick, which then closes it.
    if (!(this.opts.fsync === 'interval' && seg.dirty)) seg.closeWrite();
  }

  /** Records that will never be sent again (sent, or dropped for good). */
  release(records: readonly SpoolRecord[]): void {
    if (records.length === 0 || this.closed) return;
    // Records come in runs of one segment (a batch is taken in order).
    let i = 0;
    while (i < records.length) {
      const seg = records[i]!.segment;
      let j = i;
      while (j < records.length && records[j]!.segment === seg) j++;
      if (!seg.deleted) {
        seg.live -= j - i;
        if (seg.live === 0 && seg.sealed) this.remove(seg);
        else {
          const acks = Buffer.allocUnsafe((j - i) * 4);
          for (let k = i; k < j; k++) acks.writeUInt32LE(records[k]!.offset, (k - i) * 4);
          try {
            seg.ackFd ??= openSync(seg.ackPath, 'a');
            writeSync(seg.ackFd, acks);
          } catch (e) {
            // Not fatal: those requests would be sent again after a restart.
            this.log.warn('export spool: cannot record sent requests', { segment: seg.path, err: (e as Error).message });
          }
        }
      }
      i = j;
    }
  }

  private remove(seg: Segment): void {
    seg.deleted = true;
    seg.closeAll();
    for (const p of [seg.path, seg.ackPath]) {
      try {
        unlinkSync(p);
      } catch {
        // an ack file may not exist
      }
    }
    if (this.segments.delete(seg)) this.diskBytes -= seg.size;
    if (this.active === seg) this.active = undefined;
  }

  private syncDir(): void {
    try {
      const fd = openSync(this.dir, 'r');
      try {
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // not every file system flushes directories
    }
  }

  /** fsync interval: flushes written segments off the event loop. */
  private flushAsync(): void {
    if (this.dirDirty) {
      this.dirDirty = false;
      this.syncDir();
    }
    for (const seg of this.segments) {
      if (!seg.dirty || seg.syncing || seg.fd === undefined) continue;
      seg.dirty = false;
      seg.syncing = true;
      fdatasync(seg.fd, () => {
        seg.syncing = false;
        if (seg.sealed || seg.deleted || this.closed) seg.closeWrite();
      });
    }
  }

  /** Flushes and closes every file; deletes settled segments. What is left is replayed at the next start. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    for (const seg of [...this.segments]) {
      if (seg.live === 0) {
        this.remove(seg);
        continue;
      }
      if (seg.fd !== undefined && this.opts.fsync !== 'never') {
        try {
          fdatasyncSync(seg.fd);
        } catch {
          // best effort
        }
      }
      seg.syncing = false;
      seg.closeAll();
    }
    this.closed = true;
    this.active = undefined;
    try {
      unlinkSync(join(this.dir, 'lock'));
    } catch {
      // gone already
    }
  }
}

/** Bytes of spool segments in a directory (for a warning when the spool is not opened). */
export function spoolBytesIn(dir: string): number {
  let n = 0;
  try {
    for (const name of readdirSync(dir)) {
      if (!SEGMENT.test(name)) continue;
      const fd = openSync(join(dir, name), 'r');
      try {
        n += fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    }
  } catch {
    // no directory
  }
  return n;
}
