# Python side of scorecar's Python scorer sandbox (python-worker.ts loads this into Pyodide once per
# worker thread). It owns: the scorer's view of the world (a namespace per scorer version, its own
# builtins, no file, process, network or JavaScript access), the arguments MLflow passes a scorer
# (inputs, outputs, expectations, trace as an MLflow Trace-like object), a small `mlflow` module
# with what scorer code imports from MLflow (Feedback, the @scorer decorator, span types), and
# the reading of what the scorer returned into JSON for the host (code-scorer.ts reads it).
#
# This layer makes refusals clean (PermissionError, ImportError with a message); it is not the
# boundary. The boundary is what the interpreter can reach outside wasm, closed on the JavaScript
# side by python-worker.ts (no host file system mounted, no module loading, no network globals,
# no subprocesses).
import ast as _ast
import builtins as _builtins
import inspect as _inspect
import json as _json
import math as _math
import os as _os
import sys as _sys
import types as _types

_BLOCKED_TOP = frozenset({
    'js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'micropip', 'ctypes', '_ctypes',
    'subprocess', '_posixsubprocess', 'socket', '_socket', 'ssl', '_ssl', 'select', 'selectors',
    'multiprocessing', '_multiprocessing', 'gc', 'webbrowser', 'urllib.request', 'http.client',
    'ftplib', 'smtplib', 'imaplib', 'poplib', 'telnetlib', 'xmlrpc', 'asyncio', 'pty', 'tty',
    'faulthandler', 'tracemalloc', 'resource', 'mmap', 'sqlite3', '_sqlite3',
    '_thread', 'threading', 'concurrent', 'signal', '_signal', 'ensurepip', 'venv', 'pip',
})


def _blocked(name):
    return name in _BLOCKED_TOP or name.split('.')[0] in _BLOCKED_TOP


class _BlockFinder:
    """First on sys.meta_path: the modules a scorer may not import fail to import."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if _blocked(name):
            raise ImportError(f"module '{name}' is not available in the scorecar sandbox")
        return None


def _refuse(what):
    def refused(*_a, **_k):
        raise PermissionError(f'{what} is not allowed in the scorecar sandbox')
    refused.__name__ = what
    return refused


_os.environ.clear()

# Process control and file descriptors: refused with a clear error (the wasm runtime could not do
# most of them anyway; these make the refusal explicit).
for _n in ('system', 'popen', 'fork', 'forkpty', 'kill', 'killpg', 'execv', 'execve', 'execl', 'execle',
           'execlp', 'execlpe', 'execvp', 'execvpe', 'spawnl', 'spawnle', 'spawnlp', 'spawnlpe', 'spawnv',
           'spawnve', 'spawnvp', 'spawnvpe', 'posix_spawn', 'posix_spawnp', 'open', 'remove', 'unlink',
           'rmdir', 'mkdir', 'makedirs', 'rename', 'replace', 'chdir', 'chmod', 'chown', 'symlink', 'link',
           'truncate', 'putenv', 'unsetenv'):
    if hasattr(_os, _n):
        setattr(_os, _n, _refuse(f'os.{_n}'))
import posix as _posix  # noqa: E402
for _n in dir(_posix):
    if _n in ('system', 'fork', 'kill', 'execv', 'execve', 'open', 'remove', 'unlink',
              'mkdir', 'rmdir', 'rename', 'replace', 'chdir', 'posix_spawn', 'posix_spawnp', 'putenv', 'unsetenv'):
        setattr(_posix, _n, _refuse(f'os.{_n}'))
# The import system opens the standard library's files through _io.open: only the scorers'
# builtin open() is refused (below). The file system they could reach is the interpreter's own
# in-memory one; no host directory is mounted (python-worker.ts).
_sys.dont_write_bytecode = True

for _m in list(_sys.modules):
    if _blocked(_m):
        del _sys.modules[_m]
# Pyodide's finder of JavaScript modules goes: a scorer imports no JavaScript.
_sys.meta_path[:] = [f for f in _sys.meta_path if type(f).__name__ != 'JsFinder']
_sys.meta_path.insert(0, _BlockFinder)


# --------------------------------------------------------------------------- the mlflow module

DEFAULT_FEEDBACK_NAME = 'feedback'


class AssessmentSource:
    def __init__(self, source_type='CODE', source_id=None):
        self.source_type = source_type
        self.source_id = source_id


class AssessmentError:
    def __init__(self, error_code, error_message=None, stack_trace=None):
        self.error_code = error_code
        self.error_message = error_message
        self.stack_trace = stack_trace


class Feedback:
    """MLflow's Feedback as a scorer returns it: name, value, rationale, metadata (and error)."""

    def __init__(self, name=DEFAULT_FEEDBACK_NAME, value=None, rationale=None, source=None, trace_id=None,
                 metadata=None, span_id=None, error=None, **_ignored):
        self.name = name
        self.value = value
        self.rationale = rationale
        self.source = source
        self.trace_id = trace_id
        self.metadata = metadata
        self.span_id = span_id
        self.error = error


