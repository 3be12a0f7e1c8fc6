// Host side of the view workers: GenAI views built on worker threads (view-thread.ts), so that
// one big view — within the view limits still hundreds of milliseconds of decoding and reading
// (measured: 10,000 spans of 20 attributes, 200,000 values, 0.3–0.9 s on a busy 2-core machine)
// — never holds up the receivers. What stays on the event loop is proportional to the view, not
// to the work of building it: copying the trace's encoded spans into one transferable buffer
// (a memcpy) and receiving the built view (structured clone, about a tenth of building it).
//
// Traces go in batches (up to MAX_BATCH_TRACES, or MAX_BATCH_BYTES of spans), so a stream of
// small traces costs one message each way per batch; each worker has at most two batches in
// flight (one building, the next queued behind it), so the traces waiting for their view stay
// in the selector's bounded queue, not in a worker's mailbox. A worker that dies (out of memory,
// a bug) fails its batches' views — counted by the selector as view errors — and is replaced on
// the next batch.
import { Worker } from 'node:worker_threads';
import type { CompleteTrace } from '../assembly/index.ts';
import type { TraceView } from '../genai/index.ts';
import type { ResourceRef, ScopeRef, ViewCuts, ViewLimits } from '../wire/index.ts';

/** What a view worker is started with. */
export interface ViewThreadInit {
  resolution: readonly string[];
  defaultExperiment: string;
  limits: Readonly<ViewLimits>;
}

/** One trace of a batch: offsets into the batch buffer as [offset, length] pairs. */
export interface ViewBatchTrace {
  traceId: string;
  reason: CompleteTrace['reason'];
  hasRoot: boolean;
  firstSeenMs: number;
  completedMs: number;
  wireBytes: number;
  /** Build the ctx.trace text too (a code scorer that reads it will score this trace). */
  withJson: boolean;
  spans: number[];
  spanResources: number[];
  spanScopes: number[];
  logs: number[];
  logResources: number[];
  logScopes: number[];
}

export interface ViewBatch {
  id: number;
  /** Every encoded span, log record, resource and scope of the batch (transferred, not copied). */
  buf: ArrayBuffer;
  resources: { off: number; len: number; experimentHeader: string | undefined }[];
  scopes: { off: number; len: number }[];
  traces: ViewBatchTrace[];
}

export type ViewOutcome =
  | { ok: true; view: TraceView; traceJson: string | undefined; values: number; cuts: ViewCuts }
  | { ok: false; code: string; message: string };

export interface ViewBatchResult {
  id: number;
  outcomes: ViewOutcome[];
}

/** A trace to build, and whether its ctx.trace text is wanted. */
export interface ViewRequest {
  trace: CompleteTrace;
  withJson: boolean;
}

export const MAX_BATCH_TRACES = 64;
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** Batches in flight per worker: one building, one queued behind it. */
const IN_FLIGHT_PER_WORKER = 2;
/** Heap of one view worker: views at the default limits take a few tens of MiB. */
const WORKER_HEAP_MB = 512;

function threadUrl(): URL {
  // Sources run as .ts under type stripping; a compiled build has .js next to this file.
  return new URL(import.meta.url.endsWith('.ts') ? './view-thread.ts' : './view-thread.js', import.meta.url);
}

interface Pending {
  resolve: (outcomes: ViewOutcome[]) => void;
  size: number;
}

interface Slot {
  worker: Worker | null;
  pending: Map<number, Pending>;
}

