# An app traced with MLflow's SDK whose tracking URI (MLFLOW_TRACKING_URI) is scorecar's admin
# port: set_experiment, then three traced calls. Prints {"trace_ids": [...], "experiment_id": ...}.
import json
import os
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402

exp = mlflow.set_experiment(os.environ["APP_EXPERIMENT"])


@mlflow.trace(span_type="RETRIEVER")
def retrieve(question):
    return [{"page_content": "scorecar scores traces", "metadata": {"doc_uri": "kb://1"}}]


@mlflow.trace
def answer(question):
    docs = retrieve(question)
    return f"Answer to {question}: {docs[0]['page_content']}"


ids = []
for q in ["what is scorecar?", "how does sampling work?", "where do verdicts go?"]:
    answer(q)
    ids.append(mlflow.get_last_active_trace_id())
mlflow.flush_trace_async_logging()
print(json.dumps({"trace_ids": ids, "experiment_id": exp.experiment_id}))
