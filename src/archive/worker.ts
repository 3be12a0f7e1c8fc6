// The archive's writer thread: a WriterHost behind a message port. Everything that costs CPU or
// blocks on the disk (GenAI views of archived traces, Parquet encoding, fsync, commits) runs
// here, never on the thread that serves the receivers. The protocol is in host.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../util/index.ts';
import { type HostOptions, type Item, type Request, WriterHost } from './host.ts';

interface Init {
  options: HostOptions;
  tickMs: number;
  maintainMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logFormat: 'text' | 'json';
}

const init = workerData as Init;
const log = createLogger({ level: init.logLevel, format: init.logFormat }).child({ component: 'archive-writer' });
const host = new WriterHost(init.options, log);
const port = parentPort!;

const report = (): void => {
  const r = host.takeReport();
  if (r) port.postMessage({ kind: 'report', report: r });
};

port.on('message', (msg: { kind: 'item'; item: Item } | { kind: 'request'; id: number; request: Request }) => {
  if (msg.kind === 'item') {
    host.item(msg.item);
    return;
  }
  void host.request(msg.request).then((reply) => {
    report();
    port.postMessage({ kind: 'reply', id: msg.id, reply });
  });
});

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
