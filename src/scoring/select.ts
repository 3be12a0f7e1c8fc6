// The sampler stage: for each completed trace, which active scorers of its experiment take it.
// Cheap checks first: no active scorer at all -> nothing decoded; the experiment comes from the
// resource alone; the salted hash decides before the trace view is built; the filter string
// runs last, on the view. One hash per trace serves every scorer (one salt: nested samples).
import type { CompleteTrace } from '../assembly/types.ts';
import { buildTraceView, resolveExperiment } from '../genai/index.ts';
import type { TraceView } from '../genai/types.ts';
import type { ActiveScorer, Scorer } from '../registry/types.ts';
import { inclusionProbability, isSelected } from '../sampling/index.ts';
import type { Logger } from '../util/log.ts';
import type { MetricsRegistry } from '../util/metrics.ts';

export interface ActiveScorerSource {
  activeScorers(): ReadonlyMap<string, readonly ActiveScorer[]>;
  activeFor(experimentId: string): readonly ActiveScorer[];
}

export interface SelectedJob {
  view: TraceView;
  scorer: Scorer;
  /** Inclusion probability recorded on every assessment of this job. */
  sampleRate: number;
  /** This job's share of its trace view's memory (the view is shared by the trace's jobs). */
  approxBytes: number;
}

/**
 * A decoded trace view takes about 2.3x the trace's wire size (measured on the bench payload:
 * 16.8 KB per 7.3 KB trace); rounded up for attribute-heavy traces.
 */
export const VIEW_BYTES_PER_WIRE_BYTE = 3;

/** The engine's admission check, asked before a view is built for jobs that could not queue. */
export interface JobAdmission {
  hasRoom(jobs: number, bytes: number): boolean;
  refuse(experimentId: string, scorer: string, reason: 'queue_full'): void;
}

export interface SelectorOptions {
  registry: ActiveScorerSource;
  /** When given, a trace whose jobs would not fit is refused before its view is built. */
  admission?: JobAdmission;
  resolution: readonly string[];
  defaultExperiment: string;
  salt: string;
  metrics: MetricsRegistry;
  log: Logger;
}

function asScorer(s: ActiveScorer): Scorer {
  return {
    experimentId: s.experimentId,
    name: s.name,
    version: s.version,
    definition: s.definition,
    sampleRate: s.sampleRate,
    filterString: s.filterString,
    status: 'active',
    createdAt: s.updatedAt,
    updatedAt: s.updatedAt,
  };
}

export class TraceSelector {
  private readonly o: SelectorOptions;
  private readonly m;

  constructor(o: SelectorOptions) {
    this.o = o;
    this.m = {
      considered: o.metrics.counter(
        'scorecar_sampler_traces_total',
        'Completed traces of experiments with active scorers',
        ['experiment'],
      ),
      selected: o.metrics.counter(
        'scorecar_sampler_selected_total',
        'Traces selected per scorer (sample rate and filter string passed)',
        ['experiment', 'scorer'],
      ),
      filtered: o.metrics.counter(
        'scorecar_sampler_filtered_out_total',
        'Traces inside the sample that the filter string excluded',
        ['experiment', 'scorer'],
      ),
      viewErrors: o.metrics.counter(
        'scorecar_sampler_view_errors_total',
        'Traces whose GenAI view could not be built',
        ['experiment'],
      ),
    };
  }

  select(trace: CompleteTrace): SelectedJob[] {
    const all = this.o.registry.activeScorers();
    if (all.size === 0) return [];
    const experimentId = resolveExperiment(trace, this.o.resolution, this.o.defaultExperiment);
    const scorers = this.o.registry.activeFor(experimentId);
    if (scorers.length === 0) return [];
    this.m.considered.inc({ experiment: experimentId });
    const sampled = scorers.filter((s) => isSelected(trace.traceId, s.sampleRate, this.o.salt));
    if (sampled.length === 0) return [];
    // Under overload, building views only to drop their jobs would turn into garbage-collector
    // work and memory: refuse first (filters not run yet, so every sampled scorer counts).
    const viewBytes = trace.wireBytes * VIEW_BYTES_PER_WIRE_BYTE;
    if (this.o.admission && !this.o.admission.hasRoom(sampled.length, viewBytes)) {
      for (const s of sampled) this.o.admission.refuse(experimentId, s.name, 'queue_full');
      return [];
    }
    let view: TraceView;
    try {
      view = buildTraceView(trace, {
        resolution: this.o.resolution,
        defaultExperiment: this.o.defaultExperiment,
      });
    } catch (e) {
      this.m.viewErrors.inc({ experiment: experimentId });
      this.o.log.warn('cannot build the trace view; trace not scored', {
        traceId: trace.traceId,
        error: e instanceof Error ? e.message : String(e),
      });
      return [];
    }
    const jobs: SelectedJob[] = [];
    for (const s of sampled) {
      if (s.filter && !s.filter.matches(view)) {
        this.m.filtered.inc({ experiment: experimentId, scorer: s.name });
        continue;
      }
      this.m.selected.inc({ experiment: experimentId, scorer: s.name });
      jobs.push({ view, scorer: asScorer(s), sampleRate: inclusionProbability(s.sampleRate), approxBytes: 0 });
    }
    for (const j of jobs) j.approxBytes = Math.ceil(viewBytes / jobs.length);
    return jobs;
  }
}
