// The scorer sets the over-the-wire bench runs scorecar with (YAML appended to its config).
//
// Since a trace is buffered only when some active scorer of its experiment could select it (its
// salted hash below the experiment's highest rate), how much of the traffic is assembled, viewed
// and scored depends on the scorers: each set below fixes one point of that range. The bench
// payload's experiment is its resource's service.name, "chat-app" (payload.ts; no
// mlflow.experimentId attribute and no x-mlflow-experiment-id header on the wire bench).
//
// Every code scorer's source is `(ctx) => 1`: the sandbox call is as cheap as it gets, so what is
// measured is scorecar's own cost of selecting, building views and running jobs, not the
// scorers' work.

export const BENCH_EXPERIMENT = 'chat-app';

/**
 * Ten scorers at rates spread over 1-10% with the kinds of filter people write. On the bench
 * payload (every trace: root "chat_pipeline", status OK, 2 s long; a RETRIEVER, an EMBEDDING,
 * LLM and TOOL spans; resource deployment.environment=prod; root session.id s-0..s-49) each
 * filter matches all, none, or 1 in 50 traces, as noted.
 */
export const REALISTIC_SCORERS: ReadonlyArray<{
  name: string;
  rate: number;
  filter: string | null;
  matches: string;
}> = [
  { name: 'status_ok', rate: 0.1, filter: "trace.status = 'OK'", matches: 'all' },
  { name: 'retrieval', rate: 0.08, filter: "span.type = 'RETRIEVER'", matches: 'all' },
  { name: 'prod_only', rate: 0.05, filter: "metadata.`deployment.environment` = 'prod'", matches: 'all' },
  { name: 'chat_named', rate: 0.05, filter: "trace.name LIKE 'chat%'", matches: 'all' },
  { name: 'one_session', rate: 0.03, filter: "metadata.`session.id` = 's-7'", matches: '1 in 50' },
  { name: 'tool_use', rate: 0.03, filter: "span.name = 'tool'", matches: 'all' },
  { name: 'errors', rate: 0.02, filter: "trace.status = 'ERROR'", matches: 'none' },
  { name: 'slow', rate: 0.02, filter: 'trace.execution_time_ms > 1000', matches: 'all' },
  { name: 'everything', rate: 0.01, filter: null, matches: 'all' },
  { name: 'team_tag', rate: 0.01, filter: "tag.team = 'search'", matches: 'none' },
];

function scorerYaml(experiment: string, name: string, rate: number, filter: string | null): string {
  const f = filter === null ? '' : `, filterString: ${JSON.stringify(filter)}`;
  return `  - {experiment: ${experiment}, name: ${name}, definition: {type: code, source: "(ctx) => 1"}, sampleRate: ${rate}${f}}\n`;
}

export interface WireRun {
  /** Stable key of the run's figures in baseline.json (wire.<key>.*). */
  key: string;
  title: string;
  yaml: string;
}

export const WIRE_RUNS: Record<
  'noScorers' | 'realistic' | 'assembleAll' | 'rate1NoMatch' | 'rate1Match',
  WireRun
> = {
  noScorers: {
    key: 'noScorers',
    title: 'no scorers (receive + forward; nothing is assembled)',
    yaml: '',
  },
  realistic: {
    key: 'realistic',
    title: `10 code scorers at 1-10% with filters (${REALISTIC_SCORERS.map((s) => `${s.rate * 100}%`).join(' ')})`,
    yaml: `scorers:\n${REALISTIC_SCORERS.map((s) => scorerYaml(BENCH_EXPERIMENT, s.name, s.rate, s.filter)).join('')}`,
  },
  // Every trace assembled and nothing selected: the data-plane figure of the history in README
  // (before the selection-driven buffering, every trace was assembled whatever the scorers).
  // A `span:` resolution rule first means the experiment is known only once the root span is
  // in, so the assembler must buffer every trace of a scorecar with any scorer at rate 1.0;
  // at completion the trace resolves to chat-app (resource:service.name), which has no scorer,
  // so no view is built. Costs one root-span decode per trace on top of the old figure.
  assembleAll: {
    key: 'assembleAll',
    title: 'every trace assembled, none selected (experiment from a span rule; the scorer is elsewhere)',
    yaml: `experiments: {resolution: ["span:mlflow.experimentId", "resource:service.name"]}\nscorers:\n${scorerYaml('elsewhere', 'rate1', 1, null)}`,
  },
  // A filter needs the trace's GenAI view: at rate 1.0 every trace is assembled AND decoded into
  // its view, then the filter excludes it (no job). Under full load the selection queue (64 MiB
  // of traces waiting for their view) overflows: those traces are dropped and counted.
  rate1NoMatch: {
    key: 'rate1NoMatch',
    title:
      'one scorer at rate 1.0 whose filter matches nothing (every trace assembled, viewed as far as selection keeps up, no job)',
    yaml: `scorers:\n${scorerYaml(BENCH_EXPERIMENT, 'rate1_nomatch', 1, "trace.status = 'ERROR'")}`,
  },
  rate1Match: {
    key: 'rate1Match',
    title: 'one scorer at rate 1.0 matching every trace (assembled, viewed, scored; overload drops counted)',
    yaml: `scorers:\n${scorerYaml(BENCH_EXPERIMENT, 'rate1_all', 1, null)}`,
  },
};
