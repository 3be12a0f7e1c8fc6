# Reads traces back with MLflow's own client from whatever MLFLOW_TRACKING_URI names (a real
# `mlflow server`, or scorecar's admin port): argv[1] is a JSON list of trace ids, argv[2] an
# experiment id to search (or ""). Prints {"traces": {id: {...}}, "search": [ids]}.
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402

ids = json.loads(sys.argv[1])
out = {"traces": {}}
for tid in ids:
    t = mlflow.get_trace(tid)
    if t is None:
        out["traces"][tid] = None
        continue
    out["traces"][tid] = {
        "state": str(t.info.state),
        "spans": sorted(s.name for s in t.data.spans),
        "assessments": [
            {
                "name": a.name,
                "value": getattr(a, "value", None),
                "source_type": a.source.source_type,
                "source_id": a.source.source_id,
                "rationale": a.rationale,
                "metadata": a.metadata,
                "error": None if getattr(a, "error", None) is None else {"code": a.error.error_code, "message": a.error.error_message},
                "span_id": a.span_id,
            }
            for a in t.info.assessments
        ],
    }
if len(sys.argv) > 2 and sys.argv[2]:
    found = mlflow.search_traces(locations=[sys.argv[2]], return_type="list", include_spans=False)
    out["search"] = sorted(t.info.trace_id for t in found)
print(json.dumps(out, default=str))
