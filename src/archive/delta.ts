// A Delta Lake table on a local (or mounted) filesystem, written and read by scorecar itself:
// protocol (1, 2), JSON commits only, blind appends, retention removes and vacuum. No npm package
// writes Delta (shared/notes/delta.md §1), and the subset an append-only archive needs is small.
//
// Commits are put-if-absent, so several scorecar replicas (and other engines: delta-rs, Spark)
// can write one table: a commit is written whole to `_delta_log/.tmp-<uuid>.json`, fsynced, then
// hard-linked to `_delta_log/<version>.json`. link(2) fails with EEXIST when that version exists
// and never replaces it, and the name appears only once the content is complete, so a reader
// never sees a partial commit and no commit is ever lost; readers ignore the `.tmp-*` names
// (`rename` would silently overwrite on POSIX, `open(wx)` + write would show a partial file).
// On EEXIST the writer reads the commits it lost to and retries at the next version, unless one
// of them changed the protocol or the table's metadata (schema, partitioning): then appending
// rows built for the old schema would be wrong, and the commit fails with TABLE_INCOMPATIBLE.
// Blind appends and removes of other files never conflict with an append. A remove (retention)
// that loses to a commit removing the same file drops that file from its own list.
//
// Data files are written and fsynced before their commit, so a crash at any point leaves a
// readable table: at worst a data file no commit names (an orphan, which vacuum deletes once it
// is older than the retention window) and a `.tmp-*` commit (likewise).
//
// Limits: a table whose early commits were cleaned up after another engine checkpointed it
// cannot be opened (checkpoint Parquet is not read yet); tables with reader or writer features
// (deletion vectors, column mapping, …) are refused. NFS can report a failed link that succeeded,
// so put a shared table on a filesystem with reliable hard links, or write it from one replica.
import { randomUUID } from 'node:crypto';
import { constants as FS, promises as fsp } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { ScorecarError } from '../util/index.ts';
import { schemaString, type TableSchema } from './schema.ts';

export const LOG_DIR = '_delta_log';

export interface AddAction {
  /** Relative to the table root, '/'-separated (a URI path: our names need no escaping). */
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  /** JSON string of FileStats. */
  stats?: string;
}

export interface RemoveAction {
  path: string;
  deletionTimestamp: number;
  dataChange: boolean;
  extendedFileMetadata?: boolean;
  partitionValues?: Record<string, string | null>;
  size?: number;
}

export interface Protocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface MetaData {
  id: string;
  name?: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime?: number;
}

type Action =
  | { add: AddAction }
  | { remove: RemoveAction }
  | { protocol: Protocol }
  | { metaData: MetaData }
  | { commitInfo: Record<string, unknown> }
  | { txn: { appId: string; version: number } }
  | Record<string, unknown>;

const VERSION_FILE = /^(\d{20})\.json$/;

export function versionFileName(v: number): string {
  return `${String(v).padStart(20, '0')}.json`;
}

function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === code;
}

