# The feature description's own Python examples (shared/seed, "Monitorar GenAI em produção"), run
# with MLflow 3.18's unmodified SDK against whatever MLFLOW_TRACKING_URI names (a scorecar admin
# port in test/wire/mlflow-sdk.test.ts). Each example is one cell, as in the description, run in
# order in one namespace like a notebook; a cell's error is recorded, not fatal. The only lines
# that are not the description's are the set-up (the experiment, named by the test) and the
# extra cells after them, which exercise the rest of the SDK and the sandbox.
#
# Prints one JSON line: {"cells": {name: {"ok": bool, "error": "Type: message", "out": stdout}},
# "experiment_id": "..."}.
import contextlib
import io
import json
import os
import sys
import tempfile
import traceback
import warnings

warnings.filterwarnings("ignore")

CELLS = []


def cell(name, code):
    CELLS.append((name, code))


cell("setup", """
import mlflow, os
mlflow.set_experiment(os.environ["SEED_EXPERIMENT"])
""")

# --- Use built-in LLM judges
cell("builtin_safety", """
from mlflow.genai.scorers import Safety, ScorerSamplingConfig

# Register the scorer with a name and start monitoring
safety_judge = Safety().register(name="my_safety_judge") # name must be unique to experiment
safety_judge = safety_judge.start(sampling_config=ScorerSamplingConfig(sample_rate=0.7))
""")
cell("builtin_safety_databricks_model", """
safety_judge = Safety(model="databricks:/databricks-gpt-oss-20b").register(name="my_custom_safety_judge")
""")

# --- Guidelines
cell("guidelines", """
from mlflow.genai.scorers import Guidelines

# Create and register the guidelines scorer
english_judge = Guidelines(
    name="english",
    guidelines=["The response must be in English"]
).register(name="is_english") # name must be unique to experiment

# Start monitoring with the specified sample rate
english_judge = english_judge.start(sampling_config=ScorerSamplingConfig(sample_rate=0.7))
""")
cell("guidelines_databricks_model", """
english_judge = Guidelines(
    name="english",
    guidelines=["The response must be in English"],
    model="databricks:/databricks-gpt-oss-20b",
).register(name="custom_is_english")
""")

# --- LLM judges with custom prompts (an @scorer that calls custom_prompt_judge)
cell("custom_prompt_judge", '''
from mlflow.genai.scorers import scorer, ScorerSamplingConfig


@scorer
def formality(inputs, outputs, trace):
    # Must be imported inline within the scorer function body
    from mlflow.genai.judges import custom_prompt_judge
    from mlflow.entities.assessment import DEFAULT_FEEDBACK_NAME

    formality_prompt = """
    You will look at the response and determine the formality of the response.

    <request>{{request}}</request>
    <response>{{response}}</response>

    You must choose one of the following categories.

    [[formal]]: The response is very formal.
    [[semi_formal]]: The response is somewhat formal. The response is somewhat formal if the response mentions friendship, etc.
    [[not_formal]]: The response is not formal.
    """

    my_prompt_judge = custom_prompt_judge(
        name="formality",
        prompt_template=formality_prompt,
        numeric_values={
            "formal": 1,
            "semi_formal": 0.5,
            "not_formal": 0,
        },
        model="databricks:/databricks-gpt-oss-20b", # optional
    )

    result = my_prompt_judge(request=inputs, response=inputs)
    if hasattr(result, "name"):
        result.name = DEFAULT_FEEDBACK_NAME
    return result

# Register the custom judge and start monitoring
formality_judge = formality.register(name="my_formality_judge") # name must be unique to experiment
formality_judge = formality_judge.start(sampling_config=ScorerSamplingConfig(sample_rate=0.1))
''')

