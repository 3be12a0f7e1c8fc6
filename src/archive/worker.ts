// The archive's writer thread: a WriterHost behind a message port. Everything that costs CPU or
// blocks on the disk (GenAI views of archived traces, Parquet encoding, fsync, commits) runs
// here, never on the thread that serves the receivers. The protocol is in host.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { errorFields, type Logger, type LogLevel } from '../util/index.ts';
import { type HostOptions, type Item, type Request, WriterHost } from './host.ts';

interface Init {
  options: HostOptions;
  tickMs: number;
  maintainMs: number;
}

const init = workerData as Init;
const port = parentPort!;

/** Log lines go to the main thread's logger (one format, one level, one destination). */
function portLogger(base: Record<string, unknown>): Logger {
  const emit = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    const f: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(fields ?? {}))
      f[k] = v instanceof Error ? errorFields(v) : typeof v === 'bigint' ? String(v) : v;
    port.postMessage({ kind: 'log', level, msg, fields: f });
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (more) => portLogger({ ...base, ...more }),
  };
}

const log = portLogger({});
const host = new WriterHost(init.options, log);

const report = (): void => {
  const r = host.takeReport();
  if (r) port.postMessage({ kind: 'report', report: r });
};

port.on(
  'message',
  (msg: { kind: 'item'; item: Item } | { kind: 'request'; id: number; request: Request }) => {
    if (msg.kind === 'item') {
      host.item(msg.item);
      return;
    }
    void host.request(msg.request).then((reply) => {
      report();
      port.postMessage({ kind: 'reply', id: msg.id, reply });
    });
  },
);

setInterval(() => {
  void host.tick().then((r) => {
    if (r) port.postMessage({ kind: 'report', report: r });
  });
}, init.tickMs);

if (init.maintainMs > 0) {
  setInterval(() => {
    void host.request({ op: 'maintain' }).then((reply) => {
      if (reply.ok) log.debug('archive maintenance', reply.value as Record<string, unknown>);
    });
  }, init.maintainMs).unref();
}

port.postMessage({ kind: 'ready' });