class SpanType:
    LLM = 'LLM'
    CHAIN = 'CHAIN'
    AGENT = 'AGENT'
    TOOL = 'TOOL'
    CHAT_MODEL = 'CHAT_MODEL'
    RETRIEVER = 'RETRIEVER'
    PARSER = 'PARSER'
    EMBEDDING = 'EMBEDDING'
    RERANKER = 'RERANKER'
    MEMORY = 'MEMORY'
    UNKNOWN = 'UNKNOWN'


def scorer(func=None, *, name=None, aggregations=None, description=None, **_ignored):
    """MLflow's @scorer: here the function itself (the host calls it with MLflow's arguments)."""
    if func is None:
        return lambda f: f
    return func


def _json_attr(v):
    # MLflow tracing writes its span attributes JSON-encoded (mlflow.spanInputs = '{"q": 1}').
    if isinstance(v, str) and (v[:1] in ('{', '[', '"') or v in ('true', 'false', 'null')):
        try:
            return _json.loads(v)
        except ValueError:
            return v
    return v


class SpanStatus:
    def __init__(self, status_code, description=''):
        self.status_code = status_code
        self.description = description


class SpanEvent:
    def __init__(self, name, timestamp, attributes):
        self.name = name
        self.timestamp = timestamp
        self.attributes = attributes


class Span:
    """An MLflow span as scorers read it (mlflow.entities.Span)."""

    def __init__(self, d, request_id):
        attrs = {k: _json_attr(v) for k, v in (d.get('attributes') or {}).items()}
        self._d = d
        self.name = d.get('name')
        self.span_id = d.get('spanId')
        self.trace_id = d.get('traceId')
        self.request_id = request_id
        self.parent_id = d.get('parentSpanId') or None
        self.span_type = attrs.get('mlflow.spanType') or d.get('spanType') or SpanType.UNKNOWN
        self.start_time_ns = int(d.get('startTimeUnixNano') or 0)
        self.end_time_ns = int(d.get('endTimeUnixNano') or 0)
        st = d.get('status') or {}
        self.status = SpanStatus(st.get('code', 'UNSET'), st.get('message', ''))
        self.attributes = attrs
        self.inputs = attrs.get('mlflow.spanInputs', attrs.get('input.value'))
        self.outputs = attrs.get('mlflow.spanOutputs', attrs.get('output.value'))
        self.events = [SpanEvent(e.get('name'), int(e.get('timeUnixNano') or 0), e.get('attributes') or {})
                       for e in d.get('events') or []]

    def get_attribute(self, key):
        return self.attributes.get(key)

    def to_dict(self):
        return dict(self._d)

    def __repr__(self):
        return f'Span(name={self.name!r}, span_type={self.span_type!r}, span_id={self.span_id!r})'