# --- Custom scorer functions
cell("custom_scorers", '''
from mlflow.genai.scorers import scorer, ScorerSamplingConfig


# Custom metric: Check if response mentions Databricks
@scorer
def mentions_databricks(outputs):
    """Check if the response mentions Databricks"""
    return "databricks" in str(outputs.get("response", "")).lower()

# Custom metric: Response length check
@scorer(aggregations=["mean", "min", "max"])
def response_length(outputs):
    """Measure response length in characters"""
    return len(str(outputs.get("response", "")))

# Custom metric with multiple inputs
@scorer
def response_relevance_score(inputs, outputs):
    """Score relevance based on keyword matching"""
    query = str(inputs.get("query", "")).lower()
    response = str(outputs.get("response", "")).lower()

    # Simple keyword matching (replace with your logic)
    query_words = set(query.split())
    response_words = set(response.split())

    if not query_words:
        return 0.0

    overlap = len(query_words & response_words)
    return overlap / len(query_words)

# Register and start monitoring custom scorers
databricks_scorer = mentions_databricks.register(name="databricks_mentions")
databricks_scorer = databricks_scorer.start(sampling_config=ScorerSamplingConfig(sample_rate=0.5))

length_scorer = response_length.register(name="response_length")
length_scorer = length_scorer.start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))

relevance_scorer = response_relevance_score.register(name="response_relevance_score") # name must be unique to experiment
relevance_scorer = relevance_scorer.start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))
''')

# --- Multiple scorers
cell("multiple_scorers", """
from mlflow.genai.scorers import Safety, Guidelines, ScorerSamplingConfig, list_scorers

# # Register multiple scorers for comprehensive monitoring
safety_judge = Safety().register(name="safety") # name must be unique within an MLflow experiment
safety_judge = safety_judge.start(
    sampling_config=ScorerSamplingConfig(sample_rate=1.0), # Check all traces
)

guidelines_judge = Guidelines(
    name="english",
    guidelines=["Response must be in English"]
).register(name="english_check")
guidelines_judge = guidelines_judge.start(
    sampling_config=ScorerSamplingConfig(sample_rate=0.5), # Sample 50%
)

# List and manage all scorers
all_scorers = list_scorers()
for scorer in all_scorers:
    if scorer.sample_rate > 0:
        print(f"{scorer.name} is active")
    else:
        print(f"{scorer.name} is stopped")
""")

# --- Basic scorer lifecycle (the description calls delete_scorer without importing it, and
# without a version, which MLflow's OSS client refuses: both fail in MLflow itself)
cell("basic_lifecycle", """
from mlflow.genai.scorers import Safety, scorer, ScorerSamplingConfig

# Built-in scorer lifecycle
safety_judge = Safety().register(name="safety_check")
safety_judge = safety_judge.start(
    sampling_config=ScorerSamplingConfig(sample_rate=1.0),
)
safety_judge = safety_judge.update(
    sampling_config=ScorerSamplingConfig(sample_rate=0.8),
)
safety_judge = safety_judge.stop()
delete_scorer(name="safety_check")
""")
cell("custom_lifecycle", """
# Custom scorer lifecycle
@scorer
def response_length(outputs):
    return len(str(outputs.get("response", "")))

length_scorer = response_length.register(name="length_check")
length_scorer = length_scorer.start(
    sampling_config=ScorerSamplingConfig(sample_rate=0.5),
)
""")

# --- List current scorers
cell("list_scorers", """
from mlflow.genai.scorers import list_scorers

# List all registered scorers
scorers = list_scorers()
for scorer in scorers:
    print(f"Name: {scorer._server_name}")
    print(f"Sample rate: {scorer.sample_rate}")
    print(f"Filter: {scorer.filter_string}")
    print("---")
""")

# --- Get and update a scorer (the description gets "safety_monitor", which none of its
# examples registered: MLflow answers RESOURCE_DOES_NOT_EXIST)
cell("get_and_update", """
from mlflow.genai.scorers import get_scorer

# Get existing scorer and update its configuration (immutable operation)
safety_judge = get_scorer(name="safety_monitor")
updated_judge = safety_judge.update(sampling_config=ScorerSamplingConfig(sample_rate=0.8)) # Increased from 0.5

# Note: The original scorer remains unchanged; update() returns a new scorer instance
print(f"Original sample rate: {safety_judge.sample_rate}") # Original rate
print(f"Updated sample rate: {updated_judge.sample_rate}") # New rate
""")

