// Python scorers through the real runner and real Pyodide workers (one interpreter per worker,
// loaded once for the file): MLflow's arguments and result mapping, the per-scorer namespace,
// the CPU-time limit measured in CPU time (not wall time), the hard deadline for a call that
// never reaches CPython's checks, the memory limit, the registration check, and that a runaway
// scorer leaves the others their worker.
import { afterAll, describe, expect, it } from 'vitest';
import type { ScorerVersion } from '../../src/definitions/index.ts';
import { createScorerRunner, PythonSandbox } from '../../src/scoring/index.ts';
import { makeTraceView, runAssessments } from '../support/testkit.ts';

const runner = createScorerRunner({ python: { workers: 1, timeoutMs: 1000, memoryBytes: 64 * 1024 * 1024 } });
afterAll(() => runner.close());

function py(name: string, source: string, extra: Record<string, unknown> = {}, experimentId = 'py', version = 1): ScorerVersion {
  return { experimentId, name, version, definition: { type: 'python', source, ...extra } as ScorerVersion['definition'] };
}

const VIEW = makeTraceView({
  traceId: 'python-view',
  experimentId: 'py',
  inputs: { query: 'what is scorecar?' },
  outputs: { response: 'scorecar scores traces' },
  expectations: { expected_response: 'it scores traces' },
  retrievals: [{ query: 'scorecar', documents: ['doc one', 'doc two'] }],
  spans: [{ name: 'llm', type: 'LLM', attributes: { 'mlflow.spanType': '"LLM"', 'mlflow.spanInputs': '{"prompt": "p"}' } }],
});

async function score(s: ScorerVersion, view = VIEW) {
  return runAssessments(runner, { view, scorer: s, sampleRate: 1 });
}

describe('Python scorers (Pyodide)', () => {
  it('calls the function with the MLflow arguments its signature names', async () => {
    const [a] = await score(
      py('args', 'def args(inputs, outputs, expectations):\n    return f"{inputs[\'query\']}|{outputs[\'response\']}|{expectations[\'expected_response\']}"\n'),
    );
    expect(a).toMatchObject({ name: 'args', value: 'what is scorecar?|scorecar scores traces|it scores traces', source: { type: 'CODE', id: 'args' } });
  }, 120_000);

  it('hands over the trace as an MLflow Trace: info, data.spans, search_spans', async () => {
    const src = `from mlflow.entities import SpanType
def shape(trace):
    llm = trace.search_spans(span_type=SpanType.LLM)
    retrievers = trace.search_spans(span_type="RETRIEVER")
    return "|".join([trace.info.trace_id[:3], trace.info.state, str(len(trace.data.spans)), llm[0].name,
                     str(llm[0].inputs), str(len(retrievers[0].outputs)), str(trace.search_spans(name="agent")[0].parent_id)])
`;
    const [a] = await score(py('shape', src));
    expect(a?.error).toBeUndefined();
    expect(a?.value).toBe("tr-|OK|3|llm|{'prompt': 'p'}|2|None");
  });

  it('maps results as MLflow does: Feedback with rationale and metadata, lists, None (no assessment)', async () => {
    const fb = await score(
      py(
        'fb',
        'from mlflow.entities import Feedback\ndef fb(outputs):\n    return [Feedback(name="a", value=True, rationale="why", metadata={"k": 1}), Feedback(name="b", value=0.5)]\n',
      ),
    );
    expect(fb.map((x) => [x.name, x.value, x.rationale, x.metadata.k])).toEqual([
      ['a', true, 'why', '1'],
      ['b', 0.5, undefined, undefined],
    ]);
    const named = await score(py('default_name', 'from mlflow.entities import Feedback\ndef f(outputs):\n    return Feedback(value="yes")\n'));
    expect(named.map((x) => [x.name, x.value])).toEqual([['default_name', 'yes']]);
    expect(await score(py('nothing', 'def f(outputs):\n    return None\n'))).toEqual([]);
    const [bad] = await score(py('bad_type', 'def f(outputs):\n    return {"a": 1}\n'));
    expect(bad?.error?.code).toBe('CODE_SCORER_INVALID_RESULT');
    const [nan] = await score(py('nan', 'def f(outputs):\n    return float("nan")\n'));
    expect(nan?.error?.code).toBe('CODE_SCORER_INVALID_RESULT');
  });

  it('keeps a namespace per scorer version: globals persist for one scorer, never leak to another', async () => {
    const src = 'seen = []\ndef remember(outputs):\n    seen.append(1)\n    return len(seen)\n';
    const a = py('remember', src, {}, 'tenant-a');
    const b = py('remember', src, {}, 'tenant-b');
    const values = [];
    for (let i = 0; i < 2; i++) {
      values.push((await score(a))[0]?.value, (await score(b))[0]?.value);
    }
    expect(values).toEqual([1, 1, 2, 2]);
    // A new version starts clean.
    expect((await score(py('remember', src, {}, 'tenant-a', 2)))[0]?.value).toBe(1);
    // Rebinding a builtin stays inside the scorer that did it.
    await score(py('rebind', 'import builtins\ndef f(outputs):\n    global len\n    len = lambda x: -1\n    builtins.abs = lambda x: -1\n    return 1\n'));
    expect((await score(py('uses_len', 'def f(outputs):\n    return len("abc")\n')))[0]?.value).toBe(3);
  });

  it('stops a runaway call at its CPU-time limit (TIMEOUT) and the next call runs', async () => {
    const [loop] = await score(py('loop', 'def f(outputs):\n    while True:\n        pass\n'));
    expect(loop?.error?.code).toBe('TIMEOUT');
    const [after] = await score(py('after_loop', 'def f(outputs):\n    return 7\n'));
    expect(after?.value).toBe(7);
  }, 120_000);

  it('stops an allocation past the memory limit (OUT_OF_MEMORY)', async () => {
    const [oom] = await score(py('oom', 'def f(outputs):\n    return len(bytearray(512 * 1024 * 1024))\n'));
    expect(oom?.error?.code).toBe('OUT_OF_MEMORY');
    expect((await score(py('after_oom', 'def f(outputs):\n    return 8\n')))[0]?.value).toBe(8);
  }, 120_000);

  it('reports syntax errors and missing functions as CODE_SCORER_ERROR', async () => {
    const [syntax] = await score(py('syntax', 'def f(outputs):\n    return (\n'));
    expect(syntax?.error).toMatchObject({ code: 'CODE_SCORER_ERROR' });
    expect(syntax?.error?.message).toMatch(/does not compile/);
    const [missing] = await score(py('missing', 'def g(outputs):\n    return 1\n', { function: 'f' }));
    expect(missing?.error?.message).toMatch(/defines no function 'f'/);
  });
});