class TraceInfo:
    def __init__(self, t):
        self.trace_id = 'tr-' + str(t.get('traceId') or '')
        self.request_id = self.trace_id
        self.experiment_id = t.get('experimentId')
        self.request_time = int(t.get('startTimeMs') or 0)
        self.execution_duration = int(t.get('executionTimeMs') or 0)
        self.execution_time_ms = self.execution_duration
        self.state = 'ERROR' if t.get('status') == 'ERROR' else 'OK'
        self.status = self.state
        self.trace_metadata = dict(t.get('metadata') or {})
        self.request_metadata = self.trace_metadata
        self.tags = dict(t.get('tags') or {})
        self.assessments = []
        self.request_preview = _preview(t.get('inputs'))
        self.response_preview = _preview(t.get('outputs'))


def _preview(v):
    if v is None:
        return None
    return v if isinstance(v, str) else _json.dumps(v)


class TraceData:
    def __init__(self, spans, t):
        self.spans = spans
        self.request = _preview(t.get('inputs'))
        self.response = _preview(t.get('outputs'))

    @property
    def intermediate_outputs(self):
        return None


class Trace:
    """An MLflow Trace as scorers read it: info, data.spans, search_spans()."""

    def __init__(self, t):
        self.info = TraceInfo(t)
        self.data = TraceData([Span(s, self.info.trace_id) for s in t.get('spans') or []], t)
        self._t = t

    def search_spans(self, span_type=None, name=None, span_id=None):
        out = []
        for s in self.data.spans:
            if span_type is not None and s.span_type != span_type:
                continue
            if name is not None and (name.search(s.name) is None if hasattr(name, 'search') else s.name != name):
                continue
            if span_id is not None and s.span_id != span_id:
                continue
            out.append(s)
        return out

    def to_dict(self):
        return dict(self._t)

    def to_json(self, pretty=False):
        return _json.dumps(self._t, indent=2 if pretty else None)


def custom_prompt_judge(*_a, **_k):
    # A judge called from inside a scorer needs the network; the sandbox has none.
    raise NotImplementedError(
        'calling an LLM judge from inside a Python scorer is not available in the scorecar sandbox (no network): '
        'register the judge itself (custom_prompt_judge is scorecar definition {type: prompt}, make_judge {type: judge})')


def _module(name, **attrs):
    m = _types.ModuleType(name)
    m.__dict__.update(attrs)
    _sys.modules[name] = m
    return m


def _install_mlflow():
    entities = dict(Feedback=Feedback, AssessmentSource=AssessmentSource, AssessmentError=AssessmentError,
                    Trace=Trace, Span=Span, SpanType=SpanType, TraceInfo=TraceInfo, TraceData=TraceData)
    mlflow = _module('mlflow', __version__='3.18.0')
    mlflow.entities = _module('mlflow.entities', **entities)
    mlflow.entities.assessment = _module('mlflow.entities.assessment', Feedback=Feedback,
                                         DEFAULT_FEEDBACK_NAME=DEFAULT_FEEDBACK_NAME,
                                         AssessmentSource=AssessmentSource, AssessmentError=AssessmentError)
    mlflow.entities.span = _module('mlflow.entities.span', Span=Span, SpanType=SpanType)
    mlflow.entities.trace = _module('mlflow.entities.trace', Trace=Trace)
    mlflow.genai = _module('mlflow.genai', scorer=scorer)
    mlflow.genai.scorers = _module('mlflow.genai.scorers', scorer=scorer)
    mlflow.genai.judges = _module('mlflow.genai.judges', custom_prompt_judge=custom_prompt_judge, make_judge=custom_prompt_judge)


_install_mlflow()


# --------------------------------------------------------------------------- scorers

_SAFE_BUILTINS = {k: v for k, v in _builtins.__dict__.items()
                  if k not in ('open', 'breakpoint', 'input', 'help', 'exit', 'quit', 'copyright', 'credits', 'license')}
_SAFE_BUILTINS['open'] = _refuse('open()')
_SAFE_BUILTINS['input'] = _refuse('input()')
_SAFE_BUILTINS['breakpoint'] = _refuse('breakpoint()')

_scorers = {}