# --- Stop and delete scorers
cell("stop_and_delete", """
from mlflow.genai.scorers import get_scorer, delete_scorer

# Get existing scorer
databricks_scorer = get_scorer(name="databricks_mentions")

# Stop monitoring (sets sample_rate to 0, keeps scorer registered)
stopped_scorer = databricks_scorer.stop()
print(f"Sample rate after stop: {stopped_scorer.sample_rate}") # 0

# Remove scorer entirely from the server
delete_scorer(name=databricks_scorer.name)

# Or restart monitoring from a stopped scorer
restarted_scorer = stopped_scorer.start(sampling_config=ScorerSamplingConfig(sample_rate=0.5))
""")

# --- Immutable updates
cell("immutable_updates", """
# Demonstrate immutability
original_judge = Safety().register(name="safety")
original_judge = original_judge.start(
    sampling_config=ScorerSamplingConfig(sample_rate=0.3),
)

# Update returns new instance
updated_judge = original_judge.update(
    sampling_config=ScorerSamplingConfig(sample_rate=0.8),
)

# Original remains unchanged
print(f"Original: {original_judge.sample_rate}") # 0.3
print(f"Updated: {updated_judge.sample_rate}") # 0.8
""")

# --- Custom scorer design examples (defined, registered and started here so they run in production)
cell("well_designed", '''
from mlflow.genai.scorers import scorer, ScorerSamplingConfig  # the list cells above rebound `scorer`

@scorer
def well_designed_scorer(inputs, outputs):
    # All imports inside the function
    import re
    import json

    # Handle missing data gracefully
    response = outputs.get("response", "")
    if not response:
        return 0.0

    # Return consistent types
    return float(len(response) > 100)

@scorer
def good_scorer(outputs):
    import json # Inside function
    return len(json.dumps(outputs))

well_designed_scorer.register(name="well_designed").start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))
good_scorer.register(name="good_scorer").start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))
''')

# ------------------------------------------------------------------ beyond the description

cell("versions_and_delete", """
from mlflow.genai.scorers import Guidelines, ScorerSamplingConfig, get_scorer, delete_scorer, list_scorers
from mlflow.genai.scorers.registry import list_scorer_versions

v1 = Guidelines(name="tone", guidelines=["Be polite"]).register(name="tone")
v2 = Guidelines(name="tone", guidelines=["Be polite", "Be brief"]).register(name="tone")
started = v2.start(sampling_config=ScorerSamplingConfig(sample_rate=0.7, filter_string="trace.status = 'OK'"))
# update replaces the whole config: no filter_string given, no filter kept
updated = started.update(sampling_config=ScorerSamplingConfig(sample_rate=0.4))
versions = list_scorer_versions(name="tone")
first = get_scorer(name="tone", version=1)
latest = get_scorer(name="tone")
RESULT["tone"] = {
    "versions": [v for _, v in versions],
    "v1_guidelines": first.guidelines,
    "latest_guidelines": latest.guidelines,
    "started": [started.sample_rate, started.filter_string],
    "updated": [updated.sample_rate, updated.filter_string],
    "latest_rate": latest.sample_rate,
}
delete_scorer(name="tone", version=1)
RESULT["tone"]["after_delete_v1"] = [v for _, v in list_scorer_versions(name="tone")]
delete_scorer(name="tone", version="all")
try:
    get_scorer(name="tone")
    RESULT["tone"]["after_delete_all"] = "found"
except Exception as e:
    RESULT["tone"]["after_delete_all"] = getattr(e, "error_code", type(e).__name__)
RESULT["names_after"] = sorted(s.name for s in list_scorers())
""")