/** Packs a batch of traces into one buffer (copied once) and its index. */
export function packBatch(id: number, requests: readonly ViewRequest[]): { batch: ViewBatch; transfer: ArrayBuffer[] } {
  const resIndex = new Map<ResourceRef, number>();
  const scopeIndex = new Map<ScopeRef, number>();
  const resourceRefs: ResourceRef[] = [];
  const scopeRefs: ScopeRef[] = [];
  let total = 0;
  const res = (r: ResourceRef): number => {
    let i = resIndex.get(r);
    if (i === undefined) {
      i = resourceRefs.length;
      resIndex.set(r, i);
      resourceRefs.push(r);
      total += r.bytes?.length ?? 0;
    }
    return i;
  };
  const scope = (s: ScopeRef): number => {
    let i = scopeIndex.get(s);
    if (i === undefined) {
      i = scopeRefs.length;
      scopeIndex.set(s, i);
      scopeRefs.push(s);
      total += s.bytes?.length ?? 0;
    }
    return i;
  };
  const traces: ViewBatchTrace[] = requests.map(({ trace, withJson }) => {
    for (const s of trace.spans) total += s.length;
    for (const l of trace.logs ?? []) total += l.length;
    return {
      traceId: trace.traceId,
      reason: trace.reason,
      hasRoot: trace.hasRoot,
      firstSeenMs: trace.firstSeenMs,
      completedMs: trace.completedMs,
      wireBytes: trace.wireBytes,
      withJson,
      spans: [],
      spanResources: trace.resources.map(res),
      spanScopes: trace.scopes.map(scope),
      logs: [],
      logResources: (trace.logResources ?? []).map(res),
      logScopes: (trace.logScopes ?? []).map(scope),
    };
  });
  const buf = new Uint8Array(total);
  let at = 0;
  const put = (b: Uint8Array): number => {
    const off = at;
    buf.set(b, at);
    at += b.length;
    return off;
  };
  const resources = resourceRefs.map((r) => ({
    off: r.bytes ? put(r.bytes) : -1,
    len: r.bytes?.length ?? 0,
    experimentHeader: r.experimentHeader,
  }));
  const scopes = scopeRefs.map((s) => ({ off: s.bytes ? put(s.bytes) : -1, len: s.bytes?.length ?? 0 }));
  requests.forEach(({ trace }, k) => {
    const t = traces[k]!;
    for (const s of trace.spans) t.spans.push(put(s), s.length);
    const logs = trace.logs ?? [];
    // A producer may leave the parallel arrays out: then its records cannot be placed.
    if (trace.logResources?.length === logs.length && trace.logScopes?.length === logs.length) {
      for (const l of logs) t.logs.push(put(l), l.length);
    } else {
      t.logResources = [];
      t.logScopes = [];
    }
  });
  return { batch: { id, buf: buf.buffer, resources, scopes, traces }, transfer: [buf.buffer] };
}

export class ViewWorkers {
  private readonly init: ViewThreadInit;
  private readonly slots: Slot[];
  private nextId = 1;
  private closed = false;

  constructor(workers: number, init: ViewThreadInit) {
    this.init = init;
    this.slots = Array.from({ length: Math.max(1, Math.floor(workers)) }, () => ({ worker: null, pending: new Map() }));
  }

  /** Whether a batch can be sent now without queuing behind more than one other per worker. */
  get hasRoom(): boolean {
    return !this.closed && this.slots.some((s) => s.pending.size < IN_FLIGHT_PER_WORKER);
  }

  /** Builds the views of a batch; resolves with one outcome per request, in order (never rejects). */
  build(requests: readonly ViewRequest[]): Promise<ViewOutcome[]> {
    if (this.closed) return Promise.resolve(requests.map(() => failed('the view workers are closed')));
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.nextId++;
    return new Promise((resolve) => {
      try {
        if (slot.worker === null) slot.worker = this.spawn(slot);
        const { batch, transfer } = packBatch(id, requests);
        slot.pending.set(id, { resolve, size: requests.length });
        slot.worker.postMessage(batch, transfer);
      } catch (e) {
        slot.pending.delete(id);
        // A bug of ours (or a worker that cannot start): these views fail, the pipeline goes on.
        resolve(requests.map(() => failed(`cannot hand the traces to a view worker: ${e instanceof Error ? e.message : String(e)}`)));
      }
    });
  }

  private spawn(slot: Slot): Worker {
    const w = new Worker(threadUrl(), {
      workerData: this.init,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    w.unref();
    let lastError: unknown;
    w.on('message', (r: ViewBatchResult) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      p.resolve(r.outcomes);
    });
    w.on('error', (e) => {
      lastError = e;
    });
    w.on('exit', (code) => {
      if (slot.worker === w) slot.worker = null;
      const why = lastError instanceof Error ? lastError.message : `exit code ${code}`;
      const pending = [...slot.pending.values()];
      slot.pending.clear();
      for (const p of pending) p.resolve(Array.from({ length: p.size }, () => failed(`the view worker stopped (${why})`)));
    });
    return w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(
      this.slots.map((s) => {
        const w = s.worker;
        s.worker = null;
        return w?.terminate();
      }),
    );
  }
}

function failed(message: string): ViewOutcome {
  return { ok: false, code: 'INTERNAL', message };
}