class ScorerError(Exception):
    """A scorer that does not compile or defines no function (CODE_SCORER_ERROR)."""


def _function_of(ns, tree, fn_name):
    if fn_name:
        f = ns.get(fn_name)
        if not callable(f):
            raise ScorerError(f"the source defines no function '{fn_name}'")
        return f
    defs = [n.name for n in tree.body if isinstance(n, (_ast.FunctionDef, _ast.AsyncFunctionDef))]
    if not defs:
        raise ScorerError('the source defines no function (expected e.g. "def my_scorer(outputs): ...")')
    return ns[defs[-1]]


def load(context, source, fn_name):
    """Compiles a scorer into a namespace of its own (kept per scorer version)."""
    if context in _scorers:
        return
    try:
        tree = _ast.parse(source, filename='<scorer>')
        code = compile(tree, '<scorer>', 'exec')
    except SyntaxError as e:
        raise ScorerError(f'the source does not compile: {e.msg} (line {e.lineno})') from None
    ns = {'__name__': '__scorer__', '__builtins__': dict(_SAFE_BUILTINS)}
    exec(code, ns)
    f = _function_of(ns, tree, fn_name)
    try:
        params = _inspect.signature(f).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    names = [n for n in ('inputs', 'outputs', 'expectations', 'trace', 'session') if takes_all or n in params]
    _scorers[context] = (f, names)


def forget(context):
    _scorers.pop(context, None)


def check(source, fn_name):
    """Registration-time check: the source compiles and defines the function (nothing is run)."""
    try:
        tree = _ast.parse(source, filename='<scorer>')
        compile(tree, '<scorer>', 'exec')
    except SyntaxError as e:
        return f'does not compile: {e.msg} (line {e.lineno})'
    defs = [n.name for n in tree.body if isinstance(n, (_ast.FunctionDef, _ast.AsyncFunctionDef))]
    if fn_name and fn_name not in defs:
        return f"defines no top-level function '{fn_name}'"
    if not defs:
        return 'defines no function'
    return ''


def _tag(x):
    # Mirrors the JavaScript sandbox's markers: non-finite numbers are reported, not turned into null.
    if isinstance(x, float) and not _math.isfinite(x):
        return {'__scorecarNonFinite': 'NaN' if x != x else ('Infinity' if x > 0 else '-Infinity')}
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x
    if isinstance(x, (list, tuple)):
        return [_tag(i) for i in x]
    if isinstance(x, dict):
        return {str(k): _tag(v) for k, v in x.items()}
    return str(x)


def _feedback_json(fb):
    out = {'value': _tag(fb.value)}
    if fb.name and fb.name != DEFAULT_FEEDBACK_NAME:
        out['name'] = fb.name
    if fb.rationale is not None:
        out['rationale'] = str(fb.rationale)
    if fb.metadata:
        out['metadata'] = {str(k): v if isinstance(v, str) else _json.dumps(_tag(v)) for k, v in fb.metadata.items()}
    if fb.error is not None:
        e = fb.error
        out['error'] = str(getattr(e, 'error_message', None) or getattr(e, 'error_code', None) or e)
    return out


def _result_json(r):
    if r is None:
        return '{"none": true}'
    if isinstance(r, Feedback):
        return _json.dumps({'v': _feedback_json(r)})
    if isinstance(r, list) and r and all(isinstance(i, Feedback) for i in r):
        return _json.dumps({'v': [_feedback_json(i) for i in r]})
    if isinstance(r, (bool, int, float, str)):
        return _json.dumps({'v': _tag(r)})
    raise TypeError(f'the scorer must return one of int, float, bool, str, Feedback or list[Feedback]; got {type(r).__name__}')


def call(context, ctx_json, trace_json):
    f, names = _scorers[context]
    ctx = _json.loads(ctx_json)
    args = {}
    for n in names:
        if n == 'trace':
            args['trace'] = Trace(_json.loads(trace_json)) if trace_json else None
        elif n == 'session':
            args['session'] = None
        else:
            args[n] = ctx.get(n)
    return _result_json(f(**args))