async function fsyncPath(path: string, flags: number): Promise<void> {
  const h = await fsp.open(path, flags);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes a file and fsyncs it before returning; refuses to overwrite. */
export async function writeDurable(path: string, data: Uint8Array | string): Promise<void> {
  const h = await fsp.open(path, 'wx');
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
}

/** What a refresh saw in other writers' commits (for the caller's conflict rules). */
interface Seen {
  metadataChanged: boolean;
  removedPaths: Set<string>;
}

export class DeltaTable {
  readonly root: string;
  readonly logDir: string;
  /** -1 while the table does not exist. */
  private v = -1;
  private proto: Protocol | undefined;
  private meta: MetaData | undefined;
  private readonly live = new Map<string, AddAction>();
  private readonly tombstones = new Map<string, RemoveAction>();

  private constructor(root: string) {
    this.root = root;
    this.logDir = join(root, LOG_DIR);
  }

  /** Reads the table at `root` (no table yet is fine: version -1). */
  static async open(root: string): Promise<DeltaTable> {
    const t = new DeltaTable(root);
    await t.refresh();
    return t;
  }

  get version(): number {
    return this.v;
  }

  get metadata(): MetaData | undefined {
    return this.meta;
  }

  get protocol(): Protocol | undefined {
    return this.proto;
  }

  /** The data files of the current version. */
  files(): AddAction[] {
    return [...this.live.values()];
  }

  /** Files removed from the table (tombstones), with when. */
  removed(): RemoveAction[] {
    return [...this.tombstones.values()];
  }

  /**
   * Reads the commits after the current version. Returns what they changed that matters to a
   * writer racing them. Versions are contiguous, so the next file is read until one is missing.
   */
  async refresh(): Promise<Seen> {
    const seen: Seen = { metadataChanged: false, removedPaths: new Set() };
    if (this.v < 0) {
      let names: string[];
      try {
        names = await fsp.readdir(this.logDir);
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return seen;
        throw e;
      }
      const versions = names.map((n) => VERSION_FILE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
      if (versions.length === 0) return seen;
      if (!versions.includes(0)) {
        throw new ScorecarError(
          'TABLE_INCOMPATIBLE',
          `the Delta table at ${this.root} has no commit 0 (another engine checkpointed it and cleaned up its log); scorecar reads JSON commits only`,
        );
      }
    }
    for (;;) {
      const next = this.v + 1;
      let text: string;
      try {
        text = await fsp.readFile(join(this.logDir, versionFileName(next)), 'utf8');
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return seen;
        throw e;
      }
      this.apply(next, parseCommit(text, next, this.root), seen);
    }
  }

  private apply(version: number, actions: readonly Action[], seen?: Seen): void {
    for (const a of actions) {
      if ('add' in a) {
        const add = a.add as AddAction;
        this.live.set(add.path, add);
        this.tombstones.delete(add.path);
      } else if ('remove' in a) {
        const rm = a.remove as RemoveAction;
        this.live.delete(rm.path);
        this.tombstones.set(rm.path, rm);
        seen?.removedPaths.add(rm.path);
      } else if ('protocol' in a) {
        this.proto = a.protocol as Protocol;
        if (seen) seen.metadataChanged = true;
      } else if ('metaData' in a) {
        this.meta = a.metaData as MetaData;
        if (seen) seen.metadataChanged = true;
      }
    }
    this.v = version;
  }

  /** Refuses tables scorecar cannot write correctly (see the header). */
  checkWritable(schema: TableSchema): void {
    const p = this.proto;
    if (!p || !this.meta) throw new ScorecarError('TABLE_INCOMPATIBLE', `the Delta table at ${this.root} has no protocol or metadata`);
    if (p.minReaderVersion > 1 || p.minWriterVersion > 2 || (p.readerFeatures?.length ?? 0) > 0 || (p.writerFeatures?.length ?? 0) > 0) {
      throw new ScorecarError(
        'TABLE_INCOMPATIBLE',
        `the Delta table at ${this.root} needs protocol (${p.minReaderVersion}, ${p.minWriterVersion})${p.writerFeatures?.length ? ` with ${p.writerFeatures.join(', ')}` : ''}; scorecar writes (1, 2) without features`,
      );
    }
    if (this.meta.schemaString !== schemaString(schema) || this.meta.partitionColumns.join(',') !== schema.partitionColumn) {
      throw new ScorecarError(
        'TABLE_INCOMPATIBLE',
        `the Delta table at ${this.root} has another schema or partitioning than scorecar's ${schema.partitionColumn === 'request_date' ? 'traces' : 'assessments'} table`,
      );
    }
  }

  /**
   * Creates the table (commit 0: protocol (1, 2) and metadata) unless it exists; a table that
   * exists must have this schema. Safe when several replicas create it at once.
   */
  async create(schema: TableSchema, engineInfo: string, now = Date.now()): Promise<void> {
    if (this.v < 0) {
      await fsp.mkdir(this.logDir, { recursive: true });
      const actions: Action[] = [
        {
          commitInfo: {
            timestamp: now,
            operation: 'CREATE TABLE',
            operationParameters: { mode: 'ErrorIfExists', partitionBy: JSON.stringify([schema.partitionColumn]) },
            isBlindAppend: true,
            engineInfo,
          },
        },
        { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
        {
          metaData: {
            id: randomUUID(),
            format: { provider: 'parquet', options: {} },
            schemaString: schemaString(schema),
            partitionColumns: [schema.partitionColumn],
            configuration: {},
            createdTime: now,
          },
        },
      ];
      const won = await this.putIfAbsent(0, actions);
      if (!won) await this.refresh();
    }
    this.checkWritable(schema);
  }

  /**
   * Commits `actions` at the next free version and returns it. `onLost` is asked after each
   * lost race with what the winning commits did; it returns the actions to retry with (an empty
   * list: nothing left to commit, -1 is returned) or throws to give up.
   */
  async commit(actions: Action[], onLost: (seen: Seen, actions: Action[]) => Action[] = appendRule(this.root)): Promise<number> {
    let pending = actions;
    for (let attempt = 0; ; attempt++) {
      const v = this.v + 1;
      if (await this.putIfAbsent(v, pending)) return v;
      const seen = await this.refresh();
      pending = onLost(seen, pending);
      if (pending.length === 0) return -1;
      if (attempt >= 1000) throw new ScorecarError('OVERLOADED', `gave up committing to ${this.root} after ${attempt} lost races`);
    }
  }

  /** Writes version `v` unless it exists: true when this call wrote it. */
  private async putIfAbsent(v: number, actions: Action[]): Promise<boolean> {
    const body = `${actions.map((a) => JSON.stringify(a)).join('\n')}\n`;
    const tmp = join(this.logDir, `.tmp-${randomUUID()}.json`);
    await writeDurable(tmp, body);
    try {
      await fsp.link(tmp, join(this.logDir, versionFileName(v)));
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return false;
      throw e;
    } finally {
      await fsp.unlink(tmp).catch(() => {});
    }
    // The new name must survive a power cut too.
    await fsyncPath(this.logDir, FS.O_RDONLY).catch(() => {});
    this.apply(v, actions);
    return true;
  }

  /**
   * Removes (logically) every file whose partition value is before `beforePartition` (a
   * retention cut, e.g. '2025-01-01'). Returns the version, or -1 when nothing was removed.
   */
  async removePartitionsBefore(partitionColumn: string, beforePartition: string, engineInfo: string, now = Date.now()): Promise<{ version: number; files: number }> {
    const victims = this.files().filter((a) => {
      const p = a.partitionValues[partitionColumn];
      return p !== null && p !== undefined && p < beforePartition;
    });
    if (victims.length === 0) return { version: -1, files: 0 };
    const removes = (list: AddAction[]): Action[] => [
      {
        commitInfo: {
          timestamp: now,
          operation: 'DELETE',
          operationParameters: { predicate: JSON.stringify([`${partitionColumn} < '${beforePartition}'`]) },
          isBlindAppend: false,
          engineInfo,
        },
      },
      ...list.map((a) => ({
        remove: {
          path: a.path,
          deletionTimestamp: now,
          dataChange: true,
          extendedFileMetadata: true,
          partitionValues: a.partitionValues,
          size: a.size,
        },
      })),
    ];
    let left = victims;
    const version = await this.commit(removes(left), (seen) => {
      if (seen.metadataChanged) throw incompatible(this.root);
      left = left.filter((a) => !seen.removedPaths.has(a.path));
      return left.length === 0 ? [] : removes(left);
    });
    return { version, files: version < 0 ? 0 : left.length };
  }

  /**
   * Commits a rewrite (OPTIMIZE): `add` replaces `sources`, with dataChange false on both sides,
   * so readers that stream changes ignore it. Lost races are retried unless a winning commit
   * removed one of the sources (retention, another replica compacting them) or changed the
   * schema: then nothing is committed and the caller deletes its new file. Returns the version,
   * or -1 when it gave up.
   */
  async replace(sources: readonly AddAction[], add: AddAction, engineInfo: string, now = Date.now()): Promise<number> {
    const actions: Action[] = [
      {
        commitInfo: {
          timestamp: now,
          operation: 'OPTIMIZE',
          operationParameters: { predicate: '[]', zOrderBy: '[]' },
          isBlindAppend: false,
          engineInfo,
        },
      },
      { add: { ...add, dataChange: false } },
      ...sources.map((a) => ({
        remove: {
          path: a.path,
          deletionTimestamp: now,
          dataChange: false,
          extendedFileMetadata: true,
          partitionValues: a.partitionValues,
          size: a.size,
        },
      })),
    ];
    const mine = new Set(sources.map((a) => a.path));
    return this.commit(actions, (seen, pending) => {
      if (seen.metadataChanged) return [];
      for (const p of seen.removedPaths) if (mine.has(p)) return [];
      return pending;
    });
  }

  /**
   * Deletes data files no longer in the table (removed, or never committed: a crash between
   * writing a file and its commit) and stray `.tmp-*` commits, once older than `retainMs`.
   * Returns how many files it deleted.
   */
  async vacuum(retainMs: number, now = Date.now()): Promise<number> {
    await this.refresh();
    const cutoff = now - retainMs;
    let deleted = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return;
        throw e;
      }
      for (const d of entries) {
        const full = join(dir, d.name);
        if (d.isDirectory()) {
          if (full === this.logDir) continue;
          await walk(full);
          continue;
        }
        if (!d.isFile() || !d.name.endsWith('.parquet')) continue;
        const rel = relative(this.root, full).split(sep).join('/');
        if (this.live.has(rel)) continue;
        const tomb = this.tombstones.get(rel);
        const since = tomb ? tomb.deletionTimestamp : (await fsp.stat(full).catch(() => undefined))?.mtimeMs;
        if (since === undefined || since > cutoff) continue;
        await fsp.unlink(full).catch(() => {});
        deleted++;
      }
    };
    await walk(this.root);
    for (const name of await fsp.readdir(this.logDir).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-')) continue;
      const p = join(this.logDir, name);
      const st = await fsp.stat(p).catch(() => undefined);
      if (st && st.mtimeMs <= cutoff) {
        await fsp.unlink(p).catch(() => {});
        deleted++;
      }
    }
    return deleted;
  }
}

function incompatible(root: string): ScorecarError {
  return new ScorecarError(
    'TABLE_INCOMPATIBLE',
    `a concurrent commit changed the protocol or metadata of the Delta table at ${root}; rows were not committed`,
  );
}

/** The lost-race rule of a blind append: retry unless the table's protocol or metadata changed. */
function appendRule(root: string): (seen: Seen, actions: Action[]) => Action[] {
  return (seen, actions) => {
    if (seen.metadataChanged) throw incompatible(root);
    return actions;
  };
}

function parseCommit(text: string, version: number, root: string): Action[] {
  const out: Action[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as Action);
    } catch {
      throw new ScorecarError('TABLE_INCOMPATIBLE', `commit ${version} of the Delta table at ${root} is not valid JSON lines`);
    }
  }
  return out;
}

/** A new data file's relative path in its partition directory. */
export function dataFilePath(partitionColumn: string, partitionValue: string): string {
  return `${partitionColumn}=${partitionValue}/part-00000-${randomUUID()}-c000.zstd.parquet`;
}
