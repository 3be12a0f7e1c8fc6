// Expectations: ground truth an app (or a test harness replaying traffic) ships with a trace, for
// judges such as correctness, guidelines and expectations_guidelines. scorecar's convention:
//
//   scorecar.expectations.<name>   on the root span (or as an MLflow trace tag of that name, i.e.
//   mlflow.expectations.<name>     `mlflow.traceTag.scorecar.expectations.<name>`)
//
// with the MLflow expectation names: `expected_response` (any JSON or text), `expected_facts`
// (string list: an array attribute, a JSON array, or one string) and `guidelines` (same). Other
// names are kept under their own key, JSON-parsed when they look like JSON. Lower precedence, for
// apps that already write them: bare `expected_response` / `expected_output` root attributes and
// Langfuse experiment runs' `langfuse.experiment.item.expected_output` (any span).
// MLflow JSON-encodes its attribute values, so values are decoded leniently everywhere.
import type { Attributes, SpanData } from '../wire/index.ts';
import { EXPECTED_OUTPUT } from './langfuse.ts';
import type { Expectations } from './types.ts';
import { parseJsonLoose, plain, stringList } from './values.ts';

export const EXPECTATION_PREFIXES = ['scorecar.expectations.', 'mlflow.expectations.'] as const;

function setExpectation(out: Expectations, name: string, raw: unknown): void {
  const v = typeof raw === 'string' ? parseJsonLoose(raw) : raw;
  switch (name) {
    case 'expected_response':
    case 'expectedResponse':
      if (out.expectedResponse === undefined) out.expectedResponse = v;
      return;
    case 'expected_facts':
    case 'expectedFacts': {
      const list = stringList(v);
      if (list && out.expectedFacts === undefined) out.expectedFacts = list;
      return;
    }
    case 'guidelines': {
      const list = stringList(v);
      if (list && out.guidelines === undefined) out.guidelines = list;
      return;
    }
    default:
      if (out[name] === undefined) out[name] = v;
  }
}

function fromPrefixed(out: Expectations, entries: Iterable<[string, unknown]>): void {
  for (const [key, value] of entries) {
    for (const p of EXPECTATION_PREFIXES) {
      if (key.startsWith(p) && key.length > p.length) setExpectation(out, key.slice(p.length), value);
    }
  }
}

function rootValue(attrs: Attributes, key: string): unknown {
  return Object.hasOwn(attrs, key) ? plain(attrs[key]) : undefined;
}

/** Expectations of a trace from its root span, its MLflow trace tags and (Langfuse) any span. */
export function readExpectations(
  root: SpanData,
  spans: readonly SpanData[],
  tags: Readonly<Record<string, string>>,
): Expectations {
  const out: Expectations = {};
  fromPrefixed(
    out,
    Object.entries(root.attributes).map(([k, v]): [string, unknown] => [k, plain(v)]),
  );
  fromPrefixed(out, Object.entries(tags));
  for (const key of ['expected_response', 'expected_output']) {
    const v = rootValue(root.attributes, key);
    if (v !== undefined && v !== null) setExpectation(out, 'expected_response', v);
  }
  if (out.expectedResponse === undefined) {
    for (const s of spans) {
      const v = s.attributes[EXPECTED_OUTPUT];
      if (v !== undefined && v !== null) {
        setExpectation(out, 'expected_response', plain(v));
        break;
      }
    }
  }
  return out;
}