describe('Python sandbox pool', () => {
  it('measures the limit in CPU time: a call on a thread whose wall clock races is not cut short', async () => {
    // Every wall-clock reading in the worker is 50 ms later than the one before, as on a machine
    // that deschedules the thread all the time; the call uses far less than its 1 s of CPU.
    const sb = new PythonSandbox({ workers: 1, timeoutMs: 1000 }, { wallClockStepMs: 50 });
    try {
      const out = await sb.run({
        key: 'k',
        context: 'c',
        source: 'def f(outputs):\n    t = 0\n    for i in range(200000):\n        t += i\n    return t\n',
        ctxJson: '{"outputs": null}',
        traceJson: null,
      });
      expect(out).toEqual({ ok: true, json: `{"v": ${(199999 * 200000) / 2}}` });
    } finally {
      await sb.close();
    }
  }, 120_000);

  it('terminates a call stuck in one long C operation at the hard deadline, and replaces the worker', async () => {
    const sb = new PythonSandbox({ workers: 1, timeoutMs: 200, hardDeadlineMs: 1500 });
    try {
      const out = await sb.run({ key: 'k', context: 'c', source: 'def f(outputs):\n    return sum(range(10**12))\n', ctxJson: '{}', traceJson: null });
      expect(out).toMatchObject({ ok: false, code: 'TIMEOUT' });
      expect(sb.stats().replaced).toBe(1);
      const next = await sb.run({ key: 'k', context: 'c2', source: 'def f(outputs):\n    return 1\n', ctxJson: '{}', traceJson: null });
      expect(next).toEqual({ ok: true, json: '{"v": 1}' });
    } finally {
      await sb.close();
    }
  }, 180_000);

  it('checks a source at registration without running it', async () => {
    const sb = new PythonSandbox({ workers: 1 });
    try {
      expect(await sb.check('def f(x):\n    return (\n')).toMatch(/^does not compile/);
      expect(await sb.check('def g(x):\n    return 1\n', 'f')).toBe("defines no top-level function 'f'");
      expect(await sb.check('x = 1\n')).toBe('defines no function');
      // The body is not run: an endless loop at module level is not reached either.
      expect(await sb.check('def f(x):\n    while True:\n        pass\n')).toBeUndefined();
    } finally {
      await sb.close();
    }
  }, 120_000);
});