cell("make_judge_gateway", """
from mlflow.genai.judges import make_judge
polite = make_judge(
    name="polite",
    instructions="Is the answer in {{ outputs }} polite to the user in {{ inputs }}?",
    model="gateway:/fake-judge",
    feedback_value_type=bool,
)
polite = polite.register(name="polite")
polite = polite.start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))
RESULT["polite"] = {"model": polite.model, "rate": polite.sample_rate}
""")

cell("unknown_gateway_endpoint", """
Safety(model="gateway:/nowhere").register(name="nowhere")
""")

cell("rate_out_of_range", """
from mlflow.tracking._tracking_service.utils import _get_store
_get_store().upsert_online_scoring_config(
    experiment_id=mlflow.get_experiment_by_name(os.environ["SEED_EXPERIMENT"]).experiment_id,
    scorer_name="response_length", sample_rate=1.5)
""")

cell("delete_all_versions_form", """
delete_scorer(name="databricks_mentions", version="all")
RESULT["after_delete_all"] = sorted(s.name for s in list_scorers())
""")

cell("final_state", """
RESULT["final"] = {s.name: [s.sample_rate, s.filter_string] for s in list_scorers()}
""")

# Python sandbox escape attempts, registered through the SDK in an experiment of their own next
# to a well-behaved scorer; each must end as an error assessment and leave the others unaffected.
cell("escapes", '''
import mlflow
from mlflow.genai.scorers import scorer, ScorerSamplingConfig
mlflow.set_experiment(os.environ["SEED_EXPERIMENT"] + "-escapes")

@scorer
def endless_loop(outputs):
    while True:
        pass

@scorer
def huge_allocation(outputs):
    return len([0] * (300 * 1000 * 1000))

@scorer
def shell_command(outputs):
    import os
    return os.system("touch /tmp/scorecar-sandbox-escaped")

@scorer
def read_host_file(outputs):
    return open("/etc/hostname").read()

@scorer
def open_socket(outputs):
    import socket
    return str(socket.create_connection(("127.0.0.1", 4320)))

@scorer
def load_ctypes(outputs):
    import ctypes
    return ctypes.CDLL(None).getpid()

@scorer
def run_javascript(outputs):
    from pyodide.code import run_js
    return run_js("process.pid")

@scorer
def deep_recursion(outputs):
    def down(n):
        return down(n + 1)
    return down(0)

@scorer
def raises(outputs):
    raise ValueError("a bug in the scorer")

@scorer
def well_behaved(outputs):
    return len(str(outputs.get("response", "")))

for s in [endless_loop, huge_allocation, shell_command, read_host_file, open_socket, load_ctypes,
          run_javascript, deep_recursion, raises, well_behaved]:
    s.register(name=s.name).start(sampling_config=ScorerSamplingConfig(sample_rate=1.0))
RESULT["escapes_experiment_id"] = mlflow.get_experiment_by_name(os.environ["SEED_EXPERIMENT"] + "-escapes").experiment_id
''')


def main():
    report = {"cells": {}}
    ns = {"RESULT": report.setdefault("values", {})}
    tmp = tempfile.mkdtemp(prefix="seed-cells-")
    only = set(sys.argv[1:])
    for name, code in CELLS:
        if only and name not in only:
            continue
        # Each cell is a file of its own: MLflow reads an @scorer's source with inspect.
        path = os.path.join(tmp, f"{name}.py")
        with open(path, "w") as f:
            f.write(code)
        out = io.StringIO()
        entry = {"ok": True}
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, path, "exec"), ns)
        except BaseException as e:  # noqa: BLE001 - a cell's failure is part of the report
            entry = {"ok": False, "error": f"{type(e).__name__}: {e}", "error_code": getattr(e, "error_code", None),
                     "trace": traceback.format_exc()[-2000:]}
        entry["out"] = out.getvalue()
        report["cells"][name] = entry
    import mlflow
    report["experiment_id"] = mlflow.get_experiment_by_name(os.environ["SEED_EXPERIMENT"]).experiment_id
    print(json.dumps(report, default=str))


main()
